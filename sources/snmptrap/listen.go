package snmptrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/gosnmp/gosnmp"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/snmp"
)

func init() { Spec.NewListener = newListener }

// Stats counts what the listener saw. Rejected traps are counted here and
// never written.
type Stats struct {
	Received      atomic.Uint64 // datagrams read off the socket
	Accepted      atomic.Uint64 // traps written as rows
	Informs       atomic.Uint64 // informs acknowledged
	BadCommunity  atomic.Uint64 // v1/v2c traps with a community not configured
	BadVersion    atomic.Uint64 // versions not accepted by the configuration
	AuthFailures  atomic.Uint64 // v3 traps no configured user could authenticate
	Malformed     atomic.Uint64 // datagrams that did not decode
	Discoveries   atomic.Uint64 // v3 engine-ID discovery requests answered
	ResponseFails atomic.Uint64 // inform acknowledgements that could not be sent
}

// packet is one datagram off the socket.
type packet struct {
	buf  *[]byte
	n    int
	from *net.UDPAddr
}

const maxDatagram = 65535

var bufPool = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

type listener struct {
	env         module.Env
	addr        string
	communities map[string]bool
	versions    map[gosnmp.SnmpVersion]bool
	users       map[string]snmp.User
	engineID    string
	readBuffer  int
	workers     int
	log         *slog.Logger
	stats       *Stats
	names       namer

	wmu sync.Mutex // serialises writes to the sample.Writer
	row sample.Row // guarded by wmu
}

// ParseUser parses NAME:LEVEL:AUTHPROTO:AUTHPASS:PRIVPROTO:PRIVPASS.
func ParseUser(s string) (snmp.User, error) {
	p := strings.Split(s, ":")
	u := snmp.User{Name: p[0]}
	if u.Name == "" {
		return u, fmt.Errorf("v3 user %q: empty name", s)
	}
	get := func(i int) string {
		if i < len(p) {
			return p[i]
		}
		return ""
	}
	u.Level = get(1)
	if u.Level == "" {
		u.Level = "noAuthNoPriv"
	}
	u.AuthProtocol, u.AuthPass, u.PrivProtocol, u.PrivPass = get(2), get(3), get(4), get(5)
	if len(p) > 6 {
		return u, fmt.Errorf("v3 user %q: too many fields (passphrases cannot contain ':')", u.Name)
	}
	if _, err := u.Params(); err != nil {
		return u, err
	}
	flags, _ := u.Flags()
	if flags&gosnmp.AuthNoPriv != 0 && len(u.AuthPass) < 8 {
		return u, fmt.Errorf("v3 user %q: level %s needs an auth passphrase of at least 8 characters", u.Name, u.Level)
	}
	if flags == gosnmp.AuthPriv && len(u.PrivPass) < 8 {
		return u, fmt.Errorf("v3 user %q: level authPriv needs a priv passphrase of at least 8 characters", u.Name)
	}
	return u, nil
}

func init() {
	Spec.Validate = func(a module.Attrs) error {
		for _, s := range a.Strings(FieldUsers) {
			if _, err := ParseUser(s); err != nil {
				return module.Errorf(FieldUsers, "%v", err)
			}
		}
		if _, err := net.ResolveUDPAddr("udp", a.String(FieldListen)); err != nil {
			return module.Errorf(FieldListen, "%v", err)
		}
		_, err := snmp.LoadMIBs(a)
		return err
	}
}

func newListener(env module.Env) (module.Listener, error) {
	a := env.Attrs
	l := &listener{
		env:         env,
		addr:        a.String(FieldListen),
		communities: map[string]bool{},
		versions:    map[gosnmp.SnmpVersion]bool{},
		users:       map[string]snmp.User{},
		readBuffer:  int(a.Size(FieldReadBuffer)),
		workers:     max(int(a.Int(FieldWorkers)), 1),
		log:         env.Logger,
		stats:       &Stats{},
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	l.log = l.log.With("source", env.Source, "module", "snmp_trap")
	for _, c := range a.Strings(FieldCommunities) {
		l.communities[c] = true
	}
	for _, v := range a.Strings(FieldVersions) {
		switch v {
		case "1":
			l.versions[gosnmp.Version1] = true
		case "2c":
			l.versions[gosnmp.Version2c] = true
		case "3":
			l.versions[gosnmp.Version3] = true
		}
	}
	for _, s := range a.Strings(FieldUsers) {
		u, err := ParseUser(s)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", env.Source, err)
		}
		l.users[u.Name] = u
	}
	mibs, err := snmp.LoadMIBs(a)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", env.Source, err)
	}
	l.names = namer{mibs: mibs}
	l.engineID = a.String(FieldEngineID)
	if l.engineID == "" {
		l.engineID = defaultEngineID(env.Node + "/" + env.Source)
	} else {
		id, err := parseHexID(l.engineID)
		if err != nil {
			return nil, fmt.Errorf("source %s: engine_id: %w", env.Source, err)
		}
		l.engineID = id
	}
	return l, nil
}

// StatsOf returns the counters of a listener built by this module.
func StatsOf(l module.Listener) *Stats {
	if tl, ok := l.(*listener); ok {
		return tl.stats
	}
	return nil
}

// decoder returns a gosnmp instance for one worker: gosnmp keeps per-call
// state in it, so workers do not share one.
func (l *listener) decoder() (*gosnmp.GoSNMP, error) {
	g := &gosnmp.GoSNMP{Version: gosnmp.Version2c, Logger: gosnmp.NewLogger(nil)}
	if len(l.users) == 0 {
		return g, nil
	}
	table := gosnmp.NewSnmpV3SecurityParametersTable(gosnmp.NewLogger(nil))
	for _, u := range l.users {
		p, err := u.Params()
		if err != nil {
			return nil, err
		}
		if err := table.Add(u.Name, p); err != nil {
			return nil, fmt.Errorf("v3 user %s: %w", u.Name, err)
		}
	}
	g.Version = gosnmp.Version3
	g.SecurityModel = gosnmp.UserSecurityModel
	g.SetTrapSecurityParametersTable(table)
	g.SecurityParameters = &gosnmp.UsmSecurityParameters{AuthoritativeEngineID: l.engineID}
	return g, nil
}

func (l *listener) Listen(ctx context.Context, w sample.Writer) error {
	addr, err := net.ResolveUDPAddr("udp", l.addr)
	if err != nil {
		return fmt.Errorf("snmp_trap %s: listen address: %w", l.env.Source, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("snmp_trap %s: %w", l.env.Source, err)
	}
	l.setReadBuffer(conn)
	l.log.Info("listening for traps", "addr", conn.LocalAddr().String())

	packets := make(chan packet, 1024)
	var wg sync.WaitGroup
	for range l.workers {
		dec, err := l.decoder()
		if err != nil {
			conn.Close()
			return fmt.Errorf("snmp_trap %s: %w", l.env.Source, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range packets {
				l.handle(dec, conn, p, w)
				bufPool.Put(p.buf)
			}
		}()
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var readErr error
	for {
		buf := bufPool.Get().(*[]byte)
		n, from, err := conn.ReadFromUDP(*buf)
		if err != nil {
			bufPool.Put(buf)
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				readErr = fmt.Errorf("snmp_trap %s: read: %w", l.env.Source, err)
			}
			break
		}
		l.stats.Received.Add(1)
		// Blocking here (rather than dropping) lets the kernel's receive
		// buffer absorb a burst the decoders cannot keep up with.
		packets <- packet{buf: buf, n: n, from: from}
	}
	close(packets)
	wg.Wait()
	conn.Close()
	return readErr
}

// setReadBuffer enlarges the socket receive buffer: the headroom for bursts.
func (l *listener) setReadBuffer(conn *net.UDPConn) {
	if l.readBuffer <= 0 {
		return
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		// SO_RCVBUFFORCE exceeds net.core.rmem_max when privileged.
		var serr error
		_ = raw.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, l.readBuffer)
		})
		if serr == nil {
			return
		}
	}
	if err := conn.SetReadBuffer(l.readBuffer); err != nil {
		l.log.Warn("cannot set socket receive buffer", "bytes", l.readBuffer, "err", err)
	}
}

func (l *listener) handle(dec *gosnmp.GoSNMP, conn *net.UDPConn, p packet, w sample.Writer) {
	msg := (*p.buf)[:p.n]
	pkt, err := l.decode(dec, msg)
	if err != nil {
		return
	}
	if pkt.Version == gosnmp.Version3 {
		if pkt.PDUType == gosnmp.GetRequest && len(pkt.Variables) == 0 || l.needsDiscovery(pkt) {
			l.answerDiscovery(conn, pkt, p.from)
			return
		}
	}
	if pkt.PDUType != gosnmp.Trap && pkt.PDUType != gosnmp.SNMPv2Trap && pkt.PDUType != gosnmp.InformRequest {
		l.stats.Malformed.Add(1)
		return
	}
	l.write(pkt, p.from, w)
	if pkt.PDUType == gosnmp.InformRequest {
		pkt.PDUType = gosnmp.GetResponse
		pkt.Error, pkt.ErrorIndex = gosnmp.NoError, 0
		out, err := pkt.MarshalMsg()
		if err == nil {
			_, err = conn.WriteToUDP(out, p.from)
		}
		if err != nil {
			l.stats.ResponseFails.Add(1)
			l.log.Warn("cannot acknowledge inform", "from", p.from.String(), "err", err)
			return
		}
		l.stats.Informs.Add(1)
	}
}

// decode parses a datagram and applies the access checks gosnmp leaves to
// its caller: version, community, and the v3 security level.
func (l *listener) decode(dec *gosnmp.GoSNMP, msg []byte) (pkt *gosnmp.SnmpPacket, err error) {
	defer func() {
		// gosnmp's decoder has panicked on hostile input before; a trap
		// must never take the listener down.
		if r := recover(); r != nil {
			l.stats.Malformed.Add(1)
			pkt, err = nil, fmt.Errorf("decoder panic: %v", r)
		}
	}()
	pkt, err = dec.UnmarshalTrap(msg, false)
	if err != nil && l.isDiscovery(msg) {
		return l.discoveryPacket(msg)
	}
	if err != nil {
		if strings.Contains(err.Error(), "credentials") || strings.Contains(err.Error(), "authentic") ||
			strings.Contains(err.Error(), "security parameters") {
			l.stats.AuthFailures.Add(1)
		} else {
			l.stats.Malformed.Add(1)
		}
		return nil, err
	}
	if !l.versions[pkt.Version] {
		l.stats.BadVersion.Add(1)
		return nil, errors.New("version not accepted")
	}
	switch pkt.Version {
	case gosnmp.Version1, gosnmp.Version2c:
		if !l.communities[pkt.Community] {
			l.stats.BadCommunity.Add(1)
			return nil, errors.New("community not accepted")
		}
	case gosnmp.Version3:
		usm, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters)
		if !ok {
			l.stats.AuthFailures.Add(1)
			return nil, errors.New("not USM")
		}
		if usm.UserName == "" && pkt.PDUType == gosnmp.GetRequest {
			return pkt, nil // engine discovery
		}
		u, ok := l.users[usm.UserName]
		if !ok {
			l.stats.AuthFailures.Add(1)
			return nil, errors.New("unknown user")
		}
		want, _ := u.Flags()
		if pkt.MsgFlags&gosnmp.AuthPriv != want {
			// gosnmp accepts a weaker level than configured; we do not.
			l.stats.AuthFailures.Add(1)
			return nil, errors.New("security level mismatch")
		}
	}
	return pkt, nil
}

// isDiscovery reports whether msg is an SNMPv3 engine-ID discovery probe:
// a reportable noAuthNoPriv request with no user, which the user table
// cannot decode.
func (l *listener) isDiscovery(msg []byte) bool {
	if len(l.users) == 0 || !l.versions[gosnmp.Version3] {
		return false
	}
	pkt, err := l.discoveryPacket(msg)
	return err == nil && pkt.PDUType == gosnmp.GetRequest
}

func (l *listener) discoveryPacket(msg []byte) (*gosnmp.SnmpPacket, error) {
	plain := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
		SecurityParameters: &gosnmp.UsmSecurityParameters{}, Logger: gosnmp.NewLogger(nil)}
	pkt, err := plain.UnmarshalTrap(msg, false)
	if err != nil {
		return nil, err
	}
	usm, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	if !ok || usm.UserName != "" || pkt.MsgFlags&gosnmp.AuthPriv != gosnmp.NoAuthNoPriv {
		return nil, errors.New("not a discovery request")
	}
	return pkt, nil
}

// needsDiscovery reports whether a v3 inform names another engine than
// ours: the sender must first learn our engine ID (RFC 3414 §3.2.3).
func (l *listener) needsDiscovery(pkt *gosnmp.SnmpPacket) bool {
	if pkt.PDUType != gosnmp.InformRequest {
		return false
	}
	usm, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters)
	return ok && usm.AuthoritativeEngineID != l.engineID
}

var usmStatsUnknownEngineIDs = ".1.3.6.1.6.3.15.1.1.4.0"

func (l *listener) answerDiscovery(conn *net.UDPConn, pkt *gosnmp.SnmpPacket, to *net.UDPAddr) {
	usm, ok := pkt.SecurityParameters.Copy().(*gosnmp.UsmSecurityParameters)
	if !ok {
		return
	}
	usm.AuthoritativeEngineID = l.engineID
	pkt.SecurityParameters = usm
	pkt.PDUType = gosnmp.Report
	pkt.MsgFlags = gosnmp.NoAuthNoPriv
	pkt.Variables = []gosnmp.SnmpPDU{{Name: usmStatsUnknownEngineIDs, Type: gosnmp.Counter32,
		Value: uint32(l.stats.Discoveries.Add(1))}}
	out, err := pkt.MarshalMsg()
	if err == nil {
		_, err = conn.WriteToUDP(out, to)
	}
	if err != nil {
		l.log.Warn("cannot answer engine discovery", "from", to.String(), "err", err)
	}
}

// write turns one trap into one row: metric = trap OID (named when well
// known), value 1, target = the agent, each varbind a label.
func (l *listener) write(pkt *gosnmp.SnmpPacket, from *net.UDPAddr, w sample.Writer) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	r := &l.row
	r.Reset()
	r.Target = from.IP.String()
	r.Value, r.HasValue = 1, true
	trapOID := ""
	version := "2c"
	switch pkt.Version {
	case gosnmp.Version1:
		version = "1"
		if pkt.AgentAddress != "" && pkt.AgentAddress != "0.0.0.0" {
			r.Target = pkt.AgentAddress
		}
		ent := strings.TrimPrefix(pkt.Enterprise, ".")
		if pkt.GenericTrap >= 0 && pkt.GenericTrap < 6 {
			trapOID = "1.3.6.1.6.3.1.1.5." + strconv.Itoa(pkt.GenericTrap+1)
		} else {
			trapOID = ent + ".0." + strconv.Itoa(pkt.SpecificTrap)
		}
		r.Labels = append(r.Labels,
			sample.Label{Key: "enterprise", Value: ent},
			sample.Label{Key: "sysUpTime", Value: strconv.FormatUint(uint64(pkt.Timestamp), 10)})
	case gosnmp.Version3:
		version = "3"
		if usm, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok {
			r.Labels = append(r.Labels, sample.Label{Key: "user", Value: usm.UserName})
		}
	}
	for _, v := range pkt.Variables {
		oid := strings.TrimPrefix(v.Name, ".")
		if oid == "1.3.6.1.6.3.1.1.4.1.0" { // snmpTrapOID.0
			if s, ok := v.Value.(string); ok {
				trapOID = strings.TrimPrefix(s, ".")
			}
			continue
		}
		r.Labels = append(r.Labels, sample.Label{Key: l.names.varbind(oid), Value: snmp.ValueString(v)})
	}
	if trapOID == "" {
		trapOID = "unknown"
	}
	r.Metric = l.names.trap(trapOID)
	r.Labels = append(r.Labels,
		sample.Label{Key: "trap_oid", Value: trapOID},
		sample.Label{Key: "version", Value: version})
	if pkt.PDUType == gosnmp.InformRequest {
		r.Labels = append(r.Labels, sample.Label{Key: "inform", Value: "true"})
	}
	w.Write(r)
	l.stats.Accepted.Add(1)
}

// defaultEngineID derives a stable local engine ID (RFC 3411 format 4,
// text, under the net-snmp enterprise number) from a seed.
func defaultEngineID(seed string) string {
	id := []byte{0x80, 0x00, 0x1f, 0x88, 0x04}
	if len(seed) > 27 {
		seed = seed[len(seed)-27:]
	}
	return string(append(id, seed...))
}

func parseHexID(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s)%2 != 0 || len(s) < 10 || len(s) > 64 {
		return "", fmt.Errorf("%q: want 5 to 32 bytes of hex", s)
	}
	b := make([]byte, len(s)/2)
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return "", fmt.Errorf("%q: not hex", s)
		}
		b[i] = byte(v)
	}
	return string(b), nil
}
