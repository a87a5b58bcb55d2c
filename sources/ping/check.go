package ping

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"golang.org/x/net/icmp"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// check is one ping source. Run is never called concurrently with itself,
// so buffers, per-request state and the row are reused across runs.
type check struct {
	target      string
	network     string // resolver network: ip, ip4, ip6
	count       int
	interval    time.Duration
	availNeeded int
	rttWarn     time.Duration // 0: off
	rttCrit     time.Duration
	lossWarn    float64 // <0: off
	lossCrit    float64
	timeout     time.Duration
	logger      *slog.Logger

	mode  mode // socket kind found to work, remembered across runs
	id    uint16
	token [tokenLen]byte
	out   []byte // request: 8 byte header + payload
	in    []byte
	sent  []time.Time
	rtt   []time.Duration // 0: no reply
	row   sample.Row
}

// NewCheck builds a ping check from env (attributes already validated by
// the compiler).
func NewCheck(env module.Env) (module.Check, error) {
	a := env.Attrs
	if env.Target == "" {
		return nil, errors.New("ping: target is empty")
	}
	c := &check{
		target:      env.Target,
		network:     netcheck.Network("ip", a.String(netcheck.FieldIPVersion)),
		count:       int(a.Int(FieldCount)),
		interval:    a.Duration(FieldInterval),
		availNeeded: int(a.Int(FieldAvailNeeded)),
		rttWarn:     a.Duration(FieldRTTWarning),
		rttCrit:     a.Duration(FieldRTTCritical),
		lossWarn:    -1,
		lossCrit:    -1,
		timeout:     env.Timeout,
		logger:      env.Logger,
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if a.Has(FieldLossWarning) {
		c.lossWarn = a.Float(FieldLossWarning)
	}
	if a.Has(FieldLossCritical) {
		c.lossCrit = a.Float(FieldLossCritical)
	}
	if c.count < 1 || c.availNeeded > c.count {
		return nil, fmt.Errorf("ping: count %d, avail_needed %d", c.count, c.availNeeded)
	}
	if spread := time.Duration(c.count-1) * c.interval; spread >= env.Timeout {
		return nil, fmt.Errorf("ping: %d requests %v apart take %v, not less than the timeout %v",
			c.count, c.interval, spread, env.Timeout)
	}
	var id [2]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("ping: identifier: %w", err)
	}
	c.id = binary.BigEndian.Uint16(id[:])
	c.out = make([]byte, 8+a.Int(FieldSize))
	c.in = make([]byte, 8+a.Int(FieldSize)+512)
	c.sent = make([]time.Time, c.count)
	c.rtt = make([]time.Duration, c.count)
	return c, nil
}

func (c *check) value(w sample.Writer, metric string, v float64, unit string) {
	c.row.Reset()
	c.row.Metric, c.row.Value, c.row.HasValue, c.row.Unit = metric, v, true, unit
	w.Write(&c.row)
}

// resolve returns the target's address, honouring ip_version.
func (c *check) resolve(ctx context.Context) (netip.Addr, error) {
	if addr, err := netip.ParseAddr(c.target); err == nil {
		addr = addr.Unmap()
		if (c.network == "ip4" && !addr.Is4()) || (c.network == "ip6" && !addr.Is6()) {
			return netip.Addr{}, fmt.Errorf("%s is not an %s address", c.target, c.network)
		}
		return addr, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, c.network, c.target)
	if err != nil {
		return netip.Addr{}, err
	}
	return addrs[0].Unmap(), nil
}

// Run sends count echo requests interval apart and collects the replies
// until all came back or the deadline passed.
func (c *check) Run(ctx context.Context, w sample.Writer) sample.Result {
	var v netcheck.Verdict
	v.Raise(sample.OK, "")
	addr, err := c.resolve(ctx)
	if err != nil {
		v.Raise(sample.Critical, netcheck.Reason(err, c.timeout))
		return v.Result(false)
	}
	v6 := addr.Is6()
	conn, m, err := listen(v6, c.mode)
	if err != nil {
		if errors.Is(err, errNoSocket) {
			v.Raise(sample.Unknown, err.Error())
		} else {
			v.Raise(sample.Unknown, "ping: "+err.Error())
		}
		return v.Result(false)
	}
	defer conn.Close()
	if m != c.mode {
		c.logger.Debug("ping: ICMP socket", "mode", m.String(), "target", c.target)
		c.mode = m
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.timeout)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()

	received, sendErr := c.exchange(ctx, conn, destination(net.IP(addr.AsSlice()), m), v6, deadline)
	c.report(w, &v, received, sendErr)
	return v.Result(received >= c.availNeeded)
}

// exchange runs the send/receive loop on one goroutine: reads wait at most
// until the next request is due.
func (c *check) exchange(ctx context.Context, conn *icmp.PacketConn, dst net.Addr, v6 bool, deadline time.Time) (int, error) {
	if _, err := rand.Read(c.token[:]); err != nil {
		return 0, fmt.Errorf("token: %w", err)
	}
	copy(c.out[8:], c.token[:])
	clear(c.rtt)
	var sendErr error
	next, received := 0, 0
	due := time.Now()
	for ctx.Err() == nil {
		now := time.Now()
		if next < c.count && !now.Before(due) {
			c.sent[next] = now
			if _, err := conn.WriteTo(marshalEcho(c.out, v6, c.id, uint16(next)), dst); err != nil {
				sendErr = err
			}
			next++
			due = due.Add(c.interval)
			continue
		}
		if received == c.count || !now.Before(deadline) {
			break
		}
		wait := deadline
		if next < c.count && due.Before(wait) {
			wait = due
		}
		if err := conn.SetReadDeadline(wait); err != nil {
			return received, err
		}
		n, _, err := conn.ReadFrom(c.in)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return received, err
		}
		at := time.Now()
		id, seq, payload, ok := parseEchoReply(c.in[:n], v6)
		if !ok || (c.mode == modeRaw && id != c.id) || !bytes.HasPrefix(payload, c.token[:]) {
			continue
		}
		if int(seq) < next && c.rtt[seq] == 0 {
			c.rtt[seq] = max(at.Sub(c.sent[seq]), time.Nanosecond)
			received++
		}
	}
	return received, sendErr
}

// report writes the metrics and judges them.
func (c *check) report(w sample.Writer, v *netcheck.Verdict, received int, sendErr error) {
	loss := 100 * float64(c.count-received) / float64(c.count)
	if received > 0 {
		var lo, hi, sum time.Duration
		for _, r := range c.rtt {
			if r == 0 {
				continue
			}
			if lo == 0 || r < lo {
				lo = r
			}
			hi = max(hi, r)
			sum += r
		}
		avg := sum / time.Duration(received)
		c.value(w, MetricRTTMin, lo.Seconds(), "s")
		c.value(w, MetricRTTAvg, avg.Seconds(), "s")
		c.value(w, MetricRTTMax, hi.Seconds(), "s")
		switch {
		case c.rttCrit > 0 && avg >= c.rttCrit:
			v.Raise(sample.Critical, fmt.Sprintf("rtt avg %v", avg.Round(time.Microsecond)))
		case c.rttWarn > 0 && avg >= c.rttWarn:
			v.Raise(sample.Warning, fmt.Sprintf("rtt avg %v", avg.Round(time.Microsecond)))
		}
	}
	c.value(w, MetricLoss, loss, "%")
	lossMsg := fmt.Sprintf("packet loss %g%% (%d of %d replies)", loss, received, c.count)
	switch {
	case received < c.availNeeded:
		if sendErr != nil && received == 0 {
			lossMsg = "send: " + netcheck.Reason(sendErr, c.timeout)
		}
		v.Raise(sample.Critical, lossMsg)
	case c.lossCrit >= 0 && loss >= c.lossCrit:
		v.Raise(sample.Critical, lossMsg)
	case c.lossWarn >= 0 && loss >= c.lossWarn:
		v.Raise(sample.Warning, lossMsg)
	}
}
