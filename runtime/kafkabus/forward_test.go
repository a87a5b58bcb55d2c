package kafkabus

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/sample"
)

// The forwarder reads and encodes the next round while Kafka acknowledges
// the current one, yet rounds reach Kafka in journal order, exactly once,
// and the journal checkpoint ends at the last batch: a restarted
// forwarder has nothing to send.
func TestForwarderRoundsInOrder(t *testing.T) {
	b := kafkatest.Start(t, 1, "recon.samples")
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	tp := open(t, b, "recon.samples", Options{})
	const per, batches = 300, 40
	for i := range batches {
		rec := batch("gen", i*per, per)
		if err := j.Publish(context.Background(), "gen", rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	src, err := j.Consumer("kafka")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fwd := NewForwarder(src, tp, nil)
	fwd.MaxBatches = 3 // many small rounds, so that reading overlaps sending
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()

	c, err := tp.Consumer("check")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fctx, fcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer fcancel()
	next := 0
	for next < per*batches {
		m, err := c.Fetch(fctx)
		if err != nil {
			t.Fatalf("fetch after seq %d: %v", next, err)
		}
		vals := m.Record.Column(sample.IdxValue).(*array.Float64)
		for i := range vals.Len() {
			if got := int(vals.Value(i)); got != next {
				t.Fatalf("seq %d arrived where %d was due", got, next)
			}
			next++
		}
		m.Record.Release()
	}
	for fwd.Stats().Offset != batches-1 {
		if fctx.Err() != nil {
			t.Fatalf("forwarder committed up to %d, want %d", fwd.Stats().Offset, batches-1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, cs := range j.Stats().Consumers {
		if cs.Name == "kafka" && (cs.Lag != 0 || cs.Committed != batches-1) {
			t.Errorf("journal checkpoint at %d with %d batches behind, want %d and 0", cs.Committed, cs.Lag, batches-1)
		}
	}
}
