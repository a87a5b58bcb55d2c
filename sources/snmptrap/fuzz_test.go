package snmptrap

import (
	"net"
	"testing"

	"github.com/gosnmp/gosnmp"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample/sampletest"
)

// encodedTrap returns a v2c trap as bytes on the wire.
func encodedTrap(tb testing.TB, community string, seq int) []byte {
	tb.Helper()
	pkt := &gosnmp.SnmpPacket{
		Version: gosnmp.Version2c, Community: community, PDUType: gosnmp.SNMPv2Trap, RequestID: uint32(seq),
		Variables: []gosnmp.SnmpPDU{
			{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(seq)},
			{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.6.3.1.1.5.3"},
			{Name: ".1.3.6.1.2.1.2.2.1.1.3", Type: gosnmp.Integer, Value: 3},
			{Name: ".1.3.6.1.4.1.99999.1", Type: gosnmp.Counter32, Value: uint32(seq)},
		},
	}
	b, err := pkt.MarshalMsg()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzDecode feeds arbitrary datagrams through the decoder and the row
// mapping: hostile packets must be counted, never crash the listener.
func FuzzDecode(f *testing.F) {
	f.Add(encodedTrap(f, "public", 1))
	f.Add(encodedTrap(f, "other", 2))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03})
	f.Add([]byte{})
	a := module.Attrs{FieldListen: "127.0.0.1:0", FieldCommunities: []string{"public"},
		FieldVersions: []string{"1", "2c", "3"}, FieldUsers: []string{v3User}, FieldWorkers: int64(1)}
	ml, err := Spec.NewListener(module.Env{Source: "fuzz", Attrs: a})
	if err != nil {
		f.Fatal(err)
	}
	l := ml.(*listener)
	dec, err := l.decoder()
	if err != nil {
		f.Fatal(err)
	}
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 162}
	f.Fuzz(func(t *testing.T, msg []byte) {
		pkt, err := l.decode(dec, msg)
		if err != nil || pkt == nil {
			return
		}
		l.write(pkt, from, &sampletest.Recorder{})
	})
}
