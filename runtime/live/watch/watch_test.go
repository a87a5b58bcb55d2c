package watch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livetest"
	"github.com/reconmon/recon/runtime/live/watch"
)

const token = "tok"

// recond starts the live and control API of a recond running a 60s tcp
// check "web", a 60s tcp check "db" and the declared stream web_live.
func recond(t *testing.T) (*control.Client, *live.Clones) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	port := livetest.TCPTarget(t)
	p := livetest.Plan(t, []plan.Source{livetest.TCPSource("web", port, time.Minute), livetest.TCPSource("db", port, time.Minute)},
		[]plan.Stream{{Name: "web_live", Clone: "web", Period: plan.Duration(time.Second), Archive: true, Pos: "w:1:1"}}, nil)
	j, err := journal.Open(t.TempDir(), journal.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	hub := live.NewHub(live.HubOptions{Logger: quiet})
	clones, err := live.NewClones(live.CloneOptions{Registry: catalog.Default(), Archive: live.Tap{Next: j, Hub: hub}, Hub: hub, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := clones.SetPlan(p); err != nil {
		t.Fatal(err)
	}
	api, err := control.New(control.Options{Token: token, Registry: catalog.Default(), Plan: p, Clones: clones, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	(&live.Streams{Hub: hub, Clones: clones, Logger: quiet}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		clones.Close()
		_ = j.Close()
	})
	return &control.Client{URL: srv.URL, Token: token}, clones
}

func TestWatchJSON(t *testing.T) {
	c, clones := recond(t)
	var out bytes.Buffer
	err := watch.Run(context.Background(), watch.Options{Client: c, Sources: []string{"web", "db"}, Metrics: []string{"status"},
		Every: time.Second, For: 2500 * time.Millisecond, JSON: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	bySource := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		if m["metric"] != "status" {
			t.Fatalf("line %q: only status was asked for", line)
		}
		bySource[strings.SplitN(m["source"].(string), "~", 2)[0]]++
	}
	if bySource["web"] < 2 || bySource["db"] < 2 {
		t.Errorf("status samples per source %v, want at least 2 runs of each clone in 2.5s", bySource)
	}
	if l := adHoc(clones); len(l) != 0 {
		t.Errorf("clones still running after the watch left: %+v", l)
	}
}

func TestWatchPlainAndTerminal(t *testing.T) {
	c, _ := recond(t)
	var plain, tty bytes.Buffer
	for _, tc := range []struct {
		out *bytes.Buffer
		tty bool
	}{{&plain, false}, {&tty, true}} {
		if err := watch.Run(context.Background(), watch.Options{Client: c, Sources: []string{"web"}, Every: time.Second,
			For: 2500 * time.Millisecond, TTY: tc.tty, Out: tc.out}); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(plain.String(), "  web  127.0.0.1  status  0 ok  ") || strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("plain output has no 'web 127.0.0.1 status 0 ok' line or has escapes:\n%s", plain.String())
	}
	if !strings.Contains(tty.String(), "\x1b[2K") || !strings.Contains(tty.String(), "SOURCE") || !strings.Contains(tty.String(), "▅▅") {
		t.Errorf("terminal output is not a redrawn table with sparklines:\n%q", tty.String())
	}
}

func TestWatchUnknownSource(t *testing.T) {
	c, clones := recond(t)
	err := watch.Run(context.Background(), watch.Options{Client: c, Sources: []string{"web", "nope"}, For: time.Second, Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), `unknown source "nope"`) {
		t.Fatalf("err = %v, want unknown source nope", err)
	}
	if l := adHoc(clones); len(l) != 0 {
		t.Errorf("the clone of web was left running: %+v", l)
	}
}

func TestWatchNeedsToken(t *testing.T) {
	c, _ := recond(t)
	c.Token = ""
	err := watch.Run(context.Background(), watch.Options{Client: c, Sources: []string{"web"}, For: time.Second, Out: &bytes.Buffer{}})
	if !control.IsAPIError(err, http.StatusUnauthorized) {
		t.Fatalf("err = %v, want 401", err)
	}
}

func adHoc(c *live.Clones) []live.Info {
	var out []live.Info
	for _, in := range c.List() {
		if !in.Declared {
			out = append(out, in)
		}
	}
	return out
}

// A declared stream is watched as it runs: no clone, no token needed.
func TestWatchDeclaredStream(t *testing.T) {
	c, clones := recond(t)
	c.Token = ""
	var out bytes.Buffer
	if err := watch.Run(context.Background(), watch.Options{Client: c, Sources: []string{"web_live"}, Metrics: []string{"status"},
		For: 2500 * time.Millisecond, JSON: true, Out: &out}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `"source":"web_live"`); n < 2 {
		t.Errorf("%d status samples of web_live in 2.5s, want at least 2:\n%s", n, out.String())
	}
	if l := clones.List(); len(l) != 1 || !l[0].Declared {
		t.Errorf("clones %+v, want only the declared stream", l)
	}
}
