package duckdb

import (
	"bufio"
	"bytes"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	recondOnce sync.Once
	recondPath string
	// recondBinDir holds the binary built once for the package's tests.
	recondBinDir string
	recondErr    error
)

// recondBinary builds cmd/recond once per test binary.
func recondBinary(t *testing.T) string {
	t.Helper()
	recondOnce.Do(func() {
		dir, err := os.MkdirTemp("", "recond-bin-")
		if err != nil {
			recondErr = err
			return
		}
		recondBinDir = dir // removed by TestMain
		recondPath = filepath.Join(dir, "recond")
		cmd := exec.Command("go", "build", "-o", recondPath, "./cmd/recond")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			recondErr = fmt.Errorf("go build ./cmd/recond: %v\n%s", err, out)
		}
	})
	if recondErr != nil {
		t.Fatal(recondErr)
	}
	return recondPath
}

// recondFreePort returns a loopback port nobody listens on right now.
func recondFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// recondProc is a running recond.
type recondProc struct {
	cmd    *exec.Cmd
	addr   string
	mu     sync.Mutex
	log    bytes.Buffer
	exited chan error
}

type recondLog struct{ p *recondProc }

func (w recondLog) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.log.Write(b)
}

// recondStart runs `recond run planFile --data data --listen addr` and
// waits until its /healthz answers.
func recondStart(t *testing.T, planFile, data string, port int) *recondProc {
	t.Helper()
	p := &recondProc{addr: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan error, 1)}
	p.cmd = exec.Command(recondBinary(t), "run", planFile, "--data", data, "--listen", p.addr, "--node", "testnode")
	p.cmd.Stdout = recondLog{p}
	p.cmd.Stderr = recondLog{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.exited:
			t.Fatalf("recond exited before it was healthy: %v\n%s", err, p.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("recond not healthy after 30 s\n%s", p.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *recondProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends SIGTERM and waits for a clean exit (status 0).
func (p *recondProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("recond exited with %v after SIGTERM\n%s", err, p.logText())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("recond did not stop within 2 min of SIGTERM\n%s", p.logText())
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *recondProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// metric returns the value of an unlabelled metric from /metrics.
func (p *recondProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

var recondStoppedLine = regexp.MustCompile(`msg="recond stopped" samples_accepted=(\d+) samples_archived=(\d+)`)

// stoppedCounts returns the accepted and archived counters recond logged
// when it stopped.
func (p *recondProc) stoppedCounts(t *testing.T) (accepted, archived int64) {
	t.Helper()
	m := recondStoppedLine.FindStringSubmatch(p.logText())
	if m == nil {
		t.Fatalf("recond did not log its final counters\n%s", p.logText())
	}
	a, _ := strconv.ParseInt(m[1], 10, 64)
	b, _ := strconv.ParseInt(m[2], 10, 64)
	return a, b
}

func recondQueryInt(t *testing.T, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func recondOpenDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestRecondEndToEnd runs recond on a quickstart-like pipeline (http and
// tcp checks of recond's own listener, selfcheck, a generator) for
// 10 s, stops it with SIGTERM and reads the archive with DuckDB: the
// schema is the contract's column by column, every source is there and the
// row count is recond's own accepted counter.
func TestRecondEndToEnd(t *testing.T) {
	dir := t.TempDir()
	port := recondFreePort(t)
	planFile := filepath.Join(dir, "e2e.recon")
	src := fmt.Sprintf(`pipeline "e2e"

defaults {
  target  = "127.0.0.1"
  period  = 1s
  timeout = 900ms
}

source health http {
  url         = "http://127.0.0.1:%d/healthz"
  expect_code = "200"
}

source port tcp {
  port = %d
}

source self selfcheck {}

source load generator {
  rate   = 5000
  series = 10
}
`, port, port)
	if err := os.WriteFile(planFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	p := recondStart(t, planFile, data, port)
	time.Sleep(10 * time.Second)
	if v := p.metric(t, "recond_samples_accepted_total"); v <= 0 {
		t.Fatalf("recond accepted no samples in 10 s\n%s", p.logText())
	}
	p.stop(t)
	accepted, archived := p.stoppedCounts(t)
	if accepted != archived {
		t.Errorf("recond stopped with %d samples accepted but %d archived", accepted, archived)
	}

	db := recondOpenDuckDB(t)
	from := fmt.Sprintf("read_parquet('%s', hive_partitioning = true)", filepath.Join(data, "archive", "samples", "**", "*.parquet"))
	cols := describeColumns(t, db, from)
	// then hour: DuckDB infers VARCHAR or BIGINT from the partition names
	want := append(contractColumns(), [2]string{"date", "DATE"})
	if len(cols) != len(want)+1 || fmt.Sprint(cols[:len(want)]) != fmt.Sprint(want) || cols[len(want)][0] != "hour" {
		t.Errorf("archive columns\n%v\nwant\n%v", cols, want)
	}

	if n := recondQueryInt(t, db, "SELECT count(*) FROM "+from); n != accepted {
		t.Errorf("archive holds %d rows, recond accepted %d", n, accepted)
	}
	for _, s := range []struct{ source, module string }{{"health", "http"}, {"port", "tcp"}, {"self", "selfcheck"}, {"load", "generator"}} {
		q := fmt.Sprintf("SELECT count(*) FROM %s WHERE pipeline = 'e2e' AND node = 'testnode' AND source = '%s' AND module = '%s' AND metric = 'status'", from, s.source, s.module)
		if n := recondQueryInt(t, db, q); n < 3 {
			t.Errorf("source %s (%s): %d status rows in the archive, want one per run (≥ 3)", s.source, s.module, n)
		}
	}
	// recond's own endpoints answered its own checks.
	q := fmt.Sprintf("SELECT count(*) FROM %s WHERE source IN ('health', 'port') AND metric = 'status' AND text <> 'ok'", from)
	if n := recondQueryInt(t, db, q); n != 0 {
		t.Errorf("%d runs of the http/tcp checks of recond's listener were not ok", n)
	}
	q = fmt.Sprintf("SELECT count(*) - count(DISTINCT value) FROM %s WHERE source = 'load' AND metric = 'seq'", from)
	if n := recondQueryInt(t, db, q); n != 0 {
		t.Errorf("%d generator sequence numbers archived twice", n)
	}
}
