package graphpage_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/graphpage"
	"github.com/reconmon/recon/runtime/history"
)

func startPage(t *testing.T, archive string) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	arch, err := history.New(history.Options{Dir: archive, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	page, err := graphpage.New(graphpage.Options{Archive: arch, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(page)
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, u string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestSeriesAPI(t *testing.T) {
	start := time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)
	base := startPage(t, archiveWeb(t, start))

	q := url.Values{"source": {"web"}, "metric": {"duration"}, "from": {start.Format(time.RFC3339)},
		"to": {strconv.FormatInt(start.Add(time.Hour).UnixNano(), 10)}, "points": {"400"}}
	code, body, hdr := get(t, base+"/api/v1/series?"+q.Encode())
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" || !strings.HasPrefix(hdr.Get("Server-Timing"), "query;dur=") {
		t.Fatalf("GET series: %d %s %v", code, body, hdr)
	}
	var res history.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Series) != 1 || !res.Series[0].Raw || len(res.Series[0].T) != 360 || res.Series[0].T[0] != start.UnixNano() {
		t.Fatalf("one hour at 10 s with RFC 3339 from and Unix ns to: %+v", res.Series)
	}

	// Archived alert transitions: the one transition, not its repeat.
	code, body, _ = get(t, base+"/api/v1/alerts/history?"+url.Values{"from": {start.Format(time.RFC3339)}, "to": {start.Add(2 * time.Hour).Format(time.RFC3339)}}.Encode())
	var tr struct{ Transitions []history.Transition }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &tr) != nil || len(tr.Transitions) != 1 ||
		tr.Transitions[0].Rule != "web_down" || tr.Transitions[0].Severity != "critical" || tr.Transitions[0].Previous != "ok" ||
		tr.Transitions[0].Time != start.Add(40*time.Minute).UnixNano() {
		t.Fatalf("alert history: %d %s", code, body)
	}
	code, body, _ = get(t, base+"/api/v1/alerts/history?"+url.Values{"from": {start.Add(time.Hour).Format(time.RFC3339)}, "to": {start.Add(2 * time.Hour).Format(time.RFC3339)}}.Encode())
	if code != http.StatusOK || !strings.Contains(body, `"transitions":[]`) {
		t.Fatalf("alert history after the transition: %d %s", code, body)
	}
	if code, _, _ := get(t, base+"/api/v1/alerts/history?from=5&to=2"); code != http.StatusBadRequest {
		t.Errorf("alert history with from after to: %d, want 400", code)
	}

	for _, bad := range []string{
		"metric=duration&from=1&to=2",
		"source=web&metric=duration&to=2",
		"source=web&metric=duration&from=yesterday&to=2",
		"source=web&metric=duration&from=5&to=2",
		"source=web&metric=duration&from=1&to=2&points=0",
		"source=web&metric=duration&from=1&to=2&points=many",
	} {
		code, body, _ := get(t, base+"/api/v1/series?"+bad)
		var e struct{ Error string }
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s, want 400 with a JSON error", bad, code, body)
		}
	}
}

func TestCatalogAndAssets(t *testing.T) {
	base := startPage(t, archiveWeb(t, time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)))
	code, body, _ := get(t, base+"/api/v1/catalog")
	var cat struct{ Sources []history.CatalogEntry }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &cat) != nil || len(cat.Sources) != 2 ||
		cat.Sources[1].Source != "web" || strings.Join(cat.Sources[1].Metrics, ",") != "available,duration" {
		t.Fatalf("catalog: %d %s", code, body)
	}
	for path, want := range map[string]string{
		"/":                         "<title>Recon graphs</title>",
		"/assets/app.js":            "window.reconGraph",
		"/assets/uPlot.iife.min.js": "uPlot",
		"/assets/uPlot.min.css":     ".uplot",
	} {
		code, body, _ := get(t, base+path)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body without %q", path, code, want)
		}
	}
	if code, _, _ := get(t, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", code)
	}
}
