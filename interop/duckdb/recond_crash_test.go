package duckdb

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconmon/recon/sources/generator"
)

// TestRecondCrashExactlyOnce runs a generator at a high rate, kills recond
// with SIGKILL at random moments (5 times) and restarts it each time, then
// stops it cleanly. Every sequence number recond had recorded as accepted
// before each kill is in the archive exactly once, no sequence number is
// archived twice, and every file is readable.
func TestRecondCrashExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	planFile := filepath.Join(dir, "crash.recon")
	const src = `pipeline "crash"

source gen generator {
  period  = 1s
  timeout = 900ms
  rate    = 100000
  series  = 50
}
`
	if err := os.WriteFile(planFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	statePath := generator.StatePath(data, "crash", "gen")
	type span struct{ first, last int64 }
	var spans []span
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

	run := func(crash bool) {
		st, err := generator.ReadState(statePath)
		if err != nil {
			t.Fatal(err)
		}
		first := int64(st.Next)
		p := recondStart(t, planFile, data, recondFreePort(t))
		time.Sleep(1500*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second))))
		if crash {
			p.kill(t)
		} else {
			p.stop(t)
		}
		st, err = generator.ReadState(statePath)
		if err != nil {
			t.Fatal(err)
		}
		if st.Accepted >= first {
			spans = append(spans, span{first, st.Accepted})
		}
	}
	for range 5 {
		run(true)
	}
	run(false)
	if len(spans) < 3 {
		t.Fatalf("only %d of 6 runs had accepted samples: the test proves too little", len(spans))
	}

	db := recondOpenDuckDB(t)
	glob := filepath.Join(data, "archive", "samples", "**", "*.parquet")
	from := fmt.Sprintf("read_parquet('%s', hive_partitioning = true)", glob)
	seqs := from + " WHERE source = 'gen' AND metric = 'seq'"
	total := recondQueryInt(t, db, "SELECT count(*) FROM "+seqs)
	distinct := recondQueryInt(t, db, "SELECT count(DISTINCT value) FROM "+seqs)
	if total != distinct {
		t.Errorf("%d generator rows but %d distinct sequence numbers: %d duplicates", total, distinct, total-distinct)
	}
	for _, s := range spans {
		q := fmt.Sprintf("SELECT count(DISTINCT value) FROM %s AND value BETWEEN %d AND %d", seqs, s.first, s.last)
		if n := recondQueryInt(t, db, q); n != s.last-s.first+1 {
			t.Errorf("sequence numbers %d..%d were accepted; the archive holds %d of these %d", s.first, s.last, n, s.last-s.first+1)
		}
	}
	files, err := filepath.Glob(filepath.Join(data, "archive", "samples", "*", "*", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("archive files: %v, %v", files, err)
	}
	var sum int64
	for _, f := range files {
		sum += recondQueryInt(t, db, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s')", f))
	}
	if all := recondQueryInt(t, db, "SELECT count(*) FROM "+from); sum != all {
		t.Errorf("files read one by one hold %d rows, the whole archive %d", sum, all)
	}
	t.Logf("%d runs with accepted samples, %d generator rows archived, %d files", len(spans), total, len(files))
}
