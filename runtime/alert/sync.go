package alert

// Syncer is a Notifier that keeps the firing alerts itself and re-sends
// them (the alertmanager sink: Alertmanager forgets an alert that is not
// re-sent). A rule engine starting with restored state calls Sync with the
// alerts firing for this sink, as its receivers were last told; no
// transition will announce them again. Sync replaces what the notifier
// holds and must not block on delivery.
type Syncer interface {
	Notifier
	Sync(firing []Event)
}
