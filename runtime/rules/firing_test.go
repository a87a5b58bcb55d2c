package rules

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sinks/alertmanager"
	"github.com/reconmon/recon/sinks/alertmanager/amtest"
)

// The engine notifies a real Alertmanager through the alertmanager sink. A
// deadman rule fires; recond stops for longer than the sink's endsAt
// horizon, so Alertmanager resolves the alert by itself; the restarted
// engine restores the firing state and posts it again at start-up (no
// transition would); a sample then arrives and the resolution reaches the
// alert Alertmanager holds.
func TestRunSyncsFiringAlertsToAlertmanager(t *testing.T) {
	am := amtest.Start(t, 3*time.Second)
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	p := &plan.Plan{Pipeline: "amtest", Rules: []plan.Rule{{
		Name: "quiet", From: []string{"host"}, Pos: "am.recon:1:1", Notify: []string{"am"},
		Window:  plan.Window{Kind: "tumbling", Size: plan.Duration(time.Second)},
		Clauses: []plan.Clause{{Severity: "critical", Absent: plan.Duration(2 * time.Second)}},
	}}}
	publish := func(v float64) {
		b := newRowBatcher("amtest")
		b.add(command{rows: []sample.Row{{Ts: time.Now().UnixNano(), Target: "a", Metric: "temp", Value: v, HasValue: true}},
			source: []string{"host"}, module: []string{"nagios"}})
		rec := b.record()
		defer rec.Release()
		if err := j.Publish(context.Background(), "host", rec); err != nil {
			t.Fatal(err)
		}
	}
	// start runs an engine like recond does: a fresh notifier per engine,
	// closed once Run returns; stop ends both.
	start := func() (stop func()) {
		c, err := j.Consumer("rules")
		if err != nil {
			t.Fatal(err)
		}
		n, err := alertmanager.New("am", module.Attrs{
			alertmanager.FieldURLs: []string{am.URL}, alertmanager.FieldTimeout: 5 * time.Second,
			alertmanager.FieldMaxAttempts: int64(3), alertmanager.FieldBackoff: 10 * time.Millisecond,
			alertmanager.FieldMaxBackoff: 100 * time.Millisecond, alertmanager.FieldResendInterval: time.Second,
		}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Options{
			Plan: p, DataDir: filepath.Join(dir, "state"), Logger: discardLogger(), Samples: c, Clock: time.Now,
			Notifiers: map[string]alert.Notifier{"am": n}, TickEvery: 20 * time.Millisecond,
			DefaultLateness: time.Second, // the sample below reaches the engine after the clock passed its time
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
			e.Close()
			n.Close()
			c.Close()
		}
	}
	hot := map[string]string{"alertname": "quiet", "severity": "critical", "pipeline": "amtest"}
	count := func(status string) int {
		k := 0
		for _, n := range am.Notifications() {
			for _, a := range n.Alerts {
				if a.Status == status && amtest.Matches(a.Labels, hot) {
					k++
				}
			}
		}
		return k
	}

	stop := start()
	amtest.Eventually(t, "Alertmanager to list the critical alert", func() bool { return am.Find(t, hot) != nil })
	amtest.Eventually(t, "the receiver to get it", func() bool { return am.Notified("firing", hot) })
	stop()
	// Down past endsAt (4 resend intervals): Alertmanager resolves it.
	amtest.Eventually(t, "Alertmanager to resolve the alert no longer re-sent", func() bool { return am.Notified("resolved", hot) })
	if a := am.Find(t, hot); a != nil {
		t.Fatalf("Alertmanager still lists %+v", a)
	}

	stop = start()
	defer func() { stop() }()
	amtest.Eventually(t, "the restarted engine to post the firing alert again", func() bool { return am.Find(t, hot) != nil })
	amtest.Eventually(t, "the receiver to get it again", func() bool { return count("firing") == 2 })
	publish(1)
	amtest.Eventually(t, "the resolution to reach Alertmanager", func() bool { return am.Find(t, hot) == nil })
	stop()
	stop = func() {}
	amtest.Eventually(t, "the receiver to get the second resolution", func() bool { return count("resolved") == 2 })
	if k := count("firing"); k != 2 {
		t.Errorf("receiver got %d firing notifications, want 2 (before the stop, after the restart):\n%s", k, am)
	}
}

// A .recon file's alertmanager sink compiles, a rule may notify it, and
// BuildNotifiers builds it as a Syncer that must be closed.
func TestBuildAlertmanagerNotifier(t *testing.T) {
	p, err := loadRules("am.recon", []byte(`pipeline "n"
source web generator { target = "127.0.0.1" }
sink am alertmanager {
  urls            = ["http://127.0.0.1:9093", "http://127.0.0.1:9094/am"]
  resend_interval = 30s
  labels          = { team = "web" }
}
rule r {
  from = web
  critical when count() > 0
  notify = [am]
}
`))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := BuildNotifiers(p, io.Discard, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	n, ok := ns["am"].(*alertmanager.Notifier)
	if !ok {
		t.Fatalf("notifier am is %T, want the alertmanager sink", ns["am"])
	}
	var _ alert.Syncer = n
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}
