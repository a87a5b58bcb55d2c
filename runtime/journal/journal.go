// Package journal is the embedded durable bus: an append-only local journal
// of Arrow IPC batches, one directory per topic, in the spirit of
// Reconnoiter's jlog.
//
// A journal directory holds segment files of framed messages (see format.go)
// named after their first offset, a consumers/ directory with one checkpoint
// file per registered consumer, and a LOCK file. Publish group-commits
// concurrent callers with one fsync and returns only once its batch is
// durable. A segment is deleted only when every registered consumer has
// committed past it. Open repairs what a crash can leave behind: a torn tail
// is cut off and temp files are removed.
package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sys/unix"

	"github.com/reconmon/recon/runtime/bus"
)

// DefaultSegmentSize is the segment size used when Options.SegmentSize is 0.
const DefaultSegmentSize = 64 << 20

// Options configure a journal. The zero value is usable.
type Options struct {
	// SegmentSize is the size at which the active segment is closed and a
	// new one started (a single larger batch still gets a segment of its
	// own). Default DefaultSegmentSize.
	SegmentSize int64
	// CommitDelay is how long the committer waits, once a batch is queued,
	// for more publishers to join the group before writing. 0 (the default)
	// groups whatever arrives while the previous group is being fsynced,
	// which adds no latency.
	CommitDelay time.Duration
	// Compression of the IPC buffers of published batches. Default LZ4.
	Compression Compression
	// Logger receives repairs and failures. Default slog.Default().
	Logger *slog.Logger
	// Allocator for the records Fetch returns. Default memory.DefaultAllocator.
	Allocator memory.Allocator
}

// segment is one segment file as seen by readers. Sealed segments never
// change; the active one grows under Journal.mu.
type segment struct {
	base int64
	path string
	pos  []int64 // start of each durable frame
	size int64   // end of the last durable frame
}

// frameBounds returns the byte range of offset off, which must be in s.
func (s *segment) frameBounds(off int64) (start, end int64) {
	i := off - s.base
	start = s.pos[i]
	end = s.size
	if i+1 < int64(len(s.pos)) {
		end = s.pos[i+1]
	}
	return start, end
}

// request is one Publish waiting for its group commit.
type request struct {
	key  string
	enc  encoded
	hdr  []byte
	off  int64
	done chan error
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

// consumerState is the durable position of one registered consumer.
type consumerState struct {
	next int64 // first offset not yet committed
	open bool
}

// Journal is one topic of the embedded bus. It implements bus.Topic.
type Journal struct {
	dir     string
	ckptDir string
	opts    Options
	log     *slog.Logger
	mem     memory.Allocator
	scratch *poolAllocator // encoder scratch buffers
	lock    *os.File
	stopped chan struct{} // closed when the committer has exited
	done    chan struct{} // closed by Close

	mu        sync.Mutex
	cond      *sync.Cond // signals the committer: queue non-empty or closed
	closed    bool
	queue     []*request
	spare     []*request
	segs      []*segment
	next      int64         // offset of the next durable frame
	notify    chan struct{} // closed and replaced at every commit
	consumers map[string]*consumerState
	stats     counters

	regMu sync.Mutex // serialises retention and consumer (un)registration

	// Owned by the committer goroutine.
	active *os.File
	wsize  int64 // durable size of the active segment
	dirty  bool  // the active segment holds bytes past wsize to truncate
	iov    [][]byte
}

var _ bus.Topic = (*Journal)(nil)

// Open opens (creating if needed) the journal in dir, repairs a torn tail
// and starts its committer. Only one process may have a journal open.
func Open(dir string, opts Options) (*Journal, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	j := &Journal{
		dir:       dir,
		ckptDir:   filepath.Join(dir, "consumers"),
		opts:      opts,
		log:       opts.Logger.With("journal", dir),
		mem:       opts.Allocator,
		scratch:   &poolAllocator{},
		stopped:   make(chan struct{}),
		done:      make(chan struct{}),
		notify:    make(chan struct{}),
		consumers: make(map[string]*consumerState),
	}
	j.cond = sync.NewCond(&j.mu)
	if err := os.MkdirAll(j.ckptDir, 0o755); err != nil {
		return nil, fmt.Errorf("journal %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	j.lock = lock
	if err := j.recover(); err != nil {
		_ = j.closeFiles()
		return nil, fmt.Errorf("journal %s: %w", dir, err)
	}
	// Finish deletions a crash may have interrupted.
	j.retain()
	go j.run()
	return j, nil
}

// recover loads segments and checkpoints, repairing what a crash leaves.
func (j *Journal) recover() error {
	if err := j.removeTemps(); err != nil {
		return err
	}
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return err
	}
	var bases []int64
	for _, e := range entries {
		if base, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	if len(bases) == 0 {
		f, seg, err := j.createSegment(0)
		if err != nil {
			return err
		}
		j.active, j.wsize, j.segs = f, seg.size, []*segment{seg}
	}
	for i, base := range bases {
		path := filepath.Join(j.dir, segmentName(base))
		if i > 0 {
			prev := j.segs[i-1]
			if want := prev.base + int64(len(prev.pos)); base != want {
				return fmt.Errorf("segment %s: starts at offset %d but the previous segment ends before %d: offsets %d..%d are missing", path, base, want, want, base-1)
			}
		}
		if i < len(bases)-1 {
			seg, err := scanSealed(path, base)
			if err != nil {
				return fmt.Errorf("sealed segment %s is damaged (this is not a crash tail; restore or move the file away): %w", path, err)
			}
			j.segs = append(j.segs, seg)
			continue
		}
		f, seg, err := j.recoverTail(path, base)
		if err != nil {
			return err
		}
		j.active, j.wsize = f, seg.size
		j.segs = append(j.segs, seg)
	}
	last := j.segs[len(j.segs)-1]
	j.next = last.base + int64(len(last.pos))
	return j.loadCheckpoints()
}

// removeTemps deletes temp files a crash left behind; they are never read.
func (j *Journal) removeTemps() error {
	for _, d := range []string{j.dir, j.ckptDir} {
		entries, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		removed := false
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), tmpSuffix) {
				continue
			}
			p := filepath.Join(d, e.Name())
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("remove leftover temp file: %w", err)
			}
			j.log.Warn("journal: removed leftover temp file", "file", p)
			removed = true
		}
		if removed {
			if err := syncDir(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// createSegment creates the segment starting at base, durably (file and
// directory fsynced). A leftover file of that name (from a failed attempt)
// is overwritten: it can hold no acknowledged frame.
func (j *Journal) createSegment(base int64) (*os.File, *segment, error) {
	path := filepath.Join(j.dir, segmentName(base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("create segment: %w", err)
	}
	fail := func(err error) (*os.File, *segment, error) {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	var hdr [segHeaderSize]byte
	putSegmentHeader(hdr[:], base)
	if _, err := f.WriteAt(hdr[:], 0); err != nil {
		return fail(err)
	}
	if err := j.sync(f); err != nil {
		return fail(err)
	}
	if err := syncDir(j.dir); err != nil {
		return fail(err)
	}
	return f, &segment{base: base, path: path, size: segHeaderSize}, nil
}

// sync makes f's data durable and records the fsync in the stats.
func (j *Journal) sync(f *os.File) error {
	start := time.Now()
	err := unix.Fdatasync(int(f.Fd()))
	d := time.Since(start)
	j.mu.Lock()
	j.stats.observeFsync(d)
	j.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fdatasync: %w", err)
	}
	return nil
}

// Publish appends rec (which the caller keeps owning) with key and returns
// once it is durable. Concurrent calls are written together and share one
// fsync. If ctx ends first Publish returns ctx.Err(), but the batch may
// still be appended (delivery is at-least-once).
func (j *Journal) Publish(ctx context.Context, key string, rec arrow.RecordBatch) error {
	_, err := j.Append(ctx, key, rec)
	return err
}

// Append is Publish returning the offset the batch was stored at.
func (j *Journal) Append(ctx context.Context, key string, rec arrow.RecordBatch) (int64, error) {
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	if len(key) > maxKeyLen {
		return -1, fmt.Errorf("journal publish: key of %d bytes exceeds %d", len(key), maxKeyLen)
	}
	req := requestPool.Get().(*request)
	if err := encode(&req.enc, rec, j.opts.Compression, j.scratch); err != nil {
		requestPool.Put(req)
		return -1, fmt.Errorf("journal publish: %w", err)
	}
	if size := int64(len(key)) + int64(req.enc.buf.Len()); size > math.MaxUint32 {
		requestPool.Put(req)
		return -1, fmt.Errorf("journal publish: encoded batch of %d bytes exceeds the frame limit of 4 GiB", size)
	}
	req.key = key
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		requestPool.Put(req)
		return -1, bus.ErrClosed
	}
	j.queue = append(j.queue, req)
	j.cond.Signal()
	j.mu.Unlock()
	select {
	case err := <-req.done:
		off := req.off
		requestPool.Put(req)
		if err != nil {
			return -1, err
		}
		return off, nil
	case <-ctx.Done():
		// The committer still owns req; it is garbage collected later.
		return -1, ctx.Err()
	}
}

// run is the committer: it takes every queued request and commits them as
// one group, until Close has been called and the queue is drained.
func (j *Journal) run() {
	defer close(j.stopped)
	j.mu.Lock()
	for {
		for len(j.queue) == 0 && !j.closed {
			j.cond.Wait()
		}
		if len(j.queue) == 0 {
			j.mu.Unlock()
			return
		}
		if d := j.opts.CommitDelay; d > 0 && !j.closed {
			j.mu.Unlock()
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-j.done:
				t.Stop()
			}
			j.mu.Lock()
		}
		group := j.queue
		j.queue = j.spare[:0]
		j.mu.Unlock()
		j.commit(group)
		clear(group)
		j.mu.Lock()
		j.spare = group[:0]
	}
}

// commit writes group into the active segment (rolling to new segments as
// they fill), fsyncs, and answers every request. Any failure fails the
// requests not yet durable, after truncating their bytes away.
func (j *Journal) commit(group []*request) {
	for len(group) > 0 {
		if err := j.repair(); err != nil {
			j.fail(group, err)
			return
		}
		if j.wsize > segHeaderSize && j.wsize+frameSize(group[0]) > j.opts.SegmentSize {
			if err := j.roll(); err != nil {
				j.fail(group, err)
				return
			}
		}
		n, size := 1, j.wsize+frameSize(group[0])
		for n < len(group) && size+frameSize(group[n]) <= j.opts.SegmentSize {
			size += frameSize(group[n])
			n++
		}
		if err := j.writeChunk(group[:n]); err != nil {
			j.fail(group, err)
			return
		}
		group = group[n:]
	}
}

func frameSize(r *request) int64 {
	return frameHeaderSize + int64(len(r.key)) + int64(r.enc.buf.Len())
}

// writeChunk appends chunk to the active segment and makes it durable.
func (j *Journal) writeChunk(chunk []*request) error {
	j.mu.Lock()
	off := j.next
	seg := j.segs[len(j.segs)-1] // only the committer appends or rolls
	j.mu.Unlock()
	iov := j.iov[:0]
	pos := make([]int64, 0, len(chunk))
	end := j.wsize
	for i, r := range chunk {
		if cap(r.hdr) < frameHeaderSize+len(r.key) {
			r.hdr = make([]byte, frameHeaderSize+len(r.key))
		}
		r.off = off + int64(i)
		r.hdr = fillFrameHeader(r.hdr, r.off, r.key, r.enc.buf.Len(), r.enc.crc)
		iov = append(iov, r.hdr, r.enc.buf.Bytes())
		pos = append(pos, end)
		end += frameSize(r)
	}
	err := pwritev(j.active, iov, j.wsize)
	clear(iov)
	j.iov = iov[:0]
	if err == nil {
		err = j.sync(j.active)
	}
	if err != nil {
		j.dirty = true
		if rerr := j.repair(); rerr != nil {
			j.log.Error("journal: cannot truncate failed write; publishes fail until it can", "segment", seg.path, "error", rerr)
		}
		return fmt.Errorf("journal append at offset %d: %w", off, err)
	}
	j.wsize = end
	j.mu.Lock()
	seg.pos = append(seg.pos, pos...)
	seg.size = end
	j.next = off + int64(len(chunk))
	for _, r := range chunk {
		j.stats.published++
		j.stats.publishedBytes += uint64(frameSize(r))
	}
	close(j.notify)
	j.notify = make(chan struct{})
	j.mu.Unlock()
	for _, r := range chunk {
		r.done <- nil
	}
	return nil
}

// repair truncates the active segment back to its durable size after a
// failed write, so that no partial frame stays on disk.
func (j *Journal) repair() error {
	if !j.dirty {
		return nil
	}
	if err := j.active.Truncate(j.wsize); err != nil {
		return fmt.Errorf("journal: truncate after failed write: %w", err)
	}
	if err := j.sync(j.active); err != nil {
		return fmt.Errorf("journal: truncate after failed write: %w", err)
	}
	j.dirty = false
	return nil
}

// roll seals the active segment (already durable) and starts a new one.
func (j *Journal) roll() error {
	j.mu.Lock()
	base := j.next
	j.mu.Unlock()
	f, seg, err := j.createSegment(base)
	if err != nil {
		return err
	}
	if err := j.active.Close(); err != nil {
		j.log.Warn("journal: close sealed segment", "error", err)
	}
	j.active, j.wsize = f, seg.size
	j.mu.Lock()
	j.segs = append(j.segs, seg)
	j.mu.Unlock()
	return nil
}

func (j *Journal) fail(group []*request, err error) {
	j.mu.Lock()
	j.stats.publishErrors += uint64(len(group))
	j.mu.Unlock()
	j.log.Error("journal: publish failed", "batches", len(group), "error", err)
	for _, r := range group {
		r.done <- err
	}
}

// Close stops accepting batches, commits those already queued, wakes every
// Fetch with bus.ErrClosed and releases the directory.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.done)
	j.cond.Broadcast()
	j.mu.Unlock()
	<-j.stopped
	return j.closeFiles()
}

func (j *Journal) closeFiles() error {
	var errs []error
	if j.active != nil {
		errs = append(errs, j.active.Close())
	}
	if j.lock != nil {
		errs = append(errs, j.lock.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("journal %s: close: %w", j.dir, err)
	}
	return nil
}

// findSegment returns the segment holding off; j.mu must be held.
func (j *Journal) findSegment(off int64) *segment {
	i := sort.Search(len(j.segs), func(i int) bool { return j.segs[i].base > off }) - 1
	if i < 0 {
		return nil
	}
	return j.segs[i]
}
