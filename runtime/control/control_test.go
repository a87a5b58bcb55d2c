package control_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/runtime/control"
	"github.com/reconmon/recon/runtime/journal"
	"github.com/reconmon/recon/runtime/live"
	"github.com/reconmon/recon/runtime/live/livetest"
)

const token = "s3cret-token"

type server struct {
	url    string
	clones *live.Clones
	plane  *control.Plane
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func start(t *testing.T, p *plan.Plan, tok string) *server {
	t.Helper()
	j, err := journal.Open(t.TempDir(), journal.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	plane, err := control.NewPlane(control.PlaneOptions{Plan: p, Registry: catalog.Default(), Node: "n1",
		Samples: j, Token: tok, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	plane.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		plane.Close()
		_ = j.Close()
	})
	return &server{url: srv.URL, clones: plane.Clones, plane: plane}
}

func (s *server) do(t *testing.T, method, path, tok string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func (s *server) planHash(t *testing.T) string {
	t.Helper()
	code, body := s.do(t, http.MethodGet, "/api/v1/plan", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/plan: %d", code)
	}
	return body["hash"].(string)
}

func stream(name string, period time.Duration) plan.Stream {
	return plan.Stream{Name: name, Clone: "web", Period: plan.Duration(period), Archive: true, Pos: "t.recon:9:1"}
}

func marshal(t *testing.T, p *plan.Plan) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ids(c *live.Clones) string {
	var out []string
	for _, in := range c.List() {
		out = append(out, in.ID+"@"+in.Expires.String())
	}
	return strings.Join(out, ",")
}

// Missing, wrong or unconfigured tokens and invalid plans are refused with
// a clear answer, and nothing changes.
func TestDeployRefused(t *testing.T) {
	port := livetest.TCPTarget(t)
	web := livetest.TCPSource("web", port, time.Minute)
	p := livetest.Plan(t, []plan.Source{web}, []plan.Stream{stream("s1", time.Second)}, nil)
	s := start(t, p, token)
	hash, running := s.planHash(t), ids(s.clones)
	good := marshal(t, livetest.Plan(t, []plan.Source{web}, []plan.Stream{stream("s2", time.Second)}, nil))

	for _, tc := range []struct{ tok, want string }{{"", "missing bearer token"}, {"wrong", "wrong token"}} {
		code, body := s.do(t, http.MethodPost, "/api/v1/deploy", tc.tok, good)
		if code != http.StatusUnauthorized || !strings.Contains(body["error"].(string), tc.want) {
			t.Errorf("token %q: %d %v, want 401 %q", tc.tok, code, body, tc.want)
		}
	}
	unconfigured := start(t, p, "")
	if code, body := unconfigured.do(t, http.MethodPost, "/api/v1/deploy", "anything", good); code != http.StatusUnauthorized ||
		!strings.Contains(body["error"].(string), "no token configured") {
		t.Errorf("recond without a token: %d %v, want 401", code, body)
	}

	badAttrs := web
	badAttrs.Attrs = json.RawMessage(`{"port":"eighty"}`)
	unknownModule := web
	unknownModule.Module = "telnet"
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"format", []byte(`{"format":2,"sources":[]}`), "plan format 2 is not supported"},
		{"not json", []byte(`{"format":1,`), "decode plan"},
		{"module", marshal(t, livetest.Plan(t, []plan.Source{unknownModule}, nil, nil)), `unknown module "telnet"`},
		{"attrs", marshal(t, livetest.Plan(t, []plan.Source{badAttrs}, nil, nil)), "attribute port"},
		{"stream", marshal(t, livetest.Plan(t, []plan.Source{web}, []plan.Stream{{Name: "x", Clone: "nope", Period: plan.Duration(time.Second)}}, nil)), `clones unknown source "nope"`},
		{"period", marshal(t, livetest.Plan(t, []plan.Source{web}, []plan.Stream{stream("fast", 10*time.Millisecond)}, nil)), "shorter than this recond's minimum"},
		{"hash", bytes.Replace(good, []byte(`"s2"`), []byte(`"s3"`), 1), "does not match the plan's content"},
	} {
		code, body := s.do(t, http.MethodPost, "/api/v1/deploy", token, tc.body)
		reasons := fmt.Sprint(body["reasons"])
		if code != http.StatusUnprocessableEntity || !strings.Contains(reasons, tc.want) {
			t.Errorf("%s: %d %v, want 422 with %q", tc.name, code, body, tc.want)
		}
	}
	if got := s.planHash(t); got != hash {
		t.Errorf("plan hash %s after refused deploys, want %s", got, hash)
	}
	if got := ids(s.clones); got != running {
		t.Errorf("clones %s after refused deploys, want %s untouched", got, running)
	}
}

// A deploy swaps the plan: a new stream starts, a removed one stops, an
// unchanged one keeps running untouched; the answer lists the changes;
// deploying the running plan again changes nothing.
func TestDeploySwaps(t *testing.T) {
	port := livetest.TCPTarget(t)
	web := livetest.TCPSource("web", port, time.Minute)
	s := start(t, livetest.Plan(t, []plan.Source{web}, []plan.Stream{stream("kept", time.Second), stream("gone", time.Second)}, nil), token)
	var kept live.Info
	for _, in := range s.clones.List() {
		if in.ID == "kept" {
			kept = in
		}
	}
	db := livetest.TCPSource("db", port, 30*time.Second)
	next := livetest.Plan(t, []plan.Source{web, db}, []plan.Stream{stream("kept", time.Second), stream("new", 2*time.Second)}, nil)
	body := marshal(t, next)
	code, res := s.do(t, http.MethodPost, "/api/v1/deploy", token, body)
	if code != http.StatusOK {
		t.Fatalf("deploy: %d %v", code, res)
	}
	change := fmt.Sprint(res["change"])
	for _, want := range []string{"added:[db]", "unchanged:[web]", "added:[new]", "removed:[gone]", "unchanged:[kept]"} {
		if !strings.Contains(change, want) {
			t.Errorf("change %s does not say %s", change, want)
		}
	}
	if got := s.planHash(t); got != next.Hash {
		t.Errorf("running plan %s, want the deployed %s", got, next.Hash)
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/plan", nil)
	req.Header.Set("If-None-Match", `"`+next.Hash+`"`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET plan If-None-Match the running hash: %s, want 304", resp.Status)
	}
	list := s.clones.List()
	if len(list) != 2 || list[0].ID != "kept" || !list[0].Expires.Equal(kept.Expires) || list[1].ID != "new" {
		t.Errorf("clones after deploy %+v, want kept (untouched) and new", list)
	}
	code, res = s.do(t, http.MethodPost, "/api/v1/deploy", token, body)
	if code != http.StatusOK || res["unchanged"] != true {
		t.Errorf("deploying the running plan again: %d %v, want 200 unchanged", code, res)
	}
}

// When a part of the runtime cannot take the plan, the parts that took it
// get the previous plan back and the answer says so.
func TestDeployRollsBack(t *testing.T) {
	port := livetest.TCPTarget(t)
	web := livetest.TCPSource("web", port, time.Minute)
	p := livetest.Plan(t, []plan.Source{web}, []plan.Stream{stream("s1", time.Second)}, nil)
	j, err := journal.Open(t.TempDir(), journal.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	hub := live.NewHub(live.HubOptions{Logger: quiet()})
	clones, err := live.NewClones(live.CloneOptions{Registry: catalog.Default(), Archive: live.Tap{Next: j, Hub: hub}, Hub: hub, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := clones.SetPlan(p); err != nil {
		t.Fatal(err)
	}
	refuse := control.ApplierFunc(func(_ context.Context, np *plan.Plan, _ control.Change) error {
		if np.Hash != p.Hash {
			return errors.New("scheduler refused: out of workers")
		}
		return nil
	})
	// The clones take the plan first, then the next part refuses it.
	api, err := control.New(control.Options{Token: token, Registry: catalog.Default(), Plan: p, Clones: clones,
		Appliers: []control.Applier{control.ClonesApplier(clones), refuse}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		clones.Close()
		_ = j.Close()
	})
	s := &server{url: srv.URL, clones: clones}
	code, res := s.do(t, http.MethodPost, "/api/v1/deploy", token,
		marshal(t, livetest.Plan(t, []plan.Source{web}, []plan.Stream{stream("s2", time.Second)}, nil)))
	if code != http.StatusInternalServerError || !strings.Contains(res["error"].(string), "out of workers") {
		t.Fatalf("deploy: %d %v, want 500 with the reason", code, res)
	}
	if l := s.clones.List(); len(l) != 1 || l[0].ID != "s1" {
		t.Errorf("clones %+v, want s1 back", l)
	}
	if got := s.planHash(t); got != p.Hash {
		t.Errorf("running plan %s, want %s", got, p.Hash)
	}
}

func TestCloneAPI(t *testing.T) {
	port := livetest.TCPTarget(t)
	s := start(t, livetest.Plan(t, []plan.Source{livetest.TCPSource("web", port, time.Minute)}, nil, nil), token)
	req := []byte(`{"source":"web","period":"1s","ttl":"1m"}`)
	if code, _ := s.do(t, http.MethodPost, "/api/v1/clones", "", req); code != http.StatusUnauthorized {
		t.Errorf("clone without token: %d, want 401", code)
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"source":"nope","period":"1s"}`, http.StatusNotFound},
		{`{"source":"web","period":"10ms"}`, http.StatusUnprocessableEntity},
		{`{"source":"web","period":"1s","colour":"red"}`, http.StatusBadRequest},
		{`{"source":"web","period":"` + strings.Repeat("9", 70000) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		if code, body := s.do(t, http.MethodPost, "/api/v1/clones", token, []byte(tc.body)); code != tc.code || body["error"] == "" {
			t.Errorf("POST %.60s: %d %v, want %d with an error", tc.body, code, body, tc.code)
		}
	}
	code, info := s.do(t, http.MethodPost, "/api/v1/clones", token, req)
	if code != http.StatusCreated {
		t.Fatalf("clone: %d %v", code, info)
	}
	id := info["id"].(string)
	st := livetest.Open(t, s.url+"/api/v1/stream?clone="+id+"&metric=available", false)
	select {
	case m := <-st.C:
		if m.Data["source"] != info["name"] || m.Data["value"] != 1.0 {
			t.Fatalf("stream got %+v, want available=1 of %v", m, info["name"])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no sample from the clone within 5s")
	}
	if code, body := s.do(t, http.MethodGet, "/api/v1/clones", "", nil); code != http.StatusOK || len(body["clones"].([]any)) != 1 {
		t.Errorf("GET clones: %d %v", code, body)
	}
	if code, _ := s.do(t, http.MethodDelete, "/api/v1/clones/"+id, token, nil); code != http.StatusNoContent {
		t.Errorf("DELETE: %d, want 204", code)
	}
	var last livetest.Message
	for m := range st.C {
		last = m
	}
	if last.Event != live.EventEnd {
		t.Errorf("stream of a deleted clone ended with %+v, want an end message", last)
	}
	if code, _ := s.do(t, http.MethodDelete, "/api/v1/clones/"+id, token, nil); code != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", code)
	}
}

// The client `reconc deploy` uses reports recond's reasons and the change.
func TestClientDeploy(t *testing.T) {
	port := livetest.TCPTarget(t)
	web := livetest.TCPSource("web", port, time.Minute)
	s := start(t, livetest.Plan(t, []plan.Source{web}, nil, nil), token)
	c := &control.Client{URL: s.url, Token: token}
	_, err := c.Deploy(context.Background(), []byte(`{"format":1,"sources":[{"name":"x","module":"telnet"}]}`))
	var apiErr *control.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), `unknown module "telnet"`) {
		t.Fatalf("invalid plan: %v, want 422 with the reason", err)
	}
	res, err := c.Deploy(context.Background(), marshal(t, livetest.Plan(t, []plan.Source{web}, []plan.Stream{stream("s1", time.Second)}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Change.String(); !strings.Contains(got, "streams: +s1 (0 unchanged)") || !strings.Contains(got, "sources: (1 unchanged)") {
		t.Errorf("change summary:\n%s", got)
	}
	c.Token = "nope"
	if _, err := c.Deploy(context.Background(), []byte(`{}`)); !control.IsAPIError(err, http.StatusUnauthorized) {
		t.Errorf("wrong token: %v, want 401", err)
	}
}

// Stopping recond ends the open streams with a message, and the clones.
func TestPlaneCloseEndsStreams(t *testing.T) {
	port := livetest.TCPTarget(t)
	s := start(t, livetest.Plan(t, []plan.Source{livetest.TCPSource("web", port, time.Minute)}, []plan.Stream{stream("s1", time.Second)}, nil), token)
	st := livetest.Open(t, s.url+"/api/v1/stream?source=s1", true)
	select {
	case <-st.C:
	case <-time.After(5 * time.Second):
		t.Fatal("no sample of stream s1 within 5s")
	}
	s.plane.Close()
	var last livetest.Message
	for m := range st.C {
		last = m
	}
	if last.Event != live.EventEnd || last.Data["message"] != "recond is stopping" {
		t.Errorf("last message %+v, want the end of the stream", last)
	}
	if l := s.clones.List(); len(l) != 0 {
		t.Errorf("clones after Close: %+v", l)
	}
}
