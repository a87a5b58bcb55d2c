// Package server is recond's HTTP listener (design §5, default
// 127.0.0.1:43191): /healthz, /metrics, and whatever routes other parts of
// recond add to its mux (live stream, deploy, alert states).
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultAddr is recond's listener address: 43191 is the TCP port IANA
// registered for Reconnoiter.
const DefaultAddr = "127.0.0.1:43191"

// Options configure a Server.
type Options struct {
	// Addr to listen on (default DefaultAddr); port 0 picks a free port.
	Addr string
	// Gatherer serves /metrics.
	Gatherer prometheus.Gatherer
	// Health returns the body of /healthz; its Status "ok" answers 200,
	// anything else 503.
	Health func() Health
	// TLSCertFile and TLSKeyFile, both set, make the listener serve HTTPS
	// (PEM files; the pair is reloaded when the files change, so a renewed
	// certificate needs no restart).
	TLSCertFile, TLSKeyFile string
	Logger                  *slog.Logger
}

// Health is the JSON body of /healthz.
type Health struct {
	Status   string  `json:"status"`
	Pipeline string  `json:"pipeline"`
	Node     string  `json:"node"`
	Version  string  `json:"version"`
	Uptime   float64 `json:"uptime_seconds"`
	Sources  int     `json:"sources"`
	Accepted int64   `json:"samples_accepted"`
	Archived int64   `json:"samples_archived"`
	// Reason says what is wrong when Status is not "ok".
	Reason string `json:"reason,omitempty"`
}

// Server is the listener. Add routes with Handle before or after Start.
type Server struct {
	opts Options
	mux  *http.ServeMux
	srv  *http.Server
	ln   net.Listener
	keys *keyPair // nil without TLS
	done chan error
}

// New returns a server with /healthz and /metrics routed.
func New(opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	if opts.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError),
		}))
	}
	return s
}

// Handle routes pattern (http.ServeMux syntax, e.g. "GET /live") to h.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Start listens and serves in the background.
func (s *Server) Start() error {
	var tlsConf *tls.Config
	if s.opts.TLSCertFile != "" || s.opts.TLSKeyFile != "" {
		if s.opts.TLSCertFile == "" || s.opts.TLSKeyFile == "" {
			return errors.New("listener: TLS needs both a certificate and a key file")
		}
		kp, err := newKeyPair(s.opts.TLSCertFile, s.opts.TLSKeyFile, s.opts.Logger)
		if err != nil {
			return fmt.Errorf("listener: %w", err)
		}
		s.keys = kp
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}
	}
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConf}
	s.done = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	s.opts.Logger.Info("listening", "addr", ln.Addr().String(), "tls", tlsConf != nil)
	return nil
}

// Addr returns the address listened on (after Start).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops accepting connections and waits for requests going, at
// most until ctx ends (long-lived streams are then closed).
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	if serr := <-s.done; serr != nil {
		err = errors.Join(err, serr)
	}
	return err
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	h := Health{Status: "ok"}
	if s.opts.Health != nil {
		h = s.opts.Health()
	}
	w.Header().Set("Content-Type", "application/json")
	if h.Status != "ok" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if err := json.NewEncoder(w).Encode(h); err != nil {
		s.opts.Logger.Debug("writing /healthz", "err", err)
	}
}
