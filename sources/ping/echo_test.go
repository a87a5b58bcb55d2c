package ping

import (
	"bytes"
	"testing"
)

// FuzzParseEchoReply feeds arbitrary ICMP messages (as the network could
// deliver them) to the reply decoder: no panic, and a valid reply built
// from the fuzzed fields decodes to them.
func FuzzParseEchoReply(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0x12, 0x34, 0, 1, 'x'}, false, uint16(1), uint16(2))
	f.Add([]byte{129, 0, 0, 0, 0, 1, 0, 2}, true, uint16(0xffff), uint16(0))
	f.Add([]byte{3, 1, 0, 0}, false, uint16(7), uint16(7))
	f.Fuzz(func(t *testing.T, b []byte, v6 bool, id, seq uint16) {
		if gid, gseq, payload, ok := parseEchoReply(b, v6); ok {
			if len(payload) != len(b)-8 || gid != uint16(b[4])<<8|uint16(b[5]) || gseq != uint16(b[6])<<8|uint16(b[7]) {
				t.Fatalf("parse %x: id %d seq %d payload %d bytes", b, gid, gseq, len(payload))
			}
		}
		msg := append(make([]byte, 8), b...)
		marshalEcho(msg, v6, id, seq)
		if !v6 && checksum(msg) != 0 {
			t.Fatalf("request checksum does not verify: %x", msg)
		}
		msg[0] = typeEchoReply4
		if v6 {
			msg[0] = typeEchoReply6
		}
		gid, gseq, payload, ok := parseEchoReply(msg, v6)
		if !ok || gid != id || gseq != seq || !bytes.Equal(payload, b) {
			t.Fatalf("round trip id %d seq %d payload %x: got %v %d %d %x", id, seq, b, ok, gid, gseq, payload)
		}
	})
}
