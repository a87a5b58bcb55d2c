package live

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Defaults of Streams.
const (
	DefaultKeepalive    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultLinger       = 20 * time.Millisecond
)

// Streams serves the live endpoints:
//
//	GET /api/v1/stream?source=a,b&metric=x&clone=ID,…   samples
//	GET /api/v1/alerts/stream?rule=r,…                  alert transitions
//	GET /api/v1/alerts                                  current alert states
//
// Streams are Server-Sent Events when the client accepts
// text/event-stream (or asks format=sse), NDJSON otherwise.
type Streams struct {
	Hub    *Hub
	Alerts *AlertHub
	// Clones lets a stream follow ad-hoc clones (clone=ID): the stream
	// counts as their viewer and ends when they all ended.
	Clones *Clones
	// Keepalive is the interval of keepalive messages on idle streams
	// (default 15s); WriteTimeout drops a client that does not read for
	// that long (default 10s).
	Keepalive, WriteTimeout time.Duration
	// Linger is how long a sample stream waits after a batch for more to
	// send them in one write (default 20ms; negative: no wait). Clone runs
	// arrive one small batch each: with many viewers, writing each alone
	// costs far more system calls than the samples are worth.
	Linger time.Duration
	Logger *slog.Logger

	initOnce, stopOnce sync.Once
	closed             chan struct{}
}

// done is closed by Close.
func (s *Streams) done() <-chan struct{} {
	s.initOnce.Do(func() { s.closed = make(chan struct{}) })
	return s.closed
}

// Close ends every open stream (recond is stopping) and refuses new ones.
func (s *Streams) Close() {
	s.done()
	s.stopOnce.Do(func() { close(s.closed) })
}

// Router is where routes are added: an *http.ServeMux, or recond's
// listener (runtime/server).
type Router interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the live routes.
func (s *Streams) Register(r Router) {
	r.Handle("GET /api/v1/stream", http.HandlerFunc(s.serveSamples))
	r.Handle("GET /api/v1/alerts/stream", http.HandlerFunc(s.serveAlerts))
	r.Handle("GET /api/v1/alerts", http.HandlerFunc(s.serveStates))
}

// Event names of the stream's control messages (SSE event field; NDJSON
// "event" member).
const (
	EventSample  = "sample"
	EventAlert   = "alert"
	EventEnd     = "end"
	EventDropped = "dropped"
)

// Control is a stream's control message (a clone ended, the viewer was
// dropped).
type Control struct {
	Event   string `json:"event"`
	Clone   string `json:"clone,omitempty"`
	Message string `json:"message"`
}

// streamWriter writes one response stream in its format.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	sse     bool
	timeout time.Duration
	buf     []byte
}

func (s *Streams) open(w http.ResponseWriter, r *http.Request) *streamWriter {
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), timeout: s.WriteTimeout}
	if sw.timeout <= 0 {
		sw.timeout = DefaultWriteTimeout
	}
	switch r.URL.Query().Get("format") {
	case "sse":
		sw.sse = true
	case "ndjson":
	default:
		sw.sse = strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	}
	h := w.Header()
	if sw.sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return sw
}

// prefix and suffix frame one data message of event ev.
func (sw *streamWriter) frame(ev string) (prefix, suffix string) {
	if sw.sse {
		return "event: " + ev + "\ndata: ", "\n\n"
	}
	return "", "\n"
}

// send writes and flushes the buffered bytes.
func (sw *streamWriter) send() error {
	if len(sw.buf) == 0 {
		return nil
	}
	if err := sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	_, err := sw.w.Write(sw.buf)
	sw.buf = sw.buf[:0]
	if err != nil {
		return err
	}
	if err := sw.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

func (sw *streamWriter) control(c Control) error {
	prefix, suffix := sw.frame(c.Event)
	line, _ := json.Marshal(c)
	sw.buf = append(sw.buf, prefix...)
	sw.buf = append(sw.buf, line...)
	sw.buf = append(sw.buf, suffix...)
	return sw.send()
}

func (sw *streamWriter) keepalive() error {
	if sw.sse {
		sw.buf = append(sw.buf, ": keepalive\n\n"...)
	} else {
		sw.buf = append(sw.buf, '\n') // an empty line: NDJSON readers skip it
	}
	return sw.send()
}

func (s *Streams) keepaliveEvery() time.Duration {
	if s.Keepalive > 0 {
		return s.Keepalive
	}
	return DefaultKeepalive
}

func (s *Streams) lingerFor() time.Duration {
	switch {
	case s.Linger < 0:
		return 0
	case s.Linger == 0:
		return DefaultLinger
	}
	return s.Linger
}

func (s *Streams) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

const dropMessage = "viewer too slow: its queue of %d batches filled up; reconnect to resume"

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (s *Streams) serveSamples(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := Filter{Sources: ParseList(q.Get("source")), Metrics: ParseList(q.Get("metric"))}
	type followed struct {
		id    string
		ended <-chan struct{}
	}
	var clones []followed
	for _, id := range ParseList(q.Get("clone")) {
		if s.Clones == nil {
			httpError(w, http.StatusNotFound, "this recond runs no clones")
			return
		}
		info, ended, detach, err := s.Clones.Attach(id)
		if err != nil {
			httpError(w, http.StatusNotFound, err.Error())
			return
		}
		defer detach()
		filter.Sources = append(filter.Sources, info.Name)
		clones = append(clones, followed{id, ended})
	}
	v := s.Hub.Subscribe(filter)
	defer v.Close()
	sw := s.open(w, r)
	if err := sw.keepalive(); err != nil {
		return
	}
	log := s.logger().With("remote", r.RemoteAddr, "sources", filter.Sources)
	tick := time.NewTicker(s.keepaliveEvery())
	defer tick.Stop()
	prefix, suffix := sw.frame(EventSample)

	// Clones that end are announced on one channel.
	endedIDs := make(chan string, len(clones))
	for _, c := range clones {
		go func() {
			select {
			case <-c.ended:
				endedIDs <- c.id
			case <-r.Context().Done():
			}
		}()
	}
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	live := len(clones)
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.done():
			_ = sw.control(Control{Event: EventEnd, Message: "recond is stopping"})
			return
		case <-v.Dropped():
			log.Warn("live viewer dropped: too slow")
			_ = sw.control(Control{Event: EventDropped, Message: fmt.Sprintf(dropMessage, cap(v.Batches()))})
			return
		case rec := <-v.Batches():
			sw.buf, _ = v.Append(sw.buf, rec, prefix, suffix)
			rec.Release()
			// Batches arriving within the linger go out in the same write.
			linger.Reset(s.lingerFor())
			select {
			case <-linger.C:
			case <-r.Context().Done():
				return
			}
			err = s.drain(sw, v, prefix, suffix)
		case <-tick.C:
			err = sw.keepalive()
		case id := <-endedIDs:
			// Rows of its last run may still be queued: deliver them first.
			err = s.drain(sw, v, prefix, suffix)
			if err == nil {
				err = sw.control(Control{Event: EventEnd, Clone: id, Message: "clone ended"})
			}
			live--
			if err == nil && live == 0 && len(filter.Sources) == len(clones) {
				return
			}
		}
		if err != nil {
			log.Info("live viewer left", "err", err)
			return
		}
	}
}

// coalesce bounds the bytes encoded before a write.
const coalesce = 256 << 10

// drain encodes the batches already queued for v (up to about coalesce
// bytes at a time) and writes them.
func (s *Streams) drain(sw *streamWriter, v *Viewer, prefix, suffix string) error {
	for {
		if len(sw.buf) >= coalesce {
			if err := sw.send(); err != nil {
				return err
			}
		}
		select {
		case rec := <-v.Batches():
			sw.buf, _ = v.Append(sw.buf, rec, prefix, suffix)
			rec.Release()
		default:
			return sw.send()
		}
	}
}

func (s *Streams) serveAlerts(w http.ResponseWriter, r *http.Request) {
	if s.Alerts == nil {
		httpError(w, http.StatusNotFound, "this recond runs no rules")
		return
	}
	v := s.Alerts.Subscribe(ParseList(r.URL.Query().Get("rule")))
	defer v.Close()
	sw := s.open(w, r)
	if err := sw.keepalive(); err != nil {
		return
	}
	tick := time.NewTicker(s.keepaliveEvery())
	defer tick.Stop()
	prefix, suffix := sw.frame(EventAlert)
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.done():
			_ = sw.control(Control{Event: EventEnd, Message: "recond is stopping"})
			return
		case <-v.Dropped():
			_ = sw.control(Control{Event: EventDropped, Message: fmt.Sprintf(dropMessage, cap(v.Events()))})
			return
		case line := <-v.Events():
			sw.buf = append(sw.buf, prefix...)
			sw.buf = append(sw.buf, line...)
			sw.buf = append(sw.buf, suffix...)
			err = sw.send()
		case <-tick.C:
			err = sw.keepalive()
		}
		if err != nil {
			return
		}
	}
}

func (s *Streams) serveStates(w http.ResponseWriter, _ *http.Request) {
	if s.Alerts == nil {
		httpError(w, http.StatusNotFound, "this recond runs no rules")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"alerts": s.Alerts.States()})
}
