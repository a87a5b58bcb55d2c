package kafkabus

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/sample"
)

// batch builds rows samples of source whose `value` column holds the
// sequence numbers first, first+1, ….
func batch(source string, first, rows int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	ts := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; i < rows; i++ {
		seq := first + i
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(ts + int64(seq)))
		b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("test")
		b.Field(sample.IdxSource).(*array.StringBuilder).Append(source)
		b.Field(sample.IdxModule).(*array.StringBuilder).Append("generator")
		b.Field(sample.IdxTarget).(*array.StringBuilder).Append("127.0.0.1")
		b.Field(sample.IdxMetric).(*array.StringBuilder).Append("seq")
		b.Field(sample.IdxValue).(*array.Float64Builder).Append(float64(seq))
		b.Field(sample.IdxText).(*array.StringBuilder).AppendNull()
		b.Field(sample.IdxUnit).(*array.StringBuilder).Append("c")
		mb := b.Field(sample.IdxLabels).(*array.MapBuilder)
		mb.Append(true)
		mb.KeyBuilder().(*array.StringBuilder).Append("series")
		mb.ItemBuilder().(*array.StringBuilder).Append(strconv.Itoa(seq % 7))
		b.Field(sample.IdxNode).(*array.StringBuilder).Append("node1")
	}
	return b.NewRecordBatch()
}

// drain reads messages until want sequence numbers were seen, committing
// each, and returns how often each number arrived.
func drain(t *testing.T, c bus.Consumer, want int, timeout time.Duration) map[int]int {
	t.Helper()
	seen := map[int]int{}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(seen) < want {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of %d: %v", len(seen), want, err)
		}
		vals := m.Record.Column(sample.IdxValue).(*array.Float64)
		for i := 0; i < vals.Len(); i++ {
			seen[int(vals.Value(i))]++
		}
		m.Record.Release()
		if err := c.Commit(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	return seen
}

func exactlyOnce(t *testing.T, seen map[int]int, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if seen[i] != 1 {
			t.Fatalf("seq %d seen %d times, want exactly once", i, seen[i])
		}
	}
}

func open(t *testing.T, b *kafkatest.Broker, topic string, o Options) *Topic {
	t.Helper()
	o.Brokers, o.Topic = b.Addrs, topic
	tp, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp
}

func TestRoundTripAndSplit(t *testing.T) {
	b := kafkatest.Start(t, 3, "recon.samples")
	tp := open(t, b, "recon.samples", Options{MaxMessageBytes: 64 << 10, Compression: "lz4"})
	ctx := context.Background()
	const rows = 20000 // encodes to well over 64 KiB: split
	rec := batch("web", 0, rows)
	defer rec.Release()
	if err := tp.Publish(ctx, "web", rec); err != nil {
		t.Fatal(err)
	}
	if tp.Stats().Splits.Load() == 0 || tp.Stats().Published.Load() < 2 {
		t.Fatalf("a %d-row batch was not split under a 64 KiB limit: %d messages", rows, tp.Stats().Published.Load())
	}
	c, err := tp.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exactlyOnce(t, drain(t, c, rows, 30*time.Second), rows)
}

// TestKcatReadsArrow checks the wire contract with independent clients:
// kcat (librdkafka) reads the message, its headers say what it is, and the
// bytes decode as Arrow IPC in apache-arrow's JavaScript implementation.
func TestKcatReadsArrow(t *testing.T) {
	kcat := kafkatest.Kcat(t)
	node := nodeWithArrow(t)
	b := kafkatest.Start(t, 1, "recon.samples")
	tp := open(t, b, "recon.samples", Options{})
	rec := batch("dns", 0, 100)
	defer rec.Release()
	// The batcher publishes under its shard's name; the message key must
	// be the source's (design §3.3).
	if err := tp.Publish(context.Background(), "shard-0", rec); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kcat, "-b", b.Addrs[0], "-t", "recon.samples", "-C", "-e", "-o", "beginning", "-c", "1",
		"-f", "%k|%h\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	want := "dns|content-type=application/vnd.apache.arrow.stream,recon-schema=samples/v1\n"
	if string(out) != want {
		t.Fatalf("kcat key|headers = %q, want %q", out, want)
	}
	msg := filepath.Join(t.TempDir(), "msg.arrow")
	f, err := os.Create(msg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kcat, "-b", b.Addrs[0], "-t", "recon.samples", "-C", "-e", "-o", "beginning", "-c", "1", "-D", "", "-f", "%s")
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat: %v", err)
	}
	f.Close()
	js, err := exec.Command(node.bin, filepath.Join(node.dir, "decode.mjs"), msg).CombinedOutput()
	if err != nil {
		t.Fatalf("apache-arrow could not decode the message: %v\n%s", err, js)
	}
	wantJS := "rows=100\nts:Timestamp<NANOSECOND, UTC>\npipeline:Utf8\nsource:Utf8\nmodule:Utf8\ntarget:Utf8\nmetric:Utf8\n" +
		"value:Float64?\ntext:Utf8?\nunit:Utf8?\nlabels:Map<{key:Utf8, value:Utf8}>\nnode:Utf8\nfirst=dns/seq/0\n"
	if string(js) != wantJS {
		t.Fatalf("apache-arrow read:\n%s\nwant:\n%s", js, wantJS)
	}
}

type arrowJS struct{ bin, dir string }

func nodeWithArrow(t *testing.T) arrowJS {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "interop", "arrowjs"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "apache-arrow"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node with apache-arrow in %s is missing (CI=true: a missing peer fails); install with: make deps", dir)
		}
		t.Skipf("node with apache-arrow missing (%v); install with: make deps (under CI this fails)", err)
	}
	return arrowJS{bin: bin, dir: dir}
}

// TestCorruptMessageSkipped: garbage and foreign Arrow on the topic are
// counted and skipped; the messages after them still arrive.
func TestCorruptMessageSkipped(t *testing.T) {
	kcat := kafkatest.Kcat(t)
	b := kafkatest.Start(t, 1, "recon.samples")
	tp := open(t, b, "recon.samples", Options{})
	ctx := context.Background()
	first := batch("a", 0, 10)
	defer first.Release()
	if err := tp.Publish(ctx, "a", first); err != nil {
		t.Fatal(err)
	}
	garbage := exec.Command(kcat, "-b", b.Addrs[0], "-t", "recon.samples", "-P", "-K", ":")
	garbage.Stdin = stringsReader("a:not arrow at all\na:\xff\xff\xff\xff\x10\x00\x00\x00garbage\n")
	if out, err := garbage.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	foreign, err := Open(Options{Brokers: b.Addrs, Topic: "recon.samples",
		Schema: arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	fb := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil))
	fb.Field(0).(*array.Int64Builder).Append(1)
	frec := fb.NewRecordBatch()
	if err := foreign.Publish(ctx, "a", frec); err != nil {
		t.Fatal(err)
	}
	frec.Release()
	fb.Release()
	foreign.Close()
	second := batch("a", 10, 10)
	defer second.Release()
	if err := tp.Publish(ctx, "a", second); err != nil {
		t.Fatal(err)
	}
	c, err := tp.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exactlyOnce(t, drain(t, c, 20, 30*time.Second), 20)
	if got := tp.Stats().Skipped.Load(); got != 3 {
		t.Fatalf("skipped %d messages, want 3 (two garbage, one foreign schema)", got)
	}
}

// TestForwarderSurvivesOutage: the collector's journal keeps accepting
// while the broker is stopped; once it returns every batch arrives, in
// order, exactly once.
func TestForwarderSurvivesOutage(t *testing.T) {
	b := kafkatest.Start(t, 1, "recon.samples")
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	tp := open(t, b, "recon.samples", Options{WriteTimeout: 500 * time.Millisecond})
	src, err := j.Consumer("kafka")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fwd := NewForwarder(src, tp, nil)
	fwd.MinBackoff, fwd.MaxBackoff = 20*time.Millisecond, 200*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()

	const per, batches = 500, 20
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			rec := batch("gen", i*per, per)
			if err := j.Publish(context.Background(), "gen", rec); err != nil {
				t.Fatalf("journal refused batch %d: %v", i, err)
			}
			rec.Release()
		}
	}
	publish(0, 5)
	if err := b.Pause(); err != nil {
		t.Fatal(err)
	}
	publish(5, 15) // accepted while Kafka is away
	deadline := time.Now().Add(10 * time.Second)
	for fwd.Stats().Failures == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if fwd.Stats().Failures == 0 {
		t.Fatal("forwarder never noticed the broker was away")
	}
	if err := b.Resume(); err != nil {
		t.Fatal(err)
	}
	publish(15, batches)

	c, err := tp.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := drain(t, c, per*batches, 60*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// kafka-go may retry a write whose acknowledgement was lost while the
	// broker was stopped: at-least-once. The archiver dedupes by offset
	// range; here every number must be present.
	for i := 0; i < per*batches; i++ {
		if seen[i] == 0 {
			t.Fatalf("seq %d lost across the outage", i)
		}
	}
	if fwd.Stats().Down {
		t.Error("forwarder still reports Kafka down")
	}
	t.Logf("forwarder: %+v", fwd.Stats())
}

func TestOpenErrors(t *testing.T) {
	for _, o := range []Options{{}, {Brokers: []string{"x:1"}}, {Brokers: []string{"x:1"}, Topic: "t", Compression: "brotli"},
		{Brokers: []string{"x:1"}, Topic: "t", SASLMechanism: "kerberos"}} {
		if _, err := Open(o); err == nil {
			t.Errorf("Open(%+v) accepted", o)
		}
	}
	_ = fmt.Sprint
}

// TestProxyCutsOffOneClient: the tests' proxy cuts off the clients of one
// client id (their publishes fail) while the others carry on, and lets
// them back in.
func TestProxyCutsOffOneClient(t *testing.T) {
	b, proxy := kafkatest.StartBehindProxy(t, 2, "recon.samples")
	cut := open(t, b, "recon.samples", Options{ClientID: "collector-1", WriteTimeout: 300 * time.Millisecond})
	other := open(t, b, "recon.samples", Options{ClientID: "archiver"})
	rec := batch("gen", 0, 10)
	defer rec.Release()
	publish := func(tp *Topic) error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return tp.Publish(ctx, "", rec)
	}
	for _, tp := range []*Topic{cut, other} {
		if err := publish(tp); err != nil {
			t.Fatalf("publish through the proxy: %v", err)
		}
	}
	proxy.Cut("collector")
	if err := publish(cut); err == nil {
		t.Fatal("a client cut off by the proxy could still publish")
	}
	if err := publish(other); err != nil {
		t.Fatalf("a client not cut off failed: %v", err)
	}
	proxy.Restore("collector")
	if err := publish(cut); err != nil {
		t.Fatalf("publish after the cut ended: %v", err)
	}
}
