// Package tail implements `reconc tail`: live samples (or alerts) from a
// Kafka topic or from a recond's live stream, filtered by source and
// metric, printed as a table or NDJSON.
package tail

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/segmentio/kafka-go"

	"github.com/reconmon/recon/runtime/kafkabus"
	"github.com/reconmon/recon/runtime/sample"
)

// Usage is the command's help text.
const Usage = `usage: reconc tail (--brokers HOST:PORT[,…] | --server URL) [flags]

Prints live samples (or alert events) as a table or as NDJSON, either from
the Kafka samples topic (alerts topic) or from a running recond's live
stream. Reading never changes anything: no token is needed.

Flags:
  --brokers LIST      Kafka bootstrap brokers
  --server URL        a recond's listener instead of Kafka (e.g. http://127.0.0.1:43191)
  --ca-file FILE      PEM certificates trusted for an https --server (default: the system's)
  --topic NAME        topic to read (default recon.samples; recon.alerts with --alerts)
  --alerts            read alert events (JSON) instead of samples
  --source LIST       only these sources (comma-separated; with --alerts: rules)
  --metric LIST       only these metrics (comma-separated)
  --from-beginning    start at the oldest message instead of new ones (Kafka only)
  --json              NDJSON, one object per sample
  -n, --count N       stop after N rows (0: run until interrupted)

Examples:
  reconc tail --brokers 127.0.0.1:9092 --source homepage --metric duration
  reconc tail --brokers 127.0.0.1:9092 --json --from-beginning -n 100 | jq .
  reconc tail --brokers 127.0.0.1:9092 --alerts
  reconc tail --server http://127.0.0.1:43191 --source homepage
`

// Main runs the command; it returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, stdout, stderr)
}

type options struct {
	brokers, topic   string
	server, caFile   string
	alerts, json     bool
	sources, metrics map[string]bool
	beginning        bool
	count            int
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, Usage) }
	var o options
	var sources, metrics string
	fs.StringVar(&o.brokers, "brokers", "", "")
	fs.StringVar(&o.topic, "topic", "", "")
	fs.StringVar(&o.server, "server", "", "")
	fs.StringVar(&o.caFile, "ca-file", "", "")
	fs.BoolVar(&o.alerts, "alerts", false, "")
	fs.StringVar(&sources, "source", "", "")
	fs.StringVar(&metrics, "metric", "", "")
	fs.BoolVar(&o.beginning, "from-beginning", false, "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.IntVar(&o.count, "count", 0, "")
	fs.IntVar(&o.count, "n", 0, "")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.brokers == "" && o.server == "":
		return nil, errors.New("--brokers or --server is required")
	case o.brokers != "" && o.server != "":
		return nil, errors.New("--brokers and --server exclude each other")
	case o.server != "" && (o.topic != "" || o.beginning):
		return nil, errors.New("--topic and --from-beginning read Kafka: they do not go with --server")
	case o.caFile != "" && o.server == "":
		return nil, errors.New("--ca-file goes with --server")
	}
	if o.topic == "" {
		o.topic = "recon.samples"
		if o.alerts {
			o.topic = "recon.alerts"
		}
	}
	o.sources, o.metrics = set(sources), set(metrics)
	return &o, nil
}

func set(list string) map[string]bool {
	if list == "" {
		return nil
	}
	m := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			m[s] = true
		}
	}
	return m
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "reconc tail: %v\n\n%s", err, Usage)
		return 2
	}
	if o.server != "" {
		return runServer(ctx, o, stdout, stderr)
	}
	start := kafka.LastOffset
	if o.beginning {
		start = kafka.FirstOffset
	}
	// A group of its own, never committed: tail only looks.
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     strings.Split(o.brokers, ","),
		Topic:       o.topic,
		GroupID:     fmt.Sprintf("reconc-tail-%d-%d", os.Getpid(), time.Now().UnixNano()),
		StartOffset: start,
		MinBytes:    1,
		MaxBytes:    64 << 20,
		MaxWait:     100 * time.Millisecond,
	})
	defer r.Close()
	p := newPrinter(stdout, o)
	defer p.flush()
	for o.count == 0 || p.rows < o.count {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			fmt.Fprintf(stderr, "reconc tail: %s: %v\n", o.topic, err)
			return 1
		}
		if o.alerts {
			p.alert(m.Value)
			continue
		}
		rec, err := kafkabus.Decode(m.Value, sample.Schema)
		if err != nil {
			fmt.Fprintf(stderr, "reconc tail: partition %d offset %d: skipped: %v\n", m.Partition, m.Offset, err)
			continue
		}
		p.batch(rec)
		rec.Release()
	}
	return 0
}

type printer struct {
	o    *options
	out  io.Writer
	tw   *tabwriter.Writer
	enc  *json.Encoder
	rows int
	head bool
}

func newPrinter(w io.Writer, o *options) *printer {
	p := &printer{o: o, out: w, enc: json.NewEncoder(w)}
	if !o.json && !o.alerts {
		p.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	}
	return p
}

func (p *printer) flush() {
	if p.tw != nil {
		p.tw.Flush()
	}
}

func (p *printer) alert(value []byte) {
	var ev map[string]any
	if err := json.Unmarshal(value, &ev); err != nil {
		return
	}
	if p.o.sources != nil {
		if rule, _ := ev["rule"].(string); !p.o.sources[rule] {
			return
		}
	}
	_ = p.enc.Encode(ev)
	p.rows++
}

// jsonSample is one NDJSON line; field names are the sample columns.
type jsonSample struct {
	Ts       time.Time         `json:"ts"`
	Pipeline string            `json:"pipeline"`
	Source   string            `json:"source"`
	Module   string            `json:"module"`
	Target   string            `json:"target"`
	Metric   string            `json:"metric"`
	Value    *float64          `json:"value"`
	Text     *string           `json:"text"`
	Unit     *string           `json:"unit"`
	Labels   map[string]string `json:"labels"`
	Node     string            `json:"node"`
}

func (p *printer) batch(rec arrow.RecordBatch) {
	col := func(i int) *array.String { return rec.Column(i).(*array.String) }
	ts := rec.Column(sample.IdxTs).(*array.Timestamp)
	pipeline, source, module, target := col(sample.IdxPipeline), col(sample.IdxSource), col(sample.IdxModule), col(sample.IdxTarget)
	metric, text, unit, node := col(sample.IdxMetric), col(sample.IdxText), col(sample.IdxUnit), col(sample.IdxNode)
	value := rec.Column(sample.IdxValue).(*array.Float64)
	labels := rec.Column(sample.IdxLabels).(*array.Map)
	keys, items := labels.Keys().(*array.String), labels.Items().(*array.String)
	for i := 0; i < int(rec.NumRows()); i++ {
		if p.o.count > 0 && p.rows >= p.o.count {
			return
		}
		if p.o.sources != nil && !p.o.sources[source.Value(i)] || p.o.metrics != nil && !p.o.metrics[metric.Value(i)] {
			continue
		}
		s := jsonSample{
			Ts: time.Unix(0, int64(ts.Value(i))).UTC(), Pipeline: pipeline.Value(i), Source: source.Value(i),
			Module: module.Value(i), Target: target.Value(i), Metric: metric.Value(i), Node: node.Value(i),
		}
		if value.IsValid(i) {
			v := value.Value(i)
			s.Value = &v
		}
		if text.IsValid(i) {
			t := text.Value(i)
			s.Text = &t
		}
		if unit.IsValid(i) {
			u := unit.Value(i)
			s.Unit = &u
		}
		start, end := labels.ValueOffsets(i)
		if end > start {
			s.Labels = make(map[string]string, end-start)
			for j := start; j < end; j++ {
				s.Labels[keys.Value(int(j))] = items.Value(int(j))
			}
		}
		p.sample(&s)
	}
	p.flush()
}

// sample prints s when it passes the filters.
func (p *printer) sample(s *jsonSample) {
	if p.o.sources != nil && !p.o.sources[s.Source] || p.o.metrics != nil && !p.o.metrics[s.Metric] {
		return
	}
	p.rows++
	if p.o.json {
		if s.Value != nil && (math.IsNaN(*s.Value) || math.IsInf(*s.Value, 0)) {
			s.Value = nil // JSON has no NaN; the text column still says what it was
		}
		_ = p.enc.Encode(s)
		return
	}
	p.row(s)
	if p.o.server != "" {
		p.flush() // a stream prints each sample as it comes
	}
}

func (p *printer) row(s *jsonSample) {
	if !p.head {
		fmt.Fprintln(p.tw, "TIME\tSOURCE\tTARGET\tMETRIC\tVALUE\tUNIT\tLABELS")
		p.head = true
	}
	val := ""
	switch {
	case s.Value != nil:
		val = strconv.FormatFloat(*s.Value, 'g', -1, 64)
	case s.Text != nil:
		val = strconv.Quote(*s.Text)
	}
	unit := ""
	if s.Unit != nil {
		unit = *s.Unit
	}
	var ls []string
	for k, v := range s.Labels {
		ls = append(ls, k+"="+v)
	}
	sort.Strings(ls)
	fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Ts.Format("15:04:05.000"), s.Source, s.Target, s.Metric, val, unit, strings.Join(ls, ","))
}
