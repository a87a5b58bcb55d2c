package module

import (
	"context"
	"log/slog"
	"time"

	"github.com/reconmon/recon/runtime/sample"
)

// Env is what the runtime hands a module when it builds an instance.
type Env struct {
	Pipeline string
	// Source is the instance name (a clone has its own).
	Source string
	Node   string
	// Target is the host or address checked; "" for listeners.
	Target  string
	Period  time.Duration
	Timeout time.Duration
	Attrs   Attrs
	// DataDir is recond's --data directory.
	DataDir string
	Logger  *slog.Logger
}

// Check is a scheduled source. The scheduler calls Run once per period,
// never concurrently with itself, with ctx bounded by the source's timeout.
// Run writes the module's metrics to w and returns the run's outcome; the
// runtime adds the status, available and duration rows.
type Check interface {
	Run(ctx context.Context, w sample.Writer) sample.Result
}

// Listener is a passive source (e.g. snmp_trap): Listen runs until ctx is
// cancelled, writing rows as they arrive, and returns nil on a clean stop.
// w is safe for use from the listener's goroutines one at a time; a listener
// that writes from several goroutines serialises its writes.
type Listener interface {
	Listen(ctx context.Context, w sample.Writer) error
}

// Closer is implemented by checks and listeners that hold resources
// between runs (sockets, sessions).
type Closer interface {
	Close() error
}
