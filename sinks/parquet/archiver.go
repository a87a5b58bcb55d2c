package parquet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/reconmon/recon/runtime/bus"
)

// Options configures an Archiver.
type Options struct {
	Config
	// Table is what the archiver writes; the zero Table means SamplesTable.
	Table Table
	// Consumer delivers the table's batches. The archiver commits a message
	// only once the files holding it are durable; it does not close it.
	Consumer bus.Consumer
	Logger   *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// RetryMin and RetryMax bound the backoff after a failed write
	// (default 500 ms and 30 s).
	RetryMin, RetryMax time.Duration
	// CompactEvery is how often automatic compaction looks for closed
	// hours (default 1 min).
	CompactEvery time.Duration
	// StopTimeout bounds the last flush when Run's context ends
	// (default 30 s).
	StopTimeout time.Duration
	// Writers is how many ranges are encoded at once (default 2). Run
	// keeps fetching while they encode, at most one FlushRows ahead of the
	// ranges being written; ranges are committed in the order they were
	// cut.
	Writers int
	// WaitForWriters makes Run wait for each range to be written before it
	// fetches more: one range's rows in memory instead of up to two. For a
	// node whose producers share the cores with the archiver, where the
	// overlap gains no rate and the rows it holds cost memory and, under a
	// memory limit, garbage collection (docs/benchmarks.md).
	WaitForWriters bool

	// fault, when set by tests, is called at each step of a write with the
	// step's name; a test simulates a crash there (runtime.Goexit).
	fault func(step string)
}

// Stats are an archiver's figures for /metrics.
type Stats struct {
	Table        string
	RowsWritten  int64
	FilesWritten int64
	BytesWritten int64
	// Flushes counts committed bus ranges.
	Flushes int64
	// WriteErrors counts failed attempts to write and commit a range.
	WriteErrors int64
	// Rejected counts batches whose schema does not match the table; they
	// are logged and skipped.
	Rejected int64
	// PendingRows are fetched but not archived yet.
	PendingRows int64
	// Lag is how long the oldest pending row has waited (0 when none).
	Lag time.Duration
	// CompactedPartitions counts hour partitions merged by compaction.
	CompactedPartitions int64
	LastError           string
	LastErrorAt         time.Time
	LastFlushAt         time.Time
}

// Archiver writes one table of the archive from a bus consumer.
//
// Run fetches and cuts ranges; Writers goroutines encode each range into
// temp files (sorting, Parquet encoding, fsync: the costly part) without
// the table lock; Run then takes the lock only to record the range's
// intent, rename its files into place and commit it, range after range in
// the order they were cut.
type Archiver struct {
	opts  Options
	l     *layout
	root  string // Dir/<table>
	log   *slog.Logger
	parts map[int32]*pending
	// replay holds, per partition, the range a previous run was writing
	// when it stopped; the same range is rewritten under the same names.
	replay map[int32]rangeIntent
	rows   int // pending in parts

	// queue holds the ranges cut and not committed yet, oldest first;
	// inflight counts their rows. Both are Run's.
	queue    []*writeJob
	inflight int
	jobs     chan *writeJob
	writers  sync.WaitGroup

	mu     sync.Mutex
	stats  Stats
	oldest time.Time
}

// pending is the fetched, not yet archived range of one bus partition.
type pending struct {
	batches     []arrow.RecordBatch
	first, last int64
	lastMsg     bus.Message
	rows        int
	since       time.Time
}

// rangeIntent is recorded durably before the files of a range are written.
type rangeIntent struct {
	Partition int32 `json:"partition"`
	First     int64 `json:"first"`
	Last      int64 `json:"last"`
}

// NewArchiver checks opts and returns an archiver; Run starts it.
func NewArchiver(opts Options) (*Archiver, error) {
	if opts.Table.Name == "" {
		opts.Table = SamplesTable
	}
	l, err := opts.Table.compile()
	if err != nil {
		return nil, err
	}
	if opts.Consumer == nil {
		return nil, errors.New("parquet archiver: no bus consumer")
	}
	if opts.Dir == "" {
		return nil, errors.New("parquet archiver: no archive directory")
	}
	def := DefaultConfig(opts.Dir)
	setDefault(&opts.FlushRows, def.FlushRows)
	setDefault(&opts.FlushInterval, def.FlushInterval)
	setDefault(&opts.CompressionLevel, def.CompressionLevel)
	setDefault(&opts.CompactLevel, def.CompactLevel)
	setDefault(&opts.RowGroupRows, def.RowGroupRows)
	setDefault(&opts.TargetFileSize, def.TargetFileSize)
	setDefault(&opts.RetryMin, 500*time.Millisecond)
	setDefault(&opts.RetryMax, 30*time.Second)
	setDefault(&opts.CompactEvery, time.Minute)
	setDefault(&opts.StopTimeout, 30*time.Second)
	setDefault(&opts.Writers, 2)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Archiver{
		opts:   opts,
		l:      l,
		root:   filepath.Join(opts.Dir, l.Name),
		log:    opts.Logger.With("table", l.Name),
		parts:  map[int32]*pending{},
		replay: map[int32]rangeIntent{},
	}
	a.stats.Table = l.Name
	return a, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (o *Options) writerConfig() writerConfig {
	return writerConfig{CompressionLevel: o.CompressionLevel, RowGroupRows: o.RowGroupRows, PageBytes: pageBytes, Window: liveWindow}
}

// liveWindow is the zstd window of the files written as rows arrive: 1 MiB
// instead of the encoder's 8 MiB (16 MiB of history per pooled encoder, one
// per column worker) measured 0.1 % bigger files on the reference workload
// (2.935 vs 2.932 B/sample) for ~28 MiB less heap; compaction rewrites the
// files with the full window.
const liveWindow = 1 << 20

// pageBytes is the uncompressed size of a data page. Pages are compressed
// one by one, so large pages give zstd more context: 8 MiB measured 15 %
// smaller than 1 MiB on the reference workload.
const pageBytes = 8 << 20

// Stats returns a snapshot of the archiver's figures. Safe for concurrent use.
func (a *Archiver) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.stats
	if !a.oldest.IsZero() {
		s.Lag = a.opts.Now().Sub(a.oldest)
	}
	return s
}

// Run archives batches until ctx ends, then writes out what it holds
// (bounded by StopTimeout) and returns nil. It returns an error only when
// the consumer fails. An archive that cannot be opened or written is logged
// (naming the path) and retried with backoff; the rows stay uncommitted in
// the bus meanwhile, and archiving resumes when the archive is usable again.
func (a *Archiver) Run(ctx context.Context) error {
	a.jobs = make(chan *writeJob, jobQueue)
	for range a.opts.Writers {
		w := &rangeWriter{enc: newEncoder(a.l, a.opts.writerConfig()), buf: bufio.NewWriterSize(nil, 1<<20)}
		a.writers.Go(func() { a.runWriter(w) })
	}
	defer a.shutdown()
	for delay := a.opts.RetryMin; ; delay = min(2*delay, a.opts.RetryMax) {
		err := a.start()
		if err == nil {
			break
		}
		a.noteError(err)
		a.log.Error("archive not usable; retrying, samples stay in the bus meanwhile", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	a.log.Info("archiver started", "dir", a.root)
	if a.opts.Compact {
		// Compaction runs beside the writer (the table lock keeps them
		// apart file by file), so that merging a backlog of hours never
		// stalls archiving.
		cctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { a.compactLoop(cctx) })
		defer func() { cancel(); wg.Wait() }()
	}
	for {
		// Commit what the writers finished; fetch no further than one
		// FlushRows ahead of the ranges being written (none ahead with
		// WaitForWriters).
		ahead := a.opts.FlushRows
		if a.opts.WaitForWriters {
			ahead = 0
		}
		if err := a.settle(ctx, a.inflight > ahead); err != nil {
			return a.stop(ctx)
		}
		if a.inflight > ahead {
			continue
		}
		fetchCtx, cancel := a.fetchContext(ctx)
		m, err := a.opts.Consumer.Fetch(fetchCtx)
		woken := fetchCtx.Err() != nil // rows due, or the oldest range encoded
		cancel()
		switch {
		case ctx.Err() != nil:
			return a.stop(ctx)
		case err != nil && woken:
			a.flushDue()
			continue
		case err != nil:
			_ = a.stop(ctx)
			return fmt.Errorf("archiver %s: fetch: %w", a.l.Name, err)
		}
		a.add(m)
	}
}

// jobQueue bounds the ranges handed to the writers and not taken yet.
const jobQueue = 64

// fetchContext bounds a Fetch by the time the oldest pending row is due,
// and ends it when the oldest range in the writers' hands is encoded.
func (a *Archiver) fetchContext(ctx context.Context) (context.Context, context.CancelFunc) {
	var deadline time.Time
	for _, part := range a.flushable() { // a replayed range waits for its end
		if due := a.parts[part].since.Add(a.opts.FlushInterval); deadline.IsZero() || due.Before(deadline) {
			deadline = due
		}
	}
	fctx, cancel := ctx, context.CancelFunc(func() {})
	if !deadline.IsZero() {
		fctx, cancel = context.WithTimeout(ctx, deadline.Sub(a.opts.Now()))
	}
	if len(a.queue) == 0 {
		return fctx, cancel
	}
	wctx, wcancel := context.WithCancel(fctx)
	stopWatch := context.AfterFunc(a.queue[0].encoded, wcancel)
	return wctx, func() {
		stopWatch()
		wcancel()
		cancel()
	}
}

// oldestPending is when the oldest row not archived yet was fetched.
func (a *Archiver) oldestPending() time.Time {
	var t time.Time
	for _, p := range a.parts {
		if t.IsZero() || p.since.Before(t) {
			t = p.since
		}
	}
	if len(a.queue) > 0 && (t.IsZero() || a.queue[0].p.since.Before(t)) {
		t = a.queue[0].p.since
	}
	return t
}

// start prepares the table directory: removes temp files a crash left,
// finishes or rolls back an interrupted compaction, and loads the ranges a
// previous run was writing.
func (a *Archiver) start() error {
	if err := mkdirDurable(a.root); err != nil {
		return fmt.Errorf("archiver %s: %w", a.l.Name, err)
	}
	if err := recoverTable(a.root, a.log); err != nil {
		return fmt.Errorf("archiver %s: %w", a.l.Name, err)
	}
	intents, err := loadIntents(a.root)
	if err != nil {
		return fmt.Errorf("archiver %s: %w", a.l.Name, err)
	}
	for _, it := range intents {
		a.replay[it.Partition] = it
		a.log.Info("replaying the range a previous run did not commit", "partition", it.Partition, "first", it.First, "last", it.Last)
	}
	return nil
}

func intentName(partition int32) string { return fmt.Sprintf(".intent-p%d.json", partition) }

func loadIntents(root string) ([]rangeIntent, error) {
	paths, err := filepath.Glob(filepath.Join(root, ".intent-p*.json"))
	if err != nil {
		return nil, err
	}
	var out []rangeIntent
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // its range was just committed
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		var it rangeIntent
		if err := json.Unmarshal(data, &it); err != nil || it.First > it.Last || filepath.Base(p) != intentName(it.Partition) {
			return nil, fmt.Errorf("intent file %s is damaged (%q): move it away to start; its range is then written anew under other names", p, data)
		}
		out = append(out, it)
	}
	return out, nil
}

// add buffers m and cuts the ranges that are due.
func (a *Archiver) add(m bus.Message) {
	part := m.Partition
	if p := a.parts[part]; p != nil {
		if it, ok := a.replay[part]; ok && m.Offset > it.Last {
			// A gap after the replayed range: close the range first.
			a.submit([]int32{part})
		}
	}
	if it, ok := a.replay[part]; ok && a.parts[part] == nil && m.Offset != it.First {
		switch {
		case m.Offset > it.Last:
			a.log.Info("the range of the previous run was committed", "partition", part, "first", it.First, "last", it.Last)
		case m.Offset < it.First:
			// The bus went back before the range: all of it comes again.
			a.log.Warn("bus resumed before the range of the previous run; its files are removed and the range written anew", "partition", part, "offset", m.Offset, "first", it.First, "last", it.Last)
			if err := a.removeRange(it); err != nil {
				a.log.Error("remove the files of an uncommitted range; its rows may appear twice", "err", err)
			}
		default:
			a.log.Warn("bus resumed inside the range of the previous run; its files are kept, the rest written under new names", "partition", part, "offset", m.Offset, "first", it.First, "last", it.Last)
		}
		delete(a.replay, part)
		if err := removeDurable(a.root, intentName(part)); err != nil {
			a.log.Error("remove stale intent", "err", err)
		}
	}
	if m.Record != nil && !a.schemaMatches(m.Record.Schema()) {
		a.log.Error("batch does not match the table schema; skipped", "partition", part, "offset", m.Offset, "schema", m.Record.Schema().String())
		m.Record.Release()
		a.mu.Lock()
		a.stats.Rejected++
		a.mu.Unlock()
		m.Record = nil
	}
	p := a.parts[part]
	if p == nil {
		p = &pending{first: m.Offset, since: a.opts.Now()}
		a.parts[part] = p
	}
	p.last, p.lastMsg = m.Offset, bus.Message{Partition: part, Offset: m.Offset, Key: m.Key}
	if m.Record != nil {
		p.batches = append(p.batches, m.Record)
		n := int(m.Record.NumRows())
		p.rows += n
		a.rows += n
	}
	a.notePending()

	if it, ok := a.replay[part]; ok {
		if m.Offset >= it.Last {
			a.submit([]int32{part})
		}
		return
	}
	if a.rows >= a.opts.FlushRows {
		a.submit(a.flushable())
		return
	}
	a.flushDue()
}

// removeRange removes the files of an uncommitted range, in every hour.
func (a *Archiver) removeRange(it rangeIntent) error {
	lock, err := lockDir(a.root)
	if err != nil {
		return err
	}
	defer lock.unlock()
	name := rangeFileName(it.Partition, it.First, it.Last)
	return filepath.WalkDir(a.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != name {
			return err
		}
		return removeDurable(filepath.Dir(path), name)
	})
}

func rangeFileName(partition int32, first, last int64) string {
	return fmt.Sprintf("p%d-%d-%d.parquet", partition, first, last)
}

func (a *Archiver) schemaMatches(s *arrow.Schema) bool {
	want := a.l.Schema
	if s.NumFields() != want.NumFields() {
		return false
	}
	for i, f := range s.Fields() {
		w := want.Field(i)
		if f.Name != w.Name || !arrow.TypeEqual(f.Type, w.Type) || (f.Nullable && !w.Nullable) {
			return false
		}
	}
	return true
}

// flushable lists the partitions a size- or time-triggered flush writes:
// all but those being replayed, which close exactly at their recorded end.
func (a *Archiver) flushable() []int32 {
	var parts []int32
	for part := range a.parts {
		if _, ok := a.replay[part]; !ok {
			parts = append(parts, part)
		}
	}
	slices.Sort(parts)
	return parts
}

// flushDue cuts the ranges of the partitions whose oldest row waited
// FlushInterval.
func (a *Archiver) flushDue() {
	now := a.opts.Now()
	var due []int32
	for _, part := range a.flushable() {
		if now.Sub(a.parts[part].since) >= a.opts.FlushInterval {
			due = append(due, part)
		}
	}
	if len(due) > 0 {
		a.submit(due)
	}
}

// writeJob is one range on its way to the archive: a writer encodes it
// into temp files, then Run makes it durable and commits it.
type writeJob struct {
	part int32
	p    *pending
	// Set by the writer before it ends encoded.
	temps []tempFile
	bytes int64
	err   error
	// encoded ends when the writer is done with the range.
	encoded context.Context
	done    context.CancelFunc
}

// tempFile is a range's file of one hour, written and fsynced under a
// temp name and held open (and flocked) until it is renamed into place, so
// that recovery never takes it for a crash's leftover.
type tempFile struct {
	f    *os.File
	dir  string
	path string
}

// rangeWriter is one writer goroutine's encoder and output buffer.
type rangeWriter struct {
	enc *encoder
	buf *bufio.Writer
}

// submit cuts the pending ranges of parts and hands them to the writers.
func (a *Archiver) submit(parts []int32) {
	for _, part := range parts {
		p := a.parts[part]
		if p == nil {
			continue
		}
		delete(a.parts, part)
		delete(a.replay, part) // a replayed range is cut exactly at its end
		a.rows -= p.rows
		a.inflight += p.rows
		job := &writeJob{part: part, p: p}
		a.queue = append(a.queue, job)
		a.dispatch(job)
	}
	a.notePending()
}

func (a *Archiver) dispatch(job *writeJob) {
	job.temps, job.bytes, job.err = nil, 0, nil
	job.encoded, job.done = context.WithCancel(context.Background())
	a.jobs <- job
}

func (a *Archiver) runWriter(w *rangeWriter) {
	for job := range a.jobs {
		job.err = a.encodeRange(w, job)
		job.done()
	}
}

// encodeRange writes the files of job's range, one per hour, as fsynced
// temp files.
func (a *Archiver) encodeRange(w *rangeWriter, job *writeJob) error {
	name := rangeFileName(job.part, job.p.first, job.p.last)
	for _, g := range w.enc.plan(job.p.batches) {
		dir := filepath.Join(a.root, partitionDir(g.hour))
		if err := mkdirDurable(dir); err != nil {
			return err
		}
		t, n, err := writeTemp(dir, name, w.buf, func(out io.Writer) error {
			return w.enc.writeFile(out, job.p.batches, g.refs, g.keys)
		})
		if err != nil {
			return err
		}
		job.temps = append(job.temps, t)
		job.bytes += n
	}
	return nil
}

// tempSeq numbers the temp files of this process: names never collide
// with another writer's, even one writing the same range.
var tempSeq atomic.Uint64

// writeTemp writes dir/name's content to a new temp file through buf,
// fsyncs it and returns it open and flocked, with its size.
func writeTemp(dir, name string, buf *bufio.Writer, write func(io.Writer) error) (tempFile, int64, error) {
	t := tempFile{dir: dir, path: filepath.Join(dir, fmt.Sprintf(".%s.%d-%d%s", name, os.Getpid(), tempSeq.Add(1), tempSuffix))}
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return tempFile{}, 0, fmt.Errorf("create %s: %w", t.path, err)
	}
	t.f = f
	cw := &countingWriter{w: f}
	buf.Reset(cw)
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		err = write(buf)
	}
	if err == nil {
		err = buf.Flush()
	}
	buf.Reset(nil)
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		t.discard()
		return tempFile{}, 0, fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return t, cw.n, nil
}

// discard closes and removes a temp file not renamed into place.
func (t tempFile) discard() {
	_ = t.f.Close()
	_ = os.Remove(t.path)
}

// settle commits the ranges at the head of the queue that are encoded,
// waiting for the first one when wait is set. It returns an error only
// when ctx ends.
func (a *Archiver) settle(ctx context.Context, wait bool) error {
	for len(a.queue) > 0 {
		job := a.queue[0]
		if wait {
			select {
			case <-job.encoded.Done():
			case <-ctx.Done():
				return ctx.Err()
			}
			wait = false
		} else if job.encoded.Err() == nil {
			return nil
		}
		if err := a.finish(ctx, job); err != nil {
			return err
		}
	}
	return nil
}

// finish commits the encoded job at the head of the queue, encoding it
// again with backoff after a failure until it succeeds or ctx ends (then
// it returns ctx's error and the rows stay pending).
func (a *Archiver) finish(ctx context.Context, job *writeJob) error {
	delay := a.opts.RetryMin
	for {
		if job.err == nil {
			job.err = a.commitRange(ctx, job)
		}
		err := job.err
		if err == nil {
			a.complete(job)
			return nil
		}
		a.discardTemps(job) // job.err set: the range is encoded anew
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.noteError(err)
		a.log.Error("archive write failed; retrying, its rows stay in the bus until written", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, a.opts.RetryMax)
		a.dispatch(job)
		select {
		case <-job.encoded.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// commitRange makes job's encoded range durable and commits it, under the
// table lock: intent → files renamed into place, dirs fsynced → commit →
// intent removed.
func (a *Archiver) commitRange(ctx context.Context, job *writeJob) error {
	lock, err := lockDir(a.root)
	if err != nil {
		return err
	}
	defer lock.unlock()

	p := job.p
	it := rangeIntent{Partition: job.part, First: p.first, Last: p.last}
	_, err = writeAtomic(a.root, intentName(job.part), func(w io.Writer) error {
		return json.NewEncoder(w).Encode(it)
	})
	if err != nil {
		return err
	}
	a.step("intent")
	name := rangeFileName(job.part, p.first, p.last)
	for _, t := range job.temps {
		if err := os.Rename(t.path, filepath.Join(t.dir, name)); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(t.dir, name), err)
		}
	}
	for _, t := range job.temps {
		if err := syncDir(t.dir); err != nil {
			return err
		}
	}
	for _, t := range job.temps {
		_ = t.f.Close() // renamed: releases its flock
	}
	a.step("renamed")
	if err := a.opts.Consumer.Commit(ctx, p.lastMsg); err != nil {
		return fmt.Errorf("commit partition %d offset %d: %w", job.part, p.last, err)
	}
	a.step("committed")
	if err := removeDurable(a.root, intentName(job.part)); err != nil {
		// The range is archived and committed; a stale intent is discarded
		// on the next start.
		a.log.Warn("remove intent", "err", err)
	}
	a.mu.Lock()
	a.stats.RowsWritten += int64(p.rows)
	a.stats.FilesWritten += int64(len(job.temps))
	a.stats.BytesWritten += job.bytes
	a.stats.Flushes++
	a.stats.LastFlushAt = a.opts.Now()
	a.mu.Unlock()
	return nil
}

// discardTemps closes job's temp files and removes those still there.
func (a *Archiver) discardTemps(job *writeJob) {
	for _, t := range job.temps {
		t.discard()
	}
}

// complete drops the committed job at the head of the queue.
func (a *Archiver) complete(job *writeJob) {
	for _, b := range job.p.batches {
		b.Release()
	}
	a.queue[0] = nil
	a.queue = a.queue[1:]
	a.inflight -= job.p.rows
	a.notePending()
}

func (a *Archiver) step(name string) {
	if a.opts.fault != nil {
		a.opts.fault(name)
	}
}

// partitionDir is the hive path of an hour: date=YYYY-MM-DD/hour=HH.
func partitionDir(hour int64) string {
	t := time.Unix(hour*3600, 0).UTC()
	return fmt.Sprintf("date=%s/hour=%02d", t.Format(time.DateOnly), t.Hour())
}

func (a *Archiver) noteError(err error) {
	a.mu.Lock()
	a.stats.WriteErrors++
	a.stats.LastError = err.Error()
	a.stats.LastErrorAt = a.opts.Now()
	a.mu.Unlock()
}

func (a *Archiver) notePending() {
	oldest := a.oldestPending()
	a.mu.Lock()
	a.stats.PendingRows = int64(a.rows + a.inflight)
	a.oldest = oldest
	a.mu.Unlock()
}

// stop makes one attempt, bounded by StopTimeout, to write out what is
// pending and in the writers' hands, in order; from the first range that
// fails on, the rows stay uncommitted in the bus for the next run.
func (a *Archiver) stop(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.StopTimeout)
	defer cancel()
	parts := make([]int32, 0, len(a.parts))
	for part := range a.parts {
		if it, ok := a.replay[part]; ok && a.parts[part].last < it.Last {
			continue // an incomplete replay is redone by the next run
		}
		parts = append(parts, part)
	}
	slices.Sort(parts)
	a.submit(parts)
	for len(a.queue) > 0 {
		job := a.queue[0]
		<-job.encoded.Done() // a writer is never stopped inside a range
		if job.err != nil && sctx.Err() == nil {
			a.discardTemps(job)
			a.dispatch(job) // the one attempt at stop
			<-job.encoded.Done()
		}
		err := job.err
		if err == nil {
			err = sctx.Err()
		}
		if err == nil {
			err = a.commitRange(sctx, job)
		}
		if err != nil {
			a.noteError(err)
			a.log.Error("archive write at stop failed; the rows stay in the bus for the next run", "err", err)
			return nil
		}
		a.complete(job)
	}
	return nil
}

// shutdown waits for the writers and releases what is left: ranges not
// committed (their temp files removed) and pending rows.
func (a *Archiver) shutdown() {
	for _, job := range a.queue {
		<-job.encoded.Done()
		a.discardTemps(job)
		for _, b := range job.p.batches {
			b.Release()
		}
	}
	a.queue, a.inflight = nil, 0
	close(a.jobs)
	a.writers.Wait()
	for part, p := range a.parts {
		for _, b := range p.batches {
			b.Release()
		}
		delete(a.parts, part)
	}
	a.rows = 0
	a.notePending()
}

// compactLoop compacts closed hours every CompactEvery until ctx ends.
func (a *Archiver) compactLoop(ctx context.Context) {
	tick := time.NewTicker(a.opts.CompactEvery)
	defer tick.Stop()
	for {
		res, err := Compact(ctx, a.opts.Dir, CompactOptions{
			Tables:           []Table{a.opts.Table},
			ClosedBefore:     a.opts.Now().Add(-a.opts.CompactAfter),
			TargetFileSize:   a.opts.TargetFileSize,
			CompressionLevel: a.opts.CompactLevel,
			RowGroupRows:     a.opts.RowGroupRows,
			Logger:           a.opts.Logger,
		})
		a.mu.Lock()
		a.stats.CompactedPartitions += int64(res.Partitions)
		a.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			a.noteError(err)
			a.log.Error("compaction failed; the files stay as they are", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// isParquet reports whether a directory entry is an archive data file.
func isParquet(d fs.DirEntry) bool {
	n := d.Name()
	return !d.IsDir() && strings.HasSuffix(n, ".parquet") && !strings.HasPrefix(n, ".")
}
