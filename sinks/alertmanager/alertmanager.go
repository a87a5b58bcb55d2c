package alertmanager

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/alert"
)

// AlertsPath is the Alertmanager v2 endpoint the sink posts to, below each
// base URL.
const AlertsPath = "/api/v2/alerts"

// endsAhead is how many resend intervals ahead of now a firing alert's
// endsAt lies (Prometheus uses 4): a few lost re-sends do not resolve it.
const endsAhead = 4

// maxBatch bounds the alerts of one request.
const maxBatch = 500

// Alert is one Alertmanager postableAlert.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Notifier posts alert states to Alertmanagers and re-sends the firing ones
// every resend interval until Close. It implements alert.Syncer and
// io.Closer.
type Notifier struct {
	name       string
	targets    []*target
	client     *http.Client
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	resend     time.Duration
	extra      map[string]string
	generator  string
	user, pass string
	bearer     string
	log        *slog.Logger

	notifyMu sync.Mutex // one Notify at a time: its posts follow its state change
	mu       sync.Mutex
	firing   map[string]*Alert // by event fingerprint: the alert Alertmanager holds
	kick     chan struct{}
	stop     context.CancelFunc
	done     chan struct{}
	closed   sync.Once
}

// target is one Alertmanager. Requests to it are made one at a time, so
// that it receives the states in the order they changed.
type target struct {
	url string
	mu  sync.Mutex
}

// New returns the notifier of sink name with attrs (decoded against Spec)
// and starts its resend loop; Close stops it.
func New(name string, attrs module.Attrs, logger *slog.Logger) (*Notifier, error) {
	if err := validate(attrs); err != nil {
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if ca, insecure := attrs.String(FieldCAFile), attrs.Bool(FieldInsecureSkipVerify); ca != "" || insecure {
		cfg := &tls.Config{InsecureSkipVerify: insecure}
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, fmt.Errorf("sink %s: ca_file: %w", name, err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("sink %s: ca_file %s holds no PEM certificate", name, ca)
			}
		}
		tr.TLSClientConfig = cfg
	}
	n := &Notifier{
		name: name, client: &http.Client{Timeout: attrs.Duration(FieldTimeout), Transport: tr},
		attempts: int(max(1, attrs.Int(FieldMaxAttempts))), backoff: attrs.Duration(FieldBackoff),
		maxBackoff: attrs.Duration(FieldMaxBackoff), resend: attrs.Duration(FieldResendInterval),
		extra: attrs.Map(FieldLabels), generator: attrs.String(FieldGeneratorURL),
		user: attrs.String(FieldUser), pass: attrs.String(FieldPassword), bearer: attrs.String(FieldBearerToken),
		log:    logger.With("sink", name),
		firing: map[string]*Alert{}, kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if n.resend <= 0 {
		n.resend = time.Minute
	}
	for _, u := range attrs.Strings(FieldURLs) {
		n.targets = append(n.targets, &target{url: strings.TrimRight(u, "/") + AlertsPath})
	}
	ctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	go n.loop(ctx)
	return n, nil
}

// Close stops the resend loop and waits for it. Alertmanager keeps the
// firing alerts until their endsAt (four resend intervals), then resolves
// them unless a new notifier re-sends them.
func (n *Notifier) Close() error {
	n.closed.Do(func() {
		n.stop()
		<-n.done
		n.client.CloseIdleConnections()
	})
	return nil
}

// Notify posts the state ev enters to every Alertmanager: the alert of the
// new severity (firing), and the resolution of the alert of the severity
// it leaves. Failed requests are retried; the error names every
// Alertmanager that did not take the alerts. A firing alert is kept for
// the re-sends even when the post failed.
func (n *Notifier) Notify(ctx context.Context, ev *alert.Event) error {
	n.notifyMu.Lock()
	defer n.notifyMu.Unlock()
	now := time.Now()
	var alerts []Alert
	n.mu.Lock()
	held := n.firing[ev.Fingerprint]
	if held != nil && (ev.Severity == alert.OK || held.Labels[LabelSeverity] != ev.Severity.String()) {
		alerts = append(alerts, resolved(*held, ev.Time, now))
		held = nil
	} else if held == nil && ev.Previous != alert.OK && ev.Previous != ev.Severity {
		// Not held (the sink was started after the state was entered and
		// not told): resolve the alert Alertmanager may hold all the same.
		// Without startsAt Alertmanager keeps the start it knows.
		alerts = append(alerts, resolved(n.build(ev, ev.Previous), ev.Time, now))
	}
	if ev.Severity == alert.OK {
		delete(n.firing, ev.Fingerprint)
	} else {
		a := n.build(ev, ev.Severity)
		if held != nil && held.StartsAt.Before(a.StartsAt) {
			a.StartsAt = held.StartsAt
		}
		n.firing[ev.Fingerprint] = &a
		alerts = append(alerts, n.firingCopy(&a, now))
	}
	n.mu.Unlock()
	if len(alerts) == 0 {
		return nil
	}
	body, err := json.Marshal(alerts)
	if err != nil {
		return fmt.Errorf("alertmanager %s: encode alerts: %w", n.name, err)
	}
	errs := make([]error, len(n.targets))
	var wg sync.WaitGroup
	for i, t := range n.targets {
		wg.Go(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			errs[i] = n.postRetrying(ctx, t, body)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Sync replaces the firing alerts the notifier holds with firing (alert
// events of the states the rule engine restored) and re-sends at once.
func (n *Notifier) Sync(firing []alert.Event) {
	n.mu.Lock()
	n.firing = make(map[string]*Alert, len(firing))
	for i := range firing {
		ev := &firing[i]
		if ev.Severity == alert.OK {
			continue
		}
		a := n.build(ev, ev.Severity)
		n.firing[ev.Fingerprint] = &a
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default: // a re-send is already due
	}
}

// loop re-sends the firing alerts every resend interval and when kicked.
func (n *Notifier) loop(ctx context.Context) {
	defer close(n.done)
	tick := time.NewTicker(n.resend)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.kick:
		}
		var wg sync.WaitGroup
		for _, t := range n.targets {
			wg.Go(func() { n.resendTo(ctx, t) })
		}
		wg.Wait()
	}
}

// resendTo posts every firing alert to t, once (the next re-send is the
// retry). The alerts are read while t is locked, so a re-send never
// overtakes a resolution Notify is posting.
func (n *Notifier) resendTo(ctx context.Context, t *target) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	n.mu.Lock()
	alerts := make([]Alert, 0, len(n.firing))
	for _, a := range n.firing {
		alerts = append(alerts, n.firingCopy(a, now))
	}
	n.mu.Unlock()
	for len(alerts) > 0 {
		chunk := alerts[:min(len(alerts), maxBatch)]
		alerts = alerts[len(chunk):]
		body, err := json.Marshal(chunk)
		if err == nil {
			_, err = n.post(ctx, t, body)
		}
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("re-sending firing alerts failed", "url", t.url, "alerts", len(chunk), "err", err)
			}
			return
		}
	}
}

// build returns the alert of ev's rule and group at severity sev, starting
// at ev.Since.
func (n *Notifier) build(ev *alert.Event, sev alert.Severity) Alert {
	labels := make(map[string]string, len(n.extra)+len(ev.Group)+3)
	for k, v := range n.extra {
		labels[k] = v
	}
	for k, v := range ev.Group {
		if v == "" {
			continue // Alertmanager treats an empty label as absent
		}
		k = sanitizeLabelName(k)
		if k == LabelAlertname || k == LabelSeverity || k == LabelPipeline {
			k = ExportedPrefix + k
		}
		labels[k] = v
	}
	labels[LabelAlertname] = ev.Rule
	labels[LabelSeverity] = sev.String()
	if ev.Pipeline != "" {
		labels[LabelPipeline] = ev.Pipeline
	}
	summary := ev.Message
	if summary == "" {
		summary = fmt.Sprintf("%s is %s for %s", ev.Rule, sev, ev.GroupString())
	}
	ann := map[string]string{"summary": summary, "fingerprint": ev.Fingerprint}
	if !math.IsNaN(ev.Value) && !math.IsInf(ev.Value, 0) {
		ann["value"] = strconv.FormatFloat(ev.Value, 'g', -1, 64)
	}
	return Alert{Labels: labels, Annotations: ann, StartsAt: ev.Since.UTC(), GeneratorURL: n.generator}
}

// firingCopy is a with endsAt endsAhead resend intervals after now (or
// after its start, when that lies ahead of this clock).
func (n *Notifier) firingCopy(a *Alert, now time.Time) Alert {
	c := *a
	c.EndsAt = now.UTC().Add(endsAhead * n.resend)
	if !c.StartsAt.IsZero() && !c.StartsAt.Before(now) {
		c.EndsAt = c.StartsAt.Add(endsAhead * n.resend)
	}
	return c
}

// resolved is a ended at the transition time at, bounded by the wall clock
// now (a later endsAt would keep it firing until then) and by its start
// (Alertmanager rejects an alert that ends before it starts).
func resolved(a Alert, at, now time.Time) Alert {
	end := at.UTC()
	if end.IsZero() || end.After(now) {
		end = now.UTC()
	}
	if !a.StartsAt.IsZero() && end.Before(a.StartsAt) {
		end = a.StartsAt
	}
	a.EndsAt = end
	return a
}

// sanitizeLabelName maps a group label name to Alertmanager's label name
// alphabet: invalid characters become '_', a leading digit gets a '_'.
func sanitizeLabelName(k string) string {
	if validLabelName(k) {
		return k
	}
	b := []byte(k)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}

// postRetrying posts body to t, retrying failures worth retrying with
// exponential backoff.
func (n *Notifier) postRetrying(ctx context.Context, t *target, body []byte) error {
	wait := n.backoff
	var lastErr error
	for attempt := 1; attempt <= n.attempts; attempt++ {
		retry, err := n.post(ctx, t, body)
		if err == nil {
			return nil
		}
		lastErr = err
		if !retry || attempt == n.attempts {
			break
		}
		n.log.Warn("alertmanager request failed, retrying", "url", t.url, "attempt", attempt, "in", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("alertmanager %s: %s: %w (last error: %v)", n.name, t.url, ctx.Err(), lastErr)
		}
		wait = min(wait*2, n.maxBackoff)
	}
	return fmt.Errorf("alertmanager %s: %s: %w", n.name, t.url, lastErr)
}

// post makes one request; retry reports whether a failure is worth
// retrying.
func (n *Notifier) post(ctx context.Context, t *target, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "recon")
	switch {
	case n.user != "":
		req.SetBasicAuth(n.user, n.pass)
	case n.bearer != "":
		req.Header.Set("Authorization", "Bearer "+n.bearer)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	err = fmt.Errorf("status %s: %s", resp.Status, errorText(msg))
	retry = resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	if !retry {
		err = fmt.Errorf("%w (not retried)", err)
	}
	return retry, err
}

// errorText extracts Alertmanager's error message from an error answer: a
// JSON string ("start time must be before end time"), a JSON object with a
// message (validation errors), or plain text.
func errorText(b []byte) string {
	var s string
	if json.Unmarshal(b, &s) == nil && s != "" {
		return s
	}
	var o struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &o) == nil && o.Message != "" {
		return o.Message
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "empty answer"
	}
	return t
}
