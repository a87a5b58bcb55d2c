package rules

import (
	"fmt"
	"math"
	"time"

	"github.com/reconmon/recon/runtime/alert"
)

// syncFiring tells the notifiers that keep firing alerts themselves
// (alert.Syncer: alertmanager) which groups are firing as their receivers
// were last told: after a restart or a deploy no transition announces
// those again, and a notifier built fresh knows nothing of them. Each
// Syncer hears the groups of the rules that notify it, possibly none.
func (e *Engine) syncFiring() {
	syncers := map[string]alert.Syncer{}
	for name, n := range e.opts.Notifiers {
		if s, ok := n.(alert.Syncer); ok {
			syncers[name] = s
		}
	}
	if len(syncers) == 0 {
		return
	}
	firing := make(map[string][]alert.Event, len(syncers))
	for _, r := range e.rules {
		groups := make([]*group, 0, len(r.groups)+1)
		for _, g := range r.groups {
			groups = append(groups, g)
		}
		if r.ruleAbs != nil {
			groups = append(groups, r.ruleAbs)
		}
		for _, g := range groups {
			sev := g.st.notified
			if sev == alert.OK {
				continue
			}
			since := time.Unix(0, g.st.since).UTC()
			ev := alert.Event{
				Time: since, Rule: r.name, Severity: sev, Previous: sev, Group: g.labels, Value: math.NaN(),
				Message:  fmt.Sprintf("%s is %s for %s since %s", r.name, sev, alert.FormatGroup(g.labels), since.Format(time.RFC3339)),
				Pipeline: r.pipeline, Fingerprint: g.fp, Since: since, Notify: r.notify,
			}
			for _, n := range r.notify {
				if syncers[n] != nil {
					firing[n] = append(firing[n], ev)
				}
			}
		}
	}
	for name, s := range syncers {
		s.Sync(firing[name])
		e.log.Info("told a notification sink the firing alerts", "sink", name, "firing", len(firing[name]))
	}
}
