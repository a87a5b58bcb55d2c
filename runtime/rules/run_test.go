package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/stdout"
	"github.com/reconmon/recon/sinks/webhook"
)

func stdoutNotifier(w io.Writer) alert.Notifier {
	return stdout.New(module.Attrs{stdout.FieldFormat: stdout.FormatText}, w)
}

// runPlan fires and resolves often: per target, warning when the 1m avg
// exceeds 1, critical above 5.
func runPlan() *plan.Plan {
	avg := call("avg", col("value"))
	return &plan.Plan{Pipeline: "run", Rules: []plan.Rule{{
		Name: "load", From: []string{"host"}, Pos: "run.recon:1:1", Notify: []string{"hook"},
		GroupBy: []plan.Expr{*col("target")},
		Window:  plan.Window{Kind: "tumbling", Size: plan.Duration(time.Minute)},
		Clauses: []plan.Clause{
			{Severity: "warning", When: op(">", avg, num(1))},
			{Severity: "critical", When: op(">", avg, num(5))},
		},
	}}}
}

// runBatches: 3 targets, one sample per 10s each, 60 batches of one minute;
// the load cycles through 0.5, 2 and 8 with a period that differs per target.
func runBatches() []arrow.RecordBatch {
	b := newRowBatcher("run")
	var out []arrow.RecordBatch
	levels := []float64{0.5, 2, 8, 2}
	for m := 0; m < 60; m++ {
		for s := 0; s < 60; s += 10 {
			for k, tgt := range []string{"a", "b", "c"} {
				v := levels[(m/(k+1))%len(levels)]
				b.add(command{rows: []sample.Row{{Ts: int64(m)*6e10 + int64(s)*1e9, Target: tgt, Metric: "load", Value: v, HasValue: true}},
					source: []string{"host"}, module: []string{"nagios"}})
			}
		}
		out = append(out, b.record())
	}
	return out
}

func expectedEvents(t *testing.T, recs []arrow.RecordBatch) map[string]alert.Event {
	e, err := New(Options{Plan: runPlan(), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]alert.Event{}
	for _, r := range recs {
		if err := e.Ingest(r); err != nil {
			t.Fatal(err)
		}
		for _, ev := range e.Eval(time.Time{}) {
			want[ev.ID] = ev
		}
	}
	return want
}

// TestMain runs the engine process of TestRunSurvivesKill when that test
// re-executes the test binary with RECON_RULES_CHILD_DIR set, and the tests
// otherwise.
func TestMain(m *testing.M) {
	if dir := os.Getenv("RECON_RULES_CHILD_DIR"); dir != "" {
		if err := runChild(dir, os.Getenv("RECON_RULES_CHILD_HOOK")); err != nil {
			fmt.Fprintln(os.Stderr, "rules child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild is the engine process killed by TestRunSurvivesKill.
func runChild(dir, url string) error {
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Logger: discardLogger()})
	if err != nil {
		return err
	}
	defer j.Close()
	c, err := j.Consumer("rules")
	if err != nil {
		return err
	}
	alerts, err := journal.Open(filepath.Join(dir, "alerts"), journal.Options{Logger: discardLogger()})
	if err != nil {
		return err
	}
	defer alerts.Close()
	hook, err := webhook.New("hook", module.Attrs{
		webhook.FieldURL: url, webhook.FieldTimeout: 5 * time.Second, webhook.FieldMaxAttempts: int64(50),
		webhook.FieldBackoff: 10 * time.Millisecond, webhook.FieldMaxBackoff: 100 * time.Millisecond,
	}, discardLogger())
	if err != nil {
		return err
	}
	e, err := New(Options{
		Plan: runPlan(), DataDir: filepath.Join(dir, "state"), Logger: discardLogger(),
		Samples: c, Alerts: alerts, Notifiers: map[string]alert.Notifier{"hook": hook},
		CheckpointEvery: time.Millisecond, TickEvery: 20 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Run(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// The engine reads the journal and notifies a real webhook receiver; it is
// killed with SIGKILL in the middle and restarted. Every transition is
// notified; none is lost, none is invented, and a transition delivered twice
// (killed between delivery and checkpoint) carries the same event id.
func TestRunSurvivesKill(t *testing.T) {
	recs := runBatches()
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	want := expectedEvents(t, recs)
	if len(want) < 20 {
		t.Fatalf("scenario yields %d transitions, want many", len(want))
	}
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := j.Publish(context.Background(), "host", r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	got := map[string]int{}
	var bodies []alert.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev alert.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[r.Header.Get(webhook.EventIDHeader)]++
		bodies = append(bodies, ev)
		mu.Unlock()
	}))
	defer srv.Close()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "RECON_RULES_CHILD_DIR="+dir, "RECON_RULES_CHILD_HOOK="+srv.URL)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	waitFor := func(n int) bool {
		deadline := time.Now().Add(40 * time.Second)
		for time.Now().Before(deadline) {
			if count() >= n {
				return true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return false
	}
	cmd := start()
	if !waitFor(3) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("first engine delivered %d notifications", count())
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killedAt := count()
	cmd = start()
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if !waitFor(len(want)) {
		t.Fatalf("after the restart: %d of %d transitions notified (killed after %d)", count(), len(want), killedAt)
	}
	time.Sleep(200 * time.Millisecond) // a second, different notification would show up now
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for id, n := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("notification %s is no transition of the scenario", id)
		}
		dups += n - 1
	}
	for id, ev := range want {
		if got[id] == 0 {
			t.Errorf("transition never notified: %s", FormatEvent(&ev, 0))
		}
	}
	for _, ev := range bodies {
		w, ok := want[ev.ID]
		if ok && (w.Severity != ev.Severity || w.Previous != ev.Previous || !w.Time.Equal(ev.Time) || w.Fingerprint != ev.Fingerprint) {
			t.Errorf("notification %s = %s, want %s", ev.ID, FormatEvent(&ev, 0), FormatEvent(&w, 0))
		}
	}
	t.Logf("%d transitions, killed after %d notifications, %d redelivered with the same id", len(want), killedAt, dups)
	cmd.Process.Kill()
	cmd.Wait()

	// Every transition is on the alerts topic too (as alert.Schema records).
	aj, err := journal.Open(filepath.Join(dir, "alerts"), journal.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer aj.Close()
	ac, err := aj.Consumer("check")
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	onTopic := map[string]bool{}
	for len(onTopic) < len(want) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		m, err := ac.Fetch(ctx)
		cancel()
		if err != nil {
			break
		}
		evs, err := alert.Events(m.Record)
		m.Record.Release()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if _, ok := want[ev.ID]; !ok {
				t.Errorf("alerts topic holds an event that is no transition: %s", FormatEvent(&ev, 0))
			}
			onTopic[ev.ID] = true
		}
	}
	if len(onTopic) != len(want) {
		t.Errorf("alerts topic holds %d of %d transitions", len(onTopic), len(want))
	}
}

// syncBuffer is an io.Writer safe for the notifier goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// While no samples arrive, Run evaluates at the clock it is given: a source
// that went silent goes absent, and the stdout sink prints it. Stopping Run
// saves the state; a second Run resumes without notifying again.
func TestRunEvaluatesOnTheClock(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	b := newRowBatcher("clock")
	b.add(command{rows: []sample.Row{{Ts: 10e9, Target: "a", Metric: "up", Value: 1, HasValue: true}}, source: []string{"host"}, module: []string{"ping"}})
	rec := b.record()
	defer rec.Release()
	if err := j.Publish(context.Background(), "host", rec); err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{Pipeline: "clock", Rules: []plan.Rule{{
		Name: "silent", From: []string{"host"}, Pos: "c.recon:1:1", Notify: []string{"console"},
		GroupBy: []plan.Expr{*col("target")},
		Window:  plan.Window{Kind: "tumbling", Size: plan.Duration(10 * time.Second)},
		Clauses: []plan.Clause{{Severity: "critical", Absent: plan.Duration(30 * time.Second)}},
	}}}
	var mu sync.Mutex
	now := time.Unix(10, 0)
	clock := func() time.Time { // advances 5s of engine time per evaluation
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(5 * time.Second)
		return now
	}
	var out syncBuffer
	metrics := NewMetrics() // one per process: both runs add to it
	run := func(stopWhen func() bool) {
		c, err := j.Consumer("rules")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		e, err := New(Options{
			Plan: p, DataDir: filepath.Join(dir, "state"), Logger: discardLogger(), Samples: c, Clock: clock,
			Notifiers: map[string]alert.Notifier{"console": stdoutNotifier(&out)},
			TickEvery: 5 * time.Millisecond, Metrics: metrics,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		deadline := time.Now().Add(20 * time.Second)
		for !stopWhen() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The group and the rule-level group ({}: no sample at all) go absent.
	run(func() bool { return strings.Count(out.String(), "CRITICAL silent") == 2 })
	want := "1970-01-01T00:00:50Z CRITICAL silent {target=a} (was ok): absent(30s): no samples since 1970-01-01T00:00:10Z\n" +
		"1970-01-01T00:00:50Z CRITICAL silent {} (was ok): absent(30s): no samples since 1970-01-01T00:00:10Z\n"
	if out.String() != want {
		t.Fatalf("stdout sink printed\n%q\nwant\n%q", out.String(), want)
	}
	// Resumed: the alert is still critical, nothing new to say.
	mu.Lock()
	stopAt := now.Add(time.Minute)
	mu.Unlock()
	run(func() bool { mu.Lock(); defer mu.Unlock(); return now.After(stopAt) })
	if out.String() != want {
		t.Errorf("after a restart the sink printed more:\n%s", out.String())
	}
	// /metrics: the one sample counted once (the second engine restored it
	// and does not add it again), two transitions, two deliveries.
	const wantMetrics = `
# HELP recond_notification_failures_total Alert events a notification sink failed to deliver after its retries (logged; not delivered).
# TYPE recond_notification_failures_total counter
# HELP recond_notifications_total Alert events a notification sink delivered.
# TYPE recond_notifications_total counter
recond_notifications_total{sink="console"} 2
# HELP recond_rule_groups Groups (by the rule's group by) a rule tracks.
# TYPE recond_rule_groups gauge
recond_rule_groups{rule="silent"} 1
# HELP recond_rule_late_samples_total Samples a rule dropped because they arrived behind its watermark (raise the rule's lateness if this grows).
# TYPE recond_rule_late_samples_total counter
recond_rule_late_samples_total{rule="silent"} 0
# HELP recond_rule_samples_total Samples a rule accepted into its windows.
# TYPE recond_rule_samples_total counter
recond_rule_samples_total{rule="silent"} 1
# HELP recond_rule_transitions_total Alert transitions of a rule, by the severity entered.
# TYPE recond_rule_transitions_total counter
recond_rule_transitions_total{rule="silent",severity="critical"} 2
`
	if err := testutil.CollectAndCompare(metrics, strings.NewReader(wantMetrics)); err != nil {
		t.Error(err)
	}
}
