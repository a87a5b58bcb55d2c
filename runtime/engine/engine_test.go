package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	parquetgo "github.com/parquet-go/parquet-go"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/internal/httpclient"
	"github.com/reconmon/recon/internal/testcert"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/kafkarole"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/server"
)

func testPlan() *plan.Plan {
	return &plan.Plan{
		Format: plan.FormatVersion, Pipeline: "t",
		Sources: []plan.Source{
			{Name: "gen", Module: "generator", Period: plan.Duration(time.Second), Timeout: plan.Duration(900 * time.Millisecond),
				Attrs: json.RawMessage(`{"rate": 2000, "series": 2, "metrics": 1, "pattern": "seq"}`)},
			{Name: "self", Module: "selfcheck", Period: plan.Duration(time.Second), Timeout: plan.Duration(time.Second),
				Attrs: json.RawMessage(`{"target": "recond"}`)},
		},
		Sinks: []plan.Sink{{Name: "archive", Kind: "parquet", Attrs: json.RawMessage(`{"path": "archive", "flush_interval": "300ms"}`)}},
	}
}

// The engine runs a plan, serves /healthz and /metrics, and on stop has
// archived every sample the bus accepted.
func TestRunStopArchivesEverythingAccepted(t *testing.T) {
	dir := t.TempDir()
	e, addr, stop := startEngine(t, testPlan(), Options{DataDir: dir, Node: "n1"})
	for e.batcher.Accepted() < 2000 {
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h server.Health
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || h.Status != "ok" || h.Pipeline != "t" || h.Sources != 2 {
		t.Fatalf("/healthz: %+v %v", h, err)
	}
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"recond_samples_accepted_total", "recond_samples_archived_total", "recond_journal_consumer_lag_batches",
		"recond_runs_total", "recond_run_start_lateness_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	acc, arch := e.batcher.Accepted(), e.archiver.Stats().RowsWritten
	if acc == 0 || acc != arch {
		t.Fatalf("accepted %d, archived %d: a clean stop must archive everything accepted", acc, arch)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "archive", "samples", "*", "*", "*.parquet"))
	if len(files) == 0 {
		t.Fatal("no Parquet file under DATA/archive/samples")
	}
	if _, err := os.Stat(filepath.Join(dir, "journal", "samples")); err != nil {
		t.Fatalf("journal not under DATA/journal/samples: %v", err)
	}
}

func TestUnknownModuleRefused(t *testing.T) {
	p := testPlan()
	p.Sources[0].Module = "nosuch"
	p.Sources[0].Pos = "x.recon:3:8"
	_, err := New(p, Options{DataDir: t.TempDir(), Node: "n", Registry: catalog.Default()})
	if err == nil || !strings.Contains(err.Error(), `unknown module "nosuch"`) || !strings.Contains(err.Error(), "x.recon:3:8") {
		t.Fatalf("err = %v", err)
	}
}

// syncBuffer is an io.Writer safe for the rule engine's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// A plan with rules gets the rule engine as a consumer: the generator's
// growing sequence makes the rule fire on the stdout sink.
func TestRulesFireOnStdoutSink(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.recon")
	src := `pipeline "r"

source demo generator {
  target  = "x"
  period  = 1s
  timeout = 900ms
  rate    = 100
}

sink console stdout {}
sink archive parquet { flush_interval = 300ms }

rule big {
  from     = demo where metric == "seq"
  window   = tumbling(1s)
  warning  when max(value) > 50
  notify   = [console]
}
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, ds := compiler.Compile(file, compiler.Options{})
	if ds.HasErrors() {
		t.Fatalf("compile: %v", ds)
	}
	out := &syncBuffer{}
	_, addr, stop := startEngine(t, p, Options{DataDir: filepath.Join(dir, "data"), Node: "n", AlertOutput: out})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "big") {
		if time.Now().After(deadline) {
			t.Fatalf("no alert of rule big within 30 s; stdout sink got %q", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The transition also reached the live alert states.
	resp, err := http.Get("http://" + addr + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	states, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(states), `"big"`) {
		t.Errorf("/api/v1/alerts = %s, want the firing rule big", states)
	}
	// /metrics counts the rule's samples and its transition.
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`recond_rule_transitions_total{rule="big",severity="warning"} 1`, `recond_rule_samples_total{rule="big"}`, `recond_notifications_total{sink="console"} 1`} {
		if !strings.Contains(string(metricsText), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "WARNING") {
		t.Errorf("alert output %q lacks the severity", out.String())
	}
	// The transition is archived in the alerts table, beside the samples.
	files, err := filepath.Glob(filepath.Join(dir, "data", "archive", "alerts", "date=*", "hour=*", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no alerts parquet files after a fired rule (err %v)", err)
	}
	rows := int64(0)
	for _, f := range files {
		pf, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := pf.Stat()
		r, err := parquetgo.OpenFile(pf, st.Size())
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rows += r.NumRows()
		pf.Close()
	}
	if rows == 0 {
		t.Fatal("alerts table holds no rows")
	}
}

// A plan deployed over the control API swaps sources in while recond runs:
// the added source starts, the removed one stops, the live stream shows the
// new source's samples.
func TestDeployAddsAndRemovesSources(t *testing.T) {
	dir := t.TempDir()
	e, addr, _ := startEngine(t, testPlan(), Options{DataDir: dir, Node: "n1", Token: "s3cret"})
	ctx := t.Context()
	next := testPlan()
	next.Sources = next.Sources[:1] // "self" goes
	next.Sources = append(next.Sources, plan.Source{Name: "gen2", Module: "generator", Period: plan.Duration(time.Second),
		Timeout: plan.Duration(900 * time.Millisecond), Attrs: json.RawMessage(`{"rate": 10, "series": 1, "metrics": 1, "pattern": "seq"}`)})
	body, err := next.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c := &control.Client{URL: "http://" + addr, Token: "s3cret"}
	stream, err := c.Stream(ctx, url.Values{"source": {"gen2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if _, err := c.Deploy(ctx, body); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	names := e.Scheduler().Names()
	slices.Sort(names)
	if fmt.Sprint(names) != "[gen gen2]" {
		t.Fatalf("sources after the deploy: %v, want [gen gen2]", names)
	}
	rd := bufio.NewReader(stream)
	line, err := rd.ReadString('\n')
	for err == nil && !strings.Contains(line, `"gen2"`) {
		line, err = rd.ReadString('\n')
	}
	if err != nil {
		t.Fatalf("live stream of the deployed source: %v", err)
	}
	bad := &control.Client{URL: "http://" + addr, Token: "wrong"}
	if _, err := bad.Deploy(ctx, body); err == nil {
		t.Fatal("a deploy with a wrong token was accepted")
	}
}

// runNode runs an engine in the collector role until the test ends or stop
// is called; it returns the listener's address.
func runNode(t *testing.T, p *plan.Plan, node string) (string, func()) {
	t.Helper()
	_, addr, stop := startEngine(t, p, Options{DataDir: t.TempDir(), Node: node, Token: "s3cret", Role: kafkarole.RoleCollector})
	return addr, func() {
		if err := stop(); err != nil {
			t.Errorf("engine %s: %v", node, err)
		}
	}
}

// startEngine runs an engine for p with opts (its listener, logger and
// registry set here) until the test ends or stop is called. stop waits for
// Run to return and gives its error: a clean stop has archived everything
// accepted. It may be called more than once.
func startEngine(t *testing.T, p *plan.Plan, opts Options) (e *Engine, addr string, stop func() error) {
	t.Helper()
	ready := make(chan string, 1)
	opts.Listen, opts.Registry, opts.Ready = "127.0.0.1:0", catalog.Default(), func(a string) { ready <- a }
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := New(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("engine: %v", err)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("engine: %v", err)
		}
	})
	return e, addr, stop
}

// With a kafka sink, a clone asked for at a node that does not run the
// source runs on the collector that does (control topic), its samples reach
// the asking node's stream (samples topic), the clone ends when its viewer
// leaves, and both engines stop without leaving a goroutine behind.
func TestClonesAcrossNodesOverKafka(t *testing.T) {
	broker := kafkatest.Start(t, 2, "recon.samples", "recon.control")
	baseline := goroutines()
	compile := func(src string) *plan.Plan {
		file := filepath.Join(t.TempDir(), "p.recon")
		if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		p, ds := compiler.Compile(file, compiler.Options{})
		if ds.HasErrors() {
			t.Fatalf("compile: %v", ds)
		}
		return p
	}
	sink := fmt.Sprintf("sink bus kafka {\n  brokers = [%q]\n  batch_timeout = 50ms\n}\n", broker.Addrs[0])
	collector := compile(`pipeline "t"
source gen generator {
  period  = 60s
  rate    = 10
  series  = 1
  metrics = 1
}
` + sink)
	viewer := compile("pipeline \"t\"\n" + sink)
	colAddr, stopCol := runNode(t, collector, "dc1")
	viewAddr, stopView := runNode(t, viewer, "viewer")

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &control.Client{URL: "http://" + viewAddr, Token: "s3cret", HTTP: &http.Client{Transport: tr}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := c.StartClone(ctx, live.Request{Source: "gen", Period: plan.Duration(time.Second)})
	if err != nil {
		t.Fatalf("clone at the viewer: %v", err)
	}
	if !info.Remote {
		t.Fatalf("clone %+v is not remote", info)
	}
	stream, err := c.Stream(ctx, url.Values{"clone": {info.ID}})
	if err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(stream)
	runs := map[string]bool{} // times of the clone's samples
	for len(runs) < 2 {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream at the viewer: %v (runs seen: %d)", err, len(runs))
		}
		var s struct{ TS, Source, Node string }
		if json.Unmarshal([]byte(line), &s) == nil && s.Source == info.Name && s.Node == "dc1" {
			runs[s.TS] = true
		}
	}
	stream.Close()
	col := &control.Client{URL: "http://" + colAddr, HTTP: &http.Client{Transport: tr}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, err := col.ListClones(ctx)
		if err == nil && len(l) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clone still runs on the collector after its viewer left: %+v (%v)", l, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopView()
	stopCol()
	tr.CloseIdleConnections()
	deadline = time.Now().Add(10 * time.Second)
	for left := goroutines(); len(left) > len(baseline); left = goroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after both engines stopped, %d before:\n%s", len(left), len(baseline), strings.Join(left, "\n\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// goroutines returns the stacks of the running goroutines but the test's
// own.
func goroutines() []string {
	buf := make([]byte, 4<<20)
	var out []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "[running]") || strings.Contains(g, "testing.(*T).Run") || strings.Contains(g, "testing.tRunner") {
			continue
		}
		out = append(out, g)
	}
	return out
}

// With a certificate, the listener serves HTTPS only, and the control API
// (a deploy through reconc's client trusting the certificate) works over it.
func TestListenerServesTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.Write(t, certFile, keyFile, "recond")
	p := testPlan()
	_, addr, _ := startEngine(t, p, Options{DataDir: filepath.Join(dir, "data"), Node: "n1", Token: "s3cret",
		TLSCertFile: certFile, TLSKeyFile: keyFile})

	client, err := httpclient.New(certFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("https /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("https /healthz: %s (TLS %v)", resp.Status, resp.TLS != nil)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on a TLS listener")
		}
	}
	if _, err := (&http.Client{}).Get("https://" + addr + "/healthz"); err == nil {
		t.Fatal("a client that does not trust the certificate got an answer")
	}
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&control.Client{URL: "https://" + addr, Token: "s3cret", HTTP: client}).Deploy(context.Background(), raw)
	if err != nil || !res.Unchanged {
		t.Fatalf("deploy over HTTPS: %+v, %v; want the running plan, unchanged", res, err)
	}
}
