package duckdb_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/batch"
	"github.com/reconmon/recon/sources/snmp"
	"github.com/reconmon/recon/sources/snmp/snmptest"
	"github.com/reconmon/recon/sources/snmptrap"
)

// TestSNMPTrapsIntoParquet sends traps and informs with net-snmp's
// snmptrap/snmpinform (v1, v2c, v3 authPriv) to a listener with MIBs
// loaded, archives them through batcher, journal and Parquet archiver, and
// reads them back with DuckDB: one row per trap with the trap's name and
// OID, the sender and the varbinds; traps with a wrong community or wrong
// v3 credentials are counted and absent from the archive.
func TestSNMPTrapsIntoParquet(t *testing.T) {
	mibs := snmptest.MIBDir(t)
	snmptest.Need(t, "snmptrap")
	p := newSNMPPipeline(t, batch.Options{MaxDelay: 50 * time.Millisecond})
	addr, stats := p.startTrapListener(t, module.Attrs{
		snmp.FieldMIBDirs:      []string{"../../sources/snmp/mib/testdata/local", mibs},
		snmp.FieldMIBs:         []string{"IF-MIB", "RECON-TEST-MIB"},
		snmptrap.FieldUsers:    []string{"ops:authPriv:SHA:authpass1:AES:privpass1"},
		snmptrap.FieldVersions: []string{"1", "2c", "3"},
	})
	const rejectedOID = "1.3.6.1.4.1.99999.0.66"
	v3 := func(user, level, auth string) []string {
		args := []string{"-v", "3", "-e", "0x8000000001020304", "-u", user, "-l", level, "-a", "SHA", "-A", auth}
		if level == "authPriv" {
			args = append(args, "-x", "AES", "-X", "privpass1")
		}
		return append(args, addr, "", rejectedOID)
	}
	sent := uint64(0)
	send := func(tool string, args ...string) {
		snmptest.Run(t, tool, args...)
		sent++
	}
	// Refused: wrong communities, wrong passphrase, unknown user, and an
	// authNoPriv trap for a user configured authPriv.
	send("snmptrap", "-v", "2c", "-c", "private", addr, "", rejectedOID)
	send("snmptrap", "-v", "1", "-c", "wrong", addr, "1.3.6.1.4.1.99999", "127.0.0.1", "6", "66", "")
	send("snmptrap", v3("ops", "authPriv", "wrongpass1")...)
	send("snmptrap", v3("nobody", "authPriv", "authpass1")...)
	send("snmptrap", v3("ops", "authNoPriv", "authpass1")...)
	// Accepted.
	send("snmptrap", "-v", "2c", "-c", "public", addr, "", "1.3.6.1.6.3.1.1.5.3",
		"1.3.6.1.2.1.2.2.1.1.3", "i", "3", "1.3.6.1.2.1.2.2.1.8.3", "i", "2",
		"1.3.6.1.2.1.2.2.1.2.3", "s", "eth2", "1.3.6.1.2.1.31.1.1.1.6.3", "C", "99")
	send("snmptrap", "-v", "1", "-c", "public", addr, "1.3.6.1.4.1.99999", "192.0.2.7", "6", "7", "",
		"1.3.6.1.4.1.99999.1.1.1.2.1", "c", "5")
	send("snmptrap", "-v", "3", "-e", "0x8000000001020304", "-u", "ops", "-l", "authPriv", "-a", "SHA", "-A", "authpass1",
		"-x", "AES", "-X", "privpass1", addr, "", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.5", "i", "5")
	send("snmpinform", "-v", "2c", "-c", "public", "-t", "2", "-r", "0", addr, "", "1.3.6.1.6.3.1.1.5.1")
	send("snmpinform", "-v", "3", "-u", "ops", "-l", "authPriv", "-a", "SHA", "-A", "authpass1",
		"-x", "AES", "-X", "privpass1", "-t", "2", "-r", "1", addr, "", "1.3.6.1.6.3.1.1.5.2")
	p.settle(t, stats, sent, 20*time.Second)

	if got := stats.BadCommunity.Load(); got != 2 {
		t.Errorf("bad community count = %d, want 2", got)
	}
	if got := stats.AuthFailures.Load(); got != 3 {
		t.Errorf("v3 auth failures = %d, want 3", got)
	}
	if got := stats.Informs.Load(); got != 2 {
		t.Errorf("informs acknowledged = %d, want 2", got)
	}

	db := p.db(t)
	var n int
	if err := db.QueryRow("SELECT count(*) FROM samples WHERE labels['trap_oid'] = ?", rejectedOID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rejected traps are in the archive", n)
	}

	type trapRow struct {
		target, trapOID, version, user, inform, ifIndex string
		value                                           float64
	}
	got := map[string]trapRow{}
	rows, err := db.Query(`SELECT metric, target, value, labels['trap_oid'], labels['version'],
		coalesce(labels['user'], ''), coalesce(labels['inform'], ''), coalesce(labels['ifIndex'], '')
		FROM samples WHERE module = 'snmp_trap' AND source = 'traps' AND pipeline = 'it' AND node = 'n1'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var metric string
		var r trapRow
		if err := rows.Scan(&metric, &r.target, &r.value, &r.trapOID, &r.version, &r.user, &r.inform, &r.ifIndex); err != nil {
			t.Fatal(err)
		}
		if _, dup := got[metric]; dup {
			t.Errorf("trap %s archived twice", metric)
		}
		got[metric] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]trapRow{
		"IF-MIB::linkDown":             {"127.0.0.1", "1.3.6.1.6.3.1.1.5.3", "2c", "", "", "3", 1},
		"RECON-TEST-MIB::reconOldTrap": {"192.0.2.7", "1.3.6.1.4.1.99999.0.7", "1", "", "", "", 1},
		"IF-MIB::linkUp":               {"127.0.0.1", "1.3.6.1.6.3.1.1.5.4", "3", "ops", "", "5", 1},
		"SNMPv2-MIB::coldStart":        {"127.0.0.1", "1.3.6.1.6.3.1.1.5.1", "2c", "", "true", "", 1},
		"SNMPv2-MIB::warmStart":        {"127.0.0.1", "1.3.6.1.6.3.1.1.5.2", "3", "ops", "true", "", 1},
	}
	if len(got) != len(want) {
		t.Errorf("archived traps %v, want %d", got, len(want))
	}
	for metric, w := range want {
		if g, ok := got[metric]; !ok || g != w {
			t.Errorf("trap %s: archived %+v (found %v), want %+v", metric, g, ok, w)
		}
	}

	// Varbinds are queryable by name: linkDown's, named from IF-MIB.
	var descr, oper, hc string
	if err := db.QueryRow(`SELECT labels['ifDescr'], labels['ifOperStatus'], labels['ifHCInOctets']
		FROM samples WHERE metric = 'IF-MIB::linkDown'`).Scan(&descr, &oper, &hc); err != nil {
		t.Fatal(err)
	}
	if descr != "eth2" || oper != "2" || hc != "99" {
		t.Errorf("linkDown varbinds ifDescr=%q ifOperStatus=%q ifHCInOctets=%q, want eth2, 2, 99", descr, oper, hc)
	}
	var depth sql.NullString
	if err := db.QueryRow(`SELECT labels['reconQueueDepth'] FROM samples WHERE labels['trap_oid'] = '1.3.6.1.4.1.99999.0.7'`).Scan(&depth); err != nil {
		t.Fatal(err)
	}
	if depth.String != "5" {
		t.Errorf("v1 trap varbind reconQueueDepth = %v, want 5", depth)
	}
}
