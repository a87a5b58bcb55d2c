package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
	"github.com/reconmon/recon/runtime/sample"
)

// LoadFunc turns a rules file of a test script (a .recon or plan .json
// section) into a plan. reconc passes the compiler; a .json section holds a
// plan (format, pipeline, rules).
type LoadFunc func(name string, src []byte) (*plan.Plan, error)

// LoadJSON loads a plan .json section (the "format" field may be left out).
func LoadJSON(name string, src []byte) (*plan.Plan, error) {
	p := new(plan.Plan)
	if err := jsonStrict(src, p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// section is one file of a txtar archive.
type section struct {
	name string
	line int // line of the first content line
	data []byte
}

// parseTxtar splits a txtar archive: a comment, then "-- name --" headers
// each followed by the file's content.
func parseTxtar(data []byte) []section {
	var out []section
	lines := strings.SplitAfter(string(data), "\n")
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(t, "-- ") && strings.HasSuffix(t, " --") && len(t) > 6 {
			out = append(out, section{name: strings.TrimSpace(t[3 : len(t)-3]), line: i + 2})
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].data = append(out[len(out)-1].data, l...)
		}
	}
	return out
}

// Script is a parsed rule test: rules files, and the commands of its
// "script" section.
type Script struct {
	Name     string
	sections []section
	cmds     []command
}

type command struct {
	line int
	verb string
	args []string
	// parsed forms
	rows   []sample.Row
	source []string // source of each row
	module []string
	at     int64
	exp    *expectation
}

type expectation struct {
	at       int64
	rule     string
	sev      alert.Severity
	prev     *alert.Severity
	group    map[string]string
	value    *float64
	repeat   bool
	flapping bool
	line     int
}

// ParseScript parses a test script (txtar: rules files and a "script"
// section; see docs/rules.md).
func ParseScript(name string, data []byte) (*Script, error) {
	s := &Script{Name: name, sections: parseTxtar(data)}
	var body *section
	for i := range s.sections {
		if s.sections[i].name == "script" {
			body = &s.sections[i]
		}
	}
	if body == nil {
		return nil, fmt.Errorf("%s: no \"-- script --\" section", name)
	}
	if s.rulesSection("") == nil {
		return nil, fmt.Errorf("%s: no rules section (a .recon or .json file)", name)
	}
	for k, l := range strings.Split(string(body.data), "\n") {
		line := body.line + k
		if i := strings.Index(l, "#"); i >= 0 && !strings.Contains(l[:i], "\"") {
			l = l[:i]
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		c, err := parseCommand(f)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		c.line = line
		if c.exp != nil {
			c.exp.line = line
		}
		s.cmds = append(s.cmds, c)
	}
	return s, nil
}

func (s *Script) rulesSection(name string) *section {
	for i := range s.sections {
		n := s.sections[i].name
		if (name == "" && (strings.HasSuffix(n, ".recon") || strings.HasSuffix(n, ".json"))) || (name != "" && n == name) {
			return &s.sections[i]
		}
	}
	return nil
}

func parseDur(s string) (int64, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("time %q: want a duration from the start, e.g. 90s or 2m30s", s)
	}
	return int64(d), nil
}

// rowAttrs applies k=v words to a row: column names set columns, other keys
// are labels.
func rowAttrs(words []string, r *sample.Row, module *string) error {
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q: want key=value", w)
		}
		v = unquote(v)
		switch k {
		case sample.ColTarget:
			r.Target = v
		case sample.ColModule:
			*module = v
		case sample.ColText:
			r.Text, r.HasText = v, true
		case sample.ColUnit:
			r.Unit = v
		default:
			r.Labels = append(r.Labels, sample.Label{Key: k, Value: v})
		}
	}
	return nil
}

func unquote(v string) string {
	if u, err := strconv.Unquote(v); err == nil {
		return u
	}
	return v
}

// maxSeriesValues bounds the samples one series line expands to.
const maxSeriesValues = 1_000_000

// expandValues expands series values: N, _ (no sample), NxK (K+1 times N),
// A+BxK / A-BxK (K+1 values from A in steps of B), as promtool does.
func expandValues(words []string) ([]float64, error) {
	var out []float64
	for _, w := range words {
		if w == "_" {
			out = append(out, math.NaN())
			continue
		}
		base, rep, hasRep := strings.Cut(w, "x")
		n := 0
		if hasRep {
			var err error
			if n, err = strconv.Atoi(rep); err != nil || n < 0 || n > maxSeriesValues-len(out) {
				return nil, fmt.Errorf("value %q: want NxK with a count K (at most %d values per series)", w, maxSeriesValues)
			}
		}
		step := 0.0
		if i := strings.LastIndexAny(base, "+-"); i > 0 && hasRep {
			s, err := strconv.ParseFloat(base[i:], 64)
			if err != nil {
				return nil, fmt.Errorf("value %q: bad step", w)
			}
			step, base = s, base[:i]
		}
		v, err := strconv.ParseFloat(base, 64)
		if err != nil {
			return nil, fmt.Errorf("value %q: want a number, _ or NxK", w)
		}
		for k := 0; k <= n; k++ {
			out = append(out, v+float64(k)*step)
		}
	}
	return out, nil
}

func parseCommand(f []string) (command, error) {
	c := command{verb: f[0], args: f[1:]}
	switch c.verb {
	case "series":
		// series SOURCE METRIC [k=v…] start=D step=D: VALUES
		colon := -1
		for i, w := range f {
			if strings.HasSuffix(w, ":") {
				colon = i
				break
			}
		}
		if len(f) < 4 || colon < 3 {
			return c, fmt.Errorf("series: want `series SOURCE METRIC [key=value…] start=D step=D: VALUES`")
		}
		head := append([]string(nil), f[3:colon+1]...)
		head[len(head)-1] = strings.TrimSuffix(head[len(head)-1], ":")
		var start, step int64 = 0, -1
		var rest []string
		for _, w := range head {
			k, v, _ := strings.Cut(w, "=")
			var err error
			switch k {
			case "start":
				start, err = parseDur(v)
			case "step":
				step, err = parseDur(v)
			case "":
			default:
				rest = append(rest, w)
			}
			if err != nil {
				return c, err
			}
		}
		if step <= 0 {
			return c, fmt.Errorf("series: step=D (positive) is required")
		}
		vals, err := expandValues(f[colon+1:])
		if err != nil {
			return c, err
		}
		var proto sample.Row
		mod := ""
		if err := rowAttrs(rest, &proto, &mod); err != nil {
			return c, err
		}
		for k, v := range vals {
			if v != v {
				continue
			}
			r := proto
			r.Metric, r.Ts, r.Value, r.HasValue = f[2], start+int64(k)*step, v, true
			c.rows = append(c.rows, r)
			c.source = append(c.source, f[1])
			c.module = append(c.module, mod)
		}
	case "sample":
		// sample T SOURCE METRIC [k=v…] VALUE
		if len(f) < 5 {
			return c, fmt.Errorf("sample: want `sample T SOURCE METRIC [key=value…] VALUE`")
		}
		at, err := parseDur(f[1])
		if err != nil {
			return c, err
		}
		r := sample.Row{Ts: at, Metric: f[3]}
		mod := ""
		if err := rowAttrs(f[4:len(f)-1], &r, &mod); err != nil {
			return c, err
		}
		if v := f[len(f)-1]; v != "_" {
			if r.Value, err = strconv.ParseFloat(v, 64); err != nil {
				return c, fmt.Errorf("sample: value %q: want a number or _", v)
			}
			r.HasValue = true
		}
		c.rows, c.source, c.module = []sample.Row{r}, []string{f[2]}, []string{mod}
	case "eval":
		if len(f) != 2 {
			return c, fmt.Errorf("eval: want `eval T`")
		}
		var err error
		if c.at, err = parseDur(f[1]); err != nil {
			return c, err
		}
	case "restart":
		if len(f) > 2 {
			return c, fmt.Errorf("restart: want `restart [RULESFILE]`")
		}
	case "late":
		if len(f) != 3 {
			return c, fmt.Errorf("late: want `late RULE N`")
		}
		if _, err := strconv.ParseUint(f[2], 10, 64); err != nil {
			return c, fmt.Errorf("late: count %q: %w", f[2], err)
		}
	case "expect":
		if len(f) < 4 {
			return c, fmt.Errorf("expect: want `expect T RULE SEVERITY [previous=S] [value=N] [repeat] [flapping] [label=value…]`")
		}
		at, err := parseDur(f[1])
		if err != nil {
			return c, err
		}
		sev, err := alert.ParseSeverity(f[3])
		if err != nil {
			return c, err
		}
		x := &expectation{at: at, rule: f[2], sev: sev, group: map[string]string{}}
		for _, w := range f[4:] {
			switch w {
			case "repeat":
				x.repeat = true
				continue
			case "flapping":
				x.flapping = true
				continue
			}
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				return c, fmt.Errorf("expect: %q: want key=value, repeat or flapping", w)
			}
			switch k {
			case "previous":
				p, err := alert.ParseSeverity(v)
				if err != nil {
					return c, err
				}
				x.prev = &p
			case "value":
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return c, fmt.Errorf("expect: value %q: %w", v, err)
				}
				x.value = &n
			default:
				x.group[k] = unquote(v)
			}
		}
		c.exp = x
	default:
		return c, fmt.Errorf("unknown command %q (series, sample, eval, restart, late, expect)", c.verb)
	}
	return c, nil
}

// Run executes the script with rules loaded by load and state under dataDir
// ("" for a temporary directory), and returns a failure report ("" when
// every expectation held).
func (s *Script) Run(load LoadFunc, dataDir string) (string, error) {
	if dataDir == "" {
		d, err := os.MkdirTemp("", "recon-rules-test-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(d)
		dataDir = d
	}
	sec := s.rulesSection("")
	p, err := load(sec.name, sec.data)
	if err != nil {
		return "", err
	}
	e, err := New(Options{Plan: p, DataDir: dataDir, Logger: discardLogger()})
	if err != nil {
		return "", err
	}
	defer func() { e.Close() }()
	var got []alert.Event
	var failures []string
	b := newRowBatcher(p.Pipeline)
	defer b.release()
	flush := func() error {
		if b.len() == 0 {
			return nil
		}
		rec := b.record()
		defer rec.Release()
		if err := e.Ingest(rec); err != nil {
			return err
		}
		got = append(got, e.Eval(time.Time{})...)
		return nil
	}
	for i, c := range s.cmds {
		if c.verb != "series" {
			if err := flush(); err != nil {
				return "", err
			}
		}
		switch c.verb {
		case "series":
			b.add(c)
			if i+1 == len(s.cmds) || s.cmds[i+1].verb != "series" {
				b.sortByTime()
				if err := flush(); err != nil {
					return "", err
				}
			}
		case "sample":
			b.add(c)
			if err := flush(); err != nil {
				return "", err
			}
		case "eval":
			got = append(got, e.Eval(time.Unix(0, c.at))...)
		case "restart":
			if err := e.Save(); err != nil {
				return "", err
			}
			e.Close()
			if len(c.args) == 1 {
				sec := s.rulesSection(c.args[0])
				if sec == nil {
					return "", fmt.Errorf("%s:%d: no section %q", s.Name, c.line, c.args[0])
				}
				if p, err = load(sec.name, sec.data); err != nil {
					return "", err
				}
			}
			if e, err = New(Options{Plan: p, DataDir: dataDir, Logger: discardLogger()}); err != nil {
				return "", fmt.Errorf("%s:%d: restart: %w", s.Name, c.line, err)
			}
			for _, pe := range e.outbox {
				got = append(got, pe.Event)
			}
			e.outbox = nil
		case "late":
			want, _ := strconv.ParseUint(c.args[1], 10, 64)
			found := false
			for _, st := range e.Stats() {
				if st.Rule == c.args[0] {
					found = true
					if st.Late != want {
						failures = append(failures, fmt.Sprintf("%s:%d: rule %s: %d late samples, want %d", s.Name, c.line, st.Rule, st.Late, want))
					}
				}
			}
			if !found {
				return "", fmt.Errorf("%s:%d: no rule %q", s.Name, c.line, c.args[0])
			}
		}
	}
	var exps []*expectation
	for _, c := range s.cmds {
		if c.exp != nil {
			exps = append(exps, c.exp)
		}
	}
	failures = append(failures, s.compare(exps, got)...)
	if len(failures) == 0 {
		return "", nil
	}
	var out strings.Builder
	for _, f := range failures {
		out.WriteString(f + "\n")
	}
	out.WriteString("transitions:\n")
	for _, ev := range got {
		out.WriteString("  " + FormatEvent(&ev, 0) + "\n")
	}
	return out.String(), nil
}

func (s *Script) compare(exps []*expectation, got []alert.Event) []string {
	var fails []string
	used := make([]bool, len(got))
	for _, x := range exps {
		found := false
		for i := range got {
			if !used[i] && x.matches(&got[i]) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			fails = append(fails, fmt.Sprintf("%s:%d: missing: %s", s.Name, x.line, x))
		}
	}
	for i := range got {
		if !used[i] {
			fails = append(fails, fmt.Sprintf("%s: unexpected: %s", s.Name, FormatEvent(&got[i], 0)))
		}
	}
	return fails
}

func (x *expectation) matches(ev *alert.Event) bool {
	if ev.Time.UnixNano() != x.at || ev.Rule != x.rule || ev.Severity != x.sev ||
		ev.Repeat != x.repeat || ev.Flapping != x.flapping || len(ev.Group) != len(x.group) {
		return false
	}
	if x.prev != nil && *x.prev != ev.Previous {
		return false
	}
	// Values compare at 6 significant digits, as transitions are printed.
	if x.value != nil && fmtNum(ev.Value) != fmtNum(*x.value) {
		return false
	}
	for k, v := range x.group {
		if ev.Group[k] != v {
			return false
		}
	}
	return true
}

func (x *expectation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", time.Duration(x.at), x.rule, x.sev)
	if x.prev != nil {
		fmt.Fprintf(&b, " previous=%s", *x.prev)
	}
	if x.value != nil {
		fmt.Fprintf(&b, " value=%s", fmtNum(*x.value))
	}
	if x.repeat {
		b.WriteString(" repeat")
	}
	if x.flapping {
		b.WriteString(" flapping")
	}
	b.WriteString(" " + alert.FormatGroup(x.group))
	return b.String()
}

// FormatEvent renders an event on one line. Times are shown as offsets from
// base (in nanoseconds since the Unix epoch) when base is 0 and the event
// is within a year of the epoch (test scripts), as RFC 3339 otherwise.
func FormatEvent(ev *alert.Event, base int64) string {
	var b strings.Builder
	t := ev.Time.UnixNano() - base
	if base == 0 && t >= 0 && t < int64(365*24*time.Hour) {
		b.WriteString(time.Duration(t).String())
	} else {
		b.WriteString(ev.Time.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&b, " %s %s previous=%s", ev.Rule, ev.Severity, ev.Previous)
	if !math.IsNaN(ev.Value) {
		fmt.Fprintf(&b, " value=%s", fmtNum(ev.Value))
	}
	if ev.Repeat {
		b.WriteString(" repeat")
	}
	if ev.Flapping {
		b.WriteString(" flapping")
	}
	b.WriteString(" " + alert.FormatGroup(ev.Group))
	if ev.Message != "" {
		b.WriteString(" # " + ev.Message)
	}
	return b.String()
}

// rowBatcher builds sample.Schema records from script rows.
type rowBatcher struct {
	pipeline string
	rows     []sample.Row
	source   []string
	module   []string
}

func newRowBatcher(pipeline string) *rowBatcher { return &rowBatcher{pipeline: pipeline} }

func (b *rowBatcher) add(c command) {
	b.rows = append(b.rows, c.rows...)
	b.source = append(b.source, c.source...)
	b.module = append(b.module, c.module...)
}

func (b *rowBatcher) len() int { return len(b.rows) }

func (b *rowBatcher) sortByTime() {
	idx := make([]int, len(b.rows))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return b.rows[idx[i]].Ts < b.rows[idx[j]].Ts })
	rows, src, mod := make([]sample.Row, len(idx)), make([]string, len(idx)), make([]string, len(idx))
	for k, i := range idx {
		rows[k], src[k], mod[k] = b.rows[i], b.source[i], b.module[i]
	}
	b.rows, b.source, b.module = rows, src, mod
}

func (b *rowBatcher) release() { b.rows, b.source, b.module = nil, nil, nil }

// record builds the batch and empties the batcher.
func (b *rowBatcher) record() arrow.RecordBatch {
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sample.Schema)
	defer rb.Release()
	for i, r := range b.rows {
		rb.Field(sample.IdxTs).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Ts))
		rb.Field(sample.IdxPipeline).(*array.StringBuilder).Append(b.pipeline)
		rb.Field(sample.IdxSource).(*array.StringBuilder).Append(b.source[i])
		rb.Field(sample.IdxModule).(*array.StringBuilder).Append(b.module[i])
		rb.Field(sample.IdxTarget).(*array.StringBuilder).Append(r.Target)
		rb.Field(sample.IdxMetric).(*array.StringBuilder).Append(r.Metric)
		if r.HasValue {
			rb.Field(sample.IdxValue).(*array.Float64Builder).Append(r.Value)
		} else {
			rb.Field(sample.IdxValue).(*array.Float64Builder).AppendNull()
		}
		if r.HasText {
			rb.Field(sample.IdxText).(*array.StringBuilder).Append(r.Text)
		} else {
			rb.Field(sample.IdxText).(*array.StringBuilder).AppendNull()
		}
		if r.Unit != "" {
			rb.Field(sample.IdxUnit).(*array.StringBuilder).Append(r.Unit)
		} else {
			rb.Field(sample.IdxUnit).(*array.StringBuilder).AppendNull()
		}
		mb := rb.Field(sample.IdxLabels).(*array.MapBuilder)
		mb.Append(true)
		for _, l := range r.Labels {
			mb.KeyBuilder().(*array.StringBuilder).Append(l.Key)
			mb.ItemBuilder().(*array.StringBuilder).Append(l.Value)
		}
		rb.Field(sample.IdxNode).(*array.StringBuilder).Append("test")
	}
	b.rows, b.source, b.module = b.rows[:0], b.source[:0], b.module[:0]
	return rb.NewRecordBatch()
}

// TestCommand implements `reconc test FILE…`: it runs each rule test script
// and prints PASS or the differences; the exit code is 0 when all pass, 1
// when one fails, 2 on a usage or load error.
func TestCommand(args []string, stdout, stderr io.Writer, load LoadFunc) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: reconc test FILE.txtar…")
		return 2
	}
	code := 0
	for _, path := range args {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "reconc test: %v\n", err)
			return 2
		}
		s, err := ParseScript(path, data)
		if err != nil {
			fmt.Fprintf(stderr, "reconc test: %v\n", err)
			return 2
		}
		report, err := s.Run(load, "")
		if err != nil {
			fmt.Fprintf(stderr, "reconc test: %s: %v\n", path, err)
			return 2
		}
		if report != "" {
			fmt.Fprintf(stdout, "FAIL %s\n%s", path, report)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "PASS %s\n", path)
	}
	return code
}

func jsonStrict(src []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
