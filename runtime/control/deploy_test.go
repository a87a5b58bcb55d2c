package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/control"
)

// runCompiled runs a recond engine on p (compiled from the DSL) with its
// data in dir/data and its stdout sinks writing to out; it returns the
// control client and the stop function.
func runCompiled(t testing.TB, dir string, p *plan.Plan, out io.Writer) (*control.Client, func()) {
	t.Helper()
	url, stop := runEngine(t, filepath.Join(dir, "data"), p, out)
	return &control.Client{URL: url, Token: token}, stop
}

func deploy(t testing.TB, c *control.Client, p *plan.Plan) *control.DeployResult {
	t.Helper()
	body, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Deploy(context.Background(), body)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return res
}

const deployBase = `pipeline "d"

source demo generator {
  target  = "x"
  period  = 1s
  timeout = 900ms
  rate    = 10
}
sink archive parquet { flush_interval = 300ms }
sink console stdout { format = "json" }
%s
`

const firingRule = `
rule %s {
  from    = demo where metric == "seq"
  window  = tumbling(1s)
  warning when max(value) >= 0
  notify  = [%s]
}
`

// A deploy that adds a rule starts it: its alert reaches the plan's
// stdout sink while recond keeps running.
func TestEngineDeployAddsRule(t *testing.T) {
	t.Parallel() // mostly waiting on generator periods
	dir := t.TempDir()
	out := &syncBuffer{}
	c, _ := runCompiled(t, dir, compilePlan(t, dir, fmt.Sprintf(deployBase, "")), out)
	time.Sleep(1500 * time.Millisecond)
	if s := out.String(); s != "" {
		t.Fatalf("alerts before any rule: %q", s)
	}
	res := deploy(t, c, compilePlan(t, dir, fmt.Sprintf(deployBase, fmt.Sprintf(firingRule, "added", "console"))))
	if got := res.Change.Rules.String(); got != "+added (0 unchanged)" {
		t.Errorf("rules change %q", got)
	}
	waitFor(t, "the added rule to fire", func() bool { return strings.Contains(out.String(), `"rule":"added"`) })
}

// receiver is a webhook receiver on a real socket; it records the rules of
// the alerts it gets.
type receiver struct {
	mu    sync.Mutex
	rules []string
	srv   *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var ev struct{ Rule string }
		_ = json.Unmarshal(b, &ev)
		r.mu.Lock()
		r.rules = append(r.rules, ev.Rule)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got(rule string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.rules {
		if x == rule {
			return true
		}
	}
	return false
}

// A deploy that changes a webhook's URL: the next notification goes to the
// new receiver, none to the old one.
func TestEngineDeployChangesWebhook(t *testing.T) {
	t.Parallel() // mostly waiting on generator periods
	dir := t.TempDir()
	old, cur := newReceiver(t), newReceiver(t)
	hook := func(url string) string { return fmt.Sprintf("sink hook webhook { url = %q }\n", url) }
	p1 := compilePlan(t, dir, fmt.Sprintf(deployBase, hook(old.srv.URL)+fmt.Sprintf(firingRule, "first", "hook")))
	c, _ := runCompiled(t, dir, p1, io.Discard)
	waitFor(t, "the first rule's alert at the first receiver", func() bool { return old.got("first") })

	p2 := compilePlan(t, dir, fmt.Sprintf(deployBase, hook(cur.srv.URL)+fmt.Sprintf(firingRule, "first", "hook")+fmt.Sprintf(firingRule, "second", "hook")))
	res := deploy(t, c, p2)
	if got := res.Change.Sinks.String(); got != "~hook (2 unchanged)" {
		t.Errorf("sinks change %q", got)
	}
	waitFor(t, "the second rule's alert at the new receiver", func() bool { return cur.got("second") })
	if old.got("second") {
		t.Error("the old receiver got an alert after the deploy changed the webhook's URL")
	}
	if cur.got("first") {
		t.Error("the unchanged rule notified again after the deploy: it lost its state")
	}
}

// The archive cannot be swapped while recond runs: a deploy that changes
// the parquet sink is refused with 422 naming the attribute, and nothing
// changes.
func TestEngineDeployRefusesArchiveChange(t *testing.T) {
	t.Parallel() // mostly waiting on generator periods
	dir := t.TempDir()
	p1 := compilePlan(t, dir, fmt.Sprintf(deployBase, ""))
	if _, err := p1.Marshal(); err != nil { // sets its hash
		t.Fatal(err)
	}
	c, _ := runCompiled(t, dir, p1, io.Discard)
	p2 := compilePlan(t, dir, strings.Replace(fmt.Sprintf(deployBase, fmt.Sprintf(firingRule, "r", "console")), "flush_interval = 300ms", "flush_interval = 2s", 1))
	body, err := p2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Deploy(context.Background(), body)
	var ae *control.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity || !strings.Contains(ae.Error(), `sink "archive" (parquet): attribute flush_interval changes`) {
		t.Fatalf("deploy changing the archive: %v, want 422 naming flush_interval", err)
	}
	resp, err := http.Get(c.URL + "/api/v1/plan")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if etag := resp.Header.Get("ETag"); etag != `"`+p1.Hash+`"` {
		t.Errorf("plan after a refused deploy %s, want %s unchanged", etag, p1.Hash)
	}
}

// A deploy that adds rules and sinks while a generator runs: every
// sequence number is archived exactly once across the swap.
func TestEngineDeployRulesExactlyOnce(t *testing.T) {
	t.Parallel() // mostly waiting on generator periods
	dir := t.TempDir()
	gen := `pipeline "d"

source gen generator {
  target  = "g"
  period  = 1s
  timeout = 900ms
  rate    = 500
  series  = 1
  metrics = 1
  pattern = "seq"
}
sink archive parquet { flush_interval = 300ms }
%s
`
	c, stop := runCompiled(t, dir, compilePlan(t, dir, fmt.Sprintf(gen, "")), io.Discard)
	time.Sleep(2500 * time.Millisecond)
	res := deploy(t, c, compilePlan(t, dir, fmt.Sprintf(gen, `
sink console stdout { format = "json" }
rule flowing {
  from   = gen
  window = tumbling(1s)
  warning when count() > 0
  notify = [console]
}
`)))
	if got := res.Change.Rules.String() + " / " + res.Change.Sinks.String(); got != "+flowing (0 unchanged) / +console (1 unchanged)" {
		t.Errorf("deploy change %q", got)
	}
	time.Sleep(2500 * time.Millisecond)
	stop()
	seqs := map[float64]int{}
	for _, r := range readArchive(t, filepath.Join(dir, "data")) {
		if r.Source == "gen" && r.Metric == "seq" && r.Value != nil {
			seqs[*r.Value]++
		}
	}
	if len(seqs) == 0 {
		t.Fatal("no samples archived")
	}
	top := 0.0
	for v, n := range seqs {
		if n != 1 {
			t.Errorf("seq %v archived %d times", v, n)
		}
		top = max(top, v)
	}
	if int(top)+1 != len(seqs) {
		t.Errorf("%d distinct sequence numbers up to %v: some are missing", len(seqs), top)
	}
}

// A deploy that removes a firing rule together with its webhook sink: the
// rule's resolution has nowhere to go and is dropped, and the rule engine
// goes on notifying the remaining sinks.
func TestEngineDeployRemovesRuleAndSink(t *testing.T) {
	t.Parallel() // mostly waiting on generator periods
	dir := t.TempDir()
	hook := newReceiver(t)
	out := &syncBuffer{}
	p1 := compilePlan(t, dir, fmt.Sprintf(deployBase, fmt.Sprintf("sink hook webhook { url = %q }\n", hook.srv.URL)+fmt.Sprintf(firingRule, "gone", "hook")))
	c, _ := runCompiled(t, dir, p1, out)
	waitFor(t, "the rule's alert at the webhook", func() bool { return hook.got("gone") })
	res := deploy(t, c, compilePlan(t, dir, fmt.Sprintf(deployBase, fmt.Sprintf(firingRule, "after", "console"))))
	if got := res.Change.Rules.String() + " / " + res.Change.Sinks.String(); got != "+after -gone (0 unchanged) / -hook (2 unchanged)" {
		t.Errorf("deploy change %q", got)
	}
	waitFor(t, "the new rule's alert on stdout", func() bool { return strings.Contains(out.String(), `"rule":"after"`) })
}
