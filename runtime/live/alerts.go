package live

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/bus"
)

// AlertHub streams alert transitions to viewers and remembers the current
// state of every alerting group it has seen. It is a bus.Producer for
// batches of alert.Schema: put AlertTap in front of the alerts topic.
type AlertHub struct {
	log *slog.Logger
	f   *fanout[[]byte, map[string]struct{}]

	mu     sync.Mutex
	states map[string]alert.Event // by fingerprint; groups back to ok are removed
}

var _ bus.Producer = (*AlertHub)(nil)

// NewAlertHub returns an empty alert hub.
func NewAlertHub(opts HubOptions) *AlertHub {
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &AlertHub{
		log:    opts.Logger,
		f:      newFanout[[]byte, map[string]struct{}](opts.Queue, nil),
		states: map[string]alert.Event{},
	}
}

// Publish records the events of rec and streams each as one JSON object.
func (h *AlertHub) Publish(_ context.Context, _ string, rec arrow.RecordBatch) error {
	events, err := alert.Events(rec)
	if err != nil {
		h.log.Error("live: an alert batch could not be read and was not streamed", "err", err)
		return nil
	}
	for i := range events {
		h.Observe(&events[i])
	}
	return nil
}

// Observe records one event and streams it to the viewers of its rule.
func (h *AlertHub) Observe(ev *alert.Event) {
	h.mu.Lock()
	if ev.Severity == alert.OK {
		delete(h.states, ev.Fingerprint)
	} else {
		h.states[ev.Fingerprint] = *ev
	}
	h.mu.Unlock()
	if h.f.count() == 0 {
		return
	}
	line, err := json.Marshal(ev)
	if err != nil {
		h.log.Error("live: encoding an alert event", "rule", ev.Rule, "err", err)
		return
	}
	h.f.offer(line, func(rules map[string]struct{}) bool {
		if rules == nil {
			return true
		}
		_, ok := rules[ev.Rule]
		return ok
	}, nil)
}

// States returns the latest event of every group not in state ok, by rule
// then fingerprint.
func (h *AlertHub) States() []alert.Event {
	h.mu.Lock()
	out := make([]alert.Event, 0, len(h.states))
	for _, ev := range h.states {
		out = append(out, ev)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

// AlertViewer is one subscriber of an AlertHub.
type AlertViewer struct {
	s *sub[[]byte, map[string]struct{}]
}

// Subscribe adds a viewer of the transitions of rules (empty: all).
func (h *AlertHub) Subscribe(rules []string) *AlertViewer {
	return &AlertViewer{s: h.f.subscribe(set(rules))}
}

// Events delivers each event as one JSON object (no line end).
func (v *AlertViewer) Events() <-chan []byte { return v.s.q }

// Dropped is closed when the hub dropped the viewer for falling behind.
func (v *AlertViewer) Dropped() <-chan struct{} { return v.s.gone }

// Close unsubscribes the viewer.
func (v *AlertViewer) Close() { v.s.close() }

// AlertTap publishes alert batches to Next and, once accepted, to Hub.
type AlertTap struct {
	Next bus.Producer
	Hub  *AlertHub
}

// Publish publishes to Next, then streams the accepted events.
func (t AlertTap) Publish(ctx context.Context, key string, rec arrow.RecordBatch) error {
	if err := t.Next.Publish(ctx, key, rec); err != nil {
		return err
	}
	return t.Hub.Publish(ctx, key, rec)
}

// Viewers returns the number of subscribed viewers.
func (h *AlertHub) Viewers() int { return h.f.count() }
