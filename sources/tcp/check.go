package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// check is one tcp source. Run is never called concurrently with itself,
// so the buffers and the row are reused across runs.
type check struct {
	addr     string
	host     string
	network  string
	timeout  time.Duration
	tls      *netcheck.TLS
	send     []byte
	expect   *regexp.Regexp
	mismatch sample.Status
	dialer   net.Dialer
	buf      []byte
	row      sample.Row
}

// NewCheck builds a tcp check from env (attributes already validated by the
// compiler).
func NewCheck(env module.Env) (module.Check, error) {
	a := env.Attrs
	if env.Target == "" {
		return nil, errors.New("tcp: target is empty")
	}
	c := &check{
		addr:    net.JoinHostPort(env.Target, strconv.FormatInt(a.Int(FieldPort), 10)),
		host:    env.Target,
		network: netcheck.Network("tcp", a.String(netcheck.FieldIPVersion)),
		timeout: env.Timeout,
		// A check's connection lives one run: TCP keep-alive probes would
		// never fire, and setting them up costs syscalls.
		dialer: net.Dialer{KeepAlive: -1},
	}
	if a.Has(FieldSend) {
		c.send = []byte(a.String(FieldSend))
	}
	if a.Has(FieldExpect) {
		re, err := regexp.Compile(a.String(FieldExpect))
		if err != nil {
			return nil, fmt.Errorf("tcp: expect: %w", err)
		}
		c.expect = re
		c.buf = make([]byte, a.Size(FieldMaxRead))
		st, ok := sample.ParseStatus(a.String(FieldMismatch))
		if !ok {
			return nil, fmt.Errorf("tcp: mismatch: unknown status %q", a.String(FieldMismatch))
		}
		c.mismatch = st
	}
	if a.Bool(FieldTLS) {
		t, err := netcheck.NewTLS(a)
		if err != nil {
			return nil, fmt.Errorf("tcp: %w", err)
		}
		c.tls = t
	}
	return c, nil
}

func (c *check) value(w sample.Writer, metric string, v float64, unit string) {
	c.row.Reset()
	c.row.Metric, c.row.Value, c.row.HasValue, c.row.Unit = metric, v, true, unit
	w.Write(&c.row)
}

// Run connects, shakes hands, sends and reads as configured.
func (c *check) Run(ctx context.Context, w sample.Writer) sample.Result {
	var v netcheck.Verdict
	v.Raise(sample.OK, "")
	start := time.Now()
	conn, err := c.dialer.DialContext(ctx, c.network, c.addr)
	if err != nil {
		v.Raise(sample.Critical, netcheck.Reason(err, c.timeout))
		return v.Result(false)
	}
	defer conn.Close()
	connected := time.Now()
	c.value(w, MetricConnect, connected.Sub(start).Seconds(), "s")

	if c.tls != nil {
		tc, notAfter, err := c.tls.Handshake(ctx, conn, c.host)
		if !notAfter.IsZero() {
			days := netcheck.ExpiryDays(notAfter, time.Now())
			c.value(w, MetricCertExpiryDays, days, "d")
			c.tls.Judge(&v, days)
		}
		if err != nil {
			v.Raise(sample.Critical, netcheck.Reason(err, c.timeout))
			return v.Result(true)
		}
		c.value(w, MetricTLSHandshake, time.Since(connected).Seconds(), "s")
		conn = tc
	}

	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			v.Raise(sample.Critical, netcheck.Reason(err, c.timeout))
			return v.Result(true)
		}
	}
	if len(c.send) > 0 {
		if _, err := conn.Write(c.send); err != nil {
			v.Raise(sample.Critical, "send: "+netcheck.Reason(err, c.timeout))
			return v.Result(true)
		}
	}
	if c.expect != nil {
		c.read(w, conn, start, &v)
	}
	return v.Result(true)
}

// read reads the answer until expect matches, the buffer is full, the peer
// closes or the deadline passes, and judges it.
func (c *check) read(w sample.Writer, conn net.Conn, start time.Time, v *netcheck.Verdict) {
	n := 0
	var err error
	for n < len(c.buf) {
		var m int
		m, err = conn.Read(c.buf[n:])
		if m > 0 && n == 0 {
			c.value(w, MetricFirstByte, time.Since(start).Seconds(), "s")
		}
		n += m
		if c.expect.Match(c.buf[:n]) {
			c.value(w, MetricBytes, float64(n), "B")
			return
		}
		if err != nil {
			break
		}
	}
	c.value(w, MetricBytes, float64(n), "B")
	switch {
	case n == 0 && err != nil:
		// As check_tcp ("No data received from host"): critical.
		v.Raise(sample.Critical, "no answer: "+netcheck.Reason(err, c.timeout))
	default:
		v.Raise(c.mismatch, fmt.Sprintf("answer did not match %q: %q", c.expect.String(), preview(c.buf[:n])))
	}
}

// preview returns the start of an answer for a status message.
func preview(b []byte) string {
	const max = 64
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
