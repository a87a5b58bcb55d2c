package rules

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/sinks/alertmanager"
	execsink "github.com/reconmon/recon/sinks/exec"
	"github.com/reconmon/recon/sinks/stdout"
	"github.com/reconmon/recon/sinks/webhook"
)

// BuildNotifiers builds the notifiers of the plan's webhook, stdout, exec
// and alertmanager sinks, by sink name (stdout sinks write to out). Sinks of
// other kinds are left out: their owners (kafka) add their own notifiers to
// the map. Some notifiers run goroutines (alertmanager's re-sends): close
// every one that is an io.Closer when done with the map.
func BuildNotifiers(p *plan.Plan, out io.Writer, logger *slog.Logger) (map[string]alert.Notifier, error) {
	ns := map[string]alert.Notifier{}
	for _, s := range p.Sinks {
		var spec *module.Spec
		switch s.Kind {
		case webhook.Spec.Name:
			spec = webhook.Spec
		case stdout.Spec.Name:
			spec = stdout.Spec
		case execsink.Spec.Name:
			spec = execsink.Spec
		case alertmanager.Spec.Name:
			spec = alertmanager.Spec
		default:
			continue
		}
		attrs, err := module.DecodeAttrs(spec, s.Attrs)
		if err != nil {
			closeAll(ns)
			return nil, fmt.Errorf("sink %s (%s): %w", s.Name, s.Pos, err)
		}
		var n alert.Notifier
		switch s.Kind {
		case webhook.Spec.Name:
			n, err = webhook.New(s.Name, attrs, logger)
		case stdout.Spec.Name:
			n = stdout.New(attrs, out)
		case execsink.Spec.Name:
			n, err = execsink.New(s.Name, attrs, logger)
		case alertmanager.Spec.Name:
			n, err = alertmanager.New(s.Name, attrs, logger)
		}
		if err != nil {
			closeAll(ns)
			return nil, fmt.Errorf("sink %s (%s): %w", s.Name, s.Pos, err)
		}
		ns[s.Name] = n
	}
	return ns, nil
}

// closeAll closes the notifiers built so far when building the rest failed.
func closeAll(ns map[string]alert.Notifier) {
	for _, n := range ns {
		if c, ok := n.(io.Closer); ok {
			c.Close()
		}
	}
}
