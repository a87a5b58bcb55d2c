package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/kafkarole"
	"github.com/reconmon/recon/sinks/parquet"
)

// TestKafkaArchiversCompact: two archivers of one group share an archive
// and compact it while both keep writing late rows into the hours being
// compacted, and while the group rebalances (a member leaves, another
// joins). DuckDB then finds every sequence number exactly once, and the
// closed hours were compacted.
func TestKafkaArchiversCompact(t *testing.T) {
	if testing.Short() {
		t.Skip("Kafka compaction test; run without -short (make test-kafka)")
	}
	broker := kafkatest.Start(t, 4, "recon.samples")
	archive := filepath.Join(t.TempDir(), "archive")
	conn := kafkabus.Options{Brokers: broker.Addrs, Topic: "recon.samples"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	cfg := parquet.DefaultConfig(archive)
	cfg.FlushInterval = 300 * time.Millisecond
	cfg.CompactAfter = 0 // every closed hour, at once
	cfg.CompactLevel = 1

	start := func(name string) *kafkaMember {
		a, err := kafkarole.NewArchiver(kafkarole.ArchiverOptions{Kafka: conn, Archive: cfg, CompactEvery: 200 * time.Millisecond,
			Membership: kafkarole.GroupOptions{SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second},
			Logger:     log.With("member", name)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m := &kafkaMember{a: a, cancel: cancel, done: make(chan error, 1)}
		go func() { m.done <- a.Run(ctx) }()
		t.Cleanup(func() { m.stop(t) })
		return m
	}
	m1, m2 := start("a1"), start("a2")

	prod, err := kafkabus.Open(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	// Rows of 8 sources in the two hours before the current one: closed,
	// so compaction takes them while more of their rows arrive.
	hour := time.Now().UTC().Truncate(time.Hour)
	const per, batches = 400, 150
	var wg sync.WaitGroup
	pubErr := make(chan error, 1)
	var m3 *kafkaMember
	wg.Go(func() {
		for i := range batches {
			ts := hour.Add(-time.Duration(1+i%2) * time.Hour).Add(time.Duration(i) * time.Second)
			rec := kafkaBatch("n1", fmt.Sprintf("s%d", i%8), int64(i*per), per, ts)
			err := prod.Publish(context.Background(), "", rec)
			rec.Release()
			if err != nil {
				pubErr <- err
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
	})
	// The compacting member (the one holding partition 0) leaves
	// mid-stream, and another joins: compaction moves to another member.
	var first *kafkaMember
	kafkaWaitFor(t, 30*time.Second, "a member compacts", func() bool {
		for _, m := range []*kafkaMember{m1, m2} {
			if m.a.Stats().Compacted > 0 {
				first = m
				return true
			}
		}
		return false
	})
	first.stop(t)
	m3 = start("a3")
	wg.Wait()
	select {
	case err := <-pubErr:
		t.Fatal(err)
	default:
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(archive, "samples", "**", "*.parquet")
	const want = per * batches
	var rows, distinct int64
	// While the archivers run, a compaction may remove its inputs between
	// DuckDB's glob and its read of them ("No such file or directory"):
	// that poll counts nothing and the next one reads the new files.
	query := func(polling bool) {
		err := db.QueryRow(fmt.Sprintf(`SELECT count(*), count(DISTINCT value) FROM read_parquet('%s', hive_partitioning = true)`, glob)).Scan(&rows, &distinct)
		switch {
		case err == nil:
		case strings.Contains(err.Error(), "No files found"),
			polling && strings.Contains(err.Error(), "No such file or directory"):
			rows, distinct = 0, 0
		default:
			t.Fatalf("duckdb: %v", err)
		}
	}
	// Archived, and every closed hour compacted into one file again after
	// the last late rows (compaction keeps going every 200 ms).
	deadline := time.Now().Add(60 * time.Second)
	for {
		query(true)
		files := archiveFiles(t, archive)
		if rows >= want && files.written == 0 && files.compacted > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %d of %d rows archived, %d archiver files and %d compacted files", rows, want, files.written, files.compacted)
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second) // one more compaction round: nothing may change
	query(false)
	if rows != want || distinct != want {
		t.Fatalf("archive holds %d rows, %d distinct sequence numbers; want %d exactly once", rows, distinct, want)
	}
	var compacted uint64
	compactors := 0
	for _, m := range []*kafkaMember{m1, m2, m3} {
		if n := m.a.Stats().Compacted; n > 0 {
			compacted += n
			compactors++
		}
	}
	if compactors < 2 {
		t.Fatalf("%d members compacted; want the compactor's successor to take over", compactors)
	}
	t.Logf("%d rows exactly once; %d hour partitions compacted", rows, compacted)
}

// kafkaWaitFor polls cond every 100 ms until it holds or timeout passes.
func kafkaWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type archiveCount struct{ written, compacted int }

// archiveFiles counts the data files of the samples table: written by an
// archiver (p<partition>-…) and by compaction (c-…).
func archiveFiles(t *testing.T, archive string) archiveCount {
	t.Helper()
	var c archiveCount
	err := filepath.WalkDir(filepath.Join(archive, "samples"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch n := d.Name(); {
		case d.IsDir() || !strings.HasSuffix(n, ".parquet"):
		case strings.HasPrefix(n, "c-"):
			c.compacted++
		case strings.HasPrefix(n, "p"):
			c.written++
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return c
}

// kafkaMember is an archiver of the group running in this process.
type kafkaMember struct {
	a      *kafkarole.Archiver
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// stop ends the member cleanly (it writes out and commits what it holds)
// and waits for it.
func (m *kafkaMember) stop(t *testing.T) {
	m.once.Do(func() {
		m.cancel()
		select {
		case err := <-m.done:
			if err != nil {
				t.Errorf("archiver: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("archiver did not stop within 30 s")
		}
	})
}
