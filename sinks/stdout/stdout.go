package stdout

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/alert"
)

// Notifier prints one line per alert event.
type Notifier struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// New returns a notifier writing to w (recond passes os.Stdout) in the
// format of attrs.
func New(attrs module.Attrs, w io.Writer) *Notifier {
	return &Notifier{w: w, json: attrs.String(FieldFormat) == FormatJSON}
}

// Notify writes ev as one line.
func (n *Notifier) Notify(_ context.Context, ev *alert.Event) error {
	var line []byte
	if n.json {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("stdout sink: encode alert: %w", err)
		}
		line = append(b, '\n')
	} else {
		line = []byte(Text(ev) + "\n")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.w.Write(line); err != nil {
		return fmt.Errorf("stdout sink: %w", err)
	}
	return nil
}

// Text renders ev as the text format's line.
func Text(ev *alert.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %s", ev.Time.UTC().Format(time.RFC3339), strings.ToUpper(ev.Severity.String()), ev.Rule, ev.GroupString())
	if !math.IsNaN(ev.Value) {
		fmt.Fprintf(&b, " value=%g", ev.Value)
	}
	if ev.Repeat {
		fmt.Fprintf(&b, " (still %s since %s)", ev.Severity, ev.Since.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(&b, " (was %s)", ev.Previous)
	}
	if ev.Message != "" {
		b.WriteString(": " + ev.Message)
	}
	return b.String()
}
