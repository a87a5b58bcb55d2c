package duckdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/batch"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/sinks/parquet"
	"github.com/reconmon/recon/sources/snmp/snmptest"
	"github.com/reconmon/recon/sources/snmptrap"
)

// snmpPipeline is the path a trap takes in recond: listener → batcher →
// journal → Parquet archiver, each the real implementation.
type snmpPipeline struct {
	dir     string
	journal *journal.Journal
	batcher *batch.Batcher
	arch    *parquet.Archiver
	stop    context.CancelFunc
	done    chan error
}

func snmpQuiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newSNMPPipeline opens a journal and starts a batcher and an archiver on
// it in a temp dir; everything is stopped when the test ends.
func newSNMPPipeline(tb testing.TB, batchOpts batch.Options) *snmpPipeline {
	tb.Helper()
	p := &snmpPipeline{dir: tb.TempDir(), done: make(chan error, 1)}
	j, err := journal.Open(filepath.Join(p.dir, "journal"), journal.Options{Logger: snmpQuiet()})
	if err != nil {
		tb.Fatal(err)
	}
	p.journal = j
	cons, err := j.Consumer("archive")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := parquet.DefaultConfig(filepath.Join(p.dir, "archive"))
	cfg.FlushInterval = 200 * time.Millisecond
	cfg.Compact = false
	p.arch, err = parquet.NewArchiver(parquet.Options{Config: cfg, Consumer: cons, Logger: snmpQuiet()})
	if err != nil {
		tb.Fatal(err)
	}
	batchOpts.Logger = snmpQuiet()
	p.batcher = batch.New(j, batchOpts)
	p.batcher.Start()
	ctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	go func() { p.done <- p.arch.Run(ctx) }()
	tb.Cleanup(func() {
		p.close(tb)
		_ = cons.Close()
		_ = j.Close()
	})
	return p
}

// close stops the batcher (publishing what is left) and the archiver; it
// may be called more than once.
func (p *snmpPipeline) close(tb testing.TB) {
	if p.stop == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.batcher.Close(ctx); err != nil {
		tb.Errorf("batcher close: %v", err)
	}
	p.stop()
	p.stop = nil
	if err := <-p.done; err != nil {
		tb.Errorf("archiver: %v", err)
	}
}

// startTrapListener runs an snmp_trap listener on a free loopback port,
// writing through the pipeline's batcher; attrs overlay the defaults.
func (p *snmpPipeline) startTrapListener(tb testing.TB, over module.Attrs) (string, *snmptrap.Stats) {
	tb.Helper()
	a := module.Attrs{}
	for _, f := range snmptrap.Spec.Fields {
		if f.Default != nil {
			a[f.Name] = f.Default
		}
	}
	a[snmptrap.FieldListen] = fmt.Sprintf("127.0.0.1:%d", snmptest.FreeUDPPort(tb))
	for k, v := range over {
		a[k] = v
	}
	if err := snmptrap.Spec.Validate(a); err != nil {
		tb.Fatal(err)
	}
	l, err := snmptrap.Spec.NewListener(module.Env{Pipeline: "it", Source: "traps", Node: "n1", Attrs: a, Logger: snmpQuiet()})
	if err != nil {
		tb.Fatal(err)
	}
	w := p.batcher.Writer(batch.Identity{Pipeline: "it", Source: "traps", Module: "snmp_trap", Node: "n1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Listen(ctx, w) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("listener: %v", err)
		}
	})
	addr := a.String(snmptrap.FieldListen)
	snmptest.WaitUDPBound(tb, addr)
	return addr, snmptrap.StatsOf(l)
}

// snmpHandled is how many datagrams the listener has dealt with.
func snmpHandled(s *snmptrap.Stats) uint64 {
	return s.Accepted.Load() + s.BadCommunity.Load() + s.AuthFailures.Load() + s.Malformed.Load() + s.BadVersion.Load()
}

// settle waits until the listener handled want datagrams and everything
// the batcher accepted is in Parquet files.
func (p *snmpPipeline) settle(tb testing.TB, s *snmptrap.Stats, want uint64, within time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for snmpHandled(s) < want {
		if time.Now().After(deadline) {
			tb.Fatalf("listener handled %d of %d datagrams", snmpHandled(s), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := p.batcher.Flush(ctx); err != nil {
		tb.Fatalf("batcher flush: %v", err)
	}
	for p.arch.Stats().RowsWritten < p.batcher.Accepted() {
		if time.Now().After(deadline) {
			tb.Fatalf("archiver wrote %d of %d rows: %+v", p.arch.Stats().RowsWritten, p.batcher.Accepted(), p.arch.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// db opens DuckDB with a view `samples` over the pipeline's archive.
func (p *snmpPipeline) db(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	glob := filepath.Join(p.dir, "archive", "samples", "**", "*.parquet")
	if _, err := db.Exec("CREATE VIEW samples AS SELECT * FROM read_parquet('" + glob + "', hive_partitioning = true)"); err != nil {
		tb.Fatal(err)
	}
	return db
}
