package http

import (
	"context"
	"net/http/httptrace"
	"sync"
	"time"
)

// phases are the moments of one run.
type phases struct {
	start                 time.Time
	dnsStart, dnsDone     time.Time
	connStart, connDone   time.Time
	tlsDur                time.Duration
	notAfter              time.Time
	firstByte             time.Time
	wroteRequest, gotConn bool
}

// runTrace records one run's phases. The transport calls the hooks from
// its own goroutines, possibly after Run returned (a dial abandoned at the
// timeout), so every run has its own runTrace and every access holds mu.
type runTrace struct {
	mu sync.Mutex
	p  phases
}

type traceKey struct{}

// withTrace returns ctx carrying a new runTrace, as httptrace hooks and for
// the dialers.
func withTrace(ctx context.Context, start time.Time) (context.Context, *runTrace) {
	rt := &runTrace{p: phases{start: start}}
	ct := &httptrace.ClientTrace{
		DNSStart:             func(httptrace.DNSStartInfo) { rt.update(func(p *phases) { p.dnsStart = time.Now() }) },
		DNSDone:              func(httptrace.DNSDoneInfo) { rt.update(func(p *phases) { p.dnsDone = time.Now() }) },
		ConnectStart:         func(string, string) { rt.update(func(p *phases) { p.connStart = time.Now() }) },
		ConnectDone:          func(string, string, error) { rt.update(func(p *phases) { p.connDone = time.Now() }) },
		GotConn:              func(httptrace.GotConnInfo) { rt.update(func(p *phases) { p.gotConn = true }) },
		WroteRequest:         func(httptrace.WroteRequestInfo) { rt.update(func(p *phases) { p.wroteRequest = true }) },
		GotFirstResponseByte: func() { rt.update(func(p *phases) { p.firstByte = time.Now() }) },
	}
	return context.WithValue(httptrace.WithClientTrace(ctx, ct), traceKey{}, rt), rt
}

// traceOf returns the runTrace ctx carries, or nil.
func traceOf(ctx context.Context) *runTrace {
	rt, _ := ctx.Value(traceKey{}).(*runTrace)
	return rt
}

func (rt *runTrace) update(f func(*phases)) {
	if rt == nil {
		return
	}
	rt.mu.Lock()
	f(&rt.p)
	rt.mu.Unlock()
}

// snapshot returns the phases recorded so far.
func (rt *runTrace) snapshot() phases {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.p
}
