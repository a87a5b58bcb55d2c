package control_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/live/livetest"
)

var (
	binDir   string
	buildErr error
	building sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds recond and reconc once per test binary.
func binaries(t *testing.T) (recond, reconc string) {
	t.Helper()
	building.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "recon-cli-")
		if buildErr != nil {
			return
		}
		for _, cmd := range []string{"recond", "reconc"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "github.com/reconmon/recon/cmd/"+cmd).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "recond"), filepath.Join(binDir, "reconc")
}

var listening = regexp.MustCompile(`msg=listening .*addr=(127\.0\.0\.1:\d+)`)

// startRecond runs recond on p with the token in its environment and
// returns its base URL; it is stopped with SIGTERM when the test ends.
func startRecond(t *testing.T, recond string, p *plan.Plan) string {
	t.Helper()
	dir := t.TempDir()
	body, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(recond, "run", file, "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0", "--node", "cli")
	cmd.Env = append(os.Environ(), "RECON_TOKEN="+token)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-logDone
		if err := cmd.Wait(); err != nil {
			t.Errorf("recond did not stop cleanly: %v", err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("recond did not listen within 30s")
	}
	return ""
}

func reconc(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

// reconc watch and reconc deploy against a recond process.
func TestReconcAgainstRecond(t *testing.T) {
	recond, bin := binaries(t)
	port := livetest.TCPTarget(t)
	web := livetest.TCPSource("web", port, time.Minute)
	url := startRecond(t, recond, livetest.Plan(t, []plan.Source{web}, nil, nil))
	tok := []string{"RECON_TOKEN=" + token}

	out, errOut, code := reconc(t, bin, tok, "watch", "web", "--every", "1s", "--for", "3s", "--json", "--metric", "available", "--server", url)
	if code != 0 {
		t.Fatalf("reconc watch: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["metric"] != "available" || !strings.HasPrefix(fmt.Sprint(m["source"]), "web~") || m["node"] != "cli" {
			t.Fatalf("watch line %q: want NDJSON samples of a clone of web", l)
		}
	}
	if len(lines) < 2 {
		t.Errorf("watch printed %d samples in 3s at 1s, want at least 2", len(lines))
	}

	dir := t.TempDir()
	write := func(name string, p *plan.Plan) string {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := write("good.json", livetest.Plan(t, []plan.Source{web, livetest.TCPSource("db", port, time.Minute)}, nil, nil))
	bad := web
	bad.Module = "telnet"
	invalid := write("bad.json", livetest.Plan(t, []plan.Source{bad}, nil, nil))

	if _, errOut, code := reconc(t, bin, []string{"RECON_TOKEN=wrong"}, "deploy", good, "--to", url); code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "wrong token") {
		t.Errorf("deploy with a wrong token: exit %d, %q", code, errOut)
	}
	if _, errOut, code := reconc(t, bin, tok, "deploy", invalid, "--to", url); code != 1 || !strings.Contains(errOut, "422") || !strings.Contains(errOut, `unknown module "telnet"`) {
		t.Errorf("deploy of an invalid plan: exit %d, %q", code, errOut)
	}
	out, errOut, code = reconc(t, bin, tok, "deploy", good, "--to", url)
	if code != 0 || !strings.Contains(out, "sources: +db (1 unchanged)") {
		t.Errorf("deploy: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
