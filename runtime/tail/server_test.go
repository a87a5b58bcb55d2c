package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/live"
)

// liveServer serves the live streams of a hub over a real socket, as
// recond's listener does.
func liveServer(t *testing.T) (*live.Hub, *live.Streams, string) {
	t.Helper()
	hub := live.NewHub(live.HubOptions{})
	st := &live.Streams{Hub: hub, Alerts: live.NewAlertHub(live.HubOptions{}), Keepalive: 50 * time.Millisecond}
	mux := http.NewServeMux()
	st.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { st.Close(); srv.Close() })
	return hub, st, srv.URL
}

// tailUntilDone runs tail with args while publish keeps feeding the hub
// (a stream sees only what is published after it opened).
func tailUntilDone(t *testing.T, args []string, publish func()) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, args, &out, &errOut) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case code := <-done:
			return code, out.String(), errOut.String()
		case <-tick.C:
			publish()
		}
	}
}

func TestTailServerStreamsFilteredSamples(t *testing.T) {
	hub, _, url := liveServer(t)
	publish := func() {
		rec := batch([][2]string{{"web", "duration"}, {"web", "code"}, {"dns", "rtt"}})
		_ = hub.Publish(context.Background(), "", rec)
		rec.Release()
	}
	code, out, errOut := tailUntilDone(t, []string{"--server", url, "--source", "web", "--metric", "duration", "--json", "-n", "3"}, publish)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 NDJSON lines, got %d:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var s jsonSample
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if s.Source != "web" || s.Metric != "duration" || s.Target != "127.0.0.1" || s.Labels["k"] != "v" || s.Unit == nil || *s.Unit != "s" {
			t.Fatalf("unexpected sample %+v", s)
		}
	}

	// The table has a header and one line per sample.
	code, out, errOut = tailUntilDone(t, []string{"--server", url, "--source", "dns", "-n", "2"}, publish)
	if code != 0 {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "TIME") || !strings.Contains(rows[1], "dns") || !strings.Contains(rows[2], "rtt") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestTailServerReportsTheEndOfTheStream(t *testing.T) {
	_, st, url := liveServer(t)
	var once sync.Once
	code, _, errOut := tailUntilDone(t, []string{"--server", url}, func() {
		// Stop recond's streams once the reader had time to connect.
		time.Sleep(100 * time.Millisecond)
		once.Do(st.Close)
	})
	if code != 1 || !strings.Contains(errOut, "recond is stopping") {
		t.Fatalf("exit %d, stderr %q: want 1 and recond's message", code, errOut)
	}
}

func TestTailServerErrors(t *testing.T) {
	_, _, url := liveServer(t)
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--server", url, "--brokers", "127.0.0.1:9092"}, 2, "exclude each other"},
		{[]string{"--server", url, "--from-beginning"}, 2, "do not go with --server"},
		{[]string{"--brokers", "127.0.0.1:9092", "--ca-file", "x.pem"}, 2, "--ca-file goes with --server"},
		{[]string{}, 2, "--brokers or --server is required"},
		{[]string{"--server", url, "--ca-file", "/nonexistent.pem"}, 2, "--ca-file"},
		{[]string{"--server", url + "/nothing-here"}, 1, "404"},
		{[]string{"--server", "http://127.0.0.1:1"}, 1, "connection refused"},
	} {
		var out, errOut bytes.Buffer
		code := run(ctx, c.args, &out, &errOut)
		if code != c.code || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errOut.String(), c.code, c.want)
		}
	}
}
