package webhook

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/alert"
)

func attrs(url string) module.Attrs {
	return module.Attrs{
		FieldURL: url, FieldTimeout: 2 * time.Second, FieldMaxAttempts: int64(4),
		FieldBackoff: time.Millisecond, FieldMaxBackoff: 10 * time.Millisecond,
		FieldSecret: "s3cret", FieldSignatureHeader: DefaultSignatureHeader,
		FieldHeaders: map[string]string{"X-Team": "ops"},
	}
}

// A receiver that fails the first attempt of every event with 500 gets each
// transition exactly once, signed, with its headers.
func TestWebhookRetriesAndDeliversOncePerTransition(t *testing.T) {
	var mu sync.Mutex
	attempts := map[string]int{}
	var delivered []alert.Event
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(DefaultSignatureHeader) != Sign([]byte("s3cret"), body) || r.Header.Get("X-Team") != "ops" {
			http.Error(w, "bad signature or headers", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(EventIDHeader)
		mu.Lock()
		defer mu.Unlock()
		attempts[id]++
		if attempts[id] == 1 {
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		var ev alert.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		delivered = append(delivered, ev)
	}))
	defer srv.Close()
	n, err := New("pager", attrs(srv.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)
	g := map[string]string{"target": "10.0.0.5"}
	fp := alert.Fingerprint("slow", g)
	evs := []alert.Event{
		{Time: at, Rule: "slow", Severity: alert.Warning, Previous: alert.OK, Group: g, Value: 0.6, Fingerprint: fp, Since: at},
		{Time: at.Add(time.Minute), Rule: "slow", Severity: alert.OK, Previous: alert.Warning, Group: g, Value: math.NaN(), Fingerprint: fp, Since: at.Add(time.Minute)},
	}
	for i := range evs {
		evs[i].ID = alert.TransitionID(fp, evs[i].Time, evs[i].Previous, evs[i].Severity, false)
		if err := n.Notify(context.Background(), &evs[i]); err != nil {
			t.Fatalf("notify %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != 2 {
		t.Fatalf("receiver got %d notifications, want 2 (one per transition)", len(delivered))
	}
	for i, ev := range delivered {
		if ev.ID != evs[i].ID || ev.Severity != evs[i].Severity || ev.Previous != evs[i].Previous || !ev.Time.Equal(evs[i].Time) || ev.Group["target"] != "10.0.0.5" {
			t.Errorf("notification %d = %+v, want %+v", i, ev, evs[i])
		}
		if attempts[ev.ID] != 2 {
			t.Errorf("event %s took %d attempts, want 2 (500, then 200)", ev.ID, attempts[ev.ID])
		}
	}
	if delivered[0].Value != 0.6 || !math.IsNaN(delivered[1].Value) {
		t.Errorf("values %v %v, want 0.6 and null", delivered[0].Value, delivered[1].Value)
	}
}

// A receiver that refuses (4xx) is not retried; one that keeps failing
// exhausts max_attempts and Notify reports the error.
func TestWebhookGivesUp(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/bad" {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ev := &alert.Event{ID: "x", Rule: "r", Severity: alert.Critical, Value: 1}
	for _, path := range []string{"/bad", "/down"} {
		n, err := New("pager", attrs(srv.URL+path), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(context.Background(), ev); err == nil {
			t.Errorf("%s: Notify succeeded against a failing receiver", path)
		}
	}
	if hits["/bad"] != 1 || hits["/down"] != 4 {
		t.Errorf("attempts: /bad %d (want 1), /down %d (want max_attempts 4)", hits["/bad"], hits["/down"])
	}
}
