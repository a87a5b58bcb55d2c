package alertmanager

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/sinks/alertmanager/amtest"
)

func attrs(resend time.Duration, urls ...string) module.Attrs {
	return module.Attrs{
		FieldURLs: urls, FieldTimeout: 2 * time.Second, FieldMaxAttempts: int64(3),
		FieldBackoff: 5 * time.Millisecond, FieldMaxBackoff: 20 * time.Millisecond,
		FieldResendInterval: resend, FieldLabels: map[string]string{"team": "net"},
		FieldGeneratorURL: "http://127.0.0.1:8080/",
	}
}

// quiet drops the notifiers' logs (retries are expected here).
var quiet = slog.New(slog.DiscardHandler)

func newNotifier(t *testing.T, a module.Attrs) *Notifier {
	t.Helper()
	n, err := New("am", a, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// event is the transition of rule for target from prev to sev at.
func event(rule, target string, prev, sev alert.Severity, at time.Time) *alert.Event {
	g := map[string]string{"target": target}
	fp := alert.Fingerprint(rule, g)
	return &alert.Event{
		ID: alert.TransitionID(fp, at, prev, sev, false), Time: at, Rule: rule, Severity: sev, Previous: prev,
		Group: g, Value: 0.7, Message: rule + " is " + sev.String(), Pipeline: "p", Fingerprint: fp, Since: at,
	}
}

func notify(t *testing.T, n *Notifier, ev *alert.Event) {
	t.Helper()
	if err := n.Notify(context.Background(), ev); err != nil {
		t.Fatalf("notify %s %s→%s: %v", ev.Rule, ev.Previous, ev.Severity, err)
	}
}

// A rule going warning → critical → ok: Alertmanager holds one active alert
// with the current severity and the sink's labels, the receiver is told
// about each firing alert and each resolution.
func TestFireEscalateResolve(t *testing.T) {
	am := amtest.Start(t, 5*time.Minute)
	n := newNotifier(t, attrs(time.Minute, am.URL))
	t0 := time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	warning := map[string]string{"alertname": "disk", "severity": "warning", "target": "a"}
	critical := map[string]string{"alertname": "disk", "severity": "critical", "target": "a"}

	notify(t, n, event("disk", "a", alert.OK, alert.Warning, t0))
	amtest.Eventually(t, "the receiver to get the warning", func() bool { return am.Notified("firing", warning) })
	a := am.Find(t, warning)
	if a == nil || a.Status.State != "active" {
		t.Fatalf("Alertmanager lists %+v, want the warning active", am.Alerts(t))
	}
	want := map[string]string{"alertname": "disk", "severity": "warning", "target": "a", "pipeline": "p", "team": "net"}
	if len(a.Labels) != len(want) || !amtest.Matches(a.Labels, want) {
		t.Errorf("labels %v, want %v", a.Labels, want)
	}
	if a.Annotations["summary"] != "disk is warning" || a.Annotations["value"] != "0.7" || !a.StartsAt.Equal(t0) {
		t.Errorf("annotations %v startsAt %s, want summary, value 0.7, start %s", a.Annotations, a.StartsAt, t0)
	}

	notify(t, n, event("disk", "a", alert.Warning, alert.Critical, t0.Add(100*time.Millisecond)))
	amtest.Eventually(t, "the receiver to get the critical and the warning's resolution", func() bool {
		return am.Notified("firing", critical) && am.Notified("resolved", warning)
	})
	if as := am.Alerts(t); len(as) != 1 || !amtest.Matches(as[0].Labels, critical) || as[0].Status.State != "active" {
		t.Fatalf("Alertmanager lists %+v, want the critical alone", as)
	}

	notify(t, n, event("disk", "a", alert.Critical, alert.OK, t0.Add(200*time.Millisecond)))
	amtest.Eventually(t, "the receiver to get the resolution", func() bool { return am.Notified("resolved", critical) })
	if as := am.Alerts(t); len(as) != 0 {
		t.Errorf("Alertmanager still lists %+v after the resolution", as)
	}
}

// A silence made in Alertmanager mutes the silenced alert; the other alert
// of the same notification group still reaches the receiver.
func TestSilenceStaysAlertmanagers(t *testing.T) {
	am := amtest.Start(t, 5*time.Minute)
	n := newNotifier(t, attrs(time.Minute, am.URL))
	id := am.Silence(t, map[string]string{"alertname": "muted"})
	now := time.Now().UTC()
	notify(t, n, event("muted", "a", alert.OK, alert.Critical, now))
	notify(t, n, event("loud", "a", alert.OK, alert.Critical, now))
	amtest.Eventually(t, "the receiver to get the loud alert", func() bool {
		return am.Notified("firing", map[string]string{"alertname": "loud"})
	})
	if am.Notified("firing", map[string]string{"alertname": "muted"}) {
		t.Errorf("the silenced alert reached the receiver:\n%s", am)
	}
	a := am.Find(t, map[string]string{"alertname": "muted"})
	if a == nil || a.Status.State != "suppressed" || len(a.Status.SilencedBy) != 1 || a.Status.SilencedBy[0] != id {
		t.Errorf("silenced alert listed as %+v, want suppressed by %s", a, id)
	}
}

// Re-sends keep a firing alert active past Alertmanager's resolve_timeout
// and past the endsAt of any single post; once the notifier is closed the
// re-sends stop and Alertmanager resolves the alert by itself.
func TestResendKeepsAlertActive(t *testing.T) {
	am := amtest.Start(t, 3*time.Second)
	n, err := New("am", attrs(time.Second, am.URL), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	match := map[string]string{"alertname": "up"}
	notify(t, n, event("up", "a", alert.OK, alert.Critical, time.Now().UTC()))
	amtest.Eventually(t, "the alert to be listed", func() bool { return am.Find(t, match) != nil })
	first := am.Find(t, match).UpdatedAt
	// 6s of updates: longer than resolve_timeout (3s) and than the endsAt
	// (4 resend intervals) of the first post.
	amtest.Eventually(t, "Alertmanager to see re-sends over 6s", func() bool {
		a := am.Find(t, match)
		if a == nil || a.Status.State != "active" {
			t.Fatalf("the alert is no longer active: %+v\n%s", a, am)
		}
		return a.UpdatedAt.Sub(first) > 6*time.Second
	})
	if am.Notified("resolved", match) {
		t.Fatalf("the receiver got a resolution while the alert fired:\n%s", am)
	}
	n.Close()
	amtest.Eventually(t, "Alertmanager to resolve the alert no longer re-sent", func() bool { return am.Notified("resolved", match) })
}

// Sync replaces the alerts held with the firing ones and posts them at
// once; a later transition of a synced alert resolves the alert
// Alertmanager holds.
func TestSyncPostsAtOnce(t *testing.T) {
	am := amtest.Start(t, 5*time.Minute)
	n := newNotifier(t, attrs(time.Hour, am.URL)) // no periodic re-send during the test
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	ev := *event("link", "a", alert.Warning, alert.Warning, since)
	ev.Message = ""
	n.Sync([]alert.Event{ev})
	match := map[string]string{"alertname": "link", "severity": "warning"}
	amtest.Eventually(t, "the synced alert to be listed", func() bool { return am.Find(t, match) != nil })
	if a := am.Find(t, match); !a.StartsAt.Equal(since) || a.Annotations["summary"] != "link is warning for {target=a}" {
		t.Errorf("synced alert %+v, want start %s and a summary", a, since)
	}
	notify(t, n, event("link", "a", alert.Warning, alert.OK, time.Now().UTC()))
	amtest.Eventually(t, "the resolution", func() bool { return am.Notified("resolved", match) })
	if as := am.Alerts(t); len(as) != 0 {
		t.Errorf("Alertmanager still lists %+v", as)
	}
}

// Every Alertmanager of urls gets every alert; one that is down makes
// Notify fail naming it, and the others still get the alert.
func TestEveryURLAndErrors(t *testing.T) {
	am1, am2 := amtest.Start(t, 5*time.Minute), amtest.Start(t, 5*time.Minute)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	n := newNotifier(t, attrs(time.Hour, am1.URL, am2.URL+"/", down.URL))
	err := n.Notify(context.Background(), event("cpu", "a", alert.OK, alert.Warning, time.Now().UTC()))
	if err == nil || !strings.Contains(err.Error(), down.URL+AlertsPath) || strings.Contains(err.Error(), am1.URL) {
		t.Errorf("Notify error %v, want one naming only %s", err, down.URL)
	}
	for _, am := range []*amtest.AM{am1, am2} {
		if am.Find(t, map[string]string{"alertname": "cpu"}) == nil {
			t.Errorf("%s does not list the alert", am.URL)
		}
	}
	// A wrong path prefix: Alertmanager answers 404, not retried.
	bad := newNotifier(t, attrs(time.Hour, am1.URL+"/prefix"))
	err = bad.Notify(context.Background(), event("cpu", "b", alert.OK, alert.Warning, time.Now().UTC()))
	if err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "not retried") {
		t.Errorf("wrong prefix: error %v, want a 404 not retried", err)
	}
}

// Alertmanager's error answers become clear errors: its message is
// quoted; 5xx is retried, 400 is not. (A real Alertmanager rejects only
// alerts this sink never builds, so a stand-in answers here.)
func TestRejectionsAndRetries(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		h := hits[r.URL.Path]
		mu.Unlock()
		switch {
		case strings.HasPrefix(r.URL.Path, "/bad/"):
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`"start time must be before end time"` + "\n"))
		case strings.HasPrefix(r.URL.Path, "/invalid/"):
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"code":602,"message":"0.labels in body is required"}`))
		case strings.HasPrefix(r.URL.Path, "/flaky/") && h == 1:
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case r.Header.Get("Authorization") != "Bearer tok":
			http.Error(w, "no token", http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	for _, c := range []struct{ path, want string }{
		{"/bad", "400 Bad Request: start time must be before end time (not retried)"},
		{"/invalid", "422 Unprocessable Entity: 0.labels in body is required (not retried)"},
		{"/flaky", ""},
	} {
		a := attrs(time.Hour, srv.URL+c.path)
		a[FieldBearerToken] = "tok"
		n := newNotifier(t, a)
		err := n.Notify(context.Background(), event("r", "a", alert.OK, alert.Critical, time.Now()))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want success on the retry", c.path, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.path, err, c.want)
		}
	}
	if hits["/bad"+AlertsPath] != 1 || hits["/flaky"+AlertsPath] != 2 {
		t.Errorf("attempts %v: want 1 for the 400, 2 for the 503", hits)
	}
}

// Basic authentication and a CA file for https.
func TestBasicAuthOverTLS(t *testing.T) {
	got := make(chan []string, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		select {
		case got <- []string{u, p}:
		default:
		}
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below are expected
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	a := attrs(time.Hour, srv.URL)
	if err := newNotifier(t, a).Notify(context.Background(), event("r", "a", alert.OK, alert.Warning, time.Now())); err == nil {
		t.Error("an unknown certificate authority was accepted")
	}
	a[FieldCAFile], a[FieldUser], a[FieldPassword] = ca, "recon", "pw"
	if err := newNotifier(t, a).Notify(context.Background(), event("r", "a", alert.OK, alert.Warning, time.Now())); err != nil {
		t.Fatal(err)
	}
	if c := <-got; c[0] != "recon" || c[1] != "pw" {
		t.Errorf("basic auth %v, want recon/pw", c)
	}
}

// Group labels that are not Alertmanager label names, or that collide with
// the sink's labels, are renamed; empty ones are left out.
func TestBuildLabels(t *testing.T) {
	n := newNotifier(t, attrs(time.Hour, "http://127.0.0.1:1"))
	ev := event("r", "a", alert.OK, alert.Warning, time.Now())
	ev.Group = map[string]string{"if.index": "3", "1x": "y", "severity": "high", "team": "db", "empty": ""}
	ev.Value = math.NaN()
	a := n.build(ev, alert.Critical)
	want := map[string]string{"alertname": "r", "severity": "critical", "pipeline": "p", "if_index": "3", "_1x": "y",
		"exported_severity": "high", "team": "db"}
	if len(a.Labels) != len(want) || !amtest.Matches(a.Labels, want) {
		t.Errorf("labels %v, want %v", a.Labels, want)
	}
	if _, ok := a.Annotations["value"]; ok {
		t.Errorf("annotations %v carry a value for NaN", a.Annotations)
	}
}

func TestValidate(t *testing.T) {
	for name, c := range map[string]struct {
		set  module.Attrs
		want string
	}{
		"scheme":    {module.Attrs{FieldURLs: []string{"tcp://127.0.0.1:9093"}}, "http:// or https://"},
		"twice":     {module.Attrs{FieldURLs: []string{"http://a:1", "http://a:1"}}, "listed twice"},
		"label":     {module.Attrs{FieldLabels: map[string]string{"a-b": "x"}}, "not a valid"},
		"reserved":  {module.Attrs{FieldLabels: map[string]string{"severity": "x"}}, "set by the sink"},
		"password":  {module.Attrs{FieldPassword: "x"}, "needs user"},
		"both auth": {module.Attrs{FieldUser: "u", FieldBearerToken: "t"}, "exclude each other"},
		"backoff":   {module.Attrs{FieldBackoff: time.Minute}, "max_backoff"},
		"ca":        {module.Attrs{FieldCAFile: "/nonexistent/ca.pem"}, "ca_file"},
		"generator": {module.Attrs{FieldGeneratorURL: "recond:8080"}, "generator_url"},
	} {
		a := attrs(time.Minute, "http://127.0.0.1:9093")
		for k, v := range c.set {
			a[k] = v
		}
		if _, err := New("am", a, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
}
