package ping

import (
	"encoding/binary"
)

// ICMP echo message types.
const (
	typeEchoRequest4 = 8
	typeEchoReply4   = 0
	typeEchoRequest6 = 128
	typeEchoReply6   = 129
)

// tokenLen is the run token every request carries at the start of its
// payload; a reply must echo it (a raw socket sees other runs' replies).
const tokenLen = 8

// marshalEcho writes an echo request with the payload already in
// b[8:] (token first) and returns b. The ICMPv6 checksum is left to the
// kernel, which always computes it.
func marshalEcho(b []byte, v6 bool, id, seq uint16) []byte {
	b[0] = typeEchoRequest4
	if v6 {
		b[0] = typeEchoRequest6
	}
	b[1] = 0
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	return b
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// parseEchoReply decodes an echo reply as read from an ICMP socket (no IP
// header). ok is false for anything else.
func parseEchoReply(b []byte, v6 bool) (id, seq uint16, payload []byte, ok bool) {
	if len(b) < 8 || b[1] != 0 {
		return 0, 0, nil, false
	}
	want := byte(typeEchoReply4)
	if v6 {
		want = typeEchoReply6
	}
	if b[0] != want {
		return 0, 0, nil, false
	}
	return binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), b[8:], true
}
