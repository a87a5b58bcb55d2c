package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/bus"
)

func TestRoundTripPreservesBatches(t *testing.T) {
	for _, comp := range []Compression{CompressionLZ4, CompressionNone} {
		t.Run(comp.String(), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			j := openT(t, t.TempDir(), Options{Compression: comp, Allocator: mem})
			defer j.Close()
			ctx := context.Background()
			for seq := range int64(5) {
				rec := sampleBatch(mem, seq, 1000+int(seq))
				off, err := j.Append(ctx, fmt.Sprintf("src-%d", seq), rec)
				rec.Release()
				if err != nil {
					t.Fatal(err)
				}
				if off != seq {
					t.Fatalf("batch %d stored at offset %d", seq, off)
				}
			}
			c, err := j.Consumer("archiver")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msgs := fetchN(t, c, 5)
			defer release(msgs)
			for i, m := range msgs {
				if m.Offset != int64(i) || m.Partition != 0 || m.Key != fmt.Sprintf("src-%d", i) {
					t.Fatalf("message %d: offset %d partition %d key %q", i, m.Offset, m.Partition, m.Key)
				}
				checkBatch(t, m.Record, int64(i), 1000+i)
			}
			assertEmpty(t, c)
		})
	}
}

func TestFetchWaitsForPublishAndCloseWakesIt(t *testing.T) {
	j := openT(t, t.TempDir(), Options{})
	c, err := j.Consumer("live")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		m   bus.Message
		err error
	}
	got := make(chan result)
	fetch := func() {
		m, err := c.Fetch(context.Background())
		got <- result{m, err}
	}
	go fetch()
	rec := sampleBatch(memory.DefaultAllocator, 7, 10)
	defer rec.Release()
	if err := j.Publish(context.Background(), "k", rec); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("Fetch: %v", r.err)
	}
	checkBatch(t, r.m.Record, 7, 10)
	r.m.Record.Release()

	go fetch()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-got; !errors.Is(r.err, bus.ErrClosed) {
		t.Fatalf("Fetch after Close: %v, want bus.ErrClosed", r.err)
	}
	if err := j.Publish(context.Background(), "k", rec); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Close: %v, want bus.ErrClosed", err)
	}
	if _, err := j.Consumer("other"); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Consumer after Close: %v, want bus.ErrClosed", err)
	}
	if err := c.Commit(context.Background(), r.m); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Commit after Close: %v, want bus.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentPublishersKeepOrderAndData(t *testing.T) {
	const publishers, perPublisher = 8, 25
	j := openT(t, t.TempDir(), Options{SegmentSize: 256 << 10})
	defer j.Close()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Go(func() {
			for k := range perPublisher {
				rec := sampleBatch(memory.DefaultAllocator, int64(p*1000+k), 300)
				err := j.Publish(context.Background(), fmt.Sprintf("p%d", p), rec)
				rec.Release()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := j.Stats()
	if st.LastOffset != publishers*perPublisher-1 || st.Published != publishers*perPublisher {
		t.Fatalf("last offset %d, published %d; want %d batches", st.LastOffset, st.Published, publishers*perPublisher)
	}
	if st.Segments < 2 {
		t.Fatalf("%d segments; the test wants segment rolls", st.Segments)
	}

	c, err := j.Consumer("check")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := fetchN(t, c, publishers*perPublisher)
	defer release(msgs)
	last := make(map[string]int64)
	for i, m := range msgs {
		if m.Offset != int64(i) {
			t.Fatalf("message %d has offset %d", i, m.Offset)
		}
		seq := seqOf(m.Record)
		p, k := seq/1000, seq%1000
		if m.Key != fmt.Sprintf("p%d", p) {
			t.Fatalf("offset %d: key %q for seq %d", i, m.Key, seq)
		}
		if prev, ok := last[m.Key]; ok && k != prev+1 {
			t.Fatalf("publisher %s: batch %d follows %d", m.Key, k, prev)
		}
		last[m.Key] = k
		checkBatch(t, m.Record, seq, 300)
	}
	for p := range publishers {
		if last[fmt.Sprintf("p%d", p)] != perPublisher-1 {
			t.Fatalf("publisher %d: last batch %d", p, last[fmt.Sprintf("p%d", p)])
		}
	}
}

// With a commit delay, publishers released together land in one group:
// fewer fsyncs than batches.
func TestGroupCommit(t *testing.T) {
	const publishers = 8
	j := openT(t, t.TempDir(), Options{CommitDelay: 200 * time.Millisecond})
	defer j.Close()
	before := j.Stats().Fsyncs
	start := make(chan struct{})
	var wg sync.WaitGroup
	for p := range publishers {
		rec := sampleBatch(memory.DefaultAllocator, int64(p), 50)
		wg.Go(func() {
			defer rec.Release()
			<-start
			if err := j.Publish(context.Background(), "k", rec); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	st := j.Stats()
	if st.Published != publishers {
		t.Fatalf("published %d", st.Published)
	}
	if n := st.Fsyncs - before; n >= publishers {
		t.Fatalf("%d fsyncs for %d concurrent batches: no group commit", n, publishers)
	}
}

func TestCheckpointsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	j := openT(t, dir, Options{})
	for seq := range int64(10) {
		rec := sampleBatch(memory.DefaultAllocator, seq, 20)
		if err := j.Publish(ctx, "k", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	c, err := j.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Consumer("archiver"); err == nil {
		t.Fatal("a consumer name opened twice")
	}
	msgs := fetchN(t, c, 5)
	if err := c.Commit(ctx, msgs[3]); err != nil {
		t.Fatal(err)
	}
	// A lower commit is ignored.
	if err := c.Commit(ctx, msgs[1]); err != nil {
		t.Fatal(err)
	}
	release(msgs)
	if err := c.Commit(ctx, bus.Message{Offset: 10}); err == nil {
		t.Fatal("commit past the last offset accepted")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = openT(t, dir, Options{})
	defer j.Close()
	c, err = j.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs = fetchN(t, c, 6)
	defer release(msgs)
	for i, m := range msgs {
		if m.Offset != int64(4+i) {
			t.Fatalf("after reopen message %d has offset %d, want %d", i, m.Offset, 4+i)
		}
		checkBatch(t, m.Record, m.Offset, 20)
	}
	fresh, err := j.Consumer("rules")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	m := fetchN(t, fresh, 1)
	defer release(m)
	if m[0].Offset != 0 {
		t.Fatalf("a new consumer starts at %d, want the oldest offset 0", m[0].Offset)
	}
	st := j.Stats()
	want := []ConsumerStats{{Name: "archiver", Committed: 3, Lag: 6, Open: true}, {Name: "rules", Committed: -1, Lag: 10, Open: true}}
	if !slices.Equal(st.Consumers, want) {
		t.Fatalf("consumer stats %+v, want %+v", st.Consumers, want)
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return names
}

func TestRetentionWaitsForEveryConsumer(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	j := openT(t, dir, Options{SegmentSize: 64 << 10})
	defer j.Close()
	a, err := j.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := j.Consumer("rules")
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for seq := range int64(n) {
		rec := sampleBatch(memory.DefaultAllocator, seq, 200)
		if err := j.Publish(ctx, "k", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	all := segmentFiles(t, dir)
	if len(all) < 4 {
		t.Fatalf("%d segments; the test needs several", len(all))
	}
	msgs := fetchN(t, a, n)
	if err := a.Commit(ctx, msgs[n-1]); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, all) {
		t.Fatalf("segments deleted while consumer rules has committed nothing: %v -> %v", all, got)
	}
	mid := n / 2
	bm := fetchN(t, b, mid+1)
	if err := b.Commit(ctx, bm[mid]); err != nil {
		t.Fatal(err)
	}
	release(bm)
	left := segmentFiles(t, dir)
	if len(left) >= len(all) {
		t.Fatalf("no segment deleted after both consumers committed past the first")
	}
	first, _ := parseSegmentName(left[0])
	if first > int64(mid+1) {
		t.Fatalf("oldest segment starts at %d, but rules still needs offset %d", first, mid+1)
	}
	if j.Stats().OldestOffset != first || j.Stats().Segments != len(left) {
		t.Fatalf("stats %+v disagree with files %v", j.Stats(), left)
	}
	// Everything rules has not committed is still readable.
	rest := fetchN(t, b, n-mid-1)
	for _, m := range rest {
		checkBatch(t, m.Record, m.Offset, 200)
	}
	release(rest)

	// A consumer registered now starts at the oldest retained offset and
	// holds retention from there.
	late, err := j.Consumer("late")
	if err != nil {
		t.Fatal(err)
	}
	lm := fetchN(t, late, 1)
	if lm[0].Offset != first {
		t.Fatalf("late consumer starts at %d, want %d", lm[0].Offset, first)
	}
	release(lm)
	if err := b.Commit(ctx, msgs[n-1]); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); !slices.Equal(got, left) {
		t.Fatalf("segments deleted while consumer late needs them: %v -> %v", left, got)
	}
	if err := j.RemoveConsumer("late"); err == nil {
		t.Fatal("removed an open consumer")
	}
	if err := late.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.RemoveConsumer("late"); err != nil {
		t.Fatal(err)
	}
	release(msgs)
	got := segmentFiles(t, dir)
	if len(got) != 1 {
		t.Fatalf("after every consumer committed everything %d segments remain: %v", len(got), got)
	}
	if err := j.RemoveConsumer("late"); err == nil {
		t.Fatal("removed an unknown consumer")
	}
	if _, err := os.Stat(filepath.Join(dir, "consumers", "late.ckpt")); !os.IsNotExist(err) {
		t.Fatalf("checkpoint of a removed consumer: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNoConsumersKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{SegmentSize: 32 << 10})
	defer j.Close()
	for seq := range int64(20) {
		rec := sampleBatch(memory.DefaultAllocator, seq, 200)
		if err := j.Publish(context.Background(), "k", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if n := len(segmentFiles(t, dir)); n != j.Stats().Segments || n < 3 {
		t.Fatalf("%d segment files, stats say %d", n, j.Stats().Segments)
	}
	if j.Stats().OldestOffset != 0 {
		t.Fatal("data deleted without any consumer")
	}
}

func TestOpenRejectsSecondOpenerAndBadNames(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{})
	defer j.Close()
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open of the same directory: %v", err)
	}
	for _, name := range []string{"", ".hidden", "a/b", "../x", strings.Repeat("x", 129)} {
		if _, err := j.Consumer(name); err == nil {
			t.Fatalf("consumer name %q accepted", name)
		}
	}
}

// A crash between a checkpoint and the deletions it allows leaves old
// segments behind: the next Open deletes them.
func TestOpenFinishesInterruptedRetention(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{SegmentSize: 32 << 10})
	c, err := j.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for seq := range int64(20) {
		rec := sampleBatch(memory.DefaultAllocator, seq, 200)
		if err := j.Publish(context.Background(), "k", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	before := segmentFiles(t, dir)
	if err := writeFileAtomic(filepath.Join(dir, "consumers", "archiver.ckpt"), encodeCheckpoint(20)); err != nil {
		t.Fatal(err)
	}
	j = openT(t, dir, Options{SegmentSize: 32 << 10})
	defer j.Close()
	after := segmentFiles(t, dir)
	if len(before) < 3 || len(after) != 1 || after[0] != before[len(before)-1] {
		t.Fatalf("segments %v after Open, before %v: want only the newest", after, before)
	}
	if st := j.Stats(); st.LastOffset != 19 || st.Consumers[0].Lag != 0 {
		t.Fatalf("stats %+v", st)
	}
}
