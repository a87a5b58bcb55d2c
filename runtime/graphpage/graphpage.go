// Package graphpage serves recond's graph page and the read-only history
// API behind it:
//
//	GET /                     the page (assets embedded in the binary)
//	GET /assets/…             its scripts and stylesheets (uPlot included)
//	GET /api/v1/series        one metric's series over a time range
//	GET /api/v1/catalog       sources and the metrics archived for each
//	GET /api/v1/alerts/history  alert transitions archived over a time range
//
// The page also calls the live endpoints that recond serves next to these
// (runtime/live and runtime/control): POST /api/v1/clones, GET
// /api/v1/stream, GET /api/v1/alerts and GET /api/v1/alerts/stream.
package graphpage

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/reconmon/recon/runtime/history"
)

//go:embed assets
var assets embed.FS

// Options configures the handler.
type Options struct {
	// Archive answers the history API.
	Archive *history.Archive
	// QueryTimeout bounds one history query (default 30 s).
	QueryTimeout time.Duration
	Logger       *slog.Logger
}

// Handler serves the page and the history API.
type Handler struct {
	archive *history.Archive
	timeout time.Duration
	log     *slog.Logger
	mux     *http.ServeMux
}

// New returns the handler. Register its routes on recond's mux with
// Register, or serve it on its own.
func New(opts Options) (*Handler, error) {
	if opts.Archive == nil {
		return nil, errors.New("graphpage: no archive")
	}
	h := &Handler{archive: opts.Archive, timeout: opts.QueryTimeout, log: opts.Logger}
	if h.timeout <= 0 {
		h.timeout = 30 * time.Second
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.mux = http.NewServeMux()
	h.Register(h.mux)
	return h, nil
}

// Router is where Register adds routes: an *http.ServeMux, or recond's
// server (runtime/server).
type Router interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the page's routes to mux.
func (h *Handler) Register(mux Router) {
	// The embedded tree is rooted above assets/, so request paths map
	// onto it as they are.
	mux.Handle("GET /assets/", cacheable(http.FileServerFS(assets)))
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, assets, "assets/index.html")
	}))
	mux.Handle("GET /api/v1/series", http.HandlerFunc(h.series))
	mux.Handle("GET /api/v1/catalog", http.HandlerFunc(h.catalog))
	mux.Handle("GET /api/v1/alerts/history", http.HandlerFunc(h.transitions))
}

// ServeHTTP serves the page's routes alone.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// cacheable lets browsers keep assets briefly; they change only with the
// binary.
func cacheable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

type apiError struct {
	Error string `json:"error"`
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// series answers GET /api/v1/series?source=&metric=&target=&from=&to=&points=.
// from and to are RFC 3339 times or Unix nanoseconds; points defaults to
// 1000.
func (h *Handler) series(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r)
	if err != nil {
		reply(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	start := time.Now()
	res, err := h.archive.Series(ctx, q)
	if errors.Is(err, history.ErrInvalidQuery) {
		reply(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	if err != nil {
		h.log.Error("graphpage: history query failed", "source", q.Source, "metric", q.Metric, "err", err)
		reply(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	w.Header().Set("Server-Timing", fmt.Sprintf("query;dur=%.1f", float64(time.Since(start).Microseconds())/1000))
	reply(w, http.StatusOK, res)
}

func parseQuery(r *http.Request) (history.Query, error) {
	v := r.URL.Query()
	q := history.Query{Source: v.Get("source"), Metric: v.Get("metric"), Target: v.Get("target"), Points: 1000}
	var err error
	if q.From, err = parseTime("from", v.Get("from")); err != nil {
		return q, err
	}
	if q.To, err = parseTime("to", v.Get("to")); err != nil {
		return q, err
	}
	if p := v.Get("points"); p != "" {
		if q.Points, err = strconv.Atoi(p); err != nil {
			return q, fmt.Errorf("points: %q is not a number", p)
		}
	}
	return q, nil // the archive checks the query itself
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%s is required (RFC 3339 or Unix nanoseconds)", name)
	}
	if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(0, ns), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %q is neither RFC 3339 nor Unix nanoseconds", name, s)
	}
	return t, nil
}

type catalogReply struct {
	Sources []history.CatalogEntry `json:"sources"`
}

// catalog answers GET /api/v1/catalog.
func (h *Handler) catalog(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	cat, err := h.archive.Catalog(ctx)
	if err != nil {
		h.log.Error("graphpage: catalog failed", "err", err)
		reply(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	reply(w, http.StatusOK, catalogReply{Sources: cat})
}

type transitionsReply struct {
	Transitions []history.Transition `json:"transitions"`
	// Truncated says that the range held more than history.MaxTransitions.
	Truncated bool `json:"truncated,omitempty"`
}

// transitions answers GET /api/v1/alerts/history?from=&to=.
func (h *Handler) transitions(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	from, err := parseTime("from", v.Get("from"))
	if err != nil {
		reply(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	to, err := parseTime("to", v.Get("to"))
	if err != nil {
		reply(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	out, truncated, err := h.archive.Transitions(ctx, from, to)
	if errors.Is(err, history.ErrInvalidQuery) {
		reply(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	if err != nil {
		h.log.Error("graphpage: alert history failed", "err", err)
		reply(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	reply(w, http.StatusOK, transitionsReply{Transitions: out, Truncated: truncated})
}
