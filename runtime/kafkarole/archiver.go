package kafkarole

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/sinks/parquet"
)

// DefaultArchiverGroup is the consumer group of the archivers.
const DefaultArchiverGroup = "recon-archivers"

// ArchiverOptions configure the archiver role.
type ArchiverOptions struct {
	// Kafka is the samples topic.
	Kafka kafkabus.Options
	// Group is the archivers' consumer group (default DefaultArchiverGroup).
	Group string
	// Archive is the parquet sink's settings. Archivers of one group share
	// Archive.Dir (a shared volume): the bus ranges they were writing when
	// they stopped are recorded there, so whichever member gets a partition
	// next rewrites an unfinished range under the same names.
	Archive    parquet.Config
	Membership GroupOptions
	// CompactEvery is how often the compacting member looks for closed
	// hours to compact when Archive.Compact is set (default 1 min).
	CompactEvery time.Duration
	Logger       *slog.Logger
}

// Archiver is the archiver role: a member of the archivers' consumer group
// writing its partitions to the Parquet archive. For each generation of
// the group it runs a parquet.Archiver over the partitions it was
// assigned; the archiver commits a range only after its files are durable.
type Archiver struct {
	opts  ArchiverOptions
	log   *slog.Logger
	stats Counters
	began time.Time

	mu     sync.Mutex
	done   parquet.Stats // summed over finished generations
	cur    *parquet.Archiver
	gens   int64
	gen    int32
	nparts int
}

// NewArchiver checks opts; Run joins the group.
func NewArchiver(opts ArchiverOptions) (*Archiver, error) {
	if len(opts.Kafka.Brokers) == 0 || opts.Kafka.Topic == "" {
		return nil, errors.New("kafka archiver: brokers and samples topic are required")
	}
	if opts.Archive.Dir == "" {
		return nil, errors.New("kafka archiver: no archive directory")
	}
	if opts.Group == "" {
		opts.Group = DefaultArchiverGroup
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CompactEvery <= 0 {
		opts.CompactEvery = time.Minute
	}
	if _, err := kafkabus.Dialer(opts.Kafka); err != nil {
		return nil, fmt.Errorf("kafka archiver: %w", err)
	}
	return &Archiver{opts: opts, began: time.Now(), log: opts.Logger.With("role", "archiver", "group", opts.Group, "topic", opts.Kafka.Topic)}, nil
}

// Run takes part in the group until ctx ends; the archiver then writes out
// what it holds, commits it and leaves the group.
func (a *Archiver) Run(ctx context.Context) error {
	cg, err := newGroup(a.opts.Kafka, a.opts.Group, a.opts.Membership, a.log)
	if err != nil {
		return err
	}
	defer cg.Close()
	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			a.log.Warn("joining the archivers' group failed; retrying", "err", err)
			continue
		}
		if err := a.runGeneration(ctx, gen); err != nil {
			return err
		}
	}
}

// runGeneration archives gen's partitions until the generation or ctx ends.
// It runs inside gen.Start, so the group waits for the last flush before
// it hands the partitions to anyone else. It returns an error only when
// the archive cannot be written at all (damaged state, bad settings).
func (a *Archiver) runGeneration(ctx context.Context, gen *kafka.Generation) error {
	parts := gen.Assignments[a.opts.Kafka.Topic]
	log := a.log.With("generation", gen.ID)
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	slices.Sort(ids)
	log.Info("partitions assigned", "partitions", ids)
	finished := make(chan struct{})
	var fatal error
	gen.Start(func(gctx context.Context) {
		defer close(finished)
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(gctx, cancel)
		defer stop()
		// The archiver's start recovers half-done compactions: it runs
		// under the compaction lock, shared, released at its first fetch.
		startLock, err := lockFile(rctx, compactLockPath(a.opts.Archive.Dir), syscall.LOCK_SH)
		if err != nil {
			if rctx.Err() == nil {
				fatal = fmt.Errorf("kafka archiver: %w", err)
			}
			return
		}
		defer startLock.unlock()
		cons, err := startGeneration(rctx, gen, a.opts.Kafka, a.opts.Archive.Dir, &a.stats, log)
		if err != nil {
			fatal = fmt.Errorf("kafka archiver: %w", err)
			return
		}
		defer cons.Close()
		cons.started = startLock.unlock
		cfg := a.opts.Archive
		cfg.Compact = false // the group's compaction runs below, in one member
		arch, err := parquet.NewArchiver(parquet.Options{Config: cfg, Consumer: cons, Logger: log,
			StopTimeout: a.opts.Membership.stopTimeout()})
		if err != nil {
			fatal = fmt.Errorf("kafka archiver: %w", err)
			return
		}
		if a.opts.Archive.Compact && slices.Contains(ids, 0) {
			var wg sync.WaitGroup
			cctx, stopCompact := context.WithCancel(rctx)
			wg.Go(func() { a.compactLoop(cctx, log.With("compactor", true)) })
			defer func() { stopCompact(); wg.Wait() }()
		}
		a.mu.Lock()
		a.cur, a.gen, a.nparts = arch, gen.ID, len(parts)
		a.gens++
		a.mu.Unlock()
		// rctx ends with the generation or the role. The archiver's last
		// flush outlives it (bounded by StopTimeout): on shutdown it
		// commits within the live generation; when the generation ended,
		// the commit fails and the range stays recorded for its next owner.
		err = arch.Run(rctx)
		a.mu.Lock()
		a.done = addStats(a.done, arch.Stats())
		a.cur = nil
		a.mu.Unlock()
		if err != nil && !errors.Is(err, bus.ErrClosed) {
			log.Error("archiver stopped", "err", err)
		}
	})
	<-finished
	log.Info("generation ended")
	return fatal
}

// stopTimeout keeps the last flush of a generation inside the group's
// rebalance timeout.
func (g GroupOptions) stopTimeout() time.Duration {
	g.setDefaults()
	return g.RebalanceTimeout / 2
}

func addStats(s, t parquet.Stats) parquet.Stats {
	s.Table = t.Table
	s.RowsWritten += t.RowsWritten
	s.FilesWritten += t.FilesWritten
	s.BytesWritten += t.BytesWritten
	s.Flushes += t.Flushes
	s.WriteErrors += t.WriteErrors
	s.Rejected += t.Rejected
	s.PendingRows, s.Lag = t.PendingRows, t.Lag
	if t.LastError != "" {
		s.LastError, s.LastErrorAt = t.LastError, t.LastErrorAt
	}
	if t.LastFlushAt.After(s.LastFlushAt) {
		s.LastFlushAt = t.LastFlushAt
	}
	return s
}

// ArchiverStats are the archiver role's figures.
type ArchiverStats struct {
	Archive     parquet.Stats // summed over the generations
	Generation  int32
	Generations int64
	Partitions  int
	Fetched     uint64
	Skipped     uint64 // undecodable messages skipped
	Duplicates  uint64 // batches forwarded twice by restarted collectors, dropped
	Compacted   uint64 // hour partitions this member compacted
}

// Stats returns a snapshot; safe for concurrent use.
func (a *Archiver) Stats() ArchiverStats {
	a.mu.Lock()
	s := ArchiverStats{Archive: a.done, Generation: a.gen, Generations: a.gens, Partitions: a.nparts}
	if a.cur != nil {
		s.Archive = addStats(s.Archive, a.cur.Stats())
	}
	a.mu.Unlock()
	s.Fetched, s.Skipped, s.Duplicates = a.stats.Fetched.Load(), a.stats.Skipped.Load(), a.stats.Duplicates.Load()
	s.Compacted = a.stats.Compacted.Load()
	return s
}
