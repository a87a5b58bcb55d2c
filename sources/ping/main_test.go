package ping_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/ping"
	"github.com/reconmon/recon/sources/tcp/netcheck/netchecktest"
)

// childEnv carries a job to the test binary re-executed inside an isolated
// network namespace (see inNetns).
const childEnv = "RECON_PING_CHILD"

// job is one ping run done by a child process.
type job struct {
	Target  string
	Timeout time.Duration
	Attrs   json.RawMessage
}

// outcome is what a child reports.
type outcome struct {
	Result sample.Result
	Values map[string]float64
}

func TestMain(m *testing.M) {
	if j := os.Getenv(childEnv); j != "" {
		os.Exit(child(j))
	}
	os.Exit(m.Run())
}

// child runs the job in its environment and prints the outcome as JSON.
func child(raw string) int {
	var j job
	if err := json.Unmarshal([]byte(raw), &j); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	attrs, err := module.DecodeAttrs(ping.Spec, j.Attrs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	chk, err := ping.NewCheck(module.Env{Target: j.Target, Timeout: j.Timeout, Attrs: attrs})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	res, rec := netchecktest.Run(chk, j.Timeout)
	o := outcome{Result: res, Values: map[string]float64{}}
	for _, r := range rec.Rows() {
		o.Values[r.Metric] = r.Value
	}
	if err := json.NewEncoder(os.Stdout).Encode(o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// netnsSetup prepares a fresh network namespace: loopback up, and
// 10.99.0.0/24 routed into it, where nothing answers. Nothing can leave
// the namespace: it has no other interface.
const netnsSetup = "ip link set lo up && ip route add 10.99.0.0/24 dev lo"

// silentAddr is an address that never answers inside the namespace.
const silentAddr = "10.99.0.2"

// inNetns runs argv inside a new network namespace prepared by setup and
// returns its standard output and exit code. Namespaced sysctls
// (ping_group_range) set in setup stay inside it.
func inNetns(t *testing.T, setup string, env []string, argv ...string) ([]byte, int) {
	t.Helper()
	unshare := netchecktest.Need(t, "unshare")
	netchecktest.Need(t, "ip")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, append([]string{"--net", "sh", "-c", setup + ` && exec "$@"`, "sh"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	}
	t.Fatalf("%v in a network namespace: %v: %s", argv, err, stderr.String())
	return nil, 0
}

// runInNetns runs a ping check in a fresh network namespace. With asUser
// the check runs as nobody (no CAP_NET_RAW), from a copy of the test binary
// nobody may execute.
func runInNetns(t *testing.T, setup, target string, asUser bool, set module.Attrs) outcome {
	t.Helper()
	attrs, err := module.MarshalAttrs(netchecktest.Attrs(t, ping.Spec, set))
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(job{Target: target, Timeout: time.Second, Attrs: attrs})
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{os.Args[0]}
	if asUser {
		argv = []string{netchecktest.Need(t, "setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=-all", "--bounding-set=-all", publicCopy(t, os.Args[0])}
	}
	var o outcome
	out, code := inNetns(t, setup, []string{childEnv + "=" + string(j)}, argv...)
	if code != 0 {
		t.Fatalf("child exited with %d: %s", code, out)
	}
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	return o
}

// publicCopy copies the executable at path into a directory anyone may
// read, for running it as another user.
func publicCopy(t *testing.T, path string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "recon-ping-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "ping.test")
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}
