package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/alert"
)

// none marks an unset event time (0 is a valid time in tests).
const none = math.MinInt64

// DefaultCountEvery is how often a count(n) window is evaluated when the
// rule does not say (plan.Window.Every).
const DefaultCountEvery = 10 * time.Second

// maxPatterns bounds the pattern clauses of one rule (two flag bits each).
const maxPatterns = 4

type clauseKind int

const (
	clauseCond clauseKind = iota + 1
	clauseAbsent
	clausePattern
)

type clause struct {
	sev    alert.Severity
	kind   clauseKind
	text   string // the clause as written, for messages
	cond   condFn
	lhs    valFn
	lhsTxt string
	forD   int64
	absent int64
	within int64
	first  boolFn
	then   boolFn
	pat    int // pattern slot
}

type groupCol struct {
	name string // the group label: column name or label key
	get  strFn
}

// rule is a compiled plan.Rule with its runtime state.
type rule struct {
	idx      int
	name     string
	key      string // name + hash of the definition (state survives only an identical definition)
	pipeline string
	sources  []string
	modules  []string
	all      bool
	where    boolFn
	groupBy  []groupCol
	kind     string
	size     int64
	every    int64
	count    int
	lateness int64
	clauses  []clause
	clear    condFn
	clearTxt string
	notify   []string
	repeat   int64
	flap     *plan.Flapping
	inputs   []numFn
	aggs     []aggSpec
	patterns int
	hasAbs   bool

	groups  map[string]*group
	ruleAbs *group // grouped rules with absent(): the "no sample at all" pseudo group
	frozen  int64  // backtest: fixed late-check watermark, or none
	maxSeen int64  // largest accepted event time
	evalMax int64  // largest time given to Eval
	start   int64  // first time the rule saw (sample or Eval)
	next    int64  // next evaluation time
	late    uint64
	seen    uint64
	keyBuf  []byte
	vals    []float64 // one sample's input values (scratch)
	win     window    // evaluation scratch
	out     []alert.Event
}

// ruleKey keys a rule's persisted state: its name and a hash of the parts of
// its definition that change what it computes (not notify, description or
// position).
func ruleKey(r *plan.Rule) string {
	def := *r
	def.Pos, def.Notify, def.Description = "", nil, ""
	b, _ := json.Marshal(&def) // plain values always encode
	sum := sha256.Sum256(b)
	return r.Name + "@" + hex.EncodeToString(sum[:8])
}

func compileRule(idx int, pipeline string, pr *plan.Rule, defaultLateness time.Duration) (*rule, error) {
	r := &rule{
		idx: idx, name: pr.Name, key: ruleKey(pr), pipeline: pipeline, kind: pr.Window.Kind,
		notify: pr.Notify, repeat: int64(pr.Repeat), flap: pr.Flapping,
		groups: map[string]*group{}, frozen: none, maxSeen: none, evalMax: none, start: none, next: none,
	}
	if r.name == "" {
		return nil, fmt.Errorf("rule without a name")
	}
	r.lateness = int64(pr.Lateness)
	if r.lateness == 0 {
		r.lateness = int64(defaultLateness)
	}
	if r.lateness < 0 || r.repeat < 0 {
		return nil, fmt.Errorf("lateness and repeat must not be negative")
	}
	if len(pr.From) == 0 {
		return nil, fmt.Errorf("no `from`: name a source, a stream, module:NAME or *")
	}
	for _, f := range pr.From {
		switch {
		case f == "*":
			r.all = true
		case len(f) > len("module:") && f[:len("module:")] == "module:":
			r.modules = append(r.modules, f[len("module:"):])
		case f == "":
			return nil, fmt.Errorf("empty `from` name")
		default:
			r.sources = append(r.sources, f)
		}
	}
	if pr.Where != nil {
		w, err := compileBool(pr.Where)
		if err != nil {
			return nil, fmt.Errorf("where: %w", err)
		}
		r.where = w
	}
	for _, g := range pr.GroupBy {
		get, err := compileStr(&g)
		if err != nil || (g.Op != "col" && g.Op != "label") {
			return nil, fmt.Errorf("group by %s: want a string column or labels[\"key\"]", describe(&g))
		}
		name := g.Name
		if g.Op == "label" {
			name = g.Str
		}
		r.groupBy = append(r.groupBy, groupCol{name: name, get: get})
	}
	switch pr.Window.Kind {
	case "tumbling":
		r.size, r.every = int64(pr.Window.Size), int64(pr.Window.Size)
	case "sliding":
		r.size, r.every = int64(pr.Window.Size), int64(pr.Window.Every)
	case "count":
		if pr.Window.Count <= 0 {
			return nil, fmt.Errorf("window count(%d): want at least 1", pr.Window.Count)
		}
		r.count = int(pr.Window.Count)
		r.every = int64(pr.Window.Every)
		if r.every == 0 {
			r.every = int64(DefaultCountEvery)
		}
	default:
		return nil, fmt.Errorf("window kind %q: want tumbling, sliding or count", pr.Window.Kind)
	}
	if r.every <= 0 || (r.kind != "count" && r.size <= 0) {
		return nil, fmt.Errorf("window %s: size and period must be positive", pr.Window.Kind)
	}
	cc := newCondCompiler()
	if len(pr.Clauses) == 0 {
		return nil, fmt.Errorf("no severity clause (`warning when …` or `critical when …`)")
	}
	for i, pc := range pr.Clauses {
		c, err := r.compileClause(cc, &pc)
		if err != nil {
			return nil, fmt.Errorf("clause %d (%s): %w", i+1, pc.Severity, err)
		}
		r.clauses = append(r.clauses, c)
	}
	if pr.Clear != nil {
		c, err := cc.cond(pr.Clear)
		if err != nil {
			return nil, fmt.Errorf("clear: %w", err)
		}
		r.clear, r.clearTxt = c, Format(pr.Clear)
	}
	if f := pr.Flapping; f != nil && (f.Low < 0 || f.High > 100 || f.Low > f.High) {
		return nil, fmt.Errorf("flapping: want 0 <= low <= high <= 100, got low %g high %g", f.Low, f.High)
	}
	r.inputs, r.aggs = cc.inputs, cc.aggs
	r.vals = make([]float64, len(r.inputs))
	r.win = window{slots: make([]float64, len(r.aggs)), vals: make([][]float64, len(r.inputs))}
	return r, nil
}

func (r *rule) compileClause(cc *condCompiler, pc *plan.Clause) (clause, error) {
	sev, err := alert.ParseSeverity(pc.Severity)
	if err != nil || sev == alert.OK {
		return clause{}, fmt.Errorf("severity %q: want warning or critical", pc.Severity)
	}
	c := clause{sev: sev, forD: int64(pc.For)}
	if c.forD < 0 {
		return clause{}, fmt.Errorf("for must not be negative")
	}
	switch {
	case pc.When != nil && pc.Absent == 0 && pc.Pattern == nil:
		c.kind = clauseCond
		if c.cond, err = cc.cond(pc.When); err != nil {
			return clause{}, err
		}
		var lhs *plan.Expr
		c.lhs, lhs = cc.lhs(pc.When)
		if lhs != nil {
			c.lhsTxt = Format(lhs)
		}
		c.text = Format(pc.When)
	case pc.Absent > 0 && pc.When == nil && pc.Pattern == nil:
		c.kind, c.absent = clauseAbsent, int64(pc.Absent)
		c.text = fmt.Sprintf("absent(%s)", pc.Absent.D())
		r.hasAbs = true
	case pc.Pattern != nil && pc.When == nil && pc.Absent == 0:
		p := pc.Pattern
		if p.First == nil || p.Then == nil || p.Within <= 0 {
			return clause{}, fmt.Errorf("pattern needs a first event, a then event and a positive within")
		}
		if r.patterns == maxPatterns {
			return clause{}, fmt.Errorf("at most %d pattern clauses per rule", maxPatterns)
		}
		if c.first, err = compileBool(p.First); err != nil {
			return clause{}, fmt.Errorf("pattern: %w", err)
		}
		if c.then, err = compileBool(p.Then); err != nil {
			return clause{}, fmt.Errorf("pattern: %w", err)
		}
		c.kind, c.within, c.pat = clausePattern, int64(p.Within), r.patterns
		r.patterns++
		c.text = fmt.Sprintf("%s not followed by %s within %s", Format(p.First), Format(p.Then), p.Within.D())
	default:
		return clause{}, fmt.Errorf("a clause has exactly one of a condition, absent(d) or a pattern")
	}
	return c, nil
}

// selects reports whether the rule reads samples of source (or module).
func (r *rule) selects(source, module string) bool {
	if r.all {
		return true
	}
	for _, s := range r.sources {
		if s == source {
			return true
		}
	}
	for _, m := range r.modules {
		if m == module {
			return true
		}
	}
	return false
}

// group is one group's window buffer, pattern progress and alert state.
type group struct {
	key    string
	labels map[string]string
	fp     string
	// Buffered samples in event-time order from index head on: ts, one
	// value column per input (NaN for null) and pattern flags (bit 2p:
	// first event of pattern p, bit 2p+1: then event).
	head  int
	ts    []int64
	vals  [][]float64
	flags []uint8
	// cursor is the index of the first buffered sample not yet applied to
	// the pattern state.
	cursor int
	// lastSeen is the newest sample time before the last evaluated window
	// end (none before the group's first sample): samples buffered for
	// later windows must not hide an absence at an earlier window end.
	lastSeen int64
	pend     []int64 // per pattern: oldest first event not yet followed
	st       state
}

// state is the alert state of one group.
type state struct {
	sev        alert.Severity
	since      int64
	active     []int64 // per clause: when its condition became true, or none
	notified   alert.Severity
	lastNotify int64
	hist       [flapHistory]uint8
	nhist      int
	flapping   bool
}

func (r *rule) newGroup(key string, labels map[string]string) *group {
	g := &group{
		key: key, labels: labels, fp: alert.Fingerprint(r.name, labels), lastSeen: none,
		vals: make([][]float64, len(r.inputs)), pend: make([]int64, r.patterns),
	}
	for i := range g.pend {
		g.pend[i] = none
	}
	g.st = state{since: none, lastNotify: none, active: make([]int64, len(r.clauses))}
	for i := range g.st.active {
		g.st.active[i] = none
	}
	if r.patterns > 0 {
		g.flags = []uint8{}
	}
	return g
}

// groupLabels returns the group-by values of row i, copied: strings read
// from a batch point into its buffers, which the group outlives.
func (r *rule) groupLabels(b *batch, i int) map[string]string {
	m := make(map[string]string, len(r.groupBy))
	for _, gc := range r.groupBy {
		v, _ := gc.get(b, i)
		m[gc.name] = strings.Clone(v)
	}
	return m
}

// insert adds a sample at its event-time position (appending in the usual
// in-order case).
func (g *group) insert(ts int64, vals []float64, flags uint8, hasFlags bool) {
	n := len(g.ts)
	pos := n
	for pos > 0 && g.ts[pos-1] > ts {
		pos--
	}
	g.ts = append(g.ts, ts)
	if pos < n {
		copy(g.ts[pos+1:], g.ts[pos:n])
		g.ts[pos] = ts
	}
	for k, v := range vals {
		col := append(g.vals[k], v)
		if pos < n {
			copy(col[pos+1:], col[pos:n])
			col[pos] = v
		}
		g.vals[k] = col
	}
	if hasFlags {
		g.flags = append(g.flags, flags)
		if pos < n {
			copy(g.flags[pos+1:], g.flags[pos:n])
			g.flags[pos] = flags
		}
	}
}

// evict drops the first k buffered samples. It moves the head and compacts
// the buffers only once the head passes a quarter of them, so eviction costs
// O(1) amortised per sample however many samples are buffered, and
// buffers hold at most a third more than the windows need.
func (g *group) evict(k int) {
	if k <= 0 {
		return
	}
	g.head += k
	if g.head < 64 || 4*g.head < len(g.ts) {
		return
	}
	h := g.head
	n := len(g.ts) - h
	copy(g.ts, g.ts[h:])
	g.ts = g.ts[:n]
	for c, col := range g.vals {
		copy(col, col[h:])
		g.vals[c] = col[:n]
	}
	if g.flags != nil {
		copy(g.flags, g.flags[h:])
		g.flags = g.flags[:n]
	}
	g.cursor -= h
	g.head = 0
}

// idle reports whether the group holds nothing worth keeping.
func (r *rule) idle(g *group) bool {
	if len(g.ts) > g.head || g.st.sev != alert.OK || g.st.flapping || r.hasAbs {
		return false
	}
	for _, a := range g.st.active {
		if a != none {
			return false
		}
	}
	for _, p := range g.pend {
		if p != none {
			return false
		}
	}
	return true
}
