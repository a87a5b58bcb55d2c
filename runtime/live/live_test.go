package live_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livetest"
	"github.com/reconmon/recon/runtime/sample"
)

// node is the live half of a recond: a journal as the samples bus with a
// Tap in front, the hub, clones and the HTTP streams on a real listener.
type node struct {
	j      *journal.Journal
	hub    *live.Hub
	alerts *live.AlertHub
	clones *live.Clones
	url    string
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func start(t *testing.T, p *plan.Plan, opts live.CloneOptions, queue int) *node {
	t.Helper()
	j, err := journal.Open(t.TempDir(), journal.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{j: j, hub: live.NewHub(live.HubOptions{Queue: queue, Logger: quiet()}),
		alerts: live.NewAlertHub(live.HubOptions{Logger: quiet()})}
	opts.Registry = catalog.Default()
	opts.Node = "node-a"
	opts.Archive = live.Tap{Next: j, Hub: n.hub}
	opts.Hub = n.hub
	opts.Logger = quiet()
	n.clones, err = live.NewClones(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.clones.SetPlan(p); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&live.Streams{Hub: n.hub, Alerts: n.alerts, Clones: n.clones, Logger: quiet(), Keepalive: time.Second}).Register(mux)
	srv := httptest.NewServer(mux)
	n.url = srv.URL
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		n.clones.Close()
		if err := j.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// archived counts the rows in the journal by source, reading everything
// published so far.
func (n *node) archived(t *testing.T) map[string]int {
	t.Helper()
	c, err := n.j.Consumer(fmt.Sprintf("count-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := map[string]int{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		m, err := c.Fetch(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		src := m.Record.Column(sample.IdxSource).(*array.String)
		for i := 0; i < src.Len(); i++ {
			out[src.Value(i)]++
		}
		m.Record.Release()
	}
}

func checkPlan(t *testing.T, port int, streams ...plan.Stream) *plan.Plan {
	return livetest.Plan(t, []plan.Source{livetest.TCPSource("web", port, time.Minute)}, streams, nil)
}

// An ad-hoc clone at 1s of a check whose period is 60s yields a run per
// second under the clone's name, streamed to its viewer within 1.5s of
// each measurement and archived; the source itself is not touched.
func TestAdHocCloneStreamsAndArchives(t *testing.T) {
	port := livetest.TCPTarget(t)
	n := start(t, checkPlan(t, port), live.CloneOptions{}, 0)
	info, err := n.clones.Start(context.Background(), live.Request{Source: "web", Period: plan.Duration(time.Second), TTL: plan.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if info.Name == "web" || info.Source != "web" || !info.Archive {
		t.Fatalf("clone info %+v: want its own name, source web, archived", info)
	}
	// Two viewers, one per format, watch together.
	streams := map[bool]*livetest.Stream{}
	for _, sse := range []bool{false, true} {
		streams[sse] = livetest.Open(t, n.url+"/api/v1/stream?clone="+info.ID, sse)
	}
	for _, sse := range []bool{false, true} {
		t.Run(fmt.Sprintf("sse=%v", sse), func(t *testing.T) {
			s := streams[sse]
			if s.Status != http.StatusOK {
				t.Fatalf("status %d", s.Status)
			}
			deadline := time.After(10 * time.Second)
			runs := 0
			for runs < 9 {
				select {
				case m := <-s.C:
					if m.Event != live.EventSample {
						t.Fatalf("unexpected message %+v", m)
					}
					if m.Data["source"] != info.Name {
						t.Fatalf("sample of %v, want %s", m.Data["source"], info.Name)
					}
					ts, err := time.Parse(time.RFC3339Nano, m.Data["ts"].(string))
					if err != nil {
						t.Fatal(err)
					}
					if lag := m.Received.Sub(ts); lag > 1500*time.Millisecond {
						t.Errorf("sample %v measured at %v received %v later (want within 1.5s)", m.Data["metric"], ts, lag)
					}
					if m.Data["metric"] == sample.MetricStatus {
						runs++
						if m.Data["text"] != "ok" {
							t.Errorf("clone run status %v (%v), want ok", m.Data["text"], m.Data["labels"])
						}
					}
				case <-deadline:
					t.Fatalf("%d runs streamed in 10s, want at least 9", runs)
				}
			}
		})
	}
	for _, s := range streams {
		s.Close()
	}
	waitFor(t, "the clone to end with its viewers", func() bool { return len(n.clones.List()) == 0 })
	// A run under way when the clone ended still lands: wait for the count
	// to settle on what the clones report accepted.
	var got map[string]int
	waitFor(t, "every accepted clone row in the journal", func() bool {
		got = n.archived(t)
		return int64(got[info.Name]) == n.clones.Accepted()
	})
	if got[info.Name] < 9*4 { // status, available, duration, connect per run
		t.Errorf("archived %d rows of %s, want at least 36", got[info.Name], info.Name)
	}
	if got["web"] != 0 {
		t.Errorf("the source web got %d rows from its clone; its schedule is its own", got["web"])
	}
}

// The clone ends when its last viewer leaves, and then writes no more.
func TestCloneEndsWhenLastViewerLeaves(t *testing.T) {
	port := livetest.TCPTarget(t)
	n := start(t, checkPlan(t, port), live.CloneOptions{}, 0)
	info, err := n.clones.Start(context.Background(), live.Request{Source: "web", Period: plan.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	a := livetest.Open(t, n.url+"/api/v1/stream?clone="+info.ID, false)
	b := livetest.Open(t, n.url+"/api/v1/stream?clone="+info.ID+"&metric=status", true)
	waitSample(t, a)
	waitSample(t, b)
	a.Close()
	waitSample(t, b) // one viewer left: the clone still runs
	if len(n.clones.List()) != 1 {
		t.Fatalf("clones %+v after the first viewer left, want the clone running", n.clones.List())
	}
	b.Close()
	waitFor(t, "the clone to end after its last viewer left", func() bool { return len(n.clones.List()) == 0 })
	before := n.archived(t)[info.Name]
	time.Sleep(2 * time.Second)
	if after := n.archived(t)[info.Name]; after != before {
		t.Errorf("the clone wrote %d rows after it ended", after-before)
	}
}

// A clone ends at its ttl: its viewers get an end message and the stream
// closes.
func TestCloneEndsAtTTL(t *testing.T) {
	port := livetest.TCPTarget(t)
	n := start(t, checkPlan(t, port), live.CloneOptions{}, 0)
	info, err := n.clones.Start(context.Background(), live.Request{Source: "web", Period: plan.Duration(time.Second), TTL: plan.Duration(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	s := livetest.Open(t, n.url+"/api/v1/stream?clone="+info.ID, true)
	var last livetest.Message
	for m := range s.C {
		last = m
	}
	if last.Event != live.EventEnd || last.Data["clone"] != info.ID {
		t.Fatalf("last message %+v, want the end of clone %s", last, info.ID)
	}
	if len(n.clones.List()) != 0 {
		t.Fatalf("clones after ttl: %+v", n.clones.List())
	}
}

// An ad-hoc clone nobody watches ends after the grace period.
func TestCloneWithoutViewerEnds(t *testing.T) {
	port := livetest.TCPTarget(t)
	n := start(t, checkPlan(t, port), live.CloneOptions{Grace: 300 * time.Millisecond}, 0)
	if _, err := n.clones.Start(context.Background(), live.Request{Source: "web", Period: plan.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an unwatched clone to end", func() bool { return len(n.clones.List()) == 0 })
}

func TestCloneRequestsRefused(t *testing.T) {
	port := livetest.TCPTarget(t)
	n := start(t, checkPlan(t, port), live.CloneOptions{MaxTTL: time.Hour}, 0)
	for _, tc := range []struct {
		req  live.Request
		want error
	}{
		{live.Request{Source: "nope", Period: plan.Duration(time.Second)}, live.ErrUnknownSource},
		{live.Request{Source: "web", Period: plan.Duration(100 * time.Millisecond)}, live.ErrBadRequest},
		{live.Request{Source: "web", Period: plan.Duration(time.Second), TTL: plan.Duration(2 * time.Hour)}, live.ErrBadRequest},
		{live.Request{Period: plan.Duration(time.Second)}, live.ErrBadRequest},
	} {
		if _, err := n.clones.Start(context.Background(), tc.req); !errors.Is(err, tc.want) {
			t.Errorf("Start(%+v) = %v, want %v", tc.req, err, tc.want)
		}
	}
	if l := n.clones.List(); len(l) != 0 {
		t.Errorf("refused requests left clones: %+v", l)
	}
}

// Declared streams run from the plan; archive = false keeps their rows
// out of the archive while viewers still get them; a new plan keeps an
// unchanged stream running and stops a removed one.
func TestDeclaredStreams(t *testing.T) {
	port := livetest.TCPTarget(t)
	kept := plan.Stream{Name: "web_kept", Clone: "web", Period: plan.Duration(time.Second), Archive: true, Pos: "a:1:1"}
	viewOnly := plan.Stream{Name: "web_view", Clone: "web", Period: plan.Duration(time.Second), Archive: false, Pos: "a:2:1"}
	n := start(t, checkPlan(t, port, kept, viewOnly), live.CloneOptions{}, 0)
	s := livetest.Open(t, n.url+"/api/v1/stream?source=web_view&metric=status", false)
	waitSample(t, s)
	waitSample(t, s)
	got := n.archived(t)
	if got["web_view"] != 0 || got["web_kept"] == 0 {
		t.Fatalf("archived rows %v: want web_kept's and none of web_view (archive = false)", got)
	}
	before := infoOf(t, n.clones, "web_kept")
	kept.Pos = "b:7:1" // moved in the file, not changed
	if err := n.clones.SetPlan(checkPlan(t, port, kept)); err != nil {
		t.Fatal(err)
	}
	if after := infoOf(t, n.clones, "web_kept"); !after.Expires.Equal(before.Expires) || len(n.clones.List()) != 1 {
		t.Fatalf("clones after the new plan %+v, want web_kept untouched and web_view gone", n.clones.List())
	}
}

func infoOf(t *testing.T, c *live.Clones, id string) live.Info {
	t.Helper()
	for _, in := range c.List() {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("no clone %s in %+v", id, c.List())
	return live.Info{}
}

func waitSample(t *testing.T, s *livetest.Stream) livetest.Message {
	t.Helper()
	select {
	case m, ok := <-s.C:
		if !ok {
			t.Fatal("stream ended")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no sample within 5s")
	}
	return livetest.Message{}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ bus.Producer = live.Tap{}

// A new plan that changes or removes the source of an ad-hoc clone ends
// the clone (its viewers are told); an unchanged source keeps its clone.
func TestAdHocCloneEndsWithItsSource(t *testing.T) {
	port := livetest.TCPTarget(t)
	db := livetest.TCPSource("db", port, time.Minute)
	n := start(t, livetest.Plan(t, []plan.Source{livetest.TCPSource("web", port, time.Minute), db}, nil, nil), live.CloneOptions{}, 0)
	var infos []live.Info
	for _, src := range []string{"web", "db"} {
		info, err := n.clones.Start(context.Background(), live.Request{Source: src, Period: plan.Duration(time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		infos = append(infos, info)
	}
	s := livetest.Open(t, n.url+"/api/v1/stream?clone="+infos[0].ID, false)
	waitSample(t, s)
	db.Pos = "moved:1:1" // not a change
	if err := n.clones.SetPlan(livetest.Plan(t, []plan.Source{livetest.TCPSource("web", port, 30*time.Second), db}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	var last livetest.Message
	for m := range s.C {
		last = m
	}
	if last.Event != live.EventEnd {
		t.Errorf("viewer of the clone of the changed source got %+v last, want the end", last)
	}
	if l := n.clones.List(); len(l) != 1 || l[0].ID != infos[1].ID {
		t.Errorf("clones %+v, want only the clone of the unchanged db", l)
	}
}
