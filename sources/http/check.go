package http

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// check is one http source. Run is never called concurrently with itself,
// so the body buffer and the row are reused across runs.
type check struct {
	target    string
	url       *url.URL
	method    string
	host      string // Host header override
	body      string
	header    nethttp.Header
	codes     []codeRange
	match     *regexp.Regexp
	notMatch  *regexp.Regexp
	maxBody   int64
	timeout   time.Duration
	network   string
	tls       *netcheck.TLS
	transport *nethttp.Transport
	client    *nethttp.Client

	dialer net.Dialer
	buf    bytes.Buffer
	row    sample.Row
}

// NewCheck builds an http check from env (attributes already validated by
// the compiler).
func NewCheck(env module.Env) (module.Check, error) {
	a := env.Attrs
	if env.Target == "" {
		return nil, errors.New("http: target is empty")
	}
	u, err := url.Parse(a.String(FieldURL))
	if err != nil {
		return nil, fmt.Errorf("http: url: %w", err)
	}
	codes, err := parseCodes(a.Strings(FieldExpectCode))
	if err != nil {
		return nil, fmt.Errorf("http: expect_code: %w", err)
	}
	c := &check{
		target:  env.Target,
		url:     u,
		method:  a.String(FieldMethod),
		body:    a.String(FieldBody),
		header:  nethttp.Header{},
		codes:   codes,
		maxBody: a.Size(FieldMaxBody),
		timeout: env.Timeout,
		network: netcheck.Network("tcp", a.String(netcheck.FieldIPVersion)),
		// Connections live one run, or one period when kept alive: TCP
		// keep-alive probes would not help, and setting them up costs syscalls.
		dialer: net.Dialer{KeepAlive: -1},
	}
	for k, v := range a.Map(FieldHeaders) {
		if strings.EqualFold(k, "Host") {
			c.host = v
			continue
		}
		c.header.Set(k, v)
	}
	c.header.Set("User-Agent", a.String(FieldUserAgent))
	switch {
	case a.Has(FieldUser):
		req := nethttp.Request{Header: nethttp.Header{}}
		req.SetBasicAuth(a.String(FieldUser), a.String(FieldPassword))
		c.header.Set("Authorization", req.Header.Get("Authorization"))
	case a.Has(FieldBearerToken):
		c.header.Set("Authorization", "Bearer "+a.String(FieldBearerToken))
	}
	if c.match, err = compileOpt(a, FieldBodyMatch); err != nil {
		return nil, err
	}
	if c.notMatch, err = compileOpt(a, FieldBodyNotMatch); err != nil {
		return nil, err
	}
	if c.tls, err = netcheck.NewTLS(a); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	c.transport = &nethttp.Transport{
		DialContext:            c.dial,
		DialTLSContext:         c.dialTLS,
		DisableKeepAlives:      !a.Bool(FieldKeepAlive),
		DisableCompression:     true,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        2 * env.Period,
		MaxResponseHeaderBytes: a.Size(FieldMaxHeader),
		Proxy:                  nil,
	}
	follow, maxRedirects := a.Bool(FieldFollowRedirects), int(a.Int(FieldMaxRedirects))
	c.client = &nethttp.Client{
		Transport: c.transport,
		CheckRedirect: func(_ *nethttp.Request, via []*nethttp.Request) error {
			if !follow {
				return nethttp.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			return nil
		},
	}
	return c, nil
}

func compileOpt(a module.Attrs, field string) (*regexp.Regexp, error) {
	if !a.Has(field) {
		return nil, nil
	}
	re, err := regexp.Compile(a.String(field))
	if err != nil {
		return nil, fmt.Errorf("http: %s: %w", field, err)
	}
	return re, nil
}

// Close releases idle kept-alive connections.
func (c *check) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// dial connects to the source's target when addr names the URL's host, so
// the URL's host only goes into the Host header and SNI; other hosts (a
// redirect elsewhere) are dialed as named.
func (c *check) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(host, c.url.Hostname()) {
		addr = net.JoinHostPort(c.target, port)
	}
	return c.dialer.DialContext(ctx, c.network, addr)
}

func (c *check) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := c.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	t0 := time.Now()
	tc, notAfter, err := c.tls.Handshake(ctx, conn, host)
	dur := time.Since(t0)
	traceOf(ctx).update(func(p *phases) {
		if !notAfter.IsZero() && p.notAfter.IsZero() {
			p.notAfter = notAfter
		}
		if err == nil {
			p.tlsDur = dur
		}
	})
	if err != nil {
		_ = conn.Close()
		return nil, &tlsError{err}
	}
	return tc, nil
}

// tlsError marks a handshake failure, so the status can say so.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

func (c *check) value(w sample.Writer, metric string, v float64, unit string) {
	c.row.Reset()
	c.row.Metric, c.row.Value, c.row.HasValue, c.row.Unit = metric, v, true, unit
	w.Write(&c.row)
}

// Run sends the request and judges the response.
func (c *check) Run(ctx context.Context, w sample.Writer) sample.Result {
	c.buf.Reset()
	ctx, rt := withTrace(ctx, time.Now())
	var v netcheck.Verdict
	v.Raise(sample.OK, "")
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := nethttp.NewRequestWithContext(ctx, c.method, c.url.String(), body)
	if err != nil {
		v.Raise(sample.Unknown, "request: "+err.Error())
		return v.Result(false)
	}
	req.Header = c.header
	if c.host != "" {
		req.Host = c.host
	}
	resp, err := c.client.Do(req)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err == nil {
		err = c.readBody(resp.Body)
	}
	p := rt.snapshot()
	c.writeTimings(w, &v, &p)
	if resp == nil {
		v.Raise(sample.Critical, c.reason(err, &p))
		return v.Result(false)
	}
	c.value(w, MetricCode, float64(resp.StatusCode), "")
	c.value(w, MetricBytes, float64(c.buf.Len()), "B")
	if err != nil {
		v.Raise(sample.Critical, c.reason(err, &p))
		return v.Result(true)
	}
	c.judgeCode(&v, resp.StatusCode)
	if c.match != nil && !c.match.Match(c.buf.Bytes()) {
		v.Raise(sample.Critical, fmt.Sprintf("body did not match %q", c.match.String()))
	}
	if c.notMatch != nil && c.notMatch.Match(c.buf.Bytes()) {
		v.Raise(sample.Critical, fmt.Sprintf("body matched %q", c.notMatch.String()))
	}
	return v.Result(true)
}

// readBody reads at most maxBody bytes; a longer body is cut there.
func (c *check) readBody(r io.Reader) error {
	if c.method == nethttp.MethodHead {
		return nil
	}
	_, err := c.buf.ReadFrom(io.LimitReader(r, c.maxBody))
	return err
}

func (c *check) writeTimings(w sample.Writer, v *netcheck.Verdict, p *phases) {
	if !p.dnsDone.IsZero() && !p.dnsStart.IsZero() {
		c.value(w, MetricResolve, p.dnsDone.Sub(p.dnsStart).Seconds(), "s")
	}
	if !p.connDone.IsZero() && !p.connStart.IsZero() {
		c.value(w, MetricConnect, p.connDone.Sub(p.connStart).Seconds(), "s")
	}
	if p.tlsDur > 0 {
		c.value(w, MetricTLSHandshake, p.tlsDur.Seconds(), "s")
	}
	if !p.notAfter.IsZero() {
		days := netcheck.ExpiryDays(p.notAfter, time.Now())
		c.value(w, MetricCertExpiryDays, days, "d")
		c.tls.Judge(v, days)
	}
	if !p.firstByte.IsZero() {
		c.value(w, MetricFirstByte, p.firstByte.Sub(p.start).Seconds(), "s")
	}
}

// reason words a failure, naming the phase a timeout hit.
func (c *check) reason(err error, p *phases) string {
	msg := netcheck.Reason(err, c.timeout)
	if !strings.HasPrefix(msg, "timeout") {
		var te *tlsError
		if errors.As(err, &te) && !strings.Contains(msg, "TLS") && !strings.Contains(msg, "certificate") {
			return "TLS handshake: " + msg
		}
		return msg
	}
	switch {
	case !p.firstByte.IsZero():
		return msg + " reading the body"
	case p.wroteRequest:
		return msg + " waiting for the response"
	case p.gotConn:
		return msg + " sending the request"
	case !p.connDone.IsZero() && c.url.Scheme == "https":
		return msg + " in the TLS handshake"
	}
	return msg + " connecting"
}

func (c *check) judgeCode(v *netcheck.Verdict, code int) {
	if len(c.codes) > 0 {
		for _, r := range c.codes {
			if code >= r.lo && code <= r.hi {
				return
			}
		}
		v.Raise(sample.Critical, fmt.Sprintf("status code %d, expected %s", code, c.expected()))
		return
	}
	switch {
	case code >= 500:
		v.Raise(sample.Critical, fmt.Sprintf("status code %d", code))
	case code >= 400:
		v.Raise(sample.Warning, fmt.Sprintf("status code %d", code))
	}
}

func (c *check) expected() string {
	parts := make([]string, len(c.codes))
	for i, r := range c.codes {
		if r.lo == r.hi {
			parts[i] = fmt.Sprint(r.lo)
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r.lo, r.hi)
		}
	}
	return strings.Join(parts, ", ")
}
