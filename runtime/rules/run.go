package rules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/bus"
)

// minCheckpoint is the least time between two state snapshots written for
// new alert events.
const minCheckpoint = 100 * time.Millisecond

// stopWait bounds how long Run waits, when stopped, for notifications in
// flight; the rest stay in the saved outbox.
const stopWait = 5 * time.Second

// delivery is one notification handed to a sink's dispatcher.
type delivery struct {
	seq  uint64
	sink string
	ev   alert.Event
}

// Run consumes opts.Samples until ctx is done: ingest, evaluate (at event
// time and at opts.Clock), and at each checkpoint save the state and the
// new alert events durably, then publish the events to opts.Alerts, hand
// them to the notifiers and commit the bus position. After a crash the
// engine resumes from its snapshot: messages it already applied are skipped
// and undelivered events are delivered again (same event ids), so a replay
// never produces a second, different notification.
func (e *Engine) Run(ctx context.Context) error {
	if e.opts.Samples == nil {
		return errors.New("rules: Run needs a samples consumer")
	}
	for _, r := range e.rules {
		for _, n := range r.notify {
			if e.opts.Notifiers[n] == nil {
				return fmt.Errorf("rules: rule %s notifies %q, which is not a notification sink", r.name, n)
			}
		}
	}
	e.dropGoneSinks()
	e.syncFiring()
	done := make(chan delivery, 1024)
	queues := map[string]chan delivery{}
	var wg sync.WaitGroup
	dctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	for name, n := range e.opts.Notifiers {
		q := make(chan delivery, 256)
		queues[name] = q
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range q {
				if dctx.Err() != nil {
					continue // shutting down: the saved outbox still holds it
				}
				err := n.Notify(dctx, &d.ev)
				if err != nil && dctx.Err() != nil {
					continue
				}
				e.opts.Metrics.notifiedBy(d.sink, err)
				if err != nil {
					e.log.Error("notification failed", "sink", d.sink, "rule", d.ev.Rule, "fingerprint", d.ev.Fingerprint, "err", err)
				}
				select {
				case done <- d:
				case <-dctx.Done():
				}
			}
		}()
	}
	defer func() {
		// Undelivered events are in the state saved before returning; the
		// next Run delivers them.
		stop()
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()

	var (
		last      bus.Message
		haveLast  bool
		lastSave  time.Time
		sent      = map[uint64]bool{}
		fresh     int // events queued since the last checkpoint
		tickEvery = e.opts.TickEvery
	)
	outstanding := 0 // deliveries handed to dispatchers and not yet done
	ackDone := func(d delivery) {
		outstanding--
		for _, p := range e.outbox {
			if p.seq == d.seq {
				for i, s := range p.Sinks {
					if s == d.sink {
						p.Sinks = append(p.Sinks[:i:i], p.Sinks[i+1:]...)
						break
					}
				}
			}
		}
	}
	drain := func() {
		for {
			select {
			case d := <-done:
				ackDone(d)
			default:
				return
			}
		}
	}
	checkpoint := func() error {
		drain()
		// Forget what is fully delivered, then make the rest durable.
		kept := e.outbox[:0]
		for _, p := range e.outbox {
			if p.Published && len(p.Sinks) == 0 {
				delete(sent, p.seq)
				continue
			}
			kept = append(kept, p)
		}
		e.outbox = kept
		if err := e.Save(); err != nil {
			return err
		}
		lastSave = time.Now()
		if err := e.publish(ctx); err != nil {
			return err
		}
		for _, p := range e.outbox {
			if sent[p.seq] {
				continue
			}
			sent[p.seq] = true
			for _, s := range p.Sinks {
				d := delivery{seq: p.seq, sink: s, ev: p.Event}
				for queued := false; !queued; {
					select {
					case queues[s] <- d:
						queued = true
						outstanding++
					case d2 := <-done:
						ackDone(d2)
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
		}
		if haveLast {
			if err := e.opts.Samples.Commit(ctx, last); err != nil {
				return fmt.Errorf("rules: commit samples position: %w", err)
			}
			haveLast = false
		}
		return nil
	}
	if len(e.outbox) > 0 {
		if err := checkpoint(); err != nil {
			return err
		}
	}
	for {
		fctx, cancel := context.WithTimeout(ctx, tickEvery)
		m, err := e.opts.Samples.Fetch(fctx)
		cancel()
		switch {
		case err == nil:
			if off, ok := e.applied[m.Partition]; ok && m.Offset <= off {
				e.log.Debug("skipping a message already applied", "partition", m.Partition, "offset", m.Offset)
			} else if ierr := e.Ingest(m.Record); ierr != nil {
				e.log.Error("dropping a batch the engine cannot read", "partition", m.Partition, "offset", m.Offset, "err", ierr)
			}
			m.Record.Release()
			e.applied[m.Partition] = max(e.applied[m.Partition], m.Offset)
			last, haveLast = m, true
		case ctx.Err() != nil:
			// Shutting down: let deliveries in flight finish (bounded),
			// then make everything applied so far durable.
			wait := time.NewTimer(stopWait)
		flush:
			for outstanding > 0 {
				select {
				case d := <-done:
					ackDone(d)
				case <-wait.C:
					break flush
				}
			}
			wait.Stop()
			e.report(nil) // the next engine starts from the saved counts
			if err := e.Save(); err != nil {
				return err
			}
			e.logStopped()
			if haveLast {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				if err := e.opts.Samples.Commit(cctx, last); err != nil {
					return fmt.Errorf("rules: commit samples position: %w", err)
				}
			}
			return nil
		case errors.Is(err, context.DeadlineExceeded):
		default:
			return fmt.Errorf("rules: fetch samples: %w", err)
		}
		var now time.Time
		if e.opts.Clock != nil {
			now = e.opts.Clock()
		}
		evs := e.Eval(now)
		for _, ev := range evs {
			e.queue(ev)
		}
		e.report(evs)
		fresh += len(evs)
		// New events are made durable and delivered promptly, but a burst
		// of them does not write the state more than every minCheckpoint.
		since := time.Since(lastSave)
		if (fresh > 0 && since >= minCheckpoint) || (haveLast && since >= e.opts.CheckpointEvery) {
			fresh = 0
			if err := checkpoint(); err != nil {
				return err
			}
		}
	}
}

// publish writes the outbox events not yet on the alerts topic.
func (e *Engine) publish(ctx context.Context) error {
	var evs []alert.Event
	var ps []*pending
	for _, p := range e.outbox {
		if !p.Published {
			if e.opts.Alerts != nil {
				evs = append(evs, p.Event)
			}
			ps = append(ps, p)
		}
	}
	if len(evs) > 0 {
		rec := alert.Record(memory.DefaultAllocator, evs)
		err := e.opts.Alerts.Publish(ctx, evs[0].Fingerprint, rec)
		rec.Release()
		if err != nil {
			return fmt.Errorf("rules: publish alerts: %w", err)
		}
	}
	for _, p := range ps {
		p.Published = true
	}
	return nil
}

// logStopped logs the engine's counters when Run stops: samples evaluated
// and samples dropped as late (behind a rule's watermark) over all rules,
// and the rules that dropped any, so that an operator sees when the
// lateness is too small for how late samples reach the engine.
func (e *Engine) logStopped() {
	var samples, late uint64
	var lateRules []string
	for _, s := range e.Stats() {
		samples += s.Samples
		late += s.Late
		if s.Late > 0 {
			lateRules = append(lateRules, s.Rule)
		}
	}
	e.log.Info("rule engine stopped", "rules", len(e.rules), "samples", samples, "late", late, "late_rules", strings.Join(lateRules, ","))
}
