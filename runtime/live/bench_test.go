package live_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livetest"
)

// BenchmarkFanout: 100 sources cloned at 1s, 200 viewers each watching all
// of them over HTTP (NDJSON), while a generator pushes batches through the
// same bus tap as fast as the journal accepts them. It reports the
// generator's ingest rate without and with the viewers (and their ratio),
// and the latency from each clone sample's measurement time to its
// receipt by a viewer. Run with -benchtime=1x: one iteration is two 10s
// phases.
func BenchmarkFanout(b *testing.B) {
	const sources, viewers, phase, offered = 100, 200, 10 * time.Second, 2e6
	port := livetest.TCPTarget(b)
	var streams []plan.Stream
	var names []string
	for i := range sources {
		name := fmt.Sprintf("web_live_%03d", i)
		names = append(names, name)
		streams = append(streams, plan.Stream{Name: name, Clone: "web", Period: plan.Duration(time.Second), Archive: true, Pos: "b:1:1"})
	}
	p := livetest.Plan(b, []plan.Source{livetest.TCPSource("web", port, time.Minute)}, streams, nil)
	j, err := journal.Open(b.TempDir(), journal.Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	hub := live.NewHub(live.HubOptions{Logger: quiet()})
	tap := live.Tap{Next: j, Hub: hub}
	clones, err := live.NewClones(live.CloneOptions{Registry: catalog.Default(), Node: "n", Archive: tap, Hub: hub, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer clones.Close()
	if err := clones.SetPlan(p); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	(&live.Streams{Hub: hub, Clones: clones, Logger: quiet()}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	gen := samples("gen", 0, 8192, 16)
	defer gen.Release()

	// ingest offers the generator's batches through the tap at rate rows
	// per second for d (0: as fast as the bus accepts them) and returns the
	// rows per second accepted.
	ingest := func(rate float64, d time.Duration) float64 {
		rows := 0
		start := time.Now()
		for time.Since(start) < d {
			if rate > 0 {
				if ahead := time.Duration(float64(rows)/rate*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
			if err := tap.Publish(context.Background(), "gen", gen); err != nil {
				b.Fatal(err)
			}
			rows += int(gen.NumRows())
		}
		return float64(rows) / time.Since(start).Seconds()
	}

	url := srv.URL + "/api/v1/stream?source=" + strings.Join(names, ",")
	// watched runs the generator for a phase while n viewers watch every
	// clone; it returns the ingest rate and the viewers' latencies.
	watched := func(n int, rate float64) (float64, []time.Duration) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		var measuring atomic.Bool
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				defer resp.Body.Close()
				sc := bufio.NewScanner(resp.Body)
				var mine []time.Duration
				for sc.Scan() {
					if !measuring.Load() {
						continue
					}
					line := sc.Bytes()
					i := bytes.Index(line, []byte(`"ts":"`))
					if i < 0 {
						continue
					}
					rest := line[i+6:]
					ts, err := time.Parse(time.RFC3339Nano, string(rest[:bytes.IndexByte(rest, '"')]))
					if err == nil {
						mine = append(mine, time.Since(ts))
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		for hub.Viewers() < n {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // every viewer connected and streaming
		measuring.Store(true)
		got := ingest(rate, phase)
		measuring.Store(false)
		cancel()
		wg.Wait()
		slices.Sort(lat)
		return got, lat
	}
	q := func(lat []time.Duration, f float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) / 1000
	}

	for range b.N {
		// Offered load: what recond is asked to ingest; it must keep up
		// with it while viewers watch.
		offeredAlone := ingest(offered, phase)
		_, one := watched(1, offered)
		offeredLoaded, lat := watched(viewers, offered)
		// Capacity: the bus saturated, so that the viewers' CPU shows.
		capAlone := ingest(0, phase)
		capLoaded, _ := watched(viewers, 0)
		_, dropped := hub.Stats()
		b.ReportMetric(offeredAlone, "offered-rows/s-alone")
		b.ReportMetric(offeredLoaded/offeredAlone, "offered-ratio")
		b.ReportMetric(capAlone, "capacity-rows/s-alone")
		b.ReportMetric(capLoaded/capAlone, "capacity-ratio")
		b.ReportMetric(q(one, 0.5), "1viewer-p50-ms")
		b.ReportMetric(q(one, 0.99), "1viewer-p99-ms")
		b.ReportMetric(q(lat, 0.5), "p50-ms")
		b.ReportMetric(q(lat, 0.99), "p99-ms")
		b.ReportMetric(q(lat, 1), "max-ms")
		b.ReportMetric(float64(len(lat)), "samples-received")
		b.ReportMetric(float64(dropped), "viewers-dropped")
	}
}

// BenchmarkViewerAppend: encoding a batch's rows for one viewer into its
// reused buffer (per row: 0 allocations).
func BenchmarkViewerAppend(b *testing.B) {
	hub := live.NewHub(live.HubOptions{Logger: quiet()})
	v := hub.Subscribe(live.Filter{Sources: []string{"gen"}})
	defer v.Close()
	rec := samples("gen", 0, 1000, 16)
	defer rec.Release()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = v.Append(buf[:0], rec, "", "\n")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/row")
}

// BenchmarkHubPublish: handing a 1000-row batch to 200 viewers, each
// watching 100 sources, one of which is in the batch.
func BenchmarkHubPublish(b *testing.B) {
	hub := live.NewHub(live.HubOptions{Queue: 4096, Logger: quiet()})
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("s%03d", i))
	}
	names[0] = "gen"
	for range 200 {
		v := hub.Subscribe(live.Filter{Sources: names})
		defer v.Close()
	}
	rec := samples("gen", 0, 1000, 16)
	defer rec.Release()
	b.ReportAllocs()
	for b.Loop() {
		if err := hub.Publish(context.Background(), "", rec); err != nil {
			b.Fatal(err)
		}
	}
}
