// Package plan defines the deployable plan `reconc compile` emits and
// `recond` runs: JSON, deterministic (same input, same bytes), versioned and
// content-hashed.
package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// FormatVersion is the plan format this build writes and runs.
const FormatVersion = 1

// Plan is a compiled pipeline.
type Plan struct {
	// Format is the plan format version; recond refuses others.
	Format int `json:"format"`
	// Hash is "sha256:<hex>" of the plan with Hash empty.
	Hash     string   `json:"hash"`
	Pipeline string   `json:"pipeline"`
	Files    []string `json:"files,omitempty"` // source files, in include order
	Sources  []Source `json:"sources"`
	Streams  []Stream `json:"streams"`
	Rules    []Rule   `json:"rules"`
	Sinks    []Sink   `json:"sinks"`
}

// Source is one declared source with its attributes resolved: constants
// interpolated, env() read at compile time, defaults applied.
type Source struct {
	Name    string          `json:"name"`
	Module  string          `json:"module"`
	Target  string          `json:"target,omitempty"`
	Period  Duration        `json:"period,omitempty"` // 0 for passive sources
	Timeout Duration        `json:"timeout,omitempty"`
	Attrs   json.RawMessage `json:"attrs"`
	Pos     string          `json:"pos"` // file:line:col of the declaration
}

// Stream is a declared clone of a source (temporal streaming).
type Stream struct {
	Name    string   `json:"name"`
	Clone   string   `json:"clone"`
	Period  Duration `json:"period"`
	TTL     Duration `json:"ttl,omitempty"` // 0: runs as long as the plan
	Archive bool     `json:"archive"`
	Pos     string   `json:"pos"`
}

// Sink is one declared sink.
type Sink struct {
	Name  string          `json:"name"`
	Kind  string          `json:"kind"`
	Attrs json.RawMessage `json:"attrs"`
	Pos   string          `json:"pos"`
}

// Rule is a compiled fault rule. Expressions are trees of Expr.
type Rule struct {
	Name string `json:"name"`
	// From selects samples: by source or stream name, by module
	// ("module:snmp"), or "*" for all samples.
	From     []string  `json:"from"`
	Where    *Expr     `json:"where,omitempty"`
	GroupBy  []Expr    `json:"group_by,omitempty"`
	Window   Window    `json:"window"`
	Clauses  []Clause  `json:"clauses"`
	Clear    *Expr     `json:"clear,omitempty"`
	Notify   []string  `json:"notify,omitempty"`
	Repeat   Duration  `json:"repeat,omitempty"`
	Lateness Duration  `json:"lateness,omitempty"`
	Flapping *Flapping `json:"flapping,omitempty"`
	// Description is the rule's `description`, shown with its alerts.
	Description string `json:"description,omitempty"`
	Pos         string `json:"pos"`
}

// Window describes a rule's window on event time.
type Window struct {
	Kind  string   `json:"kind"` // tumbling | sliding | count
	Size  Duration `json:"size,omitempty"`
	Every Duration `json:"every,omitempty"`
	Count int64    `json:"count,omitempty"`
}

// Clause is one severity clause: `critical when EXPR for D`, or
// `critical when absent(D)` (Absent set, When nil), or a pattern.
type Clause struct {
	Severity string   `json:"severity"` // warning | critical
	When     *Expr    `json:"when,omitempty"`
	For      Duration `json:"for,omitempty"`
	Absent   Duration `json:"absent,omitempty"`
	Pattern  *Pattern `json:"pattern,omitempty"`
}

// Pattern is "EVENT not followed by EVENT within D" for the same group.
type Pattern struct {
	First  *Expr    `json:"first"`
	Then   *Expr    `json:"then"`
	Within Duration `json:"within"`
}

// Flapping holds Nagios-style flap detection thresholds in percent.
type Flapping struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Expr is an expression node.
//
//	op "num": Num           op "str": Str        op "bool": Bool
//	op "col": Name (a sample column)              op "label": Str (labels["x"])
//	op "call": Name, Args (aggregates and functions)
//	op "+","-","*","/","==","!=","<","<=",">",">=","and","or","not","neg", "=~", "!~": Args
type Expr struct {
	Op   string  `json:"op"`
	Num  float64 `json:"num,omitempty"`
	Str  string  `json:"str,omitempty"`
	Bool bool    `json:"bool,omitempty"`
	Name string  `json:"name,omitempty"`
	Args []*Expr `json:"args,omitempty"`
}

// Marshal returns the plan's canonical JSON with Hash set.
func (p *Plan) Marshal() ([]byte, error) {
	p.Format = FormatVersion
	p.Hash = ""
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	sum := sha256.Sum256(body)
	p.Hash = "sha256:" + hex.EncodeToString(sum[:])
	out, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	return append(out, '\n'), nil
}

// Unmarshal decodes a plan, refusing unknown format versions.
func Unmarshal(data []byte) (*Plan, error) {
	var probe struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	if probe.Format == nil {
		return nil, fmt.Errorf("decode plan: no \"format\" field: not a Recon plan")
	}
	if *probe.Format != FormatVersion {
		return nil, fmt.Errorf("plan format %d is not supported by this build (it runs format %d): recompile the .recon file with a matching reconc", *probe.Format, FormatVersion)
	}
	p := new(Plan)
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	return p, nil
}

// Load reads and decodes a plan file.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}
