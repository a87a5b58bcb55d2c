package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestHealthzMetricsAndExtraRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "recond_samples_accepted_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(42)
	status := "ok"
	s := New(Options{Addr: "127.0.0.1:0", Gatherer: reg, Health: func() Health {
		return Health{Status: status, Pipeline: "p", Accepted: 42, Reason: map[bool]string{true: "", false: "archive: disk full"}[status == "ok"]}
	}})
	s.Handle("GET /live", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "stream") }))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	var h Health
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || h.Status != "ok" || h.Accepted != 42 {
		t.Fatalf("/healthz: %d %s (%v)", code, body, err)
	}
	status = "degraded"
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "disk full") {
		t.Fatalf("/healthz when degraded: %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "recond_samples_accepted_total 42") {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	if code, body := get("/live"); code != 200 || body != "stream" {
		t.Fatalf("added route: %d %s", code, body)
	}
	if code, _ := get("/nope"); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
}
