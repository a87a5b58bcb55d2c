package exec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	osexec "os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/alert"
)

// Notifier runs a command per alert event.
type Notifier struct {
	name     string
	argv     []string
	env      []string
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	log      *slog.Logger
}

// New returns the notifier of sink name with attrs (decoded against Spec).
func New(name string, attrs module.Attrs, logger *slog.Logger) (*Notifier, error) {
	if err := validate(attrs); err != nil {
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	var env []string
	for k, v := range attrs.Map(FieldEnv) {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return &Notifier{
		name: name, argv: attrs.Strings(FieldCommand), env: env, timeout: attrs.Duration(FieldTimeout),
		attempts: int(max(1, attrs.Int(FieldMaxAttempts))), backoff: attrs.Duration(FieldBackoff),
		log: logger.With("sink", name),
	}, nil
}

// Notify runs the command with ev on stdin and in the environment, retrying
// a failed run.
func (n *Notifier) Notify(ctx context.Context, ev *alert.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("exec %s: encode alert: %w", n.name, err)
	}
	env := append(os.Environ(), n.env...)
	env = append(env, eventEnv(ev, body)...)
	wait := n.backoff
	for attempt := 1; ; attempt++ {
		err = n.run(ctx, body, env)
		if err == nil {
			return nil
		}
		if attempt >= n.attempts {
			return fmt.Errorf("exec %s: %w", n.name, err)
		}
		n.log.Warn("command failed, retrying", "attempt", attempt, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("exec %s: %w (last error: %v)", n.name, ctx.Err(), err)
		}
		wait *= 2
	}
}

func (n *Notifier) run(ctx context.Context, body []byte, env []string) error {
	rctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	cmd := osexec.CommandContext(rctx, n.argv[0], n.argv[1:]...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if out.Len() > 0 {
		n.log.Info("command output", "argv0", n.argv[0], "output", strings.TrimSpace(limit(out.String(), 4096)))
	}
	if rctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s: killed after timeout %s", n.argv[0], n.timeout)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", n.argv[0], err)
	}
	return nil
}

func limit(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// eventEnv is the RECON_* environment of ev.
func eventEnv(ev *alert.Event, body []byte) []string {
	keys := make([]string, 0, len(ev.Group))
	for k := range ev.Group {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + ev.Group[k]
	}
	value := ""
	if !math.IsNaN(ev.Value) {
		value = strconv.FormatFloat(ev.Value, 'g', -1, 64)
	}
	return []string{
		"RECON_ALERT=" + string(body),
		"RECON_RULE=" + ev.Rule,
		"RECON_SEVERITY=" + ev.Severity.String(),
		"RECON_PREVIOUS=" + ev.Previous.String(),
		"RECON_FINGERPRINT=" + ev.Fingerprint,
		"RECON_VALUE=" + value,
		"RECON_MESSAGE=" + ev.Message,
		"RECON_TIME=" + ev.Time.UTC().Format(time.RFC3339Nano),
		"RECON_GROUP=" + strings.Join(pairs, ","),
	}
}
