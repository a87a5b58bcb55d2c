package journal

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/reconmon/recon/runtime/bus"
)

// Checkpoint file: magic, next offset, CRC-32C of the first 16 bytes.
const (
	ckptMagic  = "RCNJCKP1"
	ckptSize   = 20
	ckptSuffix = ".ckpt"
	maxNameLen = 128
)

func encodeCheckpoint(next int64) []byte {
	b := make([]byte, ckptSize)
	copy(b, ckptMagic)
	binary.LittleEndian.PutUint64(b[8:16], uint64(next))
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], castagnoli))
	return b
}

func decodeCheckpoint(b []byte) (int64, error) {
	if len(b) != ckptSize || string(b[:8]) != ckptMagic {
		return 0, fmt.Errorf("%w: not a checkpoint file", errCorrupt)
	}
	if crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:20]) {
		return 0, fmt.Errorf("%w: checkpoint checksum mismatch", errCorrupt)
	}
	next := int64(binary.LittleEndian.Uint64(b[8:16]))
	if next < 0 {
		return 0, fmt.Errorf("%w: negative checkpoint", errCorrupt)
	}
	return next, nil
}

// validName reports whether name can key a checkpoint file.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || name[0] == '.' {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func (j *Journal) ckptPath(name string) string {
	return filepath.Join(j.ckptDir, name+ckptSuffix)
}

// loadCheckpoints reads every registered consumer, clamping positions that
// fall outside the retained offsets (only possible if files were tampered
// with).
func (j *Journal) loadCheckpoints() error {
	entries, err := os.ReadDir(j.ckptDir)
	if err != nil {
		return err
	}
	oldest := j.segs[0].base
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ckptSuffix)
		if !ok || !validName(name) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(j.ckptDir, e.Name()))
		if err != nil {
			return fmt.Errorf("read checkpoint: %w", err)
		}
		next, err := decodeCheckpoint(b)
		if err != nil {
			return fmt.Errorf("checkpoint of consumer %q: %w", name, err)
		}
		switch {
		case next > j.next:
			j.log.Warn("journal: checkpoint points past the end; clamped", "consumer", name, "checkpoint", next, "end", j.next)
			next = j.next
		case next < oldest:
			j.log.Warn("journal: checkpoint points before the oldest retained offset; clamped", "consumer", name, "checkpoint", next, "oldest", oldest)
			next = oldest
		}
		j.consumers[name] = &consumerState{next: next}
	}
	return nil
}

// Consumer opens the named consumer. The first open registers it durably at
// the oldest retained offset, and from then on retention keeps every
// segment it has not committed past. A name may be open once at a time.
// Names are 1-128 characters of [A-Za-z0-9._-], not starting with a dot.
func (j *Journal) Consumer(name string) (bus.Consumer, error) {
	return j.OpenConsumer(name)
}

// OpenConsumer is Consumer returning the concrete type.
func (j *Journal) OpenConsumer(name string) (*Consumer, error) {
	if !validName(name) {
		return nil, fmt.Errorf("journal consumer %q: invalid name (use 1-%d characters of A-Z a-z 0-9 . _ -)", name, maxNameLen)
	}
	// regMu keeps retention from dropping the segment a new consumer starts
	// at while its checkpoint is written, and serialises registrations.
	j.regMu.Lock()
	defer j.regMu.Unlock()
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil, bus.ErrClosed
	}
	st := j.consumers[name]
	if st != nil && st.open {
		j.mu.Unlock()
		return nil, fmt.Errorf("journal consumer %q is already open", name)
	}
	oldest := j.segs[0].base
	j.mu.Unlock()
	if st == nil {
		if err := writeFileAtomic(j.ckptPath(name), encodeCheckpoint(oldest)); err != nil {
			return nil, fmt.Errorf("journal consumer %q: register: %w", name, err)
		}
		st = &consumerState{next: oldest}
		j.log.Info("journal: registered consumer", "consumer", name, "offset", oldest)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil, bus.ErrClosed
	}
	j.consumers[name] = st
	st.open = true
	return &Consumer{j: j, name: name, pos: st.next, done: make(chan struct{})}, nil
}

// RemoveConsumer unregisters a consumer that is not open, so that retention
// no longer waits for it. Removing an unknown name is an error.
func (j *Journal) RemoveConsumer(name string) error {
	j.regMu.Lock()
	defer j.regMu.Unlock()
	j.mu.Lock()
	st := j.consumers[name]
	closed := j.closed
	j.mu.Unlock()
	switch {
	case closed:
		return bus.ErrClosed
	case st == nil:
		return fmt.Errorf("journal consumer %q: not registered", name)
	case st.open:
		return fmt.Errorf("journal consumer %q: is open; close it first", name)
	}
	if err := os.Remove(j.ckptPath(name)); err != nil {
		return fmt.Errorf("journal consumer %q: remove: %w", name, err)
	}
	j.mu.Lock()
	delete(j.consumers, name)
	j.mu.Unlock()
	if err := syncDir(j.ckptDir); err != nil {
		return fmt.Errorf("journal consumer %q: remove: %w", name, err)
	}
	j.log.Info("journal: removed consumer", "consumer", name)
	j.retainLocked()
	return nil
}

// retain deletes the sealed segments every registered consumer has
// committed past. With no consumer registered nothing is deleted. Failures
// are logged: the checkpoints that allowed the deletion are already durable,
// and a segment file left behind is deleted again after the next Open.
func (j *Journal) retain() {
	j.regMu.Lock()
	defer j.regMu.Unlock()
	j.retainLocked()
}

// retainLocked is retain with j.regMu held.
func (j *Journal) retainLocked() {
	j.mu.Lock()
	if len(j.consumers) == 0 {
		j.mu.Unlock()
		return
	}
	low := j.next
	for _, st := range j.consumers {
		low = min(low, st.next)
	}
	n := 0
	for n < len(j.segs)-1 && j.segs[n+1].base <= low {
		n++
	}
	drop := slices.Clone(j.segs[:n])
	j.segs = slices.Delete(j.segs, 0, n)
	j.mu.Unlock()
	if n == 0 {
		return
	}
	// Oldest first, stopping at a failure, so that whatever remains on disk
	// is contiguous.
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil {
			j.log.Error("journal: retention cannot delete segment", "segment", s.path, "error", err)
			break
		}
		j.log.Debug("journal: deleted segment", "segment", s.path, "last_offset", s.base+int64(len(s.pos))-1)
	}
	if err := syncDir(j.dir); err != nil {
		j.log.Error("journal: retention", "error", err)
	}
}

// Consumer reads the journal for one registered name. Fetch is meant for one
// goroutine; Commit may be called from another.
type Consumer struct {
	j    *Journal
	name string
	done chan struct{}
	once sync.Once

	fetchMu sync.Mutex
	pos     int64 // next offset Fetch returns
	file    *os.File
	fileSeg int64 // base of the segment file is open on
	buf     []byte

	commitMu sync.Mutex
}

var _ bus.Consumer = (*Consumer)(nil)

// Fetch returns the next message, blocking until one is published, ctx is
// done or the consumer or journal is closed (bus.ErrClosed).
func (c *Consumer) Fetch(ctx context.Context) (bus.Message, error) {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	j := c.j
	for {
		j.mu.Lock()
		if j.closed || c.isClosed() {
			j.mu.Unlock()
			return bus.Message{}, bus.ErrClosed
		}
		if c.pos < j.next {
			seg := j.findSegment(c.pos)
			if seg == nil {
				j.mu.Unlock()
				return bus.Message{}, fmt.Errorf("journal consumer %q: offset %d is no longer retained", c.name, c.pos)
			}
			start, end := seg.frameBounds(c.pos)
			base, path := seg.base, seg.path
			j.mu.Unlock()
			m, err := c.read(base, path, start, end)
			if err != nil {
				return bus.Message{}, fmt.Errorf("journal consumer %q: offset %d in %s: %w", c.name, c.pos, path, err)
			}
			c.pos++
			return m, nil
		}
		wake := j.notify
		j.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return bus.Message{}, ctx.Err()
		case <-c.done:
		case <-j.done:
		}
	}
}

func (c *Consumer) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// read decodes the frame at [start,end) of the segment starting at base.
func (c *Consumer) read(base int64, path string, start, end int64) (bus.Message, error) {
	if c.file == nil || c.fileSeg != base {
		if c.file != nil {
			_ = c.file.Close()
			c.file = nil
		}
		f, err := os.Open(path)
		if err != nil {
			return bus.Message{}, err
		}
		c.file, c.fileSeg = f, base
	}
	c.buf = grow(c.buf, int(end-start))
	if _, err := c.file.ReadAt(c.buf, start); err != nil {
		return bus.Message{}, noEOF(err)
	}
	key, body, err := checkFrame(c.buf, c.pos)
	if err != nil {
		return bus.Message{}, err
	}
	rec, err := decode(body, c.j.mem)
	if err != nil {
		return bus.Message{}, err
	}
	return bus.Message{Record: rec, Partition: 0, Offset: c.pos, Key: string(key)}, nil
}

// Commit records durably that m and everything before it were processed.
// Committing an offset lower than the stored one is a no-op.
func (c *Consumer) Commit(ctx context.Context, m bus.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.Partition != 0 || m.Offset < 0 {
		return fmt.Errorf("journal consumer %q: commit of invalid position %d/%d", c.name, m.Partition, m.Offset)
	}
	if c.isClosed() {
		return bus.ErrClosed
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	j := c.j
	next := m.Offset + 1
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return bus.ErrClosed
	}
	st := j.consumers[c.name]
	if st == nil {
		j.mu.Unlock()
		return fmt.Errorf("journal consumer %q: no longer registered", c.name)
	}
	stored, end := st.next, j.next
	j.mu.Unlock()
	if next <= stored {
		return nil
	}
	if next > end {
		return fmt.Errorf("journal consumer %q: commit of offset %d beyond the last offset %d", c.name, m.Offset, end-1)
	}
	if err := writeFileAtomic(j.ckptPath(c.name), encodeCheckpoint(next)); err != nil {
		return fmt.Errorf("journal consumer %q: commit offset %d: %w", c.name, m.Offset, err)
	}
	j.mu.Lock()
	st.next = next
	j.mu.Unlock()
	j.retain()
	return nil
}

// Close closes the consumer; a pending Fetch returns bus.ErrClosed. Its
// registration (and checkpoint) stays.
func (c *Consumer) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.j.mu.Lock()
		if st := c.j.consumers[c.name]; st != nil {
			st.open = false
		}
		c.j.mu.Unlock()
	})
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	if c.file != nil {
		err := c.file.Close()
		c.file = nil
		if err != nil {
			return fmt.Errorf("journal consumer %q: close: %w", c.name, err)
		}
	}
	return nil
}
