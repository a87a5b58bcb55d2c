package livekafka_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livekafka"
	"github.com/reconmon/recon/runtime/live/livetest"
)

const samplesTopic = "recon.samples"

// node is the live half of one recond on the Kafka bus: clones publishing
// to the samples topic, the control topic, a follower feeding its hub, and
// the live HTTP API.
type node struct {
	clones *live.Clones
	url    string
}

func startNode(t *testing.T, br *kafkatest.Broker, name string, p *plan.Plan) *node {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	samples, err := kafkabus.Open(kafkabus.Options{Brokers: br.Addrs, Topic: samplesTopic, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hub := live.NewHub(live.HubOptions{Logger: log})
	ctl, err := livekafka.New(livekafka.Options{Kafka: kafkabus.Options{Brokers: br.Addrs, Logger: log}, Node: name, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	clones, err := live.NewClones(live.CloneOptions{Registry: catalog.Default(), Node: name,
		Archive: live.Tap{Next: samples, Hub: hub}, Hub: hub, Remote: ctl, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := clones.SetPlan(p); err != nil {
		t.Fatal(err)
	}
	fol, err := livekafka.NewFollower(livekafka.FollowerOptions{Kafka: kafkabus.Options{Brokers: br.Addrs, Topic: samplesTopic, Logger: log},
		Node: name, Hub: hub, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func() error{func() error { return ctl.Run(ctx, clones) }, func() error { return fol.Run(ctx) }} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}()
	}
	mux := http.NewServeMux()
	(&live.Streams{Hub: hub, Clones: clones, Logger: log}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		clones.Close()
		cancel()
		wg.Wait()
		_ = ctl.Close()
		_ = fol.Close()
		_ = samples.Close()
	})
	return &node{clones: clones, url: srv.URL}
}

var _ bus.Producer = (*kafkabus.Topic)(nil)

// Two collectors each run one source; a viewer on a third node, which runs
// neither, asks for clones of both and watches them side by side. When the
// viewer leaves, the collectors end the clones.
func TestViewerWatchesTwoCollectors(t *testing.T) {
	br := kafkatest.Start(t, 3, samplesTopic, livekafka.DefaultTopic)
	port := livetest.TCPTarget(t)
	a := startNode(t, br, "dc1", livetest.Plan(t, []plan.Source{livetest.TCPSource("web_dc1", port, time.Minute)}, nil, nil))
	b := startNode(t, br, "dc2", livetest.Plan(t, []plan.Source{livetest.TCPSource("web_dc2", port, time.Minute)}, nil, nil))
	v := startNode(t, br, "viewer", livetest.Plan(t, nil, nil, nil))

	var ids []string
	names := map[string]string{}
	for _, src := range []string{"web_dc1", "web_dc2"} {
		info, err := v.clones.Start(context.Background(), live.Request{Source: src, Period: plan.Duration(time.Second), TTL: plan.Duration(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if !info.Remote {
			t.Fatalf("clone of %s on the viewer is not remote: %+v", src, info)
		}
		ids = append(ids, info.ID)
		names[info.Name] = src
	}
	s := livetest.Open(t, v.url+"/api/v1/stream?metric=status&clone="+strings.Join(ids, ","), true)
	seen := map[string]string{} // source → node
	deadline := time.After(40 * time.Second)
	for len(seen) < 2 {
		select {
		case m, ok := <-s.C:
			if !ok {
				t.Fatal("stream ended")
			}
			src := names[m.Data["source"].(string)]
			if src == "" {
				t.Fatalf("sample of %v, not of a clone asked for", m.Data["source"])
			}
			seen[src] = m.Data["node"].(string)
		case <-deadline:
			t.Fatalf("in 40s the viewer saw clones of %v, want web_dc1 and web_dc2", seen)
		}
	}
	if seen["web_dc1"] != "dc1" || seen["web_dc2"] != "dc2" {
		t.Errorf("clones ran on %v, want web_dc1 on dc1 and web_dc2 on dc2", seen)
	}
	s.Close()
	waitFor(t, "the collectors to end the clones once the viewer left", func() bool {
		return len(a.clones.List()) == 0 && len(b.clones.List()) == 0 && len(v.clones.List()) == 0
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
