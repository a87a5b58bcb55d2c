package duckdb

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
)

// kafkaMetric reads one series from recond's /metrics, written as the
// exposition format does (`name` or `name{label="v",…}`); -1 when it
// cannot.
func kafkaMetric(addr, name string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				return v
			}
		}
	}
	return -1
}

var kafkaStoppedLine = regexp.MustCompile(`msg="recond stopped" samples_accepted=(\d+)`)

// recond in its three Kafka roles, each its own process with the real
// generator source: every sample the collector accepted before a clean
// stop is archived exactly once by the archiver role, /metrics of the
// collector shows what it forwarded, and the rules role publishes its
// alert as JSON on the alerts topic.
func TestRecondRolesOverKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process Kafka test; run without -short (make test-kafka)")
	}
	kcat := kafkatest.Kcat(t)
	broker := kafkatest.Start(t, 4, "recon.samples", "recon.alerts")
	bin := recondBinary(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	src := fmt.Sprintf(`pipeline "kafka-recond"
source gen generator {
  rate   = 20000
  series = 4
  period = 1s
}
source gen2 generator {
  rate   = 2000
  series = 2
  period = 1s
}
sink bus kafka { brokers = [%q] }
sink archive parquet {
  path           = %q
  flush_interval = 1s
}
rule gen_flowing {
  from   = gen
  window = tumbling(2s)
  critical when count() > 0
  notify = [bus]
}
`, broker.Addrs[0], archive)
	site := filepath.Join(dir, "site.recon")
	if err := os.WriteFile(site, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(name, role, listen string) *kafkaProc {
		data := filepath.Join(dir, name)
		args := []string{"run", site, "--role", role, "--data", data, "--node", name, "--listen", listen}
		return kafkaStartCmd(t, name, exec.Command(bin, args...), data)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", recondFreePort(t))
	archListen := fmt.Sprintf("127.0.0.1:%d", recondFreePort(t))
	rulesListen := fmt.Sprintf("127.0.0.1:%d", recondFreePort(t))
	arch := start("archiver", "archiver", archListen)
	rules := start("rules", "rules", rulesListen)
	col := start("collector", "collector", listen)
	all := []*kafkaProc{arch, rules, col}

	// The archiver's counters move while it works: a first reading, then
	// 50,000 more samples forwarded.
	archivedSeries := `recond_samples_archived_total{table="samples"}`
	kafkaWait(t, 60*time.Second, "the archiver's /metrics shows archived samples", func() bool {
		return kafkaMetric(archListen, archivedSeries) > 0
	}, all...)
	early := kafkaMetric(archListen, archivedSeries)
	kafkaWait(t, 60*time.Second, "the collector's /metrics shows forwarded samples", func() bool {
		return kafkaMetric(listen, "recond_kafka_forwarder_rows_total") >= early+50_000
	}, all...)
	col.stop(t)
	m := kafkaStoppedLine.FindStringSubmatch(col.logText())
	if m == nil {
		t.Fatalf("the collector did not log its final counter\n%s", col.tail())
	}
	accepted, _ := strconv.ParseInt(m[1], 10, 64)

	db := recondOpenDuckDB(t)
	glob := filepath.Join(archive, "samples", "**", "*.parquet")
	count := func(q string) int64 {
		var n int64
		err := db.QueryRow(fmt.Sprintf(q, glob)).Scan(&n)
		if err != nil && !strings.Contains(err.Error(), "No files found") {
			t.Fatalf("duckdb: %v", err)
		}
		return n
	}
	allRows := `SELECT count(*) FROM read_parquet('%s', hive_partitioning = true)`
	kafkaWait(t, 60*time.Second, fmt.Sprintf("%d accepted samples archived", accepted), func() bool {
		return count(allRows) >= accepted
	}, all...)
	time.Sleep(2 * time.Second) // a late duplicate would show by now
	if n := count(allRows); n != accepted {
		t.Errorf("archive holds %d rows; the collector accepted %d", n, accepted)
	}
	// The generator's own rows carry its sequence numbers 0, 1, ….
	rows := count(`SELECT count(*) FROM read_parquet('%s', hive_partitioning = true) WHERE metric = 'seq' AND source = 'gen'`)
	distinct := count(`SELECT count(DISTINCT value) FROM read_parquet('%s', hive_partitioning = true) WHERE metric = 'seq' AND source = 'gen'`)
	top := count(`SELECT max(value)::BIGINT FROM read_parquet('%s', hive_partitioning = true) WHERE metric = 'seq' AND source = 'gen'`)
	if rows == 0 || rows != distinct || top != rows-1 {
		t.Errorf("archive: %d generator rows, %d distinct sequence numbers, highest %d: want 0…n-1 exactly once", rows, distinct, top)
	}
	if n := count(`SELECT count(DISTINCT source) FROM read_parquet('%s', hive_partitioning = true)`); n != 2 {
		t.Errorf("archive holds %d sources, want 2 (gen, gen2)", n)
	}

	// The batcher mixes both sources in its batches; on the samples topic
	// every message is keyed by its source (design §3.3), and kcat sees
	// exactly the two source names as keys.
	keys, err := exec.Command(kcat, "-q", "-b", broker.Addrs[0], "-t", "recon.samples", "-C", "-e", "-o", "beginning", "-f", "%k\n").Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	perKey := map[string]int{}
	for _, k := range strings.Split(strings.TrimSpace(string(keys)), "\n") {
		perKey[k]++
	}
	if len(perKey) != 2 || perKey["gen"] == 0 || perKey["gen2"] == 0 {
		t.Errorf("samples topic keys %v, want only the source names gen and gen2", perKey)
	}

	// The rules process joins its consumer group on its own schedule: wait
	// for its alert rather than reading the topic once.
	var out []byte
	alerted := func() bool {
		var err error
		out, err = exec.Command(kcat, "-b", broker.Addrs[0], "-t", "recon.alerts", "-C", "-e", "-o", "beginning", "-f", "%k\t%s\n").CombinedOutput()
		if err != nil {
			t.Fatalf("kcat: %v\n%s", err, out)
		}
		return strings.Contains(string(out), `"rule":"gen_flowing"`) && strings.Contains(string(out), `"severity":"critical"`)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !alerted() {
		if time.Now().After(deadline) {
			t.Fatalf("no gen_flowing alert on recon.alerts within 60 s; kcat read:\n%s\n%s", out, rules.tail())
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The archiver and rules roles serve /healthz and /metrics too: the
	// consumer and archive counters of the archiver, the consumer, rule and
	// notification counters of the rules process.
	for _, c := range []struct {
		addr, series string
		atLeast      float64
	}{
		{archListen, `recond_kafka_consumer_messages_total{group="recon-archivers"}`, 1},
		{archListen, `recond_kafka_consumer_rows_total{group="recon-archivers"}`, float64(accepted)},
		{archListen, `recond_samples_archived_total{table="samples"}`, float64(accepted)},
		{archListen, `recond_archive_files_written_total{table="samples"}`, 1},
		{archListen, `recond_kafka_archiver_partitions`, 4},
		{archListen, `recond_kafka_consumer_skipped_total{group="recon-archivers"}`, 0},
		{rulesListen, `recond_kafka_consumer_rows_total{group="recon-rules"}`, 1},
		{rulesListen, `recond_notifications_total{sink="bus"}`, 1},
		{rulesListen, `recond_rule_samples_total{rule="gen_flowing"}`, 1},
	} {
		if v := kafkaMetric(c.addr, c.series); v < c.atLeast {
			t.Errorf("%s /metrics: %s = %v, want at least %v", c.addr, c.series, v, c.atLeast)
		}
	}
	if late := kafkaMetric(archListen, archivedSeries); late <= early {
		t.Errorf("archiver /metrics: %s stayed at %v while %d more samples were archived", archivedSeries, early, accepted-int64(early))
	}
	for _, addr := range []string{archListen, rulesListen} {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"ok"`) ||
			!strings.Contains(string(body), `"pipeline":"kafka-recond"`) {
			t.Errorf("%s /healthz: %d %s", addr, resp.StatusCode, body)
		}
	}
	arch.stop(t)
	rules.stop(t)
}
