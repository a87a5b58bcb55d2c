package rules

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/sample"
)

// BacktestOptions configure a replay of archived samples.
type BacktestOptions struct {
	Plan *plan.Plan
	// Archive is the archive root (ARCHIVE/samples/date=…/hour=…/*.parquet).
	Archive string
	// From and To bound the replayed event times: [From, To).
	From, To time.Time
	Logger   *slog.Logger
}

// BacktestResult is what a replay found.
type BacktestResult struct {
	Events []alert.Event
	Stats  []Stats
	// Samples read from the archive within [From, To); Files and RowGroups
	// read (others were skipped by their partition or statistics).
	Samples, Files, RowGroups int64
}

// Backtest replays the archived samples of [From, To) through the plan's
// rules at event time, hour partition by hour partition, and returns the
// alert transitions. It reads Parquet directly, skipping partitions and row
// groups whose time statistics lie outside the range.
func Backtest(ctx context.Context, opts BacktestOptions) (*BacktestResult, error) {
	if !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("backtest: --from %s is not before --to %s", opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	e, err := New(Options{Plan: opts.Plan, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	hours, err := archiveHours(filepath.Join(opts.Archive, "samples"), opts.From, opts.To)
	if err != nil {
		return nil, err
	}
	rd := newArchiveReader(neededColumns(opts.Plan), opts.From.UnixNano(), opts.To.UnixNano())
	defer rd.release()
	res := &BacktestResult{}
	for _, h := range hours {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e.freeze()
		for _, path := range h.files {
			if err := rd.readFile(path, e.Ingest); err != nil {
				return nil, fmt.Errorf("backtest: %s: %w", path, err)
			}
		}
		e.thaw()
		res.Events = append(res.Events, e.Eval(time.Time{})...)
	}
	res.Events = append(res.Events, e.Eval(opts.To)...)
	res.Stats = e.Stats()
	res.Samples, res.Files, res.RowGroups = rd.samples, rd.files, rd.rowGroups
	return res, nil
}

// freeze makes the late check of every rule use its current watermark
// until thaw: an hour partition's files are sorted by series, not by time,
// so within the hour rows arrive out of order but never behind the
// previous hour.
func (e *Engine) freeze() {
	for _, r := range e.rules {
		r.frozen = r.watermark()
		if r.frozen == none {
			r.frozen = math.MinInt64 + 1
		}
	}
}

func (e *Engine) thaw() {
	for _, r := range e.rules {
		r.frozen = none
	}
}

type hourPart struct {
	start int64
	files []string
}

// archiveHours lists the hour partitions overlapping [from, to), in time
// order, each with its Parquet files.
func archiveHours(root string, from, to time.Time) ([]hourPart, error) {
	days, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("backtest: archive: %w", err)
	}
	var out []hourPart
	for _, d := range days {
		date, ok := strings.CutPrefix(d.Name(), "date=")
		if !d.IsDir() || !ok {
			continue
		}
		day, err := time.Parse("2006-01-02", date)
		if err != nil || !day.Before(to) || !day.Add(24*time.Hour).After(from) {
			continue
		}
		hours, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("backtest: archive: %w", err)
		}
		for _, h := range hours {
			hh, ok := strings.CutPrefix(h.Name(), "hour=")
			if !h.IsDir() || !ok {
				continue
			}
			t, err := time.Parse("2006-01-02 15", date+" "+hh)
			if err != nil || !t.Before(to) || !t.Add(time.Hour).After(from) {
				continue
			}
			files, err := filepath.Glob(filepath.Join(root, d.Name(), h.Name(), "*.parquet"))
			if err != nil {
				return nil, err
			}
			sort.Strings(files)
			out = append(out, hourPart{start: t.UnixNano(), files: files})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out, nil
}

// neededColumns lists the sample columns the plan's rules read besides ts,
// source and module (which routing always reads).
func neededColumns(p *plan.Plan) map[string]bool {
	need := map[string]bool{}
	var walk func(e *plan.Expr)
	walk = func(e *plan.Expr) {
		if e == nil {
			return
		}
		switch e.Op {
		case "col":
			need[e.Name] = true
		case "label":
			need[sample.ColLabels] = true
		}
		for _, a := range e.Args {
			walk(a)
		}
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		walk(r.Where)
		walk(r.Clear)
		for k := range r.GroupBy {
			walk(&r.GroupBy[k])
		}
		for _, c := range r.Clauses {
			walk(c.When)
			if c.Pattern != nil {
				walk(c.Pattern.First)
				walk(c.Pattern.Then)
			}
		}
	}
	return need
}

// archiveReader turns archive row groups into sample.Schema records.
type archiveReader struct {
	need      map[string]bool
	from, to  int64
	b         *array.RecordBuilder
	vals      []pq.Value
	keep      []bool
	ts        []int64
	samples   int64
	files     int64
	rowGroups int64
}

func newArchiveReader(need map[string]bool, from, to int64) *archiveReader {
	return &archiveReader{
		need: need, from: from, to: to, b: array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema),
		vals: make([]pq.Value, 4096),
	}
}

func (a *archiveReader) release() { a.b.Release() }

// readFile reads the file's row groups within the range and hands each as a
// record to ingest. A damaged file is an error, never a panic.
func (a *archiveReader) readFile(path string, ingest func(arrow.RecordBatch) error) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt parquet file: %v", p)
		}
	}()
	pf, err := pq.OpenFile(f, fi.Size(), pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return err
	}
	a.files++
	schema := pf.Schema()
	lookup := func(path ...string) (int, error) {
		l, ok := schema.Lookup(path...)
		if !ok {
			return 0, fmt.Errorf("no column %s: not a %s file", strings.Join(path, "."), sample.SchemaVersion)
		}
		return l.ColumnIndex, nil
	}
	tsCol, err := lookup(sample.ColTs)
	if err != nil {
		return err
	}
	for g, rg := range pf.RowGroups() {
		if min, max, ok := tsStats(pf, g, tsCol); ok && (max < a.from || min >= a.to) {
			continue
		}
		a.rowGroups++
		if err := a.readRowGroup(rg, lookup, tsCol); err != nil {
			return err
		}
		rec := a.b.NewRecordBatch()
		if rec.NumRows() > 0 {
			a.samples += rec.NumRows()
			err = ingest(rec)
		}
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// tsStats returns the row group's ts range from the footer statistics.
func tsStats(f *pq.File, g, col int) (lo, hi int64, ok bool) {
	rgs := f.Metadata().RowGroups
	if g >= len(rgs) || col >= len(rgs[g].Columns) {
		return 0, 0, false
	}
	st := rgs[g].Columns[col].MetaData.Statistics
	mn, mx := st.MinValue, st.MaxValue
	if len(mn) != 8 || len(mx) != 8 {
		mn, mx = st.Min, st.Max
	}
	if len(mn) != 8 || len(mx) != 8 {
		return 0, 0, false
	}
	return int64(binary.LittleEndian.Uint64(mn)), int64(binary.LittleEndian.Uint64(mx)), true
}

// eachValue calls f with every value of column col of rg, in row order.
func (a *archiveReader) eachValue(rg pq.RowGroup, col int, f func(v *pq.Value)) error {
	pages := rg.ColumnChunks()[col].Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r := p.Values()
		for {
			n, err := r.ReadValues(a.vals)
			for i := range a.vals[:n] {
				f(&a.vals[i])
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				pq.Release(p)
				return err
			}
			if n == 0 {
				pq.Release(p)
				return errors.New("page reader made no progress")
			}
		}
		pq.Release(p)
	}
}

func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// readRowGroup fills the record builder with the rows of rg inside the
// range; columns no rule reads are left empty.
func (a *archiveReader) readRowGroup(rg pq.RowGroup, lookup func(...string) (int, error), tsCol int) error {
	n := int(rg.NumRows())
	a.ts, a.keep = a.ts[:0], a.keep[:0]
	if err := a.eachValue(rg, tsCol, func(v *pq.Value) {
		t := v.Int64()
		a.ts = append(a.ts, t)
		a.keep = append(a.keep, t >= a.from && t < a.to)
	}); err != nil {
		return fmt.Errorf("column ts: %w", err)
	}
	if len(a.ts) != n {
		return fmt.Errorf("column ts has %d values for %d rows", len(a.ts), n)
	}
	kept := 0
	tb := a.b.Field(sample.IdxTs).(*array.TimestampBuilder)
	for i, t := range a.ts {
		if a.keep[i] {
			tb.Append(arrow.Timestamp(t))
			kept++
		}
	}
	for idx, f := range sample.Schema.Fields() {
		if idx == sample.IdxTs {
			continue
		}
		bld := a.b.Field(idx)
		read := f.Name == sample.ColSource || f.Name == sample.ColModule || a.need[f.Name]
		if !read {
			if f.Nullable {
				bld.AppendNulls(kept)
			} else {
				bld.AppendEmptyValues(kept)
			}
			continue
		}
		var err error
		switch f.Name {
		case sample.ColValue:
			err = a.readDoubles(rg, lookup, bld.(*array.Float64Builder))
		case sample.ColLabels:
			err = a.readLabels(rg, lookup, bld.(*array.MapBuilder))
		default:
			err = a.readStrings(rg, lookup, f.Name, bld.(*array.StringBuilder))
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", f.Name, err)
		}
		if bld.Len() != tb.Len() {
			return fmt.Errorf("column %s has %d values for %d rows", f.Name, bld.Len(), tb.Len())
		}
	}
	return nil
}

func (a *archiveReader) readStrings(rg pq.RowGroup, lookup func(...string) (int, error), name string, sb *array.StringBuilder) error {
	col, err := lookup(name)
	if err != nil {
		return err
	}
	row := 0
	return a.eachValue(rg, col, func(v *pq.Value) {
		if row < len(a.keep) && a.keep[row] {
			if v.IsNull() {
				sb.AppendNull()
			} else {
				sb.Append(bytesString(v.ByteArray()))
			}
		}
		row++
	})
}

func (a *archiveReader) readDoubles(rg pq.RowGroup, lookup func(...string) (int, error), fb *array.Float64Builder) error {
	col, err := lookup(sample.ColValue)
	if err != nil {
		return err
	}
	row := 0
	return a.eachValue(rg, col, func(v *pq.Value) {
		if row < len(a.keep) && a.keep[row] {
			if v.IsNull() {
				fb.AppendNull()
			} else {
				fb.Append(v.Double())
			}
		}
		row++
	})
}

// readLabels rebuilds the labels map from its key and value leaf columns:
// repetition level 0 starts a row; a null key is an empty map.
func (a *archiveReader) readLabels(rg pq.RowGroup, lookup func(...string) (int, error), mb *array.MapBuilder) error {
	kcol, err := lookup(sample.ColLabels, "key_value", "key")
	if err != nil {
		return err
	}
	vcol, err := lookup(sample.ColLabels, "key_value", "value")
	if err != nil {
		return err
	}
	var keys, values []string
	var starts []int
	var present []bool
	if err := a.eachValue(rg, kcol, func(v *pq.Value) {
		if v.RepetitionLevel() == 0 {
			starts = append(starts, len(keys))
			present = append(present, !v.IsNull())
		}
		if !v.IsNull() {
			keys = append(keys, string(v.ByteArray()))
		}
	}); err != nil {
		return err
	}
	if err := a.eachValue(rg, vcol, func(v *pq.Value) {
		if !v.IsNull() || v.DefinitionLevel() > 0 {
			values = append(values, string(v.ByteArray()))
		}
	}); err != nil {
		return err
	}
	if len(starts) != len(a.keep) {
		return fmt.Errorf("%d label rows for %d rows", len(starts), len(a.keep))
	}
	kb, vb := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
	for row, s := range starts {
		if !a.keep[row] {
			continue
		}
		mb.Append(true)
		if !present[row] {
			continue
		}
		end := len(keys)
		if row+1 < len(starts) {
			end = starts[row+1]
		}
		for k := s; k < end && k < len(values); k++ {
			kb.Append(keys[k])
			vb.Append(values[k])
		}
	}
	return nil
}

// BacktestMain implements `reconc backtest FILE --archive DIR --from T --to
// T [--format table|json]`: it loads the rules of FILE with load, replays
// the archive and prints the alert timeline. Exit code 0 on success, 2 on
// a usage or load error, 1 when the replay fails.
func BacktestMain(args []string, stdout, stderr io.Writer, load func(path string) (*plan.Plan, error)) int {
	fs := flag.NewFlagSet("reconc backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	archive := fs.String("archive", "", "archive root directory (holds samples/date=…/hour=…)")
	fromS := fs.String("from", "", "start of the replayed event time, RFC 3339 or YYYY-MM-DD (inclusive)")
	toS := fs.String("to", "", "end of the replayed event time, RFC 3339 or YYYY-MM-DD (exclusive)")
	format := fs.String("format", "table", "output: table or json (one alert event per line)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reconc backtest FILE --archive DIR --from T --to T [--format table|json]")
		fs.PrintDefaults()
	}
	// Accept the file before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if file == "" || *archive == "" || *fromS == "" || *toS == "" || (*format != "table" && *format != "json") {
		fs.Usage()
		return 2
	}
	from, err := parseTime(*fromS)
	if err != nil {
		fmt.Fprintf(stderr, "reconc backtest: --from: %v\n", err)
		return 2
	}
	to, err := parseTime(*toS)
	if err != nil {
		fmt.Fprintf(stderr, "reconc backtest: --to: %v\n", err)
		return 2
	}
	p, err := load(file)
	if err != nil {
		fmt.Fprintf(stderr, "reconc backtest: %v\n", err)
		return 2
	}
	start := time.Now()
	res, err := Backtest(context.Background(), BacktestOptions{Plan: p, Archive: *archive, From: from, To: to, Logger: discardLogger()})
	if err != nil {
		fmt.Fprintf(stderr, "reconc backtest: %v\n", err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		for i := range res.Events {
			if err := enc.Encode(&res.Events[i]); err != nil {
				fmt.Fprintf(stderr, "reconc backtest: %v\n", err)
				return 1
			}
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tRULE\tSEVERITY\tPREVIOUS\tGROUP\tVALUE\tMESSAGE")
		for _, ev := range res.Events {
			v := ""
			if !math.IsNaN(ev.Value) {
				v = fmtNum(ev.Value)
			}
			sev := ev.Severity.String()
			if ev.Repeat {
				sev += " (repeat)"
			}
			if ev.Flapping {
				sev += " (flapping)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Time.UTC().Format(time.RFC3339Nano), ev.Rule, sev, ev.Previous, ev.GroupString(), v, ev.Message)
		}
		tw.Flush()
	}
	var late uint64
	for _, s := range res.Stats {
		late += s.Late
	}
	fmt.Fprintf(stderr, "%d transitions; %d samples from %d files (%d row groups) in %s; %d late samples dropped\n",
		len(res.Events), res.Samples, res.Files, res.RowGroups, time.Since(start).Round(time.Millisecond), late)
	return 0
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-05-01T00:00:00Z) or a date (2026-05-01)", s)
}
