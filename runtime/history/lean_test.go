package history

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
)

// The lean decoder reads the ts and value chunks whatever their encoding,
// page version and page size: files written by parquet-go with other
// settings than the archiver's answer like the archiver's.
type deltaRow struct {
	Ts     int64    `parquet:"ts,delta"`
	Source string   `parquet:"source,dict"`
	Metric string   `parquet:"metric,dict"`
	Target string   `parquet:"target,dict"`
	Value  *float64 `parquet:"value,optional,dict"`
}

type splitRow struct {
	Ts     int64    `parquet:"ts,plain"`
	Source string   `parquet:"source"`
	Metric string   `parquet:"metric"`
	Target string   `parquet:"target"`
	Value  *float64 `parquet:"value,optional,split"`
}

func TestLeanDecoderEncodings(t *testing.T) {
	hour := time.Date(2026, 2, 3, 4, 0, 0, 0, time.UTC)
	const n = 3000
	value := func(i int) *float64 {
		if i%13 == 5 {
			return nil
		}
		v := float64(i%7) + float64(i)/1000
		return &v
	}
	ts := func(i int) int64 { return hour.Add(time.Duration(i) * time.Second).UnixNano() }
	for _, c := range []struct {
		name  string
		write func(f *os.File) error
	}{
		{"delta ts, dictionary values, v1 pages", func(f *os.File) error {
			w := pq.NewGenericWriter[deltaRow](f, pq.PageBufferSize(700), pq.DataPageVersion(1))
			for i := range n {
				if _, err := w.Write([]deltaRow{{Ts: ts(i), Source: "web", Metric: "duration", Target: "a", Value: value(i)}}); err != nil {
					return err
				}
			}
			return w.Close()
		}},
		{"plain ts, byte stream split values, v2 pages", func(f *os.File) error {
			w := pq.NewGenericWriter[splitRow](f, pq.PageBufferSize(900), pq.DataPageVersion(2), pq.Compression(&pq.Zstd))
			for i := range n {
				if _, err := w.Write([]splitRow{{Ts: ts(i), Source: "web", Metric: "duration", Target: "a", Value: value(i)}}); err != nil {
					return err
				}
			}
			return w.Close()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			pdir := filepath.Join(dir, "samples", "date="+hour.Format(time.DateOnly), "hour="+hour.Format("15"))
			if err := os.MkdirAll(pdir, 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filepath.Join(pdir, "x.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.write(f); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			a, err := New(Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			// Raw points of a middle stretch: pages before and after it
			// are skipped.
			from, to := 1234, 1834
			res, err := a.Series(context.Background(), Query{Source: "web", Metric: "duration", Target: "a",
				From: time.Unix(0, ts(from)), To: time.Unix(0, ts(to)), Points: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var wantT []int64
			var wantV []float64
			for i := from; i < to; i++ {
				if v := value(i); v != nil {
					wantT, wantV = append(wantT, ts(i)), append(wantV, *v)
				}
			}
			if len(res.Series) != 1 || !res.Series[0].Raw || len(res.Series[0].T) != len(wantT) {
				t.Fatalf("got %+v, want %d raw points", res.Series, len(wantT))
			}
			for i := range wantT {
				if res.Series[0].T[i] != wantT[i] || res.Series[0].V[i] != wantV[i] {
					t.Fatalf("point %d: (%d, %v), want (%d, %v)", i, res.Series[0].T[i], res.Series[0].V[i], wantT[i], wantV[i])
				}
			}
			// The file's index was summarised by the lean decoder: every
			// run's summary matches the points.
			var idx *seriesIndex
			for k, v := range a.cache.files {
				if filepath.Base(k.path) == "x.parquet" {
					idx = v
				}
			}
			if idx == nil || len(idx.groups) == 0 || !idx.groups[0].lean {
				t.Fatalf("the file's index is not readable by the lean decoder: %+v", idx)
			}
			run := idx.groups[0].runs[0]
			var cnt int64
			var sum float64
			lo, hi := math.Inf(1), math.Inf(-1)
			for i := range n {
				if v := value(i); v != nil {
					cnt++
					sum += *v
					lo, hi = math.Min(lo, *v), math.Max(hi, *v)
				}
			}
			if !run.agg.ok || run.agg.count != cnt || run.agg.min != lo || run.agg.max != hi || math.Abs(run.agg.sum-sum) > 1e-9*sum ||
				run.agg.tsMin != ts(0) || run.agg.tsMax != ts(n-1) {
				t.Fatalf("run summary %+v, want count %d min %v max %v sum %v", run.agg, cnt, lo, hi, sum)
			}
		})
	}
}
