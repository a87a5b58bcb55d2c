package duckdb

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/sinks/webhook"
)

// reconcBuild builds cmd/reconc into dir.
func reconcBuild(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "reconc")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/reconc")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/reconc: %v\n%s", err, out)
	}
	return path
}

// rulesWebServer is the monitored web server: it answers after a delay the
// test sets, and can be stopped (connections refused) and started again on
// the same port.
type rulesWebServer struct {
	addr  string
	delay atomic.Int64 // nanoseconds
	srv   *http.Server
	done  chan struct{}
}

func (s *rulesWebServer) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	// The port was just released by stop (or by recondFreePort); a
	// listener of the previous server may linger for a moment.
	for range 50 {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("web server: %v", err)
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Duration(s.delay.Load())):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "ok\n")
	})}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("web server: %v", err)
		}
	}()
}

// stop closes the listener and every open connection.
func (s *rulesWebServer) stop() {
	if s.srv == nil {
		return
	}
	_ = s.srv.Close()
	<-s.done
	s.srv = nil
}

// hookReceiver is the webhook receiver. The first attempt of every event
// is answered 503, so that each notification is delivered through a retry;
// the receiver keeps every attempt.
type hookReceiver struct {
	mu       sync.Mutex
	attempts map[string][][]byte // event id → bodies, in arrival order
	accepted []alert.Event       // answered 2xx, in arrival order
	late     []string            // ids posted again after a 2xx answer
	changed  chan struct{}
}

func newHookReceiver() *hookReceiver {
	return &hookReceiver{attempts: map[string][][]byte{}, changed: make(chan struct{}, 1)}
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.EventIDHeader)
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := h.attempts[id]
	h.attempts[id] = append(prev, body)
	for _, ev := range h.accepted {
		if ev.ID == id {
			h.late = append(h.late, id)
		}
	}
	if len(prev) == 0 {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	var ev alert.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.accepted = append(h.accepted, ev)
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until n notifications were accepted and returns the last.
func (h *hookReceiver) waitFor(t *testing.T, n int, p *recondProc) alert.Event {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		h.mu.Lock()
		if len(h.accepted) >= n {
			ev := h.accepted[n-1]
			h.mu.Unlock()
			return ev
		}
		got := fmt.Sprint(eventsSummary(h.accepted))
		h.mu.Unlock()
		select {
		case <-h.changed:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("notification %d not received within 90 s; received %s\nrecond log:\n%s", n, got, p.logText())
		}
	}
}

// transition is what the live run, the archive and the backtest must agree
// on for one alert event.
type transition struct {
	ID, Fingerprint, Previous, Severity string
	Time                                time.Time
}

func (tr transition) String() string {
	return fmt.Sprintf("%s %s→%s fp=%s id=%.12s", tr.Time.UTC().Format("15:04:05.000"), tr.Previous, tr.Severity, tr.Fingerprint, tr.ID)
}

func eventsSummary(evs []alert.Event) []transition {
	out := make([]transition, 0, len(evs))
	for _, ev := range evs {
		out = append(out, transition{ev.ID, ev.Fingerprint, ev.Previous.String(), ev.Severity.String(), ev.Time.UTC()})
	}
	return out
}

var rulesStoppedLine = regexp.MustCompile(`msg="rule engine stopped".* samples=(\d+) late=(\d+)`)

// TestRulesEndToEnd runs the real recond on an http check of a local web
// server with a rule on its response time and answer, and a webhook sink.
// The test makes the server slow (warning), stops it (critical) and starts
// it fast again (ok), then checks, against the changes it made: the three
// transitions at plausible event times, exactly one accepted notification
// per transition although every first attempt is refused, the archive's
// alerts table (read by DuckDB) equal to the notifications, and `reconc
// backtest` over the archive recond wrote finding the same transitions.
func TestRulesEndToEnd(t *testing.T) {
	const (
		period   = time.Second
		timeout  = 900 * time.Millisecond
		size     = 4 * time.Second // window
		lateness = 8 * time.Second // generous: a loaded CI machine delays samples
		absent   = 3 * time.Second
		slow     = 500 * time.Millisecond
		// margin covers check runs started late on a loaded machine.
		margin = 3 * time.Second
	)
	dir := t.TempDir()
	web := &rulesWebServer{addr: fmt.Sprintf("127.0.0.1:%d", recondFreePort(t))}
	web.start(t)
	t.Cleanup(web.stop)
	hook := newHookReceiver()
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)

	// first_byte is written only by a run that got an answer: its absence
	// is the check failing (connection refused, timeout).
	planFile := filepath.Join(dir, "web.recon")
	src := fmt.Sprintf(`pipeline "rules-e2e"

source web http {
  url     = "http://%s/"
  period  = %s
  timeout = %s
}

sink hook webhook {
  url         = "%s/hook"
  timeout     = 5s
  backoff     = 100ms
  max_backoff = 200ms
}

rule web_health {
  from     = web where metric == "first_byte"
  window   = sliding(%s, 1s)
  lateness = %s
  warning  when avg(value) > 200ms
  critical when absent(%s)
  notify   = [hook]
}
`, web.addr, period, timeout, hookSrv.URL, size, lateness, absent)
	if err := os.WriteFile(planFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	reconc := reconcBuild(t, dir)
	data := filepath.Join(dir, "data")
	started := time.Now()
	p := recondStart(t, planFile, data, recondFreePort(t))

	// Fast for a few windows: no transition.
	time.Sleep(size)
	tSlow := time.Now()
	web.delay.Store(int64(slow))
	warn := hook.waitFor(t, 1, p)
	tStop := time.Now()
	web.stop()
	crit := hook.waitFor(t, 2, p)
	tFast := time.Now()
	web.delay.Store(0)
	web.start(t)
	ok := hook.waitFor(t, 3, p)
	// Steady for a while, so that a late duplicate or a stray transition
	// would show, then stop.
	time.Sleep(size)
	tEnd := time.Now()
	p.stop(t)

	// The transitions, in order, at event times after the change that
	// caused them and within a window, a period and the check's timeout of
	// it (plus a margin for runs that start late).
	hook.mu.Lock()
	notified := eventsSummary(hook.accepted)
	attempts, late := hook.attempts, hook.late
	hook.mu.Unlock()
	want := []struct {
		prev, sev string
		change    time.Time
		reach     time.Duration // longest plausible delay of the event time
	}{
		{"ok", "warning", tSlow, size + period + timeout + margin},
		{"warning", "critical", tStop, absent + period + timeout + margin},
		{"critical", "ok", tFast, period + timeout + margin},
	}
	db := recondOpenDuckDB(t)
	samples := filepath.Join(data, "archive", "samples", "**", "*.parquet")
	t.Cleanup(func() {
		if t.Failed() {
			rulesDumpRuns(t, db, samples)
		}
	})
	if len(notified) != len(want) {
		t.Fatalf("notifications %v, want ok→warning→critical→ok\nrecond log:\n%s", notified, p.logText())
	}
	for i, w := range want {
		n := notified[i]
		if n.Previous != w.prev || n.Severity != w.sev {
			t.Errorf("notification %d is %s, want %s→%s", i+1, n, w.prev, w.sev)
		}
		if n.Time.Before(w.change.Add(-period)) || n.Time.After(w.change.Add(w.reach)) {
			t.Errorf("notification %d (%s) has event time %s, want within [%s, %s] of the server change at %s",
				i+1, n, n.Time.Format(time.RFC3339Nano), -period, w.reach, w.change.Format(time.RFC3339Nano))
		}
		if n.Fingerprint != notified[0].Fingerprint {
			t.Errorf("notification %d has fingerprint %s, want the group's %s", i+1, n.Fingerprint, notified[0].Fingerprint)
		}
		if i > 0 && !n.Time.After(notified[i-1].Time) {
			t.Errorf("notification %d (%s) is not after %s", i+1, n, notified[i-1])
		}
	}
	if warn.Message == "" || crit.Message == "" || ok.Message == "" {
		t.Errorf("notifications without a message: %q %q %q", warn.Message, crit.Message, ok.Message)
	}
	// Exactly one accepted delivery per transition: the refused first
	// attempt was retried once, with the same body, and nothing came after
	// the 2xx answer.
	if len(late) > 0 {
		t.Errorf("events posted again after the receiver accepted them: %v", late)
	}
	if len(attempts) != len(want) {
		t.Errorf("receiver saw %d distinct event ids, want %d", len(attempts), len(want))
	}
	for id, bodies := range attempts {
		if len(bodies) != 2 {
			t.Errorf("event %s: %d attempts, want 2 (a refused one and its retry)", id, len(bodies))
		}
		for _, b := range bodies[1:] {
			if !bytes.Equal(b, bodies[0]) {
				t.Errorf("event %s: a retry carried another body:\n%s\n%s", id, bodies[0], b)
			}
		}
	}

	// The archive's alerts table, read by DuckDB, is the notifications.
	q := fmt.Sprintf(`SELECT id, fingerprint, previous, severity, time FROM read_parquet('%s', hive_partitioning = true) ORDER BY time, id`,
		filepath.Join(data, "archive", "alerts", "**", "*.parquet"))
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var archived []transition
	for rows.Next() {
		var tr transition
		if err := rows.Scan(&tr.ID, &tr.Fingerprint, &tr.Previous, &tr.Severity, &tr.Time); err != nil {
			t.Fatal(err)
		}
		tr.Time = tr.Time.UTC()
		archived = append(archived, tr)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(archived) != fmt.Sprint(notified) {
		t.Errorf("alerts table\n%v\nwant the notifications\n%v", archived, notified)
	}

	// The backtest over the archive finds the live run's transitions when
	// the live run dropped no sample as late (docs/rules.md, "Backtests and
	// the live run").
	m := rulesStoppedLine.FindStringSubmatch(p.logText())
	if m == nil {
		t.Fatalf("recond did not log the rule engine's counters\n%s", p.logText())
	}
	if lateN, _ := strconv.Atoi(m[2]); lateN > 0 {
		t.Fatalf("the live rule engine dropped %d samples as late (lateness %s): recond delivered samples later than the rule allows, so live and backtest legitimately differ\n%s",
			lateN, lateness, p.logText())
	}
	cmd := exec.Command(reconc, "backtest", planFile, "--archive", filepath.Join(data, "archive"),
		"--from", started.Add(-time.Minute).UTC().Format(time.RFC3339Nano), "--to", tEnd.UTC().Format(time.RFC3339Nano), "--format", "json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("reconc backtest: %v\n%s", err, errb.String())
	}
	var replayed []alert.Event
	dec := json.NewDecoder(&out)
	for {
		var ev alert.Event
		if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("reconc backtest output: %v\n%s", err, out.String())
		}
		replayed = append(replayed, ev)
	}
	if got := eventsSummary(replayed); fmt.Sprint(got) != fmt.Sprint(notified) {
		t.Errorf("reconc backtest found\n%v\nthe live run notified\n%v\nbacktest: %s", got, notified, strings.TrimSpace(errb.String()))
	}
}

// rulesDumpRuns logs the archived runs of the web check (start time, status,
// first_byte), to explain a failure.
func rulesDumpRuns(t *testing.T, db *sql.DB, samples string) {
	q := fmt.Sprintf(`SELECT ts, string_agg(metric || '=' || coalesce(text, CAST(round(value, 4) AS VARCHAR)), ' ' ORDER BY metric)
		FROM read_parquet('%s', hive_partitioning = true) WHERE source = 'web' AND metric IN ('status', 'first_byte', 'duration')
		GROUP BY ts ORDER BY ts`, samples)
	rows, err := db.Query(q)
	if err != nil {
		t.Logf("archived runs: %v", err)
		return
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var ts time.Time
		var s string
		if err := rows.Scan(&ts, &s); err != nil {
			t.Logf("archived runs: %v", err)
			return
		}
		fmt.Fprintf(&b, "%s %s\n", ts.UTC().Format("15:04:05.000"), s)
	}
	t.Logf("archived runs of the web check:\n%s", b.String())
}
