package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/sample"
)

func batch(rows [][2]string) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	ts := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i, r := range rows {
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.Add(time.Duration(i) * time.Second).UnixNano()))
		b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("p")
		b.Field(sample.IdxSource).(*array.StringBuilder).Append(r[0])
		b.Field(sample.IdxModule).(*array.StringBuilder).Append("http")
		b.Field(sample.IdxTarget).(*array.StringBuilder).Append("127.0.0.1")
		b.Field(sample.IdxMetric).(*array.StringBuilder).Append(r[1])
		b.Field(sample.IdxValue).(*array.Float64Builder).Append(float64(i))
		b.Field(sample.IdxText).(*array.StringBuilder).AppendNull()
		b.Field(sample.IdxUnit).(*array.StringBuilder).Append("s")
		mb := b.Field(sample.IdxLabels).(*array.MapBuilder)
		mb.Append(true)
		mb.KeyBuilder().(*array.StringBuilder).Append("k")
		mb.ItemBuilder().(*array.StringBuilder).Append("v")
		b.Field(sample.IdxNode).(*array.StringBuilder).Append("n1")
	}
	return b.NewRecordBatch()
}

func TestTailFiltersAndPrints(t *testing.T) {
	br := kafkatest.Start(t, 2, "recon.samples")
	tp, err := kafkabus.Open(kafkabus.Options{Brokers: br.Addrs, Topic: "recon.samples"})
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	rec := batch([][2]string{{"web", "duration"}, {"web", "code"}, {"dns", "rtt"}, {"web", "duration"}})
	defer rec.Release()
	if err := tp.Publish(context.Background(), "web", rec); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out, errOut bytes.Buffer
	code := run(ctx, []string{"--brokers", strings.Join(br.Addrs, ","), "--from-beginning", "--json",
		"--source", "web", "--metric", "duration", "-n", "2"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), out.String())
	}
	for _, l := range lines {
		var s jsonSample
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatal(err)
		}
		if s.Source != "web" || s.Metric != "duration" || s.Labels["k"] != "v" || s.Unit == nil || *s.Unit != "s" {
			t.Fatalf("line %s", l)
		}
	}

	out.Reset()
	code = run(ctx, []string{"--brokers", br.Addrs[0], "--from-beginning", "--source", "dns", "-n", "1"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "SOURCE") || !strings.Contains(out.String(), "dns") || !strings.Contains(out.String(), "rtt") {
		t.Fatalf("table output:\n%s", out.String())
	}
}
