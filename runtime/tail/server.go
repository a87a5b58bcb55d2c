package tail

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/reconmon/recon/internal/httpclient"
)

// maxLine bounds one NDJSON line of a recond stream (a sample with its
// labels and text, or an alert event).
const maxLine = 4 << 20

// runServer prints a recond's live sample (or alert) stream.
func runServer(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	client, err := httpclient.New(o.caFile)
	if err != nil {
		fmt.Fprintf(stderr, "reconc tail: --ca-file: %v\n", err)
		return 2
	}
	body, err := openStream(ctx, client, o)
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		fmt.Fprintf(stderr, "reconc tail: %v\n", err)
		return 1
	}
	defer body.Close()
	p := newPrinter(stdout, o)
	defer p.flush()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for o.count == 0 || p.rows < o.count {
		if !sc.Scan() {
			if ctx.Err() != nil {
				return 0
			}
			err := sc.Err()
			if err == nil {
				err = errors.New("recond closed the stream")
			}
			fmt.Fprintf(stderr, "reconc tail: %s: %v\n", o.server, err)
			return 1
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // keepalive
		}
		var ctl struct {
			Event   string `json:"event"`
			Message string `json:"message"`
		}
		if json.Unmarshal(line, &ctl) == nil && ctl.Event != "" {
			// recond ends the stream (it stops, or this reader fell behind).
			fmt.Fprintf(stderr, "reconc tail: recond: %s: %s\n", ctl.Event, ctl.Message)
			return 1
		}
		if o.alerts {
			p.alert(line)
			continue
		}
		var s jsonSample
		if err := json.Unmarshal(line, &s); err != nil {
			fmt.Fprintf(stderr, "reconc tail: skipped a line recond sent: %v\n", err)
			continue
		}
		p.sample(&s)
	}
	return 0
}

// openStream asks recond for the NDJSON stream of samples (filtered on
// recond's side) or alert events.
func openStream(ctx context.Context, client *http.Client, o *options) (io.ReadCloser, error) {
	q := url.Values{"format": {"ndjson"}}
	path := "/api/v1/stream"
	if o.alerts {
		path = "/api/v1/alerts/stream"
		if len(o.sources) > 0 {
			q.Set("rule", strings.Join(sortedKeys(o.sources), ","))
		}
	} else {
		if len(o.sources) > 0 {
			q.Set("source", strings.Join(sortedKeys(o.sources), ","))
		}
		if len(o.metrics) > 0 {
			q.Set("metric", strings.Join(sortedKeys(o.metrics), ","))
		}
	}
	u := strings.TrimRight(o.server, "/") + path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return nil, fmt.Errorf("%s answered %s: %s", o.server, resp.Status, e.Error)
	}
	return resp.Body, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
