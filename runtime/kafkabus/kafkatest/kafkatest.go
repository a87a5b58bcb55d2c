// Package kafkatest runs the test Kafka broker (franz-go's kfake, built from
// interop/kfake) as its own process, and finds kcat.
package kafkatest

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// repoRoot finds the recon checkout: the nearest directory at or above the
// current module's that holds interop/kfake (tests of nested modules, such
// as interop/duckdb, use the broker too).
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the recon module")
	}
	for dir := filepath.Dir(mod); ; {
		if _, err := os.Stat(filepath.Join(dir, "interop", "kfake", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no interop/kfake above %s", mod)
		}
		dir = parent
	}
}

// binary builds the kfake helper once per test process. The binary is
// kept in the temp dir under the hash of its sources (go.mod, go.sum,
// main.go), so test processes share one build per version of the helper
// rather than leaving a copy each.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func build() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "interop", "kfake")
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", fmt.Errorf("kfake sources: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("recon-kfake-%x", h.Sum(nil)[:8]))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	// Built under a temporary name and renamed: concurrent test processes
	// never run a half-written binary.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build kfake: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build kfake: %w", err)
	}
	return path, nil
}

// Broker is a running kfake process.
type Broker struct {
	Addrs []string
	cmd   *exec.Cmd
}

// Start starts a broker with partitions per auto-created topic; it is
// killed when the test ends.
func Start(t testing.TB, partitions int, topics ...string) *Broker {
	t.Helper()
	b, _ := start(t, partitions, "", topics)
	return b
}

// StartBehindProxy starts a broker that clients reach only through a
// loopback TCP proxy the test controls (Proxy.Cut): Broker.Addrs is the
// proxy's address, which the broker also gives clients as its own.
func StartBehindProxy(t testing.TB, partitions int, topics ...string) (*Broker, *Proxy) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, backend := start(t, partitions, ln.Addr().String(), topics)
	p := newProxy(ln, backend)
	t.Cleanup(p.close)
	return b, p
}

func start(t testing.TB, partitions int, advertise string, topics []string) (*Broker, string) {
	t.Helper()
	args := []string{"-partitions", fmt.Sprint(partitions)}
	if len(topics) > 0 {
		args = append(args, "-topics", strings.Join(topics, ","))
	}
	if advertise != "" {
		args = append(args, "-advertise", advertise)
	}
	cmd := exec.Command(binary(t), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	b := &Broker{cmd: cmd}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	var backend string
	select {
	case l := <-line:
		addrs, ok := strings.CutPrefix(l, "listening ")
		if !ok {
			t.Fatalf("kfake said %q", l)
		}
		addrs, backend, _ = strings.Cut(addrs, " backend ")
		b.Addrs = strings.Split(addrs, ",")
	case <-time.After(30 * time.Second):
		t.Fatal("kfake did not start within 30s")
	}
	if advertise != "" && backend == "" {
		t.Fatal("kfake did not say where it listens behind the proxy")
	}
	return b, backend
}

// CPUTime is the CPU time (user + system) the broker process used so far,
// from /proc (Linux), for benchmarks.
func (b *Broker) CPUTime() (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", b.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in ")": state
	// is the 3rd field of the file, utime and stime the 14th and 15th.
	_, rest, ok := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat line %q", raw)
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// Pause stops the broker process (SIGSTOP): connections hang, nothing is
// answered, and its in-memory data survives until Resume.
func (b *Broker) Pause() error { return syscall.Kill(b.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused broker.
func (b *Broker) Resume() error { return syscall.Kill(b.cmd.Process.Pid, syscall.SIGCONT) }

// Kcat returns kcat's path, failing under CI=true when it is missing.
func Kcat(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("kcat"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("kcat not installed (CI=true: a missing peer fails); install with: make deps")
	}
	t.Skip("kcat not installed; install with: make deps (under CI this fails)")
	return ""
}
