package journal

import (
	"slices"
	"time"
)

// FsyncBuckets are the upper bounds of the fsync duration histogram.
var FsyncBuckets = []time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// counters are the cumulative figures behind Stats; guarded by Journal.mu.
type counters struct {
	published      uint64
	publishedBytes uint64
	publishErrors  uint64
	fsyncs         uint64
	fsyncSum       time.Duration
	fsyncBuckets   [13]uint64 // len(FsyncBuckets)+1, the last is +Inf
}

func (c *counters) observeFsync(d time.Duration) {
	c.fsyncs++
	c.fsyncSum += d
	i, _ := slices.BinarySearch(FsyncBuckets, d)
	c.fsyncBuckets[i]++
}

// Stats is a snapshot of a journal for /metrics.
type Stats struct {
	// LastOffset is the offset of the newest batch, -1 when empty.
	LastOffset int64
	// OldestOffset is the first offset still retained.
	OldestOffset int64
	// Bytes on disk in segment files, and their number.
	Bytes    int64
	Segments int
	// Published counts batches made durable since Open, PublishedBytes their
	// framed size, PublishErrors the batches whose Publish failed.
	Published      uint64
	PublishedBytes uint64
	PublishErrors  uint64
	// Fsyncs counts fdatasync calls on segments since Open; FsyncTime is
	// their total duration and FsyncHistogram[i] how many took at most
	// FsyncBuckets[i] (not cumulative; the last element counts the rest).
	Fsyncs         uint64
	FsyncTime      time.Duration
	FsyncHistogram []uint64
	Consumers      []ConsumerStats
}

// ConsumerStats describes one registered consumer.
type ConsumerStats struct {
	Name string
	// Committed is the last committed offset, -1 if none is retained.
	Committed int64
	// Lag is the number of batches published but not yet committed.
	Lag  int64
	Open bool
}

// Stats returns a snapshot of the journal's figures.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := Stats{
		LastOffset:     j.next - 1,
		OldestOffset:   j.segs[0].base,
		Segments:       len(j.segs),
		Published:      j.stats.published,
		PublishedBytes: j.stats.publishedBytes,
		PublishErrors:  j.stats.publishErrors,
		Fsyncs:         j.stats.fsyncs,
		FsyncTime:      j.stats.fsyncSum,
		FsyncHistogram: slices.Clone(j.stats.fsyncBuckets[:]),
	}
	for _, seg := range j.segs {
		s.Bytes += seg.size
	}
	for name, st := range j.consumers {
		s.Consumers = append(s.Consumers, ConsumerStats{Name: name, Committed: st.next - 1, Lag: j.next - st.next, Open: st.open})
	}
	slices.SortFunc(s.Consumers, func(a, b ConsumerStats) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return s
}
