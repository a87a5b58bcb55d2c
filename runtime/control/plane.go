package control

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/live"
)

// PlaneOptions configure a Plane.
type PlaneOptions struct {
	Plan     *plan.Plan
	Registry *module.Registry
	Node     string
	DataDir  string
	// Samples is the samples bus the clones publish to (the journal, or
	// the Kafka topic): behind a tap, so viewers see those rows too.
	Samples bus.Producer
	// Token authorises deploys and clones ("" refuses them all).
	Token string
	// MinClonePeriod is the shortest clone or stream period (default
	// live.DefaultMinPeriod).
	MinClonePeriod time.Duration
	// Sources applies a deployed plan's sources (and rules) to the runtime:
	// the engine's part of a deploy. It runs before the streams are swapped.
	Sources Applier
	// Remote forwards clones of sources this node does not run (Kafka).
	Remote live.Remote
	Logger *slog.Logger
}

// Plane is recond's temporal streaming and control plane in one piece: the
// live hubs, the clones, the streams and the control API. The engine puts
// Tap in front of its samples bus (and AlertTap in front of its alerts
// producer), registers the routes, and closes the plane when it stops its
// sources.
type Plane struct {
	Hub    *live.Hub
	Alerts *live.AlertHub
	Clones *live.Clones
	API    *API
	// Streams serves the live routes; Register adds them with the API's.
	Streams *live.Streams
}

// NewPlane builds the plane and starts the plan's streams. A stream that
// cannot start is logged; the others run.
func NewPlane(o PlaneOptions) (*Plane, error) {
	if o.Plan == nil || o.Registry == nil || o.Samples == nil {
		return nil, errors.New("control: Plan, Registry and Samples are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	hub := live.NewHub(live.HubOptions{Logger: o.Logger})
	clones, err := live.NewClones(live.CloneOptions{
		Registry: o.Registry, Node: o.Node, DataDir: o.DataDir,
		Archive: live.Tap{Next: o.Samples, Hub: hub}, Hub: hub,
		MinPeriod: o.MinClonePeriod, Remote: o.Remote, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	if err := clones.SetPlan(o.Plan); err != nil {
		o.Logger.Error("some streams of the plan do not run", "err", err)
	}
	var appliers []Applier
	if o.Sources != nil {
		appliers = append(appliers, o.Sources)
	}
	appliers = append(appliers, ClonesApplier(clones))
	api, err := New(Options{Token: o.Token, Registry: o.Registry, Plan: o.Plan, Appliers: appliers,
		Clones: clones, MinPeriod: o.MinClonePeriod, Logger: o.Logger})
	if err != nil {
		clones.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	alerts := live.NewAlertHub(live.HubOptions{Logger: o.Logger})
	return &Plane{
		Hub: hub, Alerts: alerts, Clones: clones, API: api,
		Streams: &live.Streams{Hub: hub, Alerts: alerts, Clones: clones, Logger: o.Logger},
	}, nil
}

// Tap returns next with the live hub tapped in: put it between the batcher
// and the samples bus.
func (p *Plane) Tap(next bus.Producer) bus.Producer { return live.Tap{Next: next, Hub: p.Hub} }

// AlertTap returns next with the alert hub tapped in: put it in front of
// the rule engine's alerts producer.
func (p *Plane) AlertTap(next bus.Producer) bus.Producer {
	return live.AlertTap{Next: next, Hub: p.Alerts}
}

// Register adds the live and control routes.
func (p *Plane) Register(r live.Router) {
	p.Streams.Register(r)
	p.API.Register(r)
}

// Close ends the open streams and every clone, and waits until the
// clones' last runs are published; call it while the samples bus is still
// open.
func (p *Plane) Close() {
	p.Streams.Close()
	p.Clones.Close()
}
