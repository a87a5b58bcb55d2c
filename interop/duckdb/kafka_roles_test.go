package duckdb

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/generator"
)

// kafkaBatch builds rows samples of source whose value column holds the
// sequence numbers first, first+1, ….
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
}

// kafkaStartCmd starts cmd with its stdout and stderr in data/name.log;
// it is killed when the test ends.
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
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(p.done)
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

// kafkaSpan is a range of sequence numbers a generator had accepted.
type kafkaSpan struct {
	node, source string
	first, last  int64
}

// kafkaCollector is a collector: recond --role collector on its own data
// dir, with the generator sources g1…g3.
type kafkaCollector struct {
	node, data, plan, listen string
	bin                      string
	proc                     *kafkaProc
	first                    map[string]int64 // source → first number of this run
}

func (c *kafkaCollector) start(t *testing.T, sources []string) {
	t.Helper()
	c.first = map[string]int64{}
	for _, s := range sources {
		st, err := generator.ReadState(generator.StatePath(c.data, "kafka-e2e", s))
		if err != nil {
			t.Fatal(err)
		}
		c.first[s] = int64(st.Next)
	}
	c.proc = kafkaStartCmd(t, c.node, exec.Command(c.bin, "run", c.plan, "--role", "collector", "--data", c.data,
		"--node", c.node, "--listen", c.listen), c.data)
}

// spans returns what the run that just ended (killed or stopped) had
// accepted, per source, from the generators' durable state.
func (c *kafkaCollector) spans(t *testing.T) []kafkaSpan {
	t.Helper()
	var out []kafkaSpan
	for s, first := range c.first {
		st, err := generator.ReadState(generator.StatePath(c.data, "kafka-e2e", s))
		if err != nil {
			t.Fatal(err)
		}
		if st.Accepted >= first {
			out = append(out, kafkaSpan{c.node, s, first, st.Accepted})
		}
	}
	return out
}

// Two collectors, two archivers and a rules process — all `recond run
// --role …` processes — and one broker behind a loopback proxy: every
// generator sequence number a collector accepted is archived exactly once
// after (a) an archiver is killed mid-stream (the other takes over its
// partitions), (b) the collectors are cut off from the broker for 30 s
// (they keep accepting, say they are behind, and drain when it returns),
// (c) a collector is killed (-9) and restarted on its data dir; the rules
// process publishes its alerts to the alerts topic as JSON.
func TestKafkaRolesExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process Kafka test (about 50 s); run without -short (make test-kafka)")
	}
	kcat := kafkatest.Kcat(t)
	broker, proxy := kafkatest.StartBehindProxy(t, 4, "recon.samples", "recon.alerts")
	bin := recondBinary(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	sources := []string{"g1", "g2", "g3"}
	// Every machine has its copy of the site; the collectors' names them
	// to the brokers as client "collector", which the proxy cuts off.
	site := func(clientID string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "pipeline \"kafka-e2e\"\n")
		for _, s := range sources {
			fmt.Fprintf(&b, "source %s generator {\n  rate   = 5000\n  period = 1s\n}\n", s)
		}
		fmt.Fprintf(&b, "sink bus kafka {\n  brokers   = [%q]\n  client_id = %q\n}\n", broker.Addrs[0], clientID)
		fmt.Fprintf(&b, "sink archive parquet {\n  path           = %q\n  flush_interval = 1s\n}\n", archive)
		fmt.Fprintf(&b, "rule g1_flowing {\n  from   = g1\n  window = tumbling(2s)\n  critical when count() > 0\n  notify = [bus]\n}\n")
		path := filepath.Join(dir, clientID+".recon")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	consumers, collectors := site("recon"), site("collector")
	listen := func() string { return fmt.Sprintf("127.0.0.1:%d", recondFreePort(t)) }
	role := func(name, role string) *kafkaProc {
		data := filepath.Join(dir, name)
		return kafkaStartCmd(t, name, exec.Command(bin, "run", consumers, "--role", role, "--data", data,
			"--node", name, "--listen", listen()), data)
	}
	arch1, arch2, rules := role("archiver1", "archiver"), role("archiver2", "archiver"), role("rules", "rules")
	c1 := &kafkaCollector{node: "c1", data: filepath.Join(dir, "c1"), plan: collectors, listen: listen(), bin: bin}
	c2 := &kafkaCollector{node: "c2", data: filepath.Join(dir, "c2"), plan: collectors, listen: listen(), bin: bin}
	c1.start(t, sources)
	c2.start(t, sources)
	procs := func() []*kafkaProc { return []*kafkaProc{arch1, arch2, rules, c1.proc, c2.proc} }

	db := recondOpenDuckDB(t)
	glob := filepath.Join(archive, "samples", "**", "*.parquet")
	seqs := fmt.Sprintf("read_parquet('%s', hive_partitioning = true) WHERE metric = 'seq'", glob)
	count := func(q string) int64 {
		var n int64
		err := db.QueryRow(q).Scan(&n)
		if err != nil && !strings.Contains(err.Error(), "No files found") {
			t.Fatalf("duckdb: %v", err)
		}
		return n
	}
	archived := func() int64 { return count("SELECT count(*) FROM " + seqs) }

	// (a) Both archivers hold partitions and archive; one is killed
	// mid-stream and the other takes over all four partitions.
	kafkaWait(t, 60*time.Second, "both archivers hold partitions", func() bool {
		a1, _ := kafkaAssigned(arch1)
		a2, _ := kafkaAssigned(arch2)
		return a1 != "" && a1 != "[]" && a2 != "" && a2 != "[]"
	}, procs()...)
	kafkaWait(t, 60*time.Second, "data flowing", func() bool { return archived() > 20_000 }, procs()...)
	_, gens := kafkaAssigned(arch2)
	arch1.kill()
	kafkaWait(t, 60*time.Second, "archiver2 takes over every partition", func() bool {
		a2, n := kafkaAssigned(arch2)
		return n > gens && a2 == "[0 1 2 3]"
	}, procs()...)
	before := archived()
	kafkaWait(t, 30*time.Second, "archiving after the takeover", func() bool { return archived() > before }, procs()...)

	// (b) The collectors are cut off from the broker for 30 s: they keep
	// accepting into their journals and say they are behind, on /metrics
	// and in their logs.
	accepted := func(c *kafkaCollector) float64 { return kafkaMetric(c.listen, "recond_samples_accepted_total") }
	acc1, acc2 := accepted(c1), accepted(c2)
	proxy.Cut("collector")
	kafkaWait(t, 30*time.Second, "the collectors report Kafka down", func() bool {
		return kafkaMetric(c1.listen, "recond_kafka_forwarder_down") == 1 && kafkaMetric(c2.listen, "recond_kafka_forwarder_down") == 1
	}, procs()...)
	time.Sleep(25 * time.Second)
	for _, c := range []*kafkaCollector{c1, c2} {
		if lag := kafkaMetric(c.listen, "recond_kafka_forwarder_lag_batches"); lag <= 0 {
			t.Errorf("%s: forwarder lag %v during the cut, want > 0", c.node, lag)
		}
	}
	proxy.Restore("collector")
	if accepted(c1) <= acc1 || accepted(c2) <= acc2 {
		t.Errorf("collectors stopped accepting while cut off from Kafka: %v→%v, %v→%v", acc1, accepted(c1), acc2, accepted(c2))
	}
	for _, c := range []*kafkaCollector{c1, c2} {
		if l := c.proc.logText(); !strings.Contains(l, "kafka unreachable") || !strings.Contains(l, "collector behind Kafka") ||
			!strings.Contains(l, "kafka_down=true") {
			t.Errorf("%s did not log the outage and its lag\n%s", c.node, c.proc.tail())
		}
	}
	kafkaWait(t, 60*time.Second, "the collectors drain their backlog", func() bool {
		return kafkaMetric(c1.listen, "recond_kafka_forwarder_down") == 0 && kafkaMetric(c2.listen, "recond_kafka_forwarder_down") == 0
	}, procs()...)

	// (c) kill -9 of a collector and its restart on the same data dir.
	var spans []kafkaSpan
	c1.proc.kill()
	spans = append(spans, c1.spans(t)...)
	c1.start(t, sources)
	kafkaWait(t, 30*time.Second, "the restarted collector accepts", func() bool { return accepted(c1) > 60_000 }, procs()...)

	// Clean stops: a collector drains its journal into Kafka before it
	// exits; everything accepted must then reach the archive.
	for _, c := range []*kafkaCollector{c1, c2} {
		c.proc.stop(t)
		spans = append(spans, c.spans(t)...)
	}
	var want int64
	for _, s := range spans {
		want += s.last - s.first + 1
	}
	kafkaWait(t, 60*time.Second, fmt.Sprintf("the %d accepted sequence numbers archived", want), func() bool { return archived() >= want }, procs()...)
	time.Sleep(2 * time.Second) // a late duplicate would show by now

	rows := archived()
	distinct := count("SELECT count(DISTINCT (node, source, value)) FROM " + seqs)
	if rows != distinct {
		t.Errorf("archive holds %d generator rows for %d distinct sequence numbers: duplicates", rows, distinct)
	}
	for _, s := range spans {
		q := fmt.Sprintf("SELECT count(DISTINCT value) FROM %s AND node = '%s' AND source = '%s' AND value BETWEEN %d AND %d",
			seqs, s.node, s.source, s.first, s.last)
		if n := count(q); n != s.last-s.first+1 {
			t.Errorf("%s/%s accepted %d..%d; the archive holds %d of these %d", s.node, s.source, s.first, s.last, n, s.last-s.first+1)
		}
	}
	t.Logf("archived %d generator rows exactly once (%d accepted in spans %v)", rows, want, spans)

	// The rules process published its alert events as JSON, key =
	// fingerprint; kcat reads them.
	out, err := exec.Command(kcat, "-q", "-b", broker.Addrs[0], "-t", "recon.alerts", "-C", "-e", "-o", "beginning",
		"-f", "%k\t%s\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		key, js, ok := strings.Cut(line, "\t")
		if ok && strings.Contains(js, `"rule":"g1_flowing"`) && strings.Contains(js, `"severity":"critical"`) &&
			strings.Contains(js, `"fingerprint":"`+key+`"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("no critical g1_flowing alert keyed by its fingerprint on recon.alerts; kcat read:\n%s\n%s", out, rules.tail())
	}
	arch2.stop(t)
	rules.stop(t)
}
