package live

import (
	"sync"
	"sync/atomic"
)

// fanout hands items to subscribers through bounded queues. Offering never
// blocks: a subscriber whose queue is full is dropped (its gone channel is
// closed), so a slow subscriber never slows the publisher.
type fanout[T, F any] struct {
	queue   int
	release func(T) // drops one reference to an item; nil when items need none

	mu   sync.Mutex
	subs map[*sub[T, F]]struct{}

	delivered, dropped atomic.Int64
}

type sub[T, F any] struct {
	f    *fanout[T, F]
	q    chan T
	gone chan struct{} // closed when the fan-out dropped the subscriber
	// done is set (under f.mu) once the subscriber left the fan-out, by
	// Close or by being dropped; no item is queued after that.
	done bool
	// filter says what the subscriber wants; read-only after subscribe.
	filter F
}

func newFanout[T, F any](queue int, release func(T)) *fanout[T, F] {
	return &fanout[T, F]{queue: queue, release: release, subs: map[*sub[T, F]]struct{}{}}
}

func (f *fanout[T, F]) subscribe(filter F) *sub[T, F] {
	s := &sub[T, F]{f: f, q: make(chan T, f.queue), gone: make(chan struct{}), filter: filter}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s
}

func (f *fanout[T, F]) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// offer queues item for every subscriber that wants it; retain is called
// once per queued copy (each subscriber releases its own).
func (f *fanout[T, F]) offer(item T, wants func(F) bool, retain func(T)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if !wants(s.filter) {
			continue
		}
		if retain != nil {
			retain(item)
		}
		select {
		case s.q <- item:
			f.delivered.Add(1)
		default:
			if f.release != nil {
				f.release(item)
			}
			f.dropped.Add(1)
			delete(f.subs, s)
			s.done = true
			close(s.gone)
		}
	}
}

// close removes s and releases what is still queued for it.
func (s *sub[T, F]) close() {
	s.f.mu.Lock()
	delete(s.f.subs, s)
	s.done = true
	s.f.mu.Unlock()
	for {
		select {
		case item := <-s.q:
			if s.f.release != nil {
				s.f.release(item)
			}
		default:
			return
		}
	}
}
