package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/engine"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livetest"
)

// archivedRow is the part of an archived sample these tests read.
type archivedRow struct {
	Source string   `parquet:"source"`
	Metric string   `parquet:"metric"`
	Value  *float64 `parquet:"value,optional"`
}

// readArchive reads every samples file under dir/archive.
func readArchive(t *testing.T, dir string) []archivedRow {
	t.Helper()
	var rows []archivedRow
	root := filepath.Join(dir, "archive", "samples")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r := pq.NewGenericReader[archivedRow](f)
		defer r.Close()
		part := make([]archivedRow, r.NumRows())
		n, err := r.Read(part)
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", path, err)
		}
		rows = append(rows, part[:n]...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// runEngine runs a recond engine on p with its data under dataDir until
// the test stops it, writing alerts of console sinks to out; it returns
// the listener's base URL and the stop function (which waits for a clean
// stop: everything accepted archived).
func runEngine(t testing.TB, dataDir string, p *plan.Plan, out io.Writer) (string, func()) {
	t.Helper()
	ready := make(chan string, 1)
	e, err := engine.New(p, engine.Options{DataDir: dataDir, Node: "n1", Listen: "127.0.0.1:0", Registry: catalog.Default(),
		Logger: quiet(), Token: token, AlertOutput: out, Ready: func(a string) { ready <- a }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("engine: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("engine: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + addr, stop
}

// An ad-hoc clone at 1s of a check whose period is 60s, in a running
// recond: at least 9 runs in 10s under the clone's name, each streamed
// within 1.5s of its measurement, archived; the source keeps its period;
// the clone ends when its viewer leaves.
func TestEngineClone(t *testing.T) {
	dir := t.TempDir()
	port := livetest.TCPTarget(t)
	url, stop := runEngine(t, dir, livetest.Plan(t, []plan.Source{livetest.TCPSource("web", port, time.Minute)}, nil, nil), io.Discard)
	c := &control.Client{URL: url, Token: token}
	info, err := c.StartClone(context.Background(), live.Request{Source: "web", Period: plan.Duration(time.Second), TTL: plan.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	s := livetest.Open(t, url+"/api/v1/stream?metric=status&clone="+info.ID, false)
	runs := 0
	deadline := time.After(10 * time.Second)
	for runs < 9 {
		select {
		case m := <-s.C:
			ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m.Data["ts"]))
			if err != nil || m.Data["source"] != info.Name {
				t.Fatalf("unexpected message %+v", m)
			}
			if lag := m.Received.Sub(ts); lag > 1500*time.Millisecond {
				t.Errorf("run at %v received %v later, want within 1.5s", ts, lag)
			}
			runs++
		case <-deadline:
			t.Fatalf("%d clone runs streamed in 10s, want at least 9", runs)
		}
	}
	s.Close()
	waitFor(t, "the clone to end when its viewer left", func() bool {
		var l struct{ Clones []live.Info }
		resp, err := http.Get(url + "/api/v1/clones")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&l) == nil && len(l.Clones) == 0
	})
	stop()
	status := map[string]int{}
	for _, r := range readArchive(t, dir) {
		if r.Metric == "status" {
			status[r.Source]++
		}
	}
	if status[info.Name] < 9 {
		t.Errorf("archived %d runs of the clone, want at least 9", status[info.Name])
	}
	if status["web"] > 1 {
		t.Errorf("the source ran %d times in about 11s; its period is 60s", status["web"])
	}
}

func generator(name string, rate int) plan.Source {
	return plan.Source{Name: name, Module: "generator", Period: plan.Duration(time.Second), Timeout: plan.Duration(900 * time.Millisecond),
		Attrs: json.RawMessage(fmt.Sprintf(`{"target":"generator","rate":%d.0,"series":1,"metrics":1,"pattern":"seq"}`, rate)), Pos: "g.recon:1:1"}
}

// A deploy while generators run: an unchanged source keeps running, a
// changed one restarts, a new one starts, and every sequence number of
// each is archived exactly once, none missing.
func TestEngineDeployExactlyOnce(t *testing.T) {
	t.Parallel() // mostly waiting on generator periods
	dir := t.TempDir()
	p1 := livetest.Plan(t, []plan.Source{generator("kept", 500), generator("changed", 500)}, nil, nil)
	url, stop := runEngine(t, dir, p1, io.Discard)
	c := &control.Client{URL: url, Token: token}
	time.Sleep(2500 * time.Millisecond) // a few runs before the swap
	p2 := livetest.Plan(t, []plan.Source{generator("kept", 500), generator("changed", 800), generator("added", 300)}, nil, nil)
	body, err := p2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Deploy(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Change.Sources.String(); got != "+added ~changed (1 unchanged)" {
		t.Errorf("deploy change %q", got)
	}
	time.Sleep(2500 * time.Millisecond)
	if code := getCode(t, url+"/api/v1/plan"); code != http.StatusOK {
		t.Fatalf("GET plan: %d", code)
	}
	stop()
	seqs := map[string]map[float64]int{}
	for _, r := range readArchive(t, dir) {
		if r.Metric != "seq" || r.Value == nil {
			continue
		}
		if seqs[r.Source] == nil {
			seqs[r.Source] = map[float64]int{}
		}
		seqs[r.Source][*r.Value]++
	}
	// Every number archived is archived once. The unchanged and the new
	// source's numbers run without a gap; the changed source was restarted,
	// and a generator continues after the block of numbers it had reserved
	// (never reusing one): one gap, at the swap, is allowed there.
	for _, tc := range []struct {
		src  string
		gaps int
	}{{"kept", 0}, {"added", 0}, {"changed", 1}} {
		m := seqs[tc.src]
		if len(m) == 0 {
			t.Errorf("no samples of %s archived", tc.src)
			continue
		}
		top, gaps := 0.0, 0
		for v, n := range m {
			if n != 1 {
				t.Errorf("%s: seq %v archived %d times", tc.src, v, n)
			}
			top = max(top, v)
		}
		for v := 0.0; v <= top; v++ {
			if m[v] == 0 && (v == 0 || m[v-1] != 0) {
				gaps++
			}
		}
		if gaps > tc.gaps {
			t.Errorf("%s: %d gaps in the archived sequence 0..%v, want at most %d", tc.src, gaps, top, tc.gaps)
		}
	}
}

func getCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncBuffer is an io.Writer safe for the notifier goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const rulePlan = `pipeline "r"

source demo generator {
  target  = "x"
  period  = 1s
  timeout = 900ms
  rate    = 10
}
%s
sink console stdout { format = "json" }
sink archive parquet { flush_interval = 300ms }

rule held {
  from    = demo where metric == "seq"
  window  = tumbling(1s)
  warning when max(value) >= 0 for 6s
  notify  = [console]
}
`

func compilePlan(t testing.TB, dir, src string) *plan.Plan {
	t.Helper()
	file := filepath.Join(dir, "r.recon")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, ds := compiler.Compile(file, compiler.Options{})
	if ds.HasErrors() {
		t.Fatalf("compile: %v", ds)
	}
	return p
}

// A deploy that leaves a rule unchanged keeps its state: the rule's
// pending `for` timer, started before the deploy, fires on time instead of
// starting over, even though the deploy adds a rule (which restarts the
// rule engine on the new plan).
func TestEngineDeployKeepsPendingRule(t *testing.T) {
	t.Parallel() // mostly waiting on generator periods
	dir := t.TempDir()
	p1 := compilePlan(t, dir, fmt.Sprintf(rulePlan, ""))
	out := &syncBuffer{}
	url, _ := runEngine(t, filepath.Join(dir, "data"), p1, out)
	time.Sleep(3 * time.Second) // the rule is pending by now
	p2 := compilePlan(t, dir, fmt.Sprintf(rulePlan, `
source other generator {
  target = "y"
  period = 1s
  rate   = 10
}

rule fresh {
  from   = other where metric == "seq"
  window = tumbling(1s)
  warning when max(value) < 0
  notify = [console]
}
`))
	body, err := p2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&control.Client{URL: url, Token: token}).Deploy(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	deployed := time.Now()
	if got := res.Change.Rules.String(); got != "+fresh (1 unchanged)" {
		t.Fatalf("rules change %q, want fresh added and held unchanged", got)
	}
	var ev alert.Event
	waitFor(t, "the rule to fire", func() bool {
		line, _, _ := strings.Cut(out.String(), "\n")
		return line != "" && json.Unmarshal([]byte(line), &ev) == nil
	})
	if ev.Rule != "held" || ev.Severity != alert.Warning {
		t.Fatalf("alert %+v, want held warning", ev)
	}
	t.Logf("deployed %v, fired %v (since %v)", deployed, ev.Time, ev.Since)
	if restart := deployed.Add(6 * time.Second); !ev.Time.Before(restart) {
		t.Errorf("the rule fired at %v (event time), not before %v: its 6s pending timer started over at the deploy", ev.Time, restart)
	}
}
