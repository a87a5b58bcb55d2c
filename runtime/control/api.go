package control

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/live"
)

// Defaults of Options.
const (
	DefaultMaxPlanBytes    = 16 << 20
	DefaultMaxRequestBytes = 64 << 10
)

// TokenEnv is the environment variable recond reads its token from when
// no token file is given.
const TokenEnv = "RECON_TOKEN"

// LoadToken returns the token in file (surrounding blanks trimmed), or
// $RECON_TOKEN when file is "". An empty token is an error: it would let
// anyone deploy.
func LoadToken(file string) (string, error) {
	if file == "" {
		if tok := strings.TrimSpace(os.Getenv(TokenEnv)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("no token: give --token-file or set %s", TokenEnv)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return tok, nil
}

// Applier swaps a validated plan into one part of the runtime (the
// scheduler and rule engine, the clones). Apply either applies p fully or
// returns an error having changed nothing.
type Applier interface {
	Apply(ctx context.Context, p *plan.Plan, c Change) error
}

// ErrRefused marks an Applier's refusal of a plan it cannot swap in while
// recond runs (a new archive, another Kafka cluster): nothing was changed,
// and the API answers 422 with the reason, which names what to restart for.
var ErrRefused = errors.New("deploy refused")

// ApplierFunc adapts a function to Applier.
type ApplierFunc func(ctx context.Context, p *plan.Plan, c Change) error

// Apply calls f.
func (f ApplierFunc) Apply(ctx context.Context, p *plan.Plan, c Change) error { return f(ctx, p, c) }

// ClonesApplier applies a plan's streams to clones.
func ClonesApplier(c *live.Clones) Applier {
	return ApplierFunc(func(_ context.Context, p *plan.Plan, _ Change) error { return c.SetPlan(p) })
}

// Options configure the control API.
type Options struct {
	// Token authorises mutating requests (Authorization: Bearer TOKEN);
	// with no token they are all refused.
	Token    string
	Registry *module.Registry
	// Plan is the plan running now.
	Plan *plan.Plan
	// Appliers take a deployed plan, in order. If one fails, those before
	// it are given the previous plan back.
	Appliers []Applier
	// Clones serves /api/v1/clones when set.
	Clones *live.Clones
	// MinPeriod is the shortest stream period a plan may declare (default
	// live.DefaultMinPeriod).
	MinPeriod time.Duration
	// MaxPlanBytes bounds a deployed plan, MaxRequestBytes other request
	// bodies.
	MaxPlanBytes, MaxRequestBytes int64
	Logger                        *slog.Logger
}

// API serves the control endpoints:
//
//	POST   /api/v1/deploy        (token) swap in a plan
//	GET    /api/v1/plan          the running plan (ETag: its hash)
//	POST   /api/v1/clones        (token) start an ad-hoc clone
//	GET    /api/v1/clones        running clones
//	DELETE /api/v1/clones/{id}   (token) end a clone
type API struct {
	opts Options
	log  *slog.Logger

	mu  sync.Mutex // serialises deploys
	cur *plan.Plan
}

// New returns the API for a recond running opts.Plan.
func New(opts Options) (*API, error) {
	if opts.Registry == nil || opts.Plan == nil {
		return nil, errors.New("control: Registry and Plan are required")
	}
	if opts.MinPeriod <= 0 {
		opts.MinPeriod = live.DefaultMinPeriod
	}
	if opts.MaxPlanBytes <= 0 {
		opts.MaxPlanBytes = DefaultMaxPlanBytes
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &API{opts: opts, log: opts.Logger, cur: opts.Plan}, nil
}

// Register adds the control routes.
func (a *API) Register(r live.Router) {
	r.Handle("POST /api/v1/deploy", a.auth(http.HandlerFunc(a.deploy)))
	r.Handle("GET /api/v1/plan", http.HandlerFunc(a.plan))
	if a.opts.Clones != nil {
		r.Handle("POST /api/v1/clones", a.auth(http.HandlerFunc(a.startClone)))
		r.Handle("GET /api/v1/clones", http.HandlerFunc(a.listClones))
		r.Handle("DELETE /api/v1/clones/{id}", a.auth(http.HandlerFunc(a.stopClone)))
	}
}

// Plan returns the running plan.
func (a *API) Plan() *plan.Plan {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

// Error is the JSON body of every error answer.
type Error struct {
	Error   string   `json:"error"`
	Reasons []string `json:"reasons,omitempty"`
}

func reply(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(body)
}

func (a *API) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="recond"`)
		if a.opts.Token == "" {
			reply(w, http.StatusUnauthorized, Error{Error: "this recond has no token configured (start it with --token-file or " + TokenEnv + "): changes are refused"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || got == "" {
			reply(w, http.StatusUnauthorized, Error{Error: "missing bearer token (Authorization: Bearer TOKEN)"})
			return
		}
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(a.opts.Token)) != 1 {
			a.log.Warn("request with a wrong token refused", "remote", r.RemoteAddr, "path", r.URL.Path)
			reply(w, http.StatusUnauthorized, Error{Error: "wrong token"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readBody reads a size-limited body; it answers and returns false on error.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, http.StatusRequestEntityTooLarge, Error{Error: fmt.Sprintf("request body over %d bytes", limit)})
			return nil, false
		}
		reply(w, http.StatusBadRequest, Error{Error: "reading the request: " + err.Error()})
		return nil, false
	}
	return body, true
}

// DeployResult is the answer to a successful deploy.
type DeployResult struct {
	Hash string `json:"hash"`
	// Unchanged is set when the plan was the running one: nothing was done.
	Unchanged bool   `json:"unchanged,omitempty"`
	Change    Change `json:"change"`
}

func (a *API) deploy(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, a.opts.MaxPlanBytes)
	if !ok {
		return
	}
	p, err := plan.Unmarshal(body)
	if err != nil {
		reply(w, http.StatusUnprocessableEntity, Error{Error: "invalid plan: nothing was changed", Reasons: []string{err.Error()}})
		return
	}
	if reasons := Validate(p, a.opts.Registry, a.opts.MinPeriod); len(reasons) > 0 {
		reply(w, http.StatusUnprocessableEntity, Error{Error: "invalid plan: nothing was changed", Reasons: reasons})
		return
	}
	if _, err := p.Marshal(); err != nil { // sets the hash of a plan sent without one
		reply(w, http.StatusUnprocessableEntity, Error{Error: "invalid plan: nothing was changed", Reasons: []string{err.Error()}})
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.cur
	change := Diff(old, p)
	if p.Hash == old.Hash {
		reply(w, http.StatusOK, DeployResult{Hash: p.Hash, Unchanged: true, Change: change})
		return
	}
	ctx := context.WithoutCancel(r.Context()) // a client leaving must not cut a swap in half
	back := Diff(p, old)
	for i, ap := range a.opts.Appliers {
		if err := ap.Apply(ctx, p, change); err != nil {
			a.log.Error("deploy failed; restoring the previous plan", "hash", p.Hash, "err", err)
			var errs []string
			for j := i - 1; j >= 0; j-- {
				if err := a.opts.Appliers[j].Apply(ctx, old, back); err != nil {
					errs = append(errs, "restoring the previous plan: "+err.Error())
				}
			}
			if errors.Is(err, ErrRefused) {
				reply(w, http.StatusUnprocessableEntity, Error{Error: "deploy refused, the previous plan keeps running: " + err.Error(), Reasons: errs})
				return
			}
			reply(w, http.StatusInternalServerError, Error{Error: "deploy failed, the previous plan keeps running: " + err.Error(), Reasons: errs})
			return
		}
	}
	a.cur = p
	a.log.Info("plan deployed", "from", old.Hash, "to", p.Hash,
		"sources_added", len(change.Sources.Added), "sources_removed", len(change.Sources.Removed),
		"sources_changed", len(change.Sources.Changed), "rules_changed", len(change.Rules.Changed))
	reply(w, http.StatusOK, DeployResult{Hash: p.Hash, Change: change})
}

func (a *API) plan(w http.ResponseWriter, r *http.Request) {
	p := a.Plan()
	cp := *p
	body, err := cp.Marshal()
	if err != nil {
		reply(w, http.StatusInternalServerError, Error{Error: err.Error()})
		return
	}
	w.Header().Set("ETag", `"`+cp.Hash+`"`)
	if r.Header.Get("If-None-Match") == `"`+cp.Hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (a *API) startClone(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, a.opts.MaxRequestBytes)
	if !ok {
		return
	}
	var req live.Request
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		reply(w, http.StatusBadRequest, Error{Error: "clone request: " + err.Error()})
		return
	}
	info, err := a.opts.Clones.Start(r.Context(), req)
	switch {
	case err == nil:
		reply(w, http.StatusCreated, info)
	case errors.Is(err, live.ErrUnknownSource):
		reply(w, http.StatusNotFound, Error{Error: err.Error()})
	case errors.Is(err, live.ErrBadRequest), errors.Is(err, live.ErrNotClonable):
		reply(w, http.StatusUnprocessableEntity, Error{Error: err.Error()})
	default:
		reply(w, http.StatusInternalServerError, Error{Error: err.Error()})
	}
}

func (a *API) listClones(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, map[string]any{"clones": a.opts.Clones.List()})
}

func (a *API) stopClone(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !a.opts.Clones.Stop(id) {
		reply(w, http.StatusNotFound, Error{Error: fmt.Sprintf("no clone %q", id)})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
