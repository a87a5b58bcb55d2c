package duckdb_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/reconmon/recon/runtime/batch"
	"github.com/reconmon/recon/sources/snmptrap"
	"golang.org/x/net/ipv4"
)

// floodSeqOID is the varbind carrying the trap's sequence number.
const floodSeqOID = "1.3.6.1.4.1.99999.2.0"

// floodTrap returns a v2c trap with 4 varbinds whose last one is a
// 10-digit sequence number, and the offset of those digits, so that the
// sender patches them in place instead of encoding each trap.
func floodTrap(tb testing.TB) ([]byte, int) {
	tb.Helper()
	const placeholder = "9876543210"
	pkt := &gosnmp.SnmpPacket{
		Version: gosnmp.Version2c, Community: "public", PDUType: gosnmp.SNMPv2Trap, RequestID: 1,
		Variables: []gosnmp.SnmpPDU{
			{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(12345)},
			{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.6.3.1.1.5.3"},
			{Name: ".1.3.6.1.2.1.2.2.1.1.3", Type: gosnmp.Integer, Value: 3},
			{Name: "." + floodSeqOID, Type: gosnmp.OctetString, Value: []byte(placeholder)},
		},
	}
	msg, err := pkt.MarshalMsg()
	if err != nil {
		tb.Fatal(err)
	}
	off := bytes.LastIndex(msg, []byte(placeholder))
	if off < 0 {
		tb.Fatal("sequence placeholder not found in the encoded trap")
	}
	return msg, off
}

// udpRcvbufErrors reads the kernel's count of UDP datagrams dropped for a
// full receive buffer (the Udp RcvbufErrors field of /proc/net/snmp).
func udpRcvbufErrors(tb testing.TB) int64 {
	tb.Helper()
	raw, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return -1
	}
	var header []string
	for line := range strings.SplitSeq(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if header == nil {
			header = fields
			continue
		}
		for i, h := range header {
			if h == "RcvbufErrors" && i < len(fields) {
				n, _ := strconv.ParseInt(fields[i], 10, 64)
				return n
			}
		}
	}
	return -1
}

// BenchmarkSNMPTrapFloodArchive sends b.N v2c traps (4 varbinds, sequence
// numbers) over loopback at a fixed rate (RECON_TRAP_RATE, default 50,000
// traps/s) to an snmp_trap listener whose rows go through the batcher and
// journal into the Parquet archive, then counts the distinct sequence
// numbers in the Parquet files with DuckDB. 60 s at 50,000/s:
//
//	RECON_TRAP_RATE=50000 go test -run=^$ -bench=SNMPTrapFloodArchive -benchtime=3000000x ./interop/duckdb
func BenchmarkSNMPTrapFloodArchive(b *testing.B) {
	rate := 50000
	if s := os.Getenv("RECON_TRAP_RATE"); s != "" {
		r, err := strconv.Atoi(s)
		if err != nil || r <= 0 {
			b.Fatalf("RECON_TRAP_RATE=%q: want a positive number of traps per second", s)
		}
		rate = r
	}
	p := newSNMPPipeline(b, batch.Options{})
	addr, stats := p.startTrapListener(b, nil)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// sendmmsg(2): up to 64 traps per system call, so that the sender's
	// system calls do not take the CPU the listener needs.
	pc := ipv4.NewPacketConn(conn.(*net.UDPConn))
	tmpl, off := floodTrap(b)
	batchMsgs := make([]ipv4.Message, 64)
	for i := range batchMsgs {
		batchMsgs[i].Buffers = [][]byte{bytes.Clone(tmpl)}
	}
	kernelDrops := udpRcvbufErrors(b)

	b.ResetTimer()
	start := time.Now()
	var digits [10]byte
	for sent := 0; sent < b.N; {
		due := min(int(time.Since(start).Seconds()*float64(rate))+1, b.N)
		for sent < due {
			n := min(due-sent, len(batchMsgs))
			for i := range n {
				buf := batchMsgs[i].Buffers[0]
				copy(buf[off:off+10], strconv.AppendInt(digits[:0], int64(1e10+sent+i), 10)[1:])
			}
			for done := 0; done < n; {
				k, err := pc.WriteBatch(batchMsgs[done:n], 0)
				if err != nil {
					b.Fatalf("send traps %d..%d: %v", sent+done, sent+n, err)
				}
				done += k
			}
			sent += n
		}
		time.Sleep(200 * time.Microsecond)
	}
	sendTime := time.Since(start)
	// Wait until every trap is handled, or until the listener has been idle
	// long enough that the missing ones are lost.
	last, idleSince := uint64(0), time.Now()
	for h := snmpHandled(stats); h < uint64(b.N) && time.Since(idleSince) < 3*time.Second; h = snmpHandled(stats) {
		if h != last {
			last, idleSince = h, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.settle(b, stats, snmpHandled(stats), 60*time.Second)
	archiveTime := time.Since(start)
	b.StopTimer()
	if kernelDrops >= 0 {
		kernelDrops = udpRcvbufErrors(b) - kernelDrops
	}
	p.close(b)

	db := p.db(b)
	var rows, distinct int64
	var lo, hi sql.NullInt64
	q := fmt.Sprintf(`SELECT count(*), count(DISTINCT labels['%[1]s']), min(CAST(labels['%[1]s'] AS BIGINT)), max(CAST(labels['%[1]s'] AS BIGINT))
		FROM samples WHERE module = 'snmp_trap'`, floodSeqOID)
	if err := db.QueryRow(q).Scan(&rows, &distinct, &lo, &hi); err != nil {
		b.Fatal(err)
	}
	lost := int64(b.N) - distinct
	b.ReportMetric(float64(b.N)/sendTime.Seconds(), "sent/s")
	b.ReportMetric(float64(distinct)/archiveTime.Seconds(), "archived/s")
	b.ReportMetric(float64(lost), "lost")
	b.ReportMetric(float64(rows-distinct), "dup")
	b.ReportMetric(float64(kernelDrops), "kernel-drops")
	b.Logf("N=%d rate=%d/s: sent in %s, archived %d rows (%d distinct, seq %d..%d) after %s; listener %+v",
		b.N, rate, sendTime.Round(time.Millisecond), rows, distinct, lo.Int64, hi.Int64, archiveTime.Round(time.Millisecond), snmpStatsLine(stats))
	if lost != 0 && b.N > 1 {
		b.Errorf("%d of %d traps are not in the archive", lost, b.N)
	}
}

func snmpStatsLine(s *snmptrap.Stats) string {
	return fmt.Sprintf("received=%d accepted=%d malformed=%d bad_community=%d",
		s.Received.Load(), s.Accepted.Load(), s.Malformed.Load(), s.BadCommunity.Load())
}
