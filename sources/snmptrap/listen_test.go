package snmptrap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/runtime/sample/sampletest"
	"github.com/reconmon/recon/sources/snmp"
	"github.com/reconmon/recon/sources/snmp/snmptest"
)

const (
	v3User = "ops:authPriv:SHA:authpass1:AES:privpass1"
	v3Auth = "monitor:authNoPriv:SHA:authpass2"
)

type harness struct {
	addr  string
	rec   *sampletest.Recorder
	stats *Stats
}

func start(t *testing.T, over module.Attrs) *harness {
	t.Helper()
	snmptest.Need(t, "snmptrap")
	port := snmptest.FreeUDPPort(t)
	a := module.Attrs{}
	for _, f := range Spec.Fields {
		if f.Default != nil {
			a[f.Name] = f.Default
		}
	}
	a[FieldListen] = fmt.Sprintf("127.0.0.1:%d", port)
	a[FieldUsers] = []string{v3User, v3Auth}
	for k, v := range over {
		a[k] = v
	}
	if err := Spec.Validate(a); err != nil {
		t.Fatal(err)
	}
	l, err := Spec.NewListener(module.Env{Source: "traps", Node: "test", Attrs: a})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{addr: a.String(FieldListen), rec: &sampletest.Recorder{}, stats: StatsOf(l)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Listen(ctx, h.rec) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen returned %v after cancel, want nil", err)
		}
	})
	snmptest.WaitUDPBound(t, h.addr)
	return h
}

// waitRows waits until n rows arrived or the counters say everything sent
// was handled.
func (h *harness) waitRows(t *testing.T, n int) []sample.Row {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(h.rec.Rows()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rows := h.rec.Rows()
	if len(rows) != n {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), n, rows)
	}
	return rows
}

// settle waits until the listener has handled everything it received.
func (h *harness) settle(t *testing.T, received uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s := h.stats
		handled := s.Accepted.Load() + s.BadCommunity.Load() + s.AuthFailures.Load() + s.Malformed.Load() + s.BadVersion.Load()
		if s.Received.Load() >= received && handled >= received {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("listener did not handle %d datagrams: %+v", received, h.stats)
}

func label(t *testing.T, r sample.Row, key string) string {
	t.Helper()
	v, ok := sampletest.Label(r, key)
	if !ok {
		t.Fatalf("row %s has no label %q: %+v", r.Metric, key, r.Labels)
	}
	return v
}

func TestTrapV2c(t *testing.T) {
	h := start(t, nil)
	snmptest.Run(t, "snmptrap", "-v", "2c", "-c", "public", h.addr, "",
		"1.3.6.1.6.3.1.1.5.3", // linkDown
		"1.3.6.1.2.1.2.2.1.1.3", "i", "3",
		"1.3.6.1.2.1.2.2.1.8.3", "i", "2",
		"1.3.6.1.2.1.2.2.1.2.3", "s", "eth2")
	r := h.waitRows(t, 1)[0]
	if r.Metric != "IF-MIB::linkDown" || r.Target != "127.0.0.1" || r.Value != 1 {
		t.Fatalf("row = %+v", r)
	}
	if got := label(t, r, "ifIndex"); got != "3" {
		t.Errorf("ifIndex = %q", got)
	}
	if got := label(t, r, "ifOperStatus"); got != "2" {
		t.Errorf("ifOperStatus = %q", got)
	}
	if got := label(t, r, "ifDescr"); got != "eth2" {
		t.Errorf("ifDescr = %q", got)
	}
	if got := label(t, r, "trap_oid"); got != "1.3.6.1.6.3.1.1.5.3" {
		t.Errorf("trap_oid = %q", got)
	}
	if got := label(t, r, "version"); got != "2c" {
		t.Errorf("version = %q", got)
	}
}

func TestTrapV1(t *testing.T) {
	h := start(t, nil)
	// enterprise, agent-addr, generic 6 (enterprise specific), specific 17, uptime
	snmptest.Run(t, "snmptrap", "-v", "1", "-c", "public", h.addr,
		"1.3.6.1.4.1.8072.2.3", "192.0.2.7", "6", "17", "",
		"1.3.6.1.4.1.8072.2.3.2.1", "i", "42")
	r := h.waitRows(t, 1)[0]
	if r.Metric != "1.3.6.1.4.1.8072.2.3.0.17" {
		t.Errorf("v1 trap OID = %q, want enterprise.0.specific", r.Metric)
	}
	if r.Target != "192.0.2.7" {
		t.Errorf("target = %q, want the v1 agent-addr", r.Target)
	}
	if got := label(t, r, "1.3.6.1.4.1.8072.2.3.2.1"); got != "42" {
		t.Errorf("varbind = %q", got)
	}
}

func TestTrapV3AndInform(t *testing.T) {
	h := start(t, nil)
	snmptest.Run(t, "snmptrap", "-v", "3", "-e", "0x8000000001020304", "-u", "ops", "-l", "authPriv",
		"-a", "SHA", "-A", "authpass1", "-x", "AES", "-X", "privpass1", h.addr, "",
		"1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.5", "i", "5")
	r := h.waitRows(t, 1)[0]
	if r.Metric != "IF-MIB::linkUp" || label(t, r, "user") != "ops" || label(t, r, "ifIndex") != "5" {
		t.Fatalf("v3 row = %+v", r)
	}
	// snmpinform waits for our acknowledgement and fails without it.
	snmptest.Run(t, "snmpinform", "-v", "2c", "-c", "public", "-t", "2", "-r", "0", h.addr, "",
		"1.3.6.1.6.3.1.1.5.1")
	rows := h.waitRows(t, 2)
	if rows[1].Metric != "SNMPv2-MIB::coldStart" || label(t, rows[1], "inform") != "true" {
		t.Fatalf("inform row = %+v", rows[1])
	}
	if h.stats.Informs.Load() != 1 {
		t.Errorf("informs acknowledged = %d", h.stats.Informs.Load())
	}
}

func TestTrapV3Inform(t *testing.T) {
	h := start(t, nil)
	snmptest.Run(t, "snmpinform", "-v", "3", "-u", "ops", "-l", "authPriv", "-a", "SHA", "-A", "authpass1",
		"-x", "AES", "-X", "privpass1", "-t", "2", "-r", "1", h.addr, "", "1.3.6.1.6.3.1.1.5.2")
	r := h.waitRows(t, 1)[0]
	if r.Metric != "SNMPv2-MIB::warmStart" || label(t, r, "inform") != "true" {
		t.Fatalf("v3 inform row = %+v", r)
	}
}

func TestTrapRejected(t *testing.T) {
	h := start(t, nil)
	sent := uint64(0)
	send := func(args ...string) {
		snmptest.Run(t, "snmptrap", args...)
		sent++
	}
	send("-v", "2c", "-c", "private", h.addr, "", "1.3.6.1.6.3.1.1.5.3")
	send("-v", "1", "-c", "wrong", h.addr, "1.3.6.1.4.1.1", "127.0.0.1", "6", "1", "")
	send("-v", "3", "-e", "0x8000000001020304", "-u", "ops", "-l", "authPriv", "-a", "SHA", "-A", "wrongpass1",
		"-x", "AES", "-X", "privpass1", h.addr, "", "1.3.6.1.6.3.1.1.5.3")
	send("-v", "3", "-e", "0x8000000001020304", "-u", "nobody", "-l", "authPriv", "-a", "SHA", "-A", "authpass1",
		"-x", "AES", "-X", "privpass1", h.addr, "", "1.3.6.1.6.3.1.1.5.3")
	// ops is configured authPriv: an authNoPriv trap with the right auth
	// passphrase must still be refused.
	send("-v", "3", "-e", "0x8000000001020304", "-u", "ops", "-l", "authNoPriv", "-a", "SHA", "-A", "authpass1",
		h.addr, "", "1.3.6.1.6.3.1.1.5.3")
	h.settle(t, sent)
	if n := len(h.rec.Rows()); n != 0 {
		t.Fatalf("%d rejected traps were written: %+v", n, h.rec.Rows())
	}
	if got := h.stats.BadCommunity.Load(); got != 2 {
		t.Errorf("bad community count = %d, want 2", got)
	}
	if got := h.stats.AuthFailures.Load(); got != 3 {
		t.Errorf("v3 auth failures = %d, want 3", got)
	}
	// A good one still gets through afterwards.
	snmptest.Run(t, "snmptrap", "-v", "3", "-e", "0x8000000001020304", "-u", "monitor", "-l", "authNoPriv",
		"-a", "SHA", "-A", "authpass2", h.addr, "", "1.3.6.1.6.3.1.1.5.1")
	h.waitRows(t, 1)
}

// With MIBs loaded, trap OIDs and varbinds the built-in table does not know
// are named from them (SMIv2 NOTIFICATION-TYPE and SMIv1 TRAP-TYPE alike).
func TestTrapMIBNames(t *testing.T) {
	dirs := []string{"../snmp/mib/testdata/local", snmptest.MIBDir(t)}
	h := start(t, module.Attrs{snmp.FieldMIBDirs: dirs, snmp.FieldMIBs: []string{"RECON-TEST-MIB", "IF-MIB"}})
	snmptest.Run(t, "snmptrap", "-v", "2c", "-c", "public", h.addr, "",
		"1.3.6.1.4.1.99999.0.1",                    // reconQueueFull
		"1.3.6.1.4.1.99999.1.1.1.2.5", "c", "1234", // reconQueueDepth.5
		"1.3.6.1.4.1.99999.1.2.0", "i", "2", // reconQueueState.0
		"1.3.6.1.2.1.31.1.1.1.6.3", "C", "99", // ifHCInOctets.3
		"1.3.6.1.4.1.99999.7.1", "s", "unnamed") // under a node, not an object
	r := h.waitRows(t, 1)[0]
	if r.Metric != "RECON-TEST-MIB::reconQueueFull" || label(t, r, "trap_oid") != "1.3.6.1.4.1.99999.0.1" {
		t.Fatalf("trap named %q (trap_oid %q), want RECON-TEST-MIB::reconQueueFull", r.Metric, label(t, r, "trap_oid"))
	}
	for key, want := range map[string]string{"reconQueueDepth": "1234", "reconQueueState": "2",
		"ifHCInOctets": "99", "1.3.6.1.4.1.99999.7.1": "unnamed"} {
		if got := label(t, r, key); got != want {
			t.Errorf("label %s = %q, want %q", key, got, want)
		}
	}
	label(t, r, "sysUpTime") // named by SNMPv2-MIB
	snmptest.Run(t, "snmptrap", "-v", "1", "-c", "public", h.addr,
		"1.3.6.1.4.1.99999", "192.0.2.9", "6", "7", "")
	r = h.waitRows(t, 2)[1]
	if r.Metric != "RECON-TEST-MIB::reconOldTrap" || r.Target != "192.0.2.9" {
		t.Fatalf("v1 trap row = %+v, want RECON-TEST-MIB::reconOldTrap from 192.0.2.9", r)
	}
	// The standard traps keep their names with MIBs loaded.
	snmptest.Run(t, "snmptrap", "-v", "2c", "-c", "public", h.addr, "", "1.3.6.1.6.3.1.1.5.3",
		"1.3.6.1.2.1.2.2.1.1.3", "i", "3")
	if r = h.waitRows(t, 3)[2]; r.Metric != "IF-MIB::linkDown" || label(t, r, "ifIndex") != "3" {
		t.Fatalf("linkDown row = %+v", r)
	}
}

func TestValidateMIBs(t *testing.T) {
	a := module.Attrs{FieldListen: "127.0.0.1:1162", snmp.FieldMIBDirs: []string{snmptest.MIBDir(t)},
		snmp.FieldMIBs: []string{"NO-SUCH-MIB"}}
	err := Spec.Validate(a)
	var fe *module.FieldError
	if !errors.As(err, &fe) || fe.Field != snmp.FieldMIBs || !strings.Contains(fe.Msg, "NO-SUCH-MIB not found") {
		t.Fatalf("Validate = %v, want an error on mibs naming the missing module", err)
	}
}

func TestParseUser(t *testing.T) {
	for _, bad := range []string{"", "x:authPriv:SHA:short:AES:privpass1", "x:authPriv:SHA:authpass1:AES",
		"x:bogus", "x:authNoPriv:MD6:authpass1", "x:authPriv:SHA:a:b:c:d"} {
		if _, err := ParseUser(bad); err == nil {
			t.Errorf("ParseUser(%q) accepted", bad)
		}
	}
	u, err := ParseUser("ro")
	if err != nil || u.Level != "noAuthNoPriv" {
		t.Errorf("ParseUser(ro) = %+v, %v", u, err)
	}
}
