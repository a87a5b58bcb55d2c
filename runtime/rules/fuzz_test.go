package rules

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	pq "github.com/parquet-go/parquet-go"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/sample"
)

// FuzzParseScript: a test script (reconc test reads user files) never
// panics the parser.
func FuzzParseScript(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txtar")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("-- r.json --\n{}\n-- script --\nseries a b start=1s step=-1s: 1+2x3 _ 4x\nexpect 1s r ok previous=x value=y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseScript("fuzz.txtar", data)
		if err == nil && s == nil {
			t.Fatal("nil script without an error")
		}
	})
}

// FuzzRestore: a damaged state file is refused with an error, never a
// panic, and never half applied.
func FuzzRestore(f *testing.F) {
	p := benchPlan(2)
	dir := f.TempDir()
	e, err := New(Options{Plan: p, DataDir: dir, Logger: discardLogger()})
	if err != nil {
		f.Fatal(err)
	}
	rec := benchBatch(2, 3, 0)
	defer rec.Release()
	if err := e.Ingest(rec); err != nil {
		f.Fatal(err)
	}
	if err := e.Save(); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, StateFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := New(Options{Plan: p, DataDir: d, Logger: discardLogger()})
		if err != nil {
			return
		}
		// A state that loads must be usable.
		if err := e.Ingest(rec); err != nil {
			t.Fatal(err)
		}
		e.Eval(e.maxTime())
	})
}

// FuzzArchiveFile: a damaged Parquet file in the archive is an error for
// reconc backtest, never a panic or a wrong-sized record.
func FuzzArchiveFile(f *testing.F) {
	type row struct {
		Ts     int64    `parquet:"ts"`
		Source string   `parquet:"source,dict"`
		Module string   `parquet:"module,dict"`
		Metric string   `parquet:"metric"`
		Value  *float64 `parquet:"value,optional"`
	}
	var buf bytes.Buffer
	v := 1.5
	rows := []row{{Ts: 1e9, Source: "web", Module: "http", Metric: "duration", Value: &v}, {Ts: 2e9, Source: "web", Module: "http", Metric: "code"}}
	if err := pq.Write(&buf, rows); err != nil {
		f.Fatal(err)
	}
	need := map[string]bool{sample.ColMetric: true, sample.ColValue: true}
	// The undamaged file reads back: dictionary and plain strings, a null.
	good := filepath.Join(f.TempDir(), "good.parquet")
	if err := os.WriteFile(good, buf.Bytes(), 0o644); err != nil {
		f.Fatal(err)
	}
	var got []string
	err := newArchiveReader(need, nil, 0, 1<<62).readFile(good, func(rec arrow.RecordBatch) error {
		defer rec.Release()
		for i := 0; i < int(rec.NumRows()); i++ {
			got = append(got, rec.Column(sample.IdxSource).ValueStr(i)+"/"+rec.Column(sample.IdxMetric).ValueStr(i)+"="+rec.Column(sample.IdxValue).ValueStr(i))
		}
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != "web/duration=1.5" || got[1] != "web/code=(null)" {
		f.Fatalf("reading a valid file: %v %q", err, got)
	}
	// With the row filters of a rule on web's durations, only that row.
	eq := func(col, lit string) *plan.Expr {
		return &plan.Expr{Op: "==", Args: []*plan.Expr{{Op: "col", Name: col}, {Op: "str", Str: lit}}}
	}
	filters := rowFilters(&plan.Plan{Rules: []plan.Rule{{From: []string{"web"}, Where: eq(sample.ColMetric, "duration")}}})
	got = got[:0]
	err = newArchiveReader(need, filters, 0, 1<<62).readFile(good, func(rec arrow.RecordBatch) error {
		defer rec.Release()
		for i := 0; i < int(rec.NumRows()); i++ {
			got = append(got, rec.Column(sample.IdxSource).ValueStr(i)+"/"+rec.Column(sample.IdxMetric).ValueStr(i)+"="+rec.Column(sample.IdxValue).ValueStr(i))
		}
		return nil
	})
	if err != nil || len(got) != 1 || got[0] != "web/duration=1.5" {
		f.Fatalf("reading a valid file with row filters: %v %q", err, got)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add([]byte("PAR1PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "f.parquet")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, fs := range [][]rowFilter{nil, filters} {
			rd := newArchiveReader(need, fs, 0, 1<<62)
			_ = rd.readFile(path, func(rec arrow.RecordBatch) error {
				defer rec.Release()
				for i := 0; i < int(rec.NumCols()); i++ {
					if rec.Column(i).Len() != int(rec.NumRows()) {
						t.Fatalf("column %d has %d rows, record %d", i, rec.Column(i).Len(), rec.NumRows())
					}
				}
				return nil
			})
		}
	})
}

// A file of 1,189 bytes whose page header claims a 1.2 GB page (found by
// FuzzArchiveFile): the page checker refuses it before the Parquet reader
// allocates what the header claims.
func TestArchiveFileHugePageClaim(t *testing.T) {
	raw, err := os.ReadFile("testdata/fuzz/FuzzArchiveFile/26ffd4bc9ec4bb67")
	if err != nil {
		t.Fatal(err)
	}
	data, err := fuzzCorpusBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f.parquet")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	need := map[string]bool{sample.ColMetric: true, sample.ColValue: true}
	err = newArchiveReader(need, nil, 0, 1<<62).readFile(path, func(rec arrow.RecordBatch) error {
		rec.Release()
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "claims") {
		t.Fatalf("reading a file whose page claims 1.2 GB: %v, want the page checker's refusal", err)
	}
}

// fuzzCorpusBytes decodes a "go test fuzz v1" file of one []byte.
func fuzzCorpusBytes(raw []byte) ([]byte, error) {
	s := string(raw)
	i := strings.Index(s, "[]byte(")
	j := strings.LastIndex(s, ")")
	if i < 0 || j < i {
		return nil, fmt.Errorf("not a fuzz corpus file")
	}
	b, err := strconv.Unquote(s[i+len("[]byte(") : j])
	return []byte(b), err
}
