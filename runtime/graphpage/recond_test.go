package graphpage_test

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// recond builds cmd/recond and runs it on plan with its data in data,
// listening on a free loopback port; it returns the page's URL.
func recond(t *testing.T, plan, data, tokenFile string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "recond")
	build := exec.Command("go", "build", "-o", bin, "./cmd/recond")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/recond: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var mu sync.Mutex
	var log bytes.Buffer
	cmd := exec.Command(bin, "run", plan, "--data", data, "--listen", addr, "--token-file", tokenFile, "--node", "graphs")
	cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &log}, lockedWriter{&mu, &log}
	// recond and anything it starts form one process group, killed as a
	// whole; Wait gives up on the output pipes soon after the kill.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	logText := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("recond did not stop within 30 s of SIGTERM\n%s", logText())
		}
		if t.Failed() {
			t.Logf("recond log:\n%s", logText())
		}
	})
	// Generous: CI runs this beside the race detector on two cores.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + addr
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("recond exited before it was healthy: %v\n%s", err, logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("recond not healthy after 90 s\n%s", logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// listener accepts and closes connections on 127.0.0.1 until the test
// ends (a tcp check's target).
func listener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPageFromRecond runs the page against a real recond: the archive it
// serves (samples and an alert transition) was written before it started,
// its tcp source is cloned at 1 s and streamed onto the chart, and a rule
// of its plan over a generator source fires inside recond and is marked on
// the live chart.
func TestPageFromRecond(t *testing.T) {
	webPort := listener(t)
	data := t.TempDir()
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	archiveWebAt(t, filepath.Join(data, "archive"), start)
	plan := filepath.Join(t.TempDir(), "graphs.recon")
	// gen counts up from 0 at 4 samples a second: gen_high goes critical
	// about a second after recond starts and stays so (one transition).
	src := fmt.Sprintf(`pipeline "graphs-e2e"

source web tcp {
  target = "127.0.0.1"
  port   = %d
  period = 60s
}

source gen generator {
  period = 1s
  rate   = 4
}

rule gen_high {
  from     = gen where metric == "seq"
  window   = sliding(2s, 1s)
  lateness = 2s
  critical when max(value) > 3
}
`, webPort)
	if err := os.WriteFile(plan, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := recond(t, plan, data, tokenFile)
	ctx := browser(t)

	url := fmt.Sprintf("%s/#source=web&metric=duration&from=%d&to=%d&points=1000", base, start.Add(30*time.Minute).Unix(), start.Add(90*time.Minute).Unix())
	do(t, ctx, "load the page from recond", chromedp.Navigate(url))
	st := waitState(t, ctx, 10*time.Second, "the archived series and transition are drawn", func(st pageState) bool {
		return (st.Loads > 0 && st.MarksDrawn > 0) || st.Error != ""
	})
	if st.Error != "" || len(st.Series) != 1 || !st.Series[0].Raw || st.Series[0].Points != 360 || st.ArchivedMarks != 1 {
		t.Fatalf("one archived hour at 10 s from recond: %+v, want 360 raw points and the archived transition", st)
	}

	do(t, ctx, "enter the token and click live", chromedp.SetValue(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("live")))
	waitState(t, ctx, 5*time.Second, "recond starts the clone", func(st pageState) bool { return len(st.Live) == 1 })
	st = waitState(t, ctx, 2*time.Second, "live points arrive from recond", func(st pageState) bool {
		return len(st.Series) == 1 && st.Series[0].Live >= 1
	})
	first := st.Series[0].Live
	waitState(t, ctx, 2*time.Second, "more live points arrive from recond", func(st pageState) bool {
		return len(st.Series) == 1 && st.Series[0].Live > first
	})

	// The live chart spans the last minutes, where recond's rule fired.
	st = waitState(t, ctx, 20*time.Second, "recond's gen_high transition is marked on the live chart", func(st pageState) bool {
		return slices.Contains(st.RulesDrawn, "gen_high")
	})
	if st.Marks != 1 {
		t.Errorf("the alert stream brought %d transitions, want gen_high's one", st.Marks)
	}
	waitAlertListed(t, ctx, "gen_high", "critical")
	saveScreenshot(t, ctx, *recondScreenshot)
}

var recondScreenshot = flag.String("recond-screenshot", "", "also save the screenshot of the page served by recond at this path")
