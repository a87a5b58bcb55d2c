package live_test

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livetest"
	"github.com/reconmon/recon/runtime/sample"
)

// samples builds a batch of rows of source, metric "m" with values
// first, first+1, … and a label that makes each row about pad bytes.
func samples(source string, first, rows, pad int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	now := time.Now().UnixNano()
	labels := b.Field(sample.IdxLabels).(*array.MapBuilder)
	filler := strings.Repeat("x", pad)
	for i := 0; i < rows; i++ {
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(now))
		for _, c := range []int{sample.IdxPipeline, sample.IdxModule, sample.IdxTarget, sample.IdxNode} {
			b.Field(c).(*array.StringBuilder).Append("t")
		}
		b.Field(sample.IdxSource).(*array.StringBuilder).Append(source)
		b.Field(sample.IdxMetric).(*array.StringBuilder).Append("m")
		b.Field(sample.IdxValue).(*array.Float64Builder).Append(float64(first + i))
		b.Field(sample.IdxText).(*array.StringBuilder).AppendNull()
		b.Field(sample.IdxUnit).(*array.StringBuilder).AppendNull()
		labels.Append(true)
		labels.KeyBuilder().(*array.StringBuilder).Append("pad")
		labels.ItemBuilder().(*array.StringBuilder).Append(filler)
	}
	return b.NewRecordBatch()
}

// A viewer that stops reading is dropped once its queue is full, with a
// final message; publishing never waits for it, and another viewer gets
// every row.
func TestSlowViewerDropped(t *testing.T) {
	const queue, batches, rows = 4, 200, 200
	n := start(t, checkPlan(t, livetest.TCPTarget(t)), live.CloneOptions{}, queue)

	// The slow viewer: connected, reading nothing until the end, with a
	// small receive buffer so that the server's writes block soon whatever
	// the kernel's defaults.
	slow := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(32 << 10)
		}
		return c, err
	}}}
	defer slow.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, n.url+"/api/v1/stream?source=gen", nil)
	resp, err := slow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The fast viewer reads everything.
	fast := livetest.Open(t, n.url+"/api/v1/stream?source=gen", false)
	waitFor(t, "two viewers", func() bool { return n.hub.Viewers() == 2 })

	next := 0
	for i := 0; i < batches; i++ {
		rec := samples("gen", next, rows, 400)
		next += rows
		if err := n.hub.Publish(context.Background(), "k", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		// Let the fast viewer keep up, as a healthy client does.
		waitFor(t, "the fast viewer", func() bool { return len(fast.C) >= next })
	}
	if _, dropped := n.hub.Stats(); dropped != 1 {
		t.Fatalf("%d viewers dropped, want the slow one only", dropped)
	}
	for want := 0; want < next; want++ {
		m := waitSample(t, fast)
		if v := m.Data["value"].(float64); v != float64(want) {
			t.Fatalf("fast viewer got value %v, want %d: rows lost or reordered", v, want)
		}
	}
	// The slow viewer finally reads: its stream ends with the drop message.
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var last string
	for sc.Scan() {
		if sc.Text() != "" {
			last = sc.Text()
		}
	}
	var c live.Control
	if err := json.Unmarshal([]byte(last), &c); err != nil || c.Event != live.EventDropped || !strings.Contains(c.Message, "too slow") {
		t.Fatalf("slow viewer's last line %q, want the dropped message", last)
	}
}

// Alert transitions stream to the viewers of their rule, and the current
// states list the groups not back to ok.
func TestAlertStream(t *testing.T) {
	n := start(t, checkPlan(t, livetest.TCPTarget(t)), live.CloneOptions{}, 0)
	all := livetest.Open(t, n.url+"/api/v1/alerts/stream", true)
	one := livetest.Open(t, n.url+"/api/v1/alerts/stream?rule=disk", false)
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	events := []alert.Event{
		{ID: "1", Time: t0, Rule: "slow", Severity: alert.Warning, Previous: alert.OK, Group: map[string]string{"target": "a"}, Value: 0.7, Fingerprint: "f1", Since: t0},
		{ID: "2", Time: t0, Rule: "disk", Severity: alert.Critical, Previous: alert.OK, Value: math.NaN(), Fingerprint: "f2", Since: t0},
		{ID: "3", Time: t0.Add(time.Minute), Rule: "slow", Severity: alert.OK, Previous: alert.Warning, Group: map[string]string{"target": "a"}, Value: 0.1, Fingerprint: "f1", Since: t0.Add(time.Minute)},
	}
	rec := alert.Record(memory.DefaultAllocator, events)
	defer rec.Release()
	waitFor(t, "two alert viewers", func() bool { return n.alerts.Viewers() == 2 })
	if err := n.alerts.Publish(context.Background(), "", rec); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		m := waitSample(t, all)
		if m.Event != live.EventAlert || m.Data["id"] != id {
			t.Fatalf("alert stream got %+v, want event %s", m, id)
		}
	}
	if m := waitSample(t, one); m.Data["rule"] != "disk" || m.Data["value"] != nil {
		t.Fatalf("rule=disk stream got %+v, want the disk event with value null", m)
	}
	resp, err := http.Get(n.url + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var states struct{ Alerts []alert.Event }
	if err := json.NewDecoder(resp.Body).Decode(&states); err != nil {
		t.Fatal(err)
	}
	if len(states.Alerts) != 1 || states.Alerts[0].Rule != "disk" || states.Alerts[0].Severity != alert.Critical {
		t.Fatalf("current states %+v, want disk critical only (slow is back to ok)", states.Alerts)
	}
}
