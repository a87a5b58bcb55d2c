package rules

// dropGoneSinks removes from the outbox the deliveries to sinks that have
// no notifier: a deploy removed the sink while an event for it was still
// pending (or queued the resolution of a removed rule to its old sinks).
// Nothing could deliver them, and waiting for them would stall the engine.
func (e *Engine) dropGoneSinks() {
	for _, p := range e.outbox {
		kept := p.Sinks[:0]
		for _, s := range p.Sinks {
			if e.opts.Notifiers[s] != nil {
				kept = append(kept, s)
				continue
			}
			e.log.Warn("dropping a notification to a sink no longer in the plan", "sink", s, "rule", p.Event.Rule, "fingerprint", p.Event.Fingerprint)
		}
		p.Sinks = kept
	}
}
