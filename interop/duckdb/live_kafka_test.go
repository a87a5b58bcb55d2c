package duckdb

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconmon/recon/runtime/kafkabus/kafkatest"
)

// Temporal streaming across machines: a Kafka broker (kfake), two
// collectors each running its own source at a 60 s period, and a viewer
// recond (role collector with only the kafka sink: what an operator runs
// as the "watch" node of a site). The viewer asks, through its own API
// and token, for 1 s clones of one source on each collector; one NDJSON
// stream on the viewer follows both clones and receives samples under
// both clone names (they come back over the samples topic); when the
// stream ends, both clones end on their collectors.
func TestLiveClonesAcrossCollectors(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process Kafka test; run without -short (make test-kafka)")
	}
	broker := kafkatest.Start(t, 2, "recon.samples", "recon.alerts", "recon.control")
	bin := recondBinary(t)
	dir := t.TempDir()
	const token = "live-kafka-test-token"

	// The tcp collector's target: a local listener that accepts and closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	bus := fmt.Sprintf("sink bus kafka { brokers = [%q] }\n", broker.Addrs[0])
	plans := map[string]string{
		"dc1": `pipeline "live-kafka"
source gen generator {
  rate   = 10
  series = 1
  period = 60s
}
` + bus,
		"dc2": fmt.Sprintf(`pipeline "live-kafka"
source web tcp {
  target = "127.0.0.1"
  port   = %d
  period = 60s
}
`, port) + bus,
		"viewer": `pipeline "live-kafka"
` + bus,
	}
	type node struct {
		proc *kafkaProc
		addr string
	}
	nodes := map[string]node{}
	var procs []*kafkaProc
	for _, name := range []string{"dc1", "dc2", "viewer"} {
		site := filepath.Join(dir, name+".recon")
		if err := os.WriteFile(site, []byte(plans[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(dir, name)
		addr := fmt.Sprintf("127.0.0.1:%d", recondFreePort(t))
		cmd := exec.Command(bin, "run", site, "--role", "collector", "--data", data, "--node", name, "--listen", addr)
		cmd.Env = append(os.Environ(), "RECON_TOKEN="+token)
		p := kafkaStartCmd(t, name, cmd, data)
		nodes[name] = node{p, addr}
		procs = append(procs, p)
	}
	for name, n := range nodes {
		kafkaWait(t, 30*time.Second, name+" serves /healthz", func() bool {
			resp, err := http.Get("http://" + n.addr + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, procs...)
	}
	viewer := nodes["viewer"].addr

	// The viewer's API: a clone of a source it does not run goes to the
	// collectors over the control topic. Without the token: refused.
	cloneReq := func(source, tok string) (*http.Response, []byte) {
		body := fmt.Sprintf(`{"source":%q,"period":"1s","ttl":"2m"}`, source)
		req, _ := http.NewRequest(http.MethodPost, "http://"+viewer+"/api/v1/clones", strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("clone request: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, b := cloneReq("gen", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("clone without the token: %d %s, want 401", resp.StatusCode, b)
	}
	type info struct {
		ID, Name string
		Remote   bool
	}
	var clones []info
	for _, src := range []string{"gen", "web"} {
		resp, b := cloneReq(src, token)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("clone of %s: %d %s", src, resp.StatusCode, b)
		}
		var in info
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatalf("clone answer %s: %v", b, err)
		}
		if !in.Remote {
			t.Errorf("clone of %s at the viewer is not remote: %s", src, b)
		}
		clones = append(clones, in)
	}

	// One streaming client follows both clones.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
		fmt.Sprintf("http://%s/api/v1/stream?format=ndjson&clone=%s,%s", viewer, clones[0].ID, clones[1].ID), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	var (
		mu     sync.Mutex
		runs   = map[string]map[string]bool{} // clone name → its runs' times
		nodeOf = map[string]string{}
	)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			var s struct{ TS, Source, Node string }
			if json.Unmarshal(line, &s) != nil || s.Source == "" {
				continue
			}
			mu.Lock()
			if runs[s.Source] == nil {
				runs[s.Source] = map[string]bool{}
			}
			runs[s.Source][s.TS] = true
			nodeOf[s.Source] = s.Node
			mu.Unlock()
		}
	}()
	// Each clone runs every second on its collector: samples of each at
	// three different times reach the one stream.
	kafkaWait(t, 40*time.Second, "samples of both clones on the viewer's stream", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(runs[clones[0].Name]) >= 3 && len(runs[clones[1].Name]) >= 3
	}, procs...)
	mu.Lock()
	if nodeOf[clones[0].Name] != "dc1" || nodeOf[clones[1].Name] != "dc2" {
		t.Errorf("clone rows come from nodes %v, want %s on dc1 and %s on dc2", nodeOf, clones[0].Name, clones[1].Name)
	}
	mu.Unlock()

	// Both collectors run the clone they were asked for.
	running := func(addr, id string) bool {
		resp, err := http.Get("http://" + addr + "/api/v1/clones")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var l struct{ Clones []info }
		if json.NewDecoder(resp.Body).Decode(&l) != nil {
			return false
		}
		for _, c := range l.Clones {
			if c.ID == id {
				return true
			}
		}
		return false
	}
	if !running(nodes["dc1"].addr, clones[0].ID) || !running(nodes["dc2"].addr, clones[1].ID) {
		t.Errorf("the collectors do not list the clones they run")
	}

	// The viewer leaves: both clones end, on the viewer and on the
	// collectors that ran them.
	cancel()
	<-readDone
	kafkaWait(t, 20*time.Second, "the clones end on the collectors when the viewer leaves", func() bool {
		return !running(nodes["dc1"].addr, clones[0].ID) && !running(nodes["dc2"].addr, clones[1].ID) &&
			!running(viewer, clones[0].ID) && !running(viewer, clones[1].ID)
	}, procs...)
	for _, p := range procs {
		p.stop(t)
	}
}
