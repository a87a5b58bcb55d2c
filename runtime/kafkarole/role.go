// Package kafkarole runs recond in one of its scale-out roles over Kafka
// (docs/kafka.md): a collector runs the sources into its local journal and
// forwards the journal to the samples topic; archivers form a consumer
// group writing the Parquet archive exactly once; a rules process runs the
// rule engine on the samples topic and publishes alert events as JSON.
// Role `all` is recond on one machine and needs nothing from here.
package kafkarole

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/journal"
	kafkasink "github.com/reconmon/recon/sinks/kafka"
	"github.com/reconmon/recon/sinks/parquet"
)

// Role is what a recond process does.
type Role string

// Roles of `recond run --role`.
const (
	RoleAll       Role = "all"
	RoleCollector Role = "collector"
	RoleArchiver  Role = "archiver"
	RoleRules     Role = "rules"
)

// ParseRole reads a --role value.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleAll, RoleCollector, RoleArchiver, RoleRules:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want all, collector, archiver or rules)", s)
}

// Runs reports whether the role runs the plan's sources.
func (r Role) Runs() bool { return r == RoleAll || r == RoleCollector }

// Options configure a process in a Kafka role.
type Options struct {
	Role Role
	Plan *plan.Plan
	// DataDir is recond's --data: the archive's relative path and the rule
	// state resolve against it.
	DataDir string
	// Journal is the collector's local journal (role collector only).
	Journal *journal.Journal
	// Membership tunes the archivers' group.
	Membership GroupOptions
	// Out receives the stdout sinks' notifications (role rules).
	Out    io.Writer
	Logger *slog.Logger
}

// Runner is a started role.
type Runner interface {
	Run(ctx context.Context) error
}

// New prepares the role's work from the plan's kafka sink (the first one
// that carries samples). Role all is not a Kafka role: the caller runs the
// embedded pipeline instead.
func New(opts Options) (Runner, error) {
	if opts.Plan == nil {
		return nil, errors.New("kafka role: no plan")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	bus, err := SamplesSink(opts.Plan)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	switch opts.Role {
	case RoleCollector:
		origin, err := LoadOrigin(opts.DataDir)
		if err != nil {
			return nil, fmt.Errorf("kafka collector: %w", err)
		}
		return NewCollector(CollectorOptions{Journal: opts.Journal, Kafka: bus.SamplesOptions(log), Origin: origin, Logger: log})
	case RoleArchiver:
		cfg, err := ArchiveConfig(opts.Plan, opts.DataDir)
		if err != nil {
			return nil, err
		}
		return NewArchiver(ArchiverOptions{Kafka: bus.SamplesOptions(log), Archive: cfg, Membership: opts.Membership, Logger: log})
	case RoleRules:
		return NewRules(RulesOptions{Plan: opts.Plan, Kafka: bus.SamplesOptions(log), DataDir: opts.DataDir, Out: opts.Out, Logger: log})
	}
	return nil, fmt.Errorf("kafka role: role %q has no Kafka work", opts.Role)
}

// SamplesSink returns the plan's kafka sink that carries samples: the bus
// between the roles.
func SamplesSink(p *plan.Plan) (kafkasink.Config, error) {
	cs, err := kafkasink.Configs(p)
	if err != nil {
		return kafkasink.Config{}, err
	}
	for _, c := range cs {
		if c.Samples {
			return c, nil
		}
	}
	return kafkasink.Config{}, errors.New("the plan has no kafka sink carrying samples: roles other than `all` need one (sink bus kafka { brokers = [...] })")
}

// ArchiveConfig reads the plan's parquet sink (the implied default when it
// declares none), resolving a relative path against dataDir.
func ArchiveConfig(p *plan.Plan, dataDir string) (parquet.Config, error) {
	for _, s := range p.Sinks {
		if s.Kind != parquet.Spec.Name {
			continue
		}
		a, err := module.DecodeAttrs(parquet.Spec, s.Attrs)
		if err != nil {
			return parquet.Config{}, fmt.Errorf("sink %s (%s): %w", s.Name, s.Pos, err)
		}
		return parquet.ConfigFromAttrs(a, dataDir), nil
	}
	return parquet.DefaultConfig(filepath.Join(dataDir, parquet.DefaultPath)), nil
}
