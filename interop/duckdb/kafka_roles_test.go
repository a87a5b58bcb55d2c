package duckdb

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/bus"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/kafkarole"
	"github.com/reconmon/recon/runtime/sample"
)

// The role processes of these tests are this test binary run again with
// kafkaEnvRole set: TestKafkaRoleProcess then runs the role (what
// `recond run --role` runs) and exits.
const (
	kafkaEnvRole = "RECON_TEST_KAFKA_ROLE"
	kafkaEnvPlan = "RECON_TEST_KAFKA_PLAN"
	kafkaEnvData = "RECON_TEST_KAFKA_DATA"
	kafkaEnvNode = "RECON_TEST_KAFKA_NODE"
)

// kafkaStopFile, created in a collector's data dir, ends its generator.
const kafkaStopFile = "stop-generating"

// TestKafkaRoleProcess is the body of a role process; run directly it
// does nothing.
func TestKafkaRoleProcess(t *testing.T) {
	role := os.Getenv(kafkaEnvRole)
	if role == "" {
		return
	}
	if err := kafkaRoleProcess(role); err != nil {
		fmt.Fprintln(os.Stderr, "role process:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func kafkaRoleProcess(name string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	role, err := kafkarole.ParseRole(name)
	if err != nil {
		return err
	}
	data := os.Getenv(kafkaEnvData)
	raw, err := os.ReadFile(os.Getenv(kafkaEnvPlan))
	if err != nil {
		return err
	}
	p, err := plan.Unmarshal(raw)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	opts := kafkarole.Options{Role: role, Plan: p, DataDir: data, Logger: log,
		Membership: kafkarole.GroupOptions{SessionTimeout: 6 * time.Second, RebalanceTimeout: 10 * time.Second}}
	var wg sync.WaitGroup
	defer wg.Wait()
	if role == kafkarole.RoleCollector {
		j, err := journal.Open(filepath.Join(data, "journal", "samples"), journal.Options{Logger: log})
		if err != nil {
			return err
		}
		defer j.Close()
		opts.Journal = j
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := kafkaGenerate(ctx, j, os.Getenv(kafkaEnvNode), data, os.Stdout); err != nil {
				log.Error("generator", "err", err)
			}
		}()
	}
	r, err := kafkarole.New(opts)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// kafkaGenerate stands in for the scheduler and batcher of a collector:
// batches of sample rows whose value is a sequence number of the node,
// published to the journal under three source keys. The next number is
// reserved durably before a batch is published, so a number is never used
// twice across crashes; each accepted range is printed as
// "accepted FIRST END" once the journal accepted it.
func kafkaGenerate(ctx context.Context, j bus.Producer, node, data string, out io.Writer) error {
	seqFile := filepath.Join(data, "next-seq")
	var next int64
	if b, err := os.ReadFile(seqFile); err == nil {
		if next, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return fmt.Errorf("next-seq: %w", err)
		}
	}
	const rows = 250
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(data, kafkaStopFile)); err == nil {
			return nil
		}
		if err := kafkaWriteDurable(seqFile, strconv.FormatInt(next+rows, 10)); err != nil {
			return err
		}
		src := fmt.Sprintf("%ss%d", node, i%3)
		rec := kafkaBatch(node, src, next, rows, time.Now())
		err := j.Publish(ctx, src, rec)
		rec.Release()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fmt.Fprintf(out, "accepted %d %d\n", next, next+rows)
		next += rows
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func kafkaWriteDurable(path, s string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func kafkaBatch(node, source string, first int64, rows int, ts time.Time) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer b.Release()
	for i := range rows {
		b.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixNano()))
		b.Field(sample.IdxPipeline).(*array.StringBuilder).Append("kafka-e2e")
		b.Field(sample.IdxSource).(*array.StringBuilder).Append(source)
		b.Field(sample.IdxModule).(*array.StringBuilder).Append("generator")
		b.Field(sample.IdxTarget).(*array.StringBuilder).Append("127.0.0.1")
		b.Field(sample.IdxMetric).(*array.StringBuilder).Append("seq")
		b.Field(sample.IdxValue).(*array.Float64Builder).Append(float64(first + int64(i)))
		b.Field(sample.IdxText).(*array.StringBuilder).AppendNull()
		b.Field(sample.IdxUnit).(*array.StringBuilder).AppendNull()
		b.Field(sample.IdxLabels).(*array.MapBuilder).Append(true)
		b.Field(sample.IdxNode).(*array.StringBuilder).Append(node)
	}
	return b.NewRecordBatch()
}

// kafkaProc is a running role process.
type kafkaProc struct {
	name string
	cmd  *exec.Cmd
	log  string // its stderr
	done chan struct{}

	mu       sync.Mutex
	accepted [][2]int64 // collectors: accepted ranges
}

// kafkaStart starts a role process (this test binary); it is killed when
// the test ends.
func kafkaStart(t *testing.T, name, role, planPath, data, node string) *kafkaProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKafkaRoleProcess$")
	cmd.Env = append(os.Environ(), kafkaEnvRole+"="+role, kafkaEnvPlan+"="+planPath, kafkaEnvData+"="+data, kafkaEnvNode+"="+node)
	return kafkaStartCmd(t, name, cmd, data)
}

// kafkaStartCmd starts cmd with its stderr in data/name.log; it is killed
// when the test ends.
func kafkaStartCmd(t *testing.T, name string, cmd *exec.Cmd, data string) *kafkaProc {
	t.Helper()
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &kafkaProc{name: name, log: filepath.Join(data, name+".log"), done: make(chan struct{}), cmd: cmd}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd.Stderr = logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var a, b int64
			if _, err := fmt.Sscanf(sc.Text(), "accepted %d %d", &a, &b); err == nil {
				p.mu.Lock()
				p.accepted = append(p.accepted, [2]int64{a, b})
				p.mu.Unlock()
			}
		}
		_ = p.cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *kafkaProc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *kafkaProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s of SIGTERM\n%s", p.name, p.tail())
		p.kill()
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		t.Errorf("%s exited with %v\n%s", p.name, st, p.tail())
	}
}

func (p *kafkaProc) acceptedRows() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, r := range p.accepted {
		n += r[1] - r[0]
	}
	return n
}

func (p *kafkaProc) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func (p *kafkaProc) tail() string {
	s := p.logText()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return p.name + " log:\n" + s
}

// kafkaAssigned returns the partitions of an archiver's last assignment
// (as logged) and how many assignments it logged.
func kafkaAssigned(p *kafkaProc) (string, int) {
	var last string
	n := 0
	for _, l := range strings.Split(p.logText(), "\n") {
		if !strings.Contains(l, `msg="partitions assigned"`) {
			continue
		}
		n++
		if _, v, ok := strings.Cut(l, "partitions="); ok {
			if q, ok := strings.CutPrefix(v, `"`); ok {
				last, _, _ = strings.Cut(q, `"`)
			} else {
				last, _, _ = strings.Cut(v, " ")
			}
		}
	}
	return last, n
}

// kafkaWait polls cond every 200 ms until it holds or timeout passes.
func kafkaWait(t *testing.T, timeout time.Duration, what string, cond func() bool, procs ...*kafkaProc) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			var logs []string
			for _, p := range procs {
				logs = append(logs, p.tail())
			}
			t.Fatalf("%s: not within %v\n%s", what, timeout, strings.Join(logs, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Two collectors, two archivers and a rules process, all separate
// processes, and one broker: every sequence number the collectors accepted
// is archived exactly once after an archiver is killed mid-stream, the
// broker is unreachable for 30 s, and a collector is killed (-9) and
// restarted; the rules process publishes its alerts to the alerts topic
// as JSON.
func TestKafkaRolesExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process Kafka test (about 90 s); run without -short (make test-kafka)")
	}
	kcat := kafkatest.Kcat(t)
	broker := kafkatest.Start(t, 4, "recon.samples", "recon.alerts")
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	src := fmt.Sprintf(`pipeline "kafka-e2e"
source c1s0 generator { target = "127.0.0.1" }
source c2s0 generator { target = "127.0.0.1" }
sink bus kafka { brokers = [%q] }
sink archive parquet {
  path           = %q
  flush_interval = 1s
}
rule c1_flowing {
  from   = c1s0
  window = tumbling(2s)
  critical when count() > 0
  notify = [bus]
}
`, broker.Addrs[0], archive)
	p, diags := compiler.CompileSource("kafka.recon", []byte(src), compiler.Options{})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	planJSON, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	planPath := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(planPath, planJSON, 0o644); err != nil {
		t.Fatal(err)
	}

	arch1 := kafkaStart(t, "archiver1", "archiver", planPath, filepath.Join(dir, "a1"), "a1")
	arch2 := kafkaStart(t, "archiver2", "archiver", planPath, filepath.Join(dir, "a2"), "a2")
	rules := kafkaStart(t, "rules", "rules", planPath, filepath.Join(dir, "r"), "r")
	c1dir, c2dir := filepath.Join(dir, "c1"), filepath.Join(dir, "c2")
	c1 := kafkaStart(t, "collector1", "collector", planPath, c1dir, "c1")
	c2 := kafkaStart(t, "collector2", "collector", planPath, c2dir, "c2")
	all := []*kafkaProc{arch1, arch2, rules, c1, c2}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(archive, "samples", "**", "*.parquet")
	archived := func() int64 {
		var n int64
		err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM read_parquet('%s', hive_partitioning = true)`, glob)).Scan(&n)
		if err != nil && !strings.Contains(err.Error(), "No files found") {
			t.Fatalf("duckdb: %v", err)
		}
		return n
	}

	// (a) Both archivers hold partitions and archive; one is killed
	// mid-stream and the other takes over all four partitions.
	kafkaWait(t, 60*time.Second, "both archivers hold partitions", func() bool {
		a1, _ := kafkaAssigned(arch1)
		a2, _ := kafkaAssigned(arch2)
		return a1 != "" && a1 != "[]" && a2 != "" && a2 != "[]"
	}, all...)
	kafkaWait(t, 60*time.Second, "data flowing", func() bool { return archived() > 20_000 }, all...)
	_, gens := kafkaAssigned(arch2)
	arch1.kill()
	kafkaWait(t, 60*time.Second, "archiver2 takes over every partition", func() bool {
		a2, n := kafkaAssigned(arch2)
		return n > gens && a2 == "[0 1 2 3]"
	}, all...)
	before := archived()
	kafkaWait(t, 30*time.Second, "archiving after the takeover", func() bool { return archived() > before }, all...)

	// (b) The broker is unreachable for 30 s: the collectors keep
	// accepting into their journals and say they are behind.
	acc1, acc2 := c1.acceptedRows(), c2.acceptedRows()
	if err := broker.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second)
	if err := broker.Resume(); err != nil {
		t.Fatal(err)
	}
	if c1.acceptedRows() <= acc1 || c2.acceptedRows() <= acc2 {
		t.Errorf("collectors stopped accepting while Kafka was away: %d→%d, %d→%d", acc1, c1.acceptedRows(), acc2, c2.acceptedRows())
	}
	for _, c := range []*kafkaProc{c1, c2} {
		if l := c.logText(); !strings.Contains(l, "kafka unreachable") || !strings.Contains(l, "collector behind Kafka") ||
			!strings.Contains(l, "kafka_down=true") {
			t.Errorf("%s did not report the outage and its lag\n%s", c.name, c.tail())
		}
	}

	// (c) kill -9 of a collector and its restart on the same data dir.
	time.Sleep(2 * time.Second)
	c1.kill()
	c1b := kafkaStart(t, "collector1", "collector", planPath, c1dir, "c1")
	all = append(all, c1b)
	kafkaWait(t, 30*time.Second, "the restarted collector accepts", func() bool { return c1b.acceptedRows() > 5000 }, all...)

	// Stop generating, then everything accepted must reach the archive.
	for _, d := range []string{c1dir, c2dir} {
		if err := os.WriteFile(filepath.Join(d, kafkaStopFile), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := c1.acceptedRows() + c1b.acceptedRows() + c2.acceptedRows()
	kafkaWait(t, 90*time.Second, fmt.Sprintf("all %d accepted rows archived", want), func() bool { return archived() >= want }, all...)
	time.Sleep(3 * time.Second) // a late duplicate would show up by now

	var rows, distinct int64
	err = db.QueryRow(fmt.Sprintf(`SELECT count(*), count(DISTINCT (node, value)) FROM read_parquet('%s', hive_partitioning = true)`, glob)).Scan(&rows, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if rows != distinct {
		t.Errorf("archive holds %d rows for %d distinct sequence numbers: duplicates", rows, distinct)
	}
	seen := map[string]map[int64]bool{"c1": {}, "c2": {}}
	q, err := db.Query(fmt.Sprintf(`SELECT node, value::BIGINT FROM read_parquet('%s', hive_partitioning = true)`, glob))
	if err != nil {
		t.Fatal(err)
	}
	for q.Next() {
		var node string
		var v int64
		if err := q.Scan(&node, &v); err != nil {
			t.Fatal(err)
		}
		if seen[node] == nil {
			t.Fatalf("row of unknown node %q", node)
		}
		seen[node][v] = true
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, c := range []struct {
		node  string
		procs []*kafkaProc
	}{{"c1", []*kafkaProc{c1, c1b}}, {"c2", []*kafkaProc{c2}}} {
		for _, p := range c.procs {
			p.mu.Lock()
			for _, r := range p.accepted {
				for s := r[0]; s < r[1]; s++ {
					if !seen[c.node][s] {
						missing++
					}
				}
			}
			p.mu.Unlock()
		}
	}
	if missing > 0 {
		t.Errorf("%d accepted sequence numbers are not in the archive", missing)
	}
	t.Logf("archived %d rows exactly once (%d accepted)", rows, want)

	// The rules process published its alert events as JSON, key =
	// fingerprint; kcat reads them.
	out, err := exec.Command(kcat, "-b", broker.Addrs[0], "-t", "recon.alerts", "-C", "-e", "-o", "beginning",
		"-f", "%k\t%s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		key, js, ok := strings.Cut(line, "\t")
		if ok && strings.Contains(js, `"rule":"c1_flowing"`) && strings.Contains(js, `"severity":"critical"`) &&
			strings.Contains(js, `"fingerprint":"`+key+`"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no critical c1_flowing alert keyed by its fingerprint on recon.alerts; kcat read:\n%s\n%s", out, rules.tail())
	}

	for _, p := range []*kafkaProc{arch2, rules, c1b, c2} {
		p.stop(t)
	}
}
