// Package livetest holds helpers for tests of the live stream and the
// control plane: a local TCP target, plans that check it, and a client
// reading NDJSON or SSE streams.
package livetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconmon/recon/plan"
)

// TCPTarget listens on 127.0.0.1, accepting and closing connections until
// the test ends, and returns its port.
func TCPTarget(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TCPSource is a tcp check of 127.0.0.1:port with the compiler's defaults.
func TCPSource(name string, port int, period time.Duration) plan.Source {
	return plan.Source{
		Name: name, Module: "tcp", Target: "127.0.0.1",
		Period: plan.Duration(period), Timeout: plan.Duration(2 * time.Second),
		Attrs: json.RawMessage(fmt.Sprintf(`{"insecure_skip_verify":false,"ip_version":"any","max_read":4096,"mismatch":"warning","port":%d,"tls":false}`, port)),
		Pos:   "live.recon:1:1",
	}
}

// Plan returns a hashed plan of sources, streams and rules, with the
// implied archive sink.
func Plan(t testing.TB, sources []plan.Source, streams []plan.Stream, rules []plan.Rule) *plan.Plan {
	t.Helper()
	p := &plan.Plan{
		Pipeline: "live-test", Sources: sources, Streams: streams, Rules: rules,
		Sinks: []plan.Sink{{Name: "archive", Kind: "parquet", Pos: "implied",
			Attrs: json.RawMessage(`{"compact":true,"compact_after":"1h0m0s","compression_level":9,"flush_interval":"10s","flush_rows":1000000,"path":"archive","row_group_rows":1000000,"target_file_size":536870912}`)}},
	}
	if p.Streams == nil {
		p.Streams = []plan.Stream{}
	}
	if p.Rules == nil {
		p.Rules = []plan.Rule{}
	}
	if _, err := p.Marshal(); err != nil {
		t.Fatal(err)
	}
	return p
}

// Message is one message of a stream: a sample (Event "sample") or a
// control message, with the time it was read.
type Message struct {
	Event    string
	Data     map[string]any
	Received time.Time
}

// Stream is a client reading a live stream.
type Stream struct {
	C      <-chan Message // closed when the stream ends
	Status int
	cancel context.CancelFunc
	done   chan struct{}
}

// Close leaves the stream.
func (s *Stream) Close() {
	s.cancel()
	<-s.done
}

// Open GETs url and reads its NDJSON (sse false) or SSE stream. The
// stream is closed when the test ends.
func Open(t testing.TB, url string, sse bool) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sse {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	c := make(chan Message, 1<<16)
	s := &Stream{C: c, Status: resp.StatusCode, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(c)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			var data string
			switch {
			case line == "" || strings.HasPrefix(line, ":"):
				continue
			case sse && strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
				continue
			case sse && strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case sse:
				continue
			default:
				data = line
			}
			m := Message{Received: time.Now()}
			if err := json.Unmarshal([]byte(data), &m.Data); err != nil {
				m.Event, m.Data = "invalid", map[string]any{"line": data, "err": err.Error()}
			} else if sse {
				m.Event = event
			} else if ev, ok := m.Data["event"].(string); ok {
				m.Event = ev
			} else {
				m.Event = "sample"
			}
			c <- m
		}
	}()
	t.Cleanup(s.Close)
	return s
}
