package ping

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// mode is the kind of ICMP socket a check uses.
type mode uint8

const (
	modeUnknown mode = iota
	// modeRaw is a raw ICMP socket (root or CAP_NET_RAW): it sees every
	// echo reply, so replies are matched by identifier and payload.
	modeRaw
	// modeDatagram is an unprivileged ICMP datagram socket (Linux "ping
	// socket"): the kernel picks the identifier and routes replies to it.
	modeDatagram
)

func (m mode) String() string {
	switch m {
	case modeRaw:
		return "raw"
	case modeDatagram:
		return "datagram"
	}
	return "unknown"
}

// errNoSocket is returned when neither socket kind may be opened.
var errNoSocket = errors.New("no ICMP socket allowed")

// listen opens an ICMP socket for the address family, trying raw first
// unless a previous run already found it refused.
func listen(v6 bool, prefer mode) (*icmp.PacketConn, mode, error) {
	if prefer != modeDatagram {
		conn, err := listenRaw(v6)
		if err == nil {
			return conn, modeRaw, nil
		}
		if !permission(err) {
			return nil, modeUnknown, fmt.Errorf("raw ICMP socket: %w", err)
		}
	}
	network, addr := "udp4", "0.0.0.0"
	if v6 {
		network, addr = "udp6", "::"
	}
	conn, err := icmp.ListenPacket(network, addr)
	if err == nil {
		return conn, modeDatagram, nil
	}
	if permission(err) {
		return nil, modeUnknown, fmt.Errorf("%w: %s", errNoSocket, noSocketHelp())
	}
	return nil, modeUnknown, fmt.Errorf("ICMP datagram socket: %w", err)
}

func listenRaw(v6 bool) (*icmp.PacketConn, error) {
	if v6 {
		conn, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
		if err != nil {
			return nil, err
		}
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		if err := conn.IPv6PacketConn().SetICMPFilter(&f); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("ICMPv6 filter: %w", err)
		}
		return conn, nil
	}
	conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return nil, err
	}
	var f ipv4.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv4.ICMPTypeEchoReply)
	if err := conn.IPv4PacketConn().SetICMPFilter(&f); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ICMP filter: %w", err)
	}
	return conn, nil
}

func permission(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission)
}

// noSocketHelp says what to change when neither socket kind is allowed.
func noSocketHelp() string {
	current := "unreadable"
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range"); err == nil {
		current = strings.Join(strings.Fields(string(b)), " ")
	}
	return fmt.Sprintf("raw sockets need root or CAP_NET_RAW, and ICMP datagram sockets need group %d "+
		"within net.ipv4.ping_group_range (now %q); e.g. sysctl -w net.ipv4.ping_group_range=\"0 2147483647\"",
		os.Getegid(), current)
}

// destination returns the address to send to on a socket of mode m.
func destination(ip net.IP, m mode) net.Addr {
	if m == modeDatagram {
		return &net.UDPAddr{IP: ip}
	}
	return &net.IPAddr{IP: ip}
}
