// Package amtest runs a real Prometheus Alertmanager for tests: its own
// process on a free port of 127.0.0.1 with a temporary configuration that
// routes every alert to a webhook receiver inside the test.
package amtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Binary is where Debian's prometheus-alertmanager package installs
// Alertmanager.
const Binary = "/usr/bin/prometheus-alertmanager"

// AM is a running Alertmanager and its webhook receiver.
type AM struct {
	// URL is the Alertmanager base URL (http://127.0.0.1:port).
	URL string

	mu    sync.Mutex
	hooks []Notification
}

// Notification is one webhook notification Alertmanager sent the receiver.
type Notification struct {
	Status string          `json:"status"`
	Alerts []NotifiedAlert `json:"alerts"`
}

// NotifiedAlert is one alert of a Notification.
type NotifiedAlert struct {
	Status string            `json:"status"`
	Labels map[string]string `json:"labels"`
}

// Alert is one alert as Alertmanager's GET /api/v2/alerts lists it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
	Status      struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
}

// Start runs Alertmanager with global.resolve_timeout resolveTimeout and a
// route grouping by pipeline with short waits (every change is notified
// within a second) and send_resolved. A missing binary fails the test
// under CI=true and skips it otherwise. The process is killed, and its
// output logged if the test failed, at cleanup.
func Start(t testing.TB, resolveTimeout time.Duration) *AM {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("alertmanager binary %s missing under CI: %v", Binary, err)
		}
		t.Skipf("alertmanager binary %s missing (apt package prometheus-alertmanager); install with: make deps (CI fails here)", Binary)
	}
	am := &AM{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n Notification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		am.mu.Lock()
		am.hooks = append(am.hooks, n)
		am.mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  resolve_timeout: %s
route:
  receiver: hook
  group_by: [pipeline]
  group_wait: 100ms
  group_interval: 200ms
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %s/hook
        send_resolved: true
`, model(resolveTimeout), hook.URL)
	if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	am.URL = "http://" + addr
	var out bytes.Buffer
	cmd := exec.Command(Binary, "--config.file="+filepath.Join(dir, "am.yml"),
		"--storage.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr,
		"--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start alertmanager: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(am.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return am
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("alertmanager exited at start-up: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager not ready at %s: %v", am.URL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// model renders d as a Prometheus duration (whole milliseconds).
func model(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// freeAddr returns a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Alerts returns the alerts Alertmanager lists (active, silenced,
// inhibited; resolved ones are not listed).
func (am *AM) Alerts(t testing.TB) []Alert {
	t.Helper()
	resp, err := http.Get(am.URL + "/api/v2/alerts")
	if err != nil {
		t.Fatalf("list alerts: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list alerts: %s: %s", resp.Status, b)
	}
	var as []Alert
	if err := json.Unmarshal(b, &as); err != nil {
		t.Fatalf("list alerts: %v: %s", err, b)
	}
	return as
}

// Find returns the listed alert whose labels include match, or nil.
func (am *AM) Find(t testing.TB, match map[string]string) *Alert {
	t.Helper()
	for _, a := range am.Alerts(t) {
		if Matches(a.Labels, match) {
			return &a
		}
	}
	return nil
}

// Silence silences the alerts with the label values of match for an hour
// and returns the silence id.
func (am *AM) Silence(t testing.TB, match map[string]string) string {
	t.Helper()
	type matcher struct {
		Name    string `json:"name"`
		Value   string `json:"value"`
		IsRegex bool   `json:"isRegex"`
		IsEqual bool   `json:"isEqual"`
	}
	s := struct {
		Matchers  []matcher `json:"matchers"`
		StartsAt  time.Time `json:"startsAt"`
		EndsAt    time.Time `json:"endsAt"`
		CreatedBy string    `json:"createdBy"`
		Comment   string    `json:"comment"`
	}{StartsAt: time.Now().UTC(), EndsAt: time.Now().UTC().Add(time.Hour), CreatedBy: "recon test", Comment: "test"}
	for k, v := range match {
		s.Matchers = append(s.Matchers, matcher{Name: k, Value: v, IsEqual: true})
	}
	body, _ := json.Marshal(s)
	resp, err := http.Post(am.URL+"/api/v2/silences", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("create silence: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.SilenceID == "" {
		t.Fatalf("create silence: %s: %s", resp.Status, b)
	}
	return out.SilenceID
}

// Notifications returns what the receiver got so far.
func (am *AM) Notifications() []Notification {
	am.mu.Lock()
	defer am.mu.Unlock()
	return append([]Notification(nil), am.hooks...)
}

// Notified reports whether the receiver got an alert with status
// (firing, resolved) whose labels include match.
func (am *AM) Notified(status string, match map[string]string) bool {
	for _, n := range am.Notifications() {
		for _, a := range n.Alerts {
			if a.Status == status && Matches(a.Labels, match) {
				return true
			}
		}
	}
	return false
}

// Matches reports whether labels include every pair of match.
func Matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Eventually polls cond every 20ms until it holds, failing the test with
// what after 20 seconds.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// String renders the notifications for failure messages.
func (am *AM) String() string {
	var b strings.Builder
	for _, n := range am.Notifications() {
		fmt.Fprintf(&b, "%s:", n.Status)
		for _, a := range n.Alerts {
			fmt.Fprintf(&b, " [%s %v]", a.Status, a.Labels)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
