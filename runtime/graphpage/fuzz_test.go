package graphpage_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/graphpage"
	"github.com/reconmon/recon/runtime/history"
)

// FuzzQueryString sends arbitrary query strings to the history endpoints
// over a small archive: every answer is 200 or 400, never a panic or a
// server error.
func FuzzQueryString(f *testing.F) {
	for _, seed := range []string{
		"source=web&metric=duration&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&points=100",
		"source=web&metric=duration&from=0&to=9223372036854775807&points=20000",
		"source=&metric=&from=-1&to=-2&points=-3",
		"from=1e9&to=2e9",
		"source=%ff&metric=%00&target=x&from=1&to=2",
		"source=web&metric=duration&from=-4611686018427387903&to=4611686018427387903&points=7",
		"source=web&metric=duration&from=2026-02-03T10:00:00Z&to=2026-02-03T10:00:00.000000001Z&points=20000",
	} {
		f.Add(seed)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := f.TempDir()
	archiveWebAt(f, dir, time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC))
	arch, err := history.New(history.Options{Dir: dir, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	page, err := graphpage.New(graphpage.Options{Archive: arch, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/api/v1/series", "/api/v1/alerts/history"} {
			req, err := http.NewRequest(http.MethodGet, "http://recond"+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.RawQuery = query
			rec := httptest.NewRecorder()
			page.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest {
				t.Fatalf("GET %s?%s: %d %s", path, query, rec.Code, rec.Body)
			}
		}
	})
}
