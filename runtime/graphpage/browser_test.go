package graphpage_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/chromedp/chromedp"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/graphpage"
	"github.com/reconmon/recon/runtime/history"
	"github.com/reconmon/recon/runtime/history/historytest"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livetest"
)

var screenshot = flag.String("screenshot", "", "also save the browser test's screenshot at this path (docs/graphs.png)")

const token = "graph-test-token"

// server is the graph page with the live and control endpoints of recond
// around it, all real: a tcp source checking a local listener can be
// cloned at 1 s and streamed, and alert transitions stream from the alert
// hub.
type server struct {
	url    string
	alerts *live.AlertHub
}

func startServer(t *testing.T, archive string) *server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	port := livetest.TCPTarget(t)
	p := livetest.Plan(t, []plan.Source{livetest.TCPSource("web", port, time.Hour)}, nil, nil)
	hub := live.NewHub(live.HubOptions{Logger: log})
	alerts := live.NewAlertHub(live.HubOptions{Logger: log})
	reg := catalog.Default()
	clones, err := live.NewClones(live.CloneOptions{Registry: reg, Node: "test", DataDir: t.TempDir(), Archive: hub, Hub: hub, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(clones.Close)
	if err := clones.SetPlan(p); err != nil {
		t.Fatal(err)
	}
	ctl, err := control.New(control.Options{Token: token, Registry: reg, Plan: p, Clones: clones, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	arch, err := history.New(history.Options{Dir: archive, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	page, err := graphpage.New(graphpage.Options{Archive: arch, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	page.Register(mux)
	ctl.Register(mux)
	streams := &live.Streams{Hub: hub, Alerts: alerts, Clones: clones, Keepalive: time.Second, Logger: log}
	streams.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &server{url: srv.URL, alerts: alerts}
}

// browser starts Debian's chromium headless with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed (CI=true): install with: make deps (apt-get install -y chromium)")
		}
		t.Skipf("chromium is not installed; install with: make deps (apt-get install -y chromium); under CI=true this fails")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	// A backstop for the whole test; every step has its own, shorter bound.
	tctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancel() // closes the browser
		cancelAlloc()
	})
	// The browser starts with the first Run on a context and lives as long
	// as that context: start it here, not in a step that has a deadline.
	if err := chromedp.Do(tctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tctx
}

// pageState mirrors window.reconGraph.state().
type pageState struct {
	Loads  int     `json:"loads"`
	From   float64 `json:"from"`
	To     float64 `json:"to"`
	Live   []string
	Series []struct {
		Label    string `json:"label"`
		Raw      bool   `json:"raw"`
		Points   int    `json:"points"`
		Buckets  int    `json:"buckets"`
		BucketNS int64  `json:"bucketNS"`
		Live     int    `json:"live"`
	} `json:"series"`
	Marks         int      `json:"marks"`
	ArchivedMarks int      `json:"archivedMarks"`
	MarksDrawn    int      `json:"marksDrawn"`
	RulesDrawn    []string `json:"rulesDrawn"`
	Error         string   `json:"error"`
}

// step bounds every action the tests ask of the browser: a page that
// never loads or an element that never shows fails the test with what was
// being done, instead of hanging it.
const step = 15 * time.Second

// do runs actions in the browser within step.
func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates expr in the page within step.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func state(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	return eval[pageState](t, ctx, `window.reconGraph.state()`)
}

// waitState polls the page until cond holds or the deadline passes.
func waitState(t *testing.T, ctx context.Context, within time.Duration, what string, cond func(pageState) bool) pageState {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := state(t, ctx)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; page state %+v", what, within, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitAlertListed waits until the alert table (reloaded when a
// transition arrives) lists rule at severity.
func waitAlertListed(t *testing.T, ctx context.Context, rule, severity string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		listed := eval[string](t, ctx, `document.querySelector("#alerts tbody").textContent`)
		if strings.Contains(listed, rule) && strings.Contains(listed, severity) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert table shows %q, want %s %s", listed, rule, severity)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// archiveWeb archives web/duration@127.0.0.1 every 10 s for two hours
// from start, with neighbour series in the same files, and an alert
// transition, into a new archive directory.
func archiveWeb(t *testing.T, start time.Time) string {
	t.Helper()
	dir := t.TempDir()
	archiveWebAt(t, dir, start)
	return dir
}

func archiveWebAt(t testing.TB, dir string, start time.Time) {
	t.Helper()
	var batches []arrow.RecordBatch
	for h := range 2 {
		var pts []historytest.Point
		for i := range 360 {
			ts := start.Add(time.Duration(h)*time.Hour + time.Duration(i)*10*time.Second).UnixNano()
			v := 0.05 + 0.02*float64((h*360+i)%30)/30
			pts = append(pts,
				historytest.Point{Source: "web", Metric: "duration", Target: "127.0.0.1", Ts: ts, Value: v},
				historytest.Point{Source: "web", Metric: "available", Target: "127.0.0.1", Ts: ts, Value: 1},
				historytest.Point{Source: "db", Metric: "duration", Target: "127.0.0.1", Ts: ts, Value: 0.03 + 0.01*math.Sin(float64(h*360+i)/40)},
			)
		}
		batches = append(batches, historytest.Batch(pts))
	}
	if err := historytest.Write(dir, batches); err != nil {
		t.Fatal(err)
	}
	// An archived transition 40 minutes in, and a repeated notification
	// (no transition) after it.
	at := start.Add(40 * time.Minute)
	fp := alert.Fingerprint("web_down", nil)
	if err := historytest.WriteAlerts(dir, []alert.Event{
		{ID: "a1", Time: at, Rule: "web_down", Severity: alert.Critical, Previous: alert.OK, Group: map[string]string{}, Message: "available 0", Fingerprint: fp, Since: at, Value: math.NaN()},
		{ID: "a2", Time: at.Add(time.Minute), Rule: "web_down", Severity: alert.Critical, Previous: alert.Critical, Repeat: true, Group: map[string]string{}, Message: "available 0", Fingerprint: fp, Since: at, Value: math.NaN()},
	}); err != nil {
		t.Fatal(err)
	}
}

func TestPageInBrowser(t *testing.T) {
	// The archived history ends one hour ago, so that the live window
	// (the last five minutes) and the history do not overlap.
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	srv := startServer(t, archiveWeb(t, start))
	ctx := browser(t) // closed before the server, which waits for its streams

	open := func(from, to time.Time, points int) {
		url := fmt.Sprintf("%s/#source=web&metric=duration&from=%d&to=%d&points=%d", srv.url, from.Unix(), to.Unix(), points)
		// A blank page in between makes each range a fresh page load.
		do(t, ctx, "load the page", chromedp.Navigate("about:blank"), chromedp.Navigate(url))
	}

	// One hour of 10 s samples, drawn at up to 1000 points: the 360 raw
	// points exactly.
	open(start.Add(30*time.Minute), start.Add(90*time.Minute), 1000)
	st := waitState(t, ctx, 10*time.Second, "the archived series and transition are drawn", func(st pageState) bool {
		return (st.Loads > 0 && st.MarksDrawn > 0) || st.Error != ""
	})
	if st.Error != "" || len(st.Series) != 1 || !st.Series[0].Raw || st.Series[0].Points != 360 {
		t.Fatalf("one hour at 10 s: page shows %+v, want one raw series of 360 points", st)
	}
	if st.ArchivedMarks != 1 || st.MarksDrawn != 1 {
		t.Errorf("the archived web_down transition: %d archived, %d drawn; want 1 (the repeat is no transition)", st.ArchivedMarks, st.MarksDrawn)
	}

	// Both hours at 120 points: min/max/avg buckets, one per 60 s, all
	// holding points.
	open(start, start.Add(2*time.Hour), 120)
	st = waitState(t, ctx, 10*time.Second, "the bucketed series is drawn", func(st pageState) bool { return st.Loads > 0 || st.Error != "" })
	if st.Error != "" || len(st.Series) != 1 || st.Series[0].Raw || st.Series[0].Buckets != 120 || st.Series[0].BucketNS != int64(time.Minute) {
		t.Fatalf("two hours at 120 points: page shows %+v, want 120 buckets of 60 s", st)
	}

	// The catalog fills the picker.
	if options := eval[int](t, ctx, `document.querySelectorAll("#source option").length`); options != 2 {
		t.Errorf("source picker offers %d sources, want db and web", options)
	}

	// Live without the token: the clone is refused and the page says why.
	do(t, ctx, "click live", chromedp.Click(chromedp.ID("live")))
	st = waitState(t, ctx, 5*time.Second, "a clone without the token is refused", func(st pageState) bool { return st.Error != "" })
	if st.Live != nil || !strings.Contains(st.Error, "token") {
		t.Fatalf("live without a token: %+v, want an error about the token", st)
	}

	// With the token: a 1 s clone streams new points onto the chart.
	do(t, ctx, "enter the token and click live", chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("live")))
	waitState(t, ctx, 5*time.Second, "the clone starts", func(st pageState) bool { return len(st.Live) == 1 })
	st = waitState(t, ctx, 2*time.Second, "live points arrive", func(st pageState) bool {
		return len(st.Series) == 1 && st.Series[0].Live >= 1
	})
	first := st.Series[0].Live
	waitState(t, ctx, 2*time.Second, "more live points arrive", func(st pageState) bool {
		return len(st.Series) == 1 && st.Series[0].Live > first
	})

	// An alert transition is marked on the chart and listed.
	now := time.Now().UTC()
	srv.alerts.Observe(&alert.Event{
		ID: "t1", Time: now, Rule: "web_slow", Severity: alert.Critical, Previous: alert.OK,
		Group: map[string]string{"target": "127.0.0.1"}, Message: "p95(duration) 0.81 > 0.5",
		Fingerprint: alert.Fingerprint("web_slow", map[string]string{"target": "127.0.0.1"}), Since: now,
	})
	waitState(t, ctx, 5*time.Second, "the alert transition is marked on the chart", func(st pageState) bool { return st.MarksDrawn >= 1 })
	waitAlertListed(t, ctx, "web_slow", "critical")

	// Back to history, two series overlaid: both archived hours of web and
	// db, bucketed, with a transition the alert stream reports inside them.
	srv.alerts.Observe(&alert.Event{
		ID: "t2", Time: start.Add(75 * time.Minute), Rule: "db_slow", Severity: alert.Warning, Previous: alert.OK,
		Group: map[string]string{}, Message: "avg(duration) 0.041 > 0.04",
		Fingerprint: alert.Fingerprint("db_slow", map[string]string{}), Since: start.Add(75 * time.Minute),
	})
	waitState(t, ctx, 5*time.Second, "the second transition arrives", func(st pageState) bool { return st.Marks >= 2 })
	do(t, ctx, "leave live", chromedp.Click(chromedp.ID("live")))
	loads := state(t, ctx).Loads
	hash := fmt.Sprintf("#source=web&metric=duration&source=db&metric=duration&from=%d&to=%d&points=240", start.Unix(), start.Add(2*time.Hour).Unix())
	eval[string](t, ctx, fmt.Sprintf("location.hash = %q", hash))
	st = waitState(t, ctx, 10*time.Second, "two series overlaid", func(st pageState) bool {
		return st.Loads > loads && st.Live == nil && len(st.Series) == 2 && st.MarksDrawn >= 1
	})
	for _, s := range st.Series {
		if s.Raw || s.Buckets != 240 {
			t.Errorf("%s: raw=%v with %d buckets, want 240 buckets", s.Label, s.Raw, s.Buckets)
		}
	}
	saveScreenshot(t, ctx, *screenshot)
}

// saveScreenshot captures the page into path, or into the test's
// temporary directory when path is "".
func saveScreenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if path == "" {
		path = filepath.Join(t.TempDir(), "graphs.png")
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
