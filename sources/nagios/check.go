package nagios

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/nagios/perfdata"
)

// pluginDirs are searched, in order and before PATH, for a command name
// without a slash.
var pluginDirs = []string{"/usr/lib/nagios/plugins", "/usr/lib/monitoring-plugins"}

const (
	defaultPath   = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	maxStderr     = 4 << 10
	initialBuffer = 4 << 10
	maxInterned   = 4096
)

// check runs one nagios source's plugin. Run is never called concurrently
// with itself, so the buffers are reused without locking.
type check struct {
	argv          []string
	env           []string
	dir           string
	cred          *syscall.Credential
	timeout       time.Duration
	timeoutStatus sample.Status
	maxOutput     int
	grace         time.Duration
	log           *slog.Logger

	path    string // resolved argv[0]
	buf     []byte // stdout, grown up to maxOutput and kept
	discard []byte // sink for output beyond maxOutput
	out     perfdata.Output
	row     sample.Row
	strs    map[string]string // interned labels, units and thresholds
	lastErr string            // last perfdata error logged
}

// NewCheck builds a nagios check from a source's environment.
func NewCheck(env module.Env) (module.Check, error) {
	a := env.Attrs
	lookup := macroLookup(env, a.Map(FieldMacros))
	cmd := a.Strings(FieldCommand)
	if len(cmd) == 0 {
		return nil, fmt.Errorf("nagios source %q: command is empty", env.Source)
	}
	argv := make([]string, 0, len(cmd)+2)
	if a.Bool(FieldShell) {
		argv = append(argv, "/bin/sh", "-c")
	}
	for _, arg := range cmd {
		v, err := expandMacros(arg, lookup)
		if err != nil {
			return nil, fmt.Errorf("nagios source %q: command: %w", env.Source, err)
		}
		argv = append(argv, v)
	}
	c := &check{
		argv:          argv,
		dir:           a.String(FieldDir),
		timeout:       env.Timeout,
		timeoutStatus: sample.Unknown,
		maxOutput:     int(a.Size(FieldMaxOutput)),
		grace:         a.Duration(FieldKillGrace),
		log:           env.Logger,
		strs:          make(map[string]string),
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("source", env.Source, "module", "nagios")
	if c.maxOutput <= 0 {
		c.maxOutput = DefaultMaxOutput
	}
	if !a.Has(FieldKillGrace) {
		c.grace = defaultKillGrace
	}
	if a.String(FieldTimeoutStatus) == "critical" {
		c.timeoutStatus = sample.Critical
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	c.env = []string{"PATH=" + path, "LANG=C"}
	if name := a.String(FieldUser); name != "" {
		cred, home, err := credential(name)
		if err != nil {
			return nil, fmt.Errorf("nagios source %q: %w", env.Source, err)
		}
		c.cred = cred
		c.env = append(c.env, "HOME="+home, "USER="+name, "LOGNAME="+name)
	}
	extra := a.Map(FieldEnv)
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		v, err := expandMacros(extra[k], lookup)
		if err != nil {
			return nil, fmt.Errorf("nagios source %q: env %s: %w", env.Source, k, err)
		}
		c.env = setEnv(c.env, k, v)
	}
	// A plugin missing now may be installed later: resolve again per run.
	c.path, _ = resolve(c.argv[0], path)
	return c, nil
}

// credential resolves a user name for running plugins as that user.
func credential(name string) (*syscall.Credential, string, error) {
	if os.Geteuid() != 0 {
		return nil, "", fmt.Errorf("user = %q needs recond to run as root (it runs as uid %d)", name, os.Geteuid())
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, "", fmt.Errorf("user %q: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, "", fmt.Errorf("user %q: %w", name, err)
	}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, "", fmt.Errorf("user %q: groups: %w", name, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, "", fmt.Errorf("user %q: group %q: %w", name, g, err)
		}
		cred.Groups = append(cred.Groups, uint32(n))
	}
	return cred, u.HomeDir, nil
}

// resolve finds a plugin: a name with a slash is used as is; otherwise
// pluginDirs, then PATH, are searched for an executable file.
func resolve(name, path string) (string, error) {
	if filepath.Base(name) != name {
		return name, nil
	}
	dirs := append(append([]string(nil), pluginDirs...), filepath.SplitList(path)...)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("plugin %q not found in %v or PATH", name, pluginDirs)
}

func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if len(kv) > len(k) && kv[len(k)] == '=' && kv[:len(k)] == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

var (
	devNullOnce sync.Once
	devNull     *os.File
	devNullErr  error
)

func openDevNull() (*os.File, error) {
	devNullOnce.Do(func() { devNull, devNullErr = os.Open(os.DevNull) })
	return devNull, devNullErr
}

// Run runs the plugin once and writes its perfdata rows.
func (c *check) Run(ctx context.Context, w sample.Writer) sample.Result {
	if c.path == "" {
		p, err := resolve(c.argv[0], envPath(c.env))
		if err != nil {
			stats.startFailures.Add(1)
			return sample.Result{Status: sample.Unknown, Message: err.Error()}
		}
		c.path = p
	}
	res, err := c.exec(ctx)
	if err != nil {
		stats.startFailures.Add(1)
		c.log.Warn("plugin did not start", "plugin", c.path, "err", err)
		return sample.Result{Status: sample.Unknown, Message: err.Error()}
	}
	if res.discarded > 0 {
		stats.truncated.Add(1)
	}
	if res.timedOut && ctx.Err() == context.Canceled {
		return sample.Result{Status: sample.Unknown, Message: "run cancelled: plugin " + filepath.Base(c.path) + " killed with its process group"}
	}
	if res.timedOut {
		stats.timeouts.Add(1)
		c.writeDiscarded(w, res.discarded)
		return sample.Result{
			Status:  c.timeoutStatus,
			Message: fmt.Sprintf("timeout after %s: plugin %s killed with its process group", c.timeout, filepath.Base(c.path)),
		}
	}
	perfdata.Parse(c.buf, &c.out)
	c.writePerf(w)
	c.writeDiscarded(w, res.discarded)

	msg := string(c.out.Text)
	if msg == "" {
		msg = firstLine(res.stderr)
	}
	if msg == "" {
		msg = "(no output returned from plugin)"
	}
	st := res.state.Sys().(syscall.WaitStatus)
	switch {
	case st.Signaled():
		stats.nonStandard.Add(1)
		return sample.Result{Status: sample.Unknown, Message: fmt.Sprintf("plugin killed by signal %s: %s", st.Signal(), msg)}
	case st.ExitStatus() >= 0 && st.ExitStatus() <= 3:
		s := sample.Status(st.ExitStatus())
		return sample.Result{Status: s, Message: msg, Available: s != sample.Unknown}
	default:
		stats.nonStandard.Add(1)
		return sample.Result{Status: sample.Unknown, Message: fmt.Sprintf("plugin exit code %d: %s", st.ExitStatus(), msg)}
	}
}

func envPath(env []string) string {
	for _, kv := range env {
		if len(kv) > 5 && kv[:5] == "PATH=" {
			return kv[5:]
		}
	}
	return defaultPath
}

func firstLine(b []byte) string {
	for i, ch := range b {
		if ch == '\n' {
			b = b[:i]
			break
		}
	}
	return string(trimSpace(b))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// runResult is the outcome of one plugin process.
type runResult struct {
	state     *os.ProcessState
	stderr    []byte
	discarded int64
	timedOut  bool
}

// exec starts the plugin in its own process group, reads its stdout into
// c.buf (up to maxOutput, discarding the rest) and its stderr (a little),
// kills the group at ctx's end (SIGTERM, SIGKILL after the grace) and once
// the plugin has exited (leftover children), and reaps it.
func (c *check) exec(ctx context.Context) (runResult, error) {
	var res runResult
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("not started: %w", err)
	}
	null, err := openDevNull()
	if err != nil {
		return res, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("pipe: %w", err)
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return res, fmt.Errorf("pipe: %w", err)
	}
	defer errR.Close()
	proc, err := os.StartProcess(c.path, c.argv, &os.ProcAttr{
		Dir:   c.dir,
		Env:   c.env,
		Files: []*os.File{null, outW, errW},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: c.cred},
	})
	outW.Close()
	errW.Close()
	if err != nil {
		return res, fmt.Errorf("start %s: %w", c.path, err)
	}
	stats.runs.Add(1)
	stats.running.Add(1)
	defer stats.running.Add(-1)
	pgid := proc.Pid

	// kill signals the group until the plugin is reaped (after that the
	// id may be reused).
	var mu sync.Mutex
	reaped := false
	kill := func(sig syscall.Signal) {
		mu.Lock()
		defer mu.Unlock()
		if !reaped {
			_ = syscall.Kill(-pgid, sig)
		}
	}
	var timedOut bool
	var graceTimer *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		timedOut = true
		mu.Unlock()
		kill(syscall.SIGTERM)
		mu.Lock()
		graceTimer = time.AfterFunc(c.grace, func() {
			kill(syscall.SIGKILL)
			// A descendant that left the group may still hold the pipes.
			past := time.Unix(1, 0)
			_ = outR.SetReadDeadline(past)
			_ = errR.SetReadDeadline(past)
		})
		mu.Unlock()
	})

	stderrDone := make(chan []byte, 1)
	go func() { stderrDone <- readCapped(errR, maxStderr) }()
	c.buf, res.discarded = c.readOutput(outR)
	res.stderr = <-stderrDone

	// Wait for the plugin to exit without reaping it, kill what it left
	// behind in its group, then reap.
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pgid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != syscall.EINTR {
			break
		}
	}
	kill(syscall.SIGKILL)
	stop()
	mu.Lock()
	reaped = true
	res.timedOut = timedOut
	if graceTimer != nil {
		graceTimer.Stop()
	}
	mu.Unlock()
	state, err := proc.Wait()
	if err != nil {
		return res, fmt.Errorf("wait %s: %w", c.path, err)
	}
	res.state = state
	return res, nil
}

// readOutput reads r to its end into c.buf, up to maxOutput bytes, and
// counts (and drops) the rest.
func (c *check) readOutput(r *os.File) ([]byte, int64) {
	buf := c.buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(initialBuffer, c.maxOutput))
	}
	var discarded int64
	for {
		if len(buf) == cap(buf) && cap(buf) < c.maxOutput {
			grown := make([]byte, len(buf), min(2*cap(buf), c.maxOutput))
			copy(grown, buf)
			buf = grown
		}
		var n int
		var err error
		if len(buf) < cap(buf) {
			n, err = r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		} else {
			if c.discard == nil {
				c.discard = make([]byte, 32<<10)
			}
			n, err = r.Read(c.discard)
			discarded += int64(n)
		}
		if err != nil {
			return buf, discarded
		}
	}
}

// readCapped reads r to its end, keeping the first max bytes.
func readCapped(r *os.File, max int) []byte {
	var keep []byte
	var scratch [512]byte
	for {
		n, err := r.Read(scratch[:])
		if room := max - len(keep); room > 0 {
			keep = append(keep, scratch[:min(n, room)]...)
		}
		if err != nil {
			return keep
		}
	}
}

func (c *check) str(b []byte) string {
	if s, ok := c.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(c.strs) < maxInterned {
		c.strs[s] = s
	}
	return s
}

func (c *check) writePerf(w sample.Writer) {
	r := &c.row
	for i := range c.out.Perf {
		p := &c.out.Perf[i]
		r.Reset()
		r.Metric = c.str(p.Label)
		r.Value, r.HasValue = p.Value, p.HasValue
		r.Unit = c.str(p.UOM)
		for _, l := range [...]struct {
			k string
			v []byte
		}{{LabelWarn, p.Warn}, {LabelCrit, p.Crit}, {LabelMin, p.Min}, {LabelMax, p.Max}} {
			if len(l.v) > 0 {
				r.Labels = append(r.Labels, sample.Label{Key: l.k, Value: c.str(l.v)})
			}
		}
		w.Write(r)
		if !p.HasValue {
			continue
		}
		if base, v, ok := perfdata.Normalize(p.Value, p.UOM); ok {
			r.Labels = append(r.Labels[:0], sample.Label{Key: LabelNormalizedFrom, Value: r.Unit})
			r.Value, r.Unit = v, base
			w.Write(r)
		}
	}
	if c.out.LongText != nil {
		r.Reset()
		r.Metric, r.Text, r.HasText = MetricLongOutput, string(c.out.LongText), true
		w.Write(r)
	}
	if c.out.Errors > 0 {
		stats.perfdataError.Add(uint64(c.out.Errors))
		r.Reset()
		r.Metric = MetricPerfdataErrors
		r.Value, r.HasValue = float64(c.out.Errors), true
		r.Text, r.HasText = c.out.FirstError, true
		w.Write(r)
		level := slog.LevelDebug
		if c.out.FirstError != c.lastErr {
			level = slog.LevelWarn
			c.lastErr = c.out.FirstError
		}
		c.log.Log(context.Background(), level, "unparseable perfdata skipped", "plugin", c.path, "items", c.out.Errors, "first", c.out.FirstError)
	}
}

func (c *check) writeDiscarded(w sample.Writer, n int64) {
	if n == 0 {
		return
	}
	r := &c.row
	r.Reset()
	r.Metric, r.Value, r.HasValue, r.Unit = MetricOutputDiscarded, float64(n), true, "B"
	w.Write(r)
}
