package rules

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/reconmon/recon/internal/atomicfile"

	"github.com/reconmon/recon/runtime/alert"
)

// StateFile is the name of the state snapshot under Options.DataDir.
const StateFile = "rules.state"

// The state file is stateMagic, a CRC-32C of the rest, then the gob
// encoded snapshot.
const (
	stateMagic  = "RCNRULE1"
	stateHeader = 12
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// snapshotVersion is bumped when the snapshot layout changes; an unknown
// version is refused (the engine does not guess).
const snapshotVersion = 1

type snapshot struct {
	Version int
	Applied map[int32]int64
	Rules   []ruleSnap
	Outbox  []pending
}

type ruleSnap struct {
	Key     string
	Name    string
	Notify  []string
	MaxSeen int64
	EvalMax int64
	Start   int64
	Next    int64
	Late    uint64
	Seen    uint64
	Groups  []groupSnap
	RuleAbs *groupSnap
}

type groupSnap struct {
	Key      string
	Labels   map[string]string
	Ts       []int64
	Vals     [][]float64
	Flags    []uint8
	Cursor   int
	LastSeen int64
	Pend     []int64
	Sev      alert.Severity
	Since    int64
	Active   []int64
	Notified alert.Severity
	LastNtfy int64
	Hist     []uint8
	Flapping bool
}

func snapGroup(g *group) groupSnap {
	vals := make([][]float64, len(g.vals))
	for k, col := range g.vals {
		vals[k] = col[g.head:]
	}
	var flags []uint8
	if g.flags != nil {
		flags = g.flags[g.head:]
	}
	return groupSnap{
		Key: g.key, Labels: g.labels, Ts: g.ts[g.head:], Vals: vals, Flags: flags, Cursor: g.cursor - g.head,
		LastSeen: g.lastSeen, Pend: g.pend, Sev: g.st.sev, Since: g.st.since, Active: g.st.active,
		Notified: g.st.notified, LastNtfy: g.st.lastNotify, Hist: g.st.hist[:g.st.nhist], Flapping: g.st.flapping,
	}
}

func (r *rule) restoreGroup(s *groupSnap) (*group, error) {
	g := r.newGroup(s.Key, s.Labels)
	if g.labels == nil {
		g.labels = map[string]string{}
	}
	if len(s.Vals) != len(r.inputs) || len(s.Pend) != r.patterns || len(s.Active) != len(r.clauses) ||
		len(s.Hist) > flapHistory || s.Cursor < 0 || s.Cursor > len(s.Ts) {
		return nil, fmt.Errorf("group %q does not match the rule", s.Key)
	}
	for _, col := range s.Vals {
		if len(col) != len(s.Ts) {
			return nil, fmt.Errorf("group %q: value columns of unequal length", s.Key)
		}
	}
	if r.patterns > 0 && len(s.Flags) != len(s.Ts) {
		return nil, fmt.Errorf("group %q: pattern flags of the wrong length", s.Key)
	}
	g.ts, g.cursor, g.lastSeen = s.Ts, s.Cursor, s.LastSeen
	for k := range g.vals {
		g.vals[k] = s.Vals[k]
	}
	if r.patterns > 0 {
		g.flags = s.Flags
	}
	copy(g.pend, s.Pend)
	copy(g.st.active, s.Active)
	g.st.sev, g.st.since, g.st.notified, g.st.lastNotify = s.Sev, s.Since, s.Notified, s.LastNtfy
	g.st.nhist = copy(g.st.hist[:], s.Hist)
	g.st.flapping = s.Flapping
	return g, nil
}

// Save writes the state snapshot atomically (temp file, fsync, rename, fsync
// of the directory). A no-op without a data dir.
func (e *Engine) Save() error {
	if e.opts.DataDir == "" {
		return nil
	}
	s := snapshot{Version: snapshotVersion, Applied: e.applied}
	for _, p := range e.outbox {
		s.Outbox = append(s.Outbox, *p)
	}
	for _, r := range e.rules {
		rs := ruleSnap{
			Key: r.key, Name: r.name, Notify: r.notify, MaxSeen: r.maxSeen, EvalMax: r.evalMax,
			Start: r.start, Next: r.next, Late: r.late, Seen: r.seen,
		}
		for _, g := range r.groups {
			rs.Groups = append(rs.Groups, snapGroup(g))
		}
		if r.ruleAbs != nil {
			g := snapGroup(r.ruleAbs)
			rs.RuleAbs = &g
		}
		s.Rules = append(s.Rules, rs)
	}
	var buf bytes.Buffer
	buf.Write(make([]byte, stateHeader))
	if err := gob.NewEncoder(&buf).Encode(&s); err != nil {
		return fmt.Errorf("rules: encode state: %w", err)
	}
	data := buf.Bytes()
	copy(data, stateMagic)
	binary.LittleEndian.PutUint32(data[8:], crc32.Checksum(data[stateHeader:], crcTable))
	if err := writeState(filepath.Join(e.opts.DataDir, StateFile), data); err != nil {
		return fmt.Errorf("rules: save state: %w", err)
	}
	return nil
}

// writeState replaces the state file atomically, creating its directory.
func writeState(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data)
}

// restore loads the snapshot, if any.
func (e *Engine) restore() error {
	path := filepath.Join(e.opts.DataDir, StateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rules: read state: %w", err)
	}
	if len(data) < stateHeader || string(data[:8]) != stateMagic ||
		binary.LittleEndian.Uint32(data[8:]) != crc32.Checksum(data[stateHeader:], crcTable) {
		return fmt.Errorf("rules: state %s is damaged (bad header or checksum): move it away to start with empty state", path)
	}
	var s snapshot
	if err := gob.NewDecoder(bytes.NewReader(data[stateHeader:])).Decode(&s); err != nil {
		return fmt.Errorf("rules: state %s is corrupt (%w): move it away to start with empty state", path, err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("rules: state %s has version %d, this build reads %d: move it away to start with empty state", path, s.Version, snapshotVersion)
	}
	if s.Applied != nil {
		e.applied = s.Applied
	}
	for i := range s.Outbox {
		p := s.Outbox[i]
		e.nextID++
		p.seq = e.nextID
		e.outbox = append(e.outbox, &p)
	}
	byKey := map[string]*rule{}
	for _, r := range e.rules {
		byKey[r.key] = r
	}
	for i := range s.Rules {
		rs := &s.Rules[i]
		r := byKey[rs.Key]
		if r == nil {
			e.resolveRemoved(rs)
			continue
		}
		r.maxSeen, r.evalMax, r.start, r.next, r.late, r.seen = rs.MaxSeen, rs.EvalMax, rs.Start, rs.Next, rs.Late, rs.Seen
		for j := range rs.Groups {
			g, err := r.restoreGroup(&rs.Groups[j])
			if err != nil {
				return fmt.Errorf("rules: state %s: rule %s: %w", path, r.name, err)
			}
			r.groups[g.key] = g
		}
		if rs.RuleAbs != nil {
			g, err := r.restoreGroup(rs.RuleAbs)
			if err != nil {
				return fmt.Errorf("rules: state %s: rule %s: %w", path, r.name, err)
			}
			r.ruleAbs = g
		}
	}
	e.log.Info("state restored", "path", path, "rules", len(s.Rules), "pending_events", len(e.outbox))
	return nil
}

// resolveRemoved queues an ok event for every firing group of a rule that
// is gone from the plan (or whose definition changed), so no receiver keeps
// an alert that nothing will ever resolve.
func (e *Engine) resolveRemoved(rs *ruleSnap) {
	t := rs.MaxSeen
	if rs.EvalMax > t {
		t = rs.EvalMax
	}
	groups := rs.Groups
	if rs.RuleAbs != nil {
		groups = append(groups, *rs.RuleAbs)
	}
	for i := range groups {
		g := &groups[i]
		if g.Sev == alert.OK {
			continue
		}
		at := time.Unix(0, t).UTC()
		fp := alert.Fingerprint(rs.Name, g.Labels)
		ev := alert.Event{
			ID: alert.TransitionID(fp, at, g.Sev, alert.OK, false), Time: at, Rule: rs.Name,
			Severity: alert.OK, Previous: g.Sev, Group: g.Labels, Value: math.NaN(),
			Message: "resolved: the rule was removed or changed by a new plan", Pipeline: e.opts.Plan.Pipeline,
			Fingerprint: fp, Since: at, Notify: rs.Notify,
		}
		if ev.Group == nil {
			ev.Group = map[string]string{}
		}
		e.queue(ev)
	}
}

// queue adds an event to the outbox.
func (e *Engine) queue(ev alert.Event) {
	e.nextID++
	e.outbox = append(e.outbox, &pending{seq: e.nextID, Event: ev, Sinks: ev.Notify})
}
