package generator

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/batch"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/sample"
)

func env(dir string, rate float64) module.Env {
	return module.Env{
		Pipeline: "p", Source: "gen", DataDir: dir, Period: time.Second,
		Attrs: module.Attrs{FieldRate: rate, FieldSeries: int64(3), FieldMetrics: int64(1), FieldPattern: PatternSeq},
	}
}

// seqs reads every generated value from the journal.
func seqs(t *testing.T, j *journal.Journal, consumer string) []float64 {
	t.Helper()
	c, err := j.Consumer(consumer)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []float64
	for j.Stats().LastOffset >= 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		m, err := c.Fetch(ctx)
		cancel()
		if err != nil {
			break
		}
		metric := m.Record.Column(sample.IdxMetric).(*array.String)
		val := m.Record.Column(sample.IdxValue).(*array.Float64)
		for i := range int(m.Record.NumRows()) {
			if metric.Value(i) == MetricSeq {
				out = append(out, val.Value(i))
			}
		}
		m.Record.Release()
	}
	return out
}

// The sequence continues across restarts, without reuse, and the state
// file records what the bus accepted.
func TestSequenceContinuesAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	b := batch.New(j, batch.Options{})
	runs := func(n int) {
		g, err := New(env(dir, 1000))
		if err != nil {
			t.Fatal(err)
		}
		w := b.Writer(batch.Identity{Pipeline: "p", Source: "gen", Module: "generator"})
		for range n {
			if res := g.Run(context.Background(), w); res.Status != sample.OK {
				t.Fatalf("run: %+v", res)
			}
			if err := b.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	runs(3) // first life
	life1 := seqs(t, j, "life1")
	st, err := ReadState(StatePath(dir, "p", "gen"))
	if err != nil {
		t.Fatal(err)
	}
	// Each run records what the bus had accepted by its start: at least
	// the first run's 1000 rows, not more than was written.
	if st.Accepted < 999 || st.Accepted > int64(len(life1))-1 || st.Next < uint64(len(life1)) {
		t.Fatalf("state after 3 runs: %+v with %d rows written; want 999 ≤ accepted < rows ≤ next", st, len(life1))
	}
	runs(2) // second life resumes after the reserved block
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := seqs(t, j, "all")
	if len(got) < len(life1)+1000 {
		t.Fatalf("%d samples after the restart, want at least %d", len(got), len(life1)+1000)
	}
	for i, v := range got {
		if i < len(life1) && v != float64(i) {
			t.Fatalf("first life: sample %d has sequence number %v, want %d", i, v, i)
		}
		if i > 0 && v <= got[i-1] {
			t.Fatalf("sequence went from %v to %v", got[i-1], v)
		}
	}
	if v := got[len(life1)]; v != float64(st.Next) {
		t.Errorf("after a restart the sequence starts at %v, want the reserved %d", v, st.Next)
	}
}

func TestBadStateFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	path := StatePath(dir, "p", "gen")
	g, err := New(env(dir, 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.saveState(); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(path, "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := New(env(dir, 10)); err == nil {
		t.Fatal("a corrupt state file was accepted: the sequence could restart at 0 and repeat numbers")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }

// FuzzReadState: a state file with any content is read or refused, never
// a panic, and what is accepted is consistent.
func FuzzReadState(f *testing.F) {
	f.Add([]byte(`{"next": 4096, "accepted": 1999}`))
	f.Add([]byte(`{"next": 0, "accepted": -1}`))
	f.Add([]byte(`{"next": 5, "accepted": 5}`))
	f.Add([]byte(`{not json`))
	f.Add([]byte(``))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "state.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := ReadState(path)
		if err == nil && st.Accepted >= 0 && uint64(st.Accepted) >= st.Next {
			t.Fatalf("accepted %+v: accepted must be below next", st)
		}
	})
}
