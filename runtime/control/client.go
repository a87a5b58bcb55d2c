package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/reconmon/recon/runtime/live"
)

// DefaultURL is recond's default listener.
const DefaultURL = "http://127.0.0.1:43191"

// Client calls a recond's control and live API (reconc deploy, watch).
type Client struct {
	// URL is recond's base URL (DefaultURL when empty).
	URL string
	// Token is sent as a bearer token on mutating requests.
	Token string
	// HTTP is the client used (http.DefaultClient when nil); streams need
	// one without a total timeout.
	HTTP *http.Client
}

// APIError is an error answer of recond.
type APIError struct {
	Status  int
	Message string
	Reasons []string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("recond answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	if len(e.Reasons) > 0 {
		msg += "\n  " + strings.Join(e.Reasons, "\n  ")
	}
	return msg
}

func (c *Client) base() string {
	if c.URL == "" {
		return DefaultURL
	}
	return strings.TrimRight(c.URL, "/")
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// call sends a request and decodes a 2xx JSON answer into out (if not
// nil); other answers become an *APIError.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base()+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach recond: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		apiErr := &APIError{Status: resp.StatusCode}
		var e Error
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			apiErr.Message, apiErr.Reasons = e.Error, e.Reasons
		} else {
			apiErr.Message = strings.TrimSpace(string(raw))
		}
		return apiErr
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// Deploy sends a plan (the JSON `reconc compile` wrote).
func (c *Client) Deploy(ctx context.Context, planJSON []byte) (*DeployResult, error) {
	var res DeployResult
	if err := c.call(ctx, http.MethodPost, "/api/v1/deploy", planJSON, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// StartClone asks for an ad-hoc clone.
func (c *Client) StartClone(ctx context.Context, req live.Request) (live.Info, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return live.Info{}, err
	}
	var info live.Info
	err = c.call(ctx, http.MethodPost, "/api/v1/clones", body, &info)
	return info, err
}

// ListClones returns the running clones (declared streams and ad hoc).
func (c *Client) ListClones(ctx context.Context) ([]live.Info, error) {
	var out struct {
		Clones []live.Info `json:"clones"`
	}
	err := c.call(ctx, http.MethodGet, "/api/v1/clones", nil, &out)
	return out.Clones, err
}

// StopClone ends a clone.
func (c *Client) StopClone(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/clones/"+url.PathEscape(id), nil, nil)
}

// Stream opens the NDJSON sample stream selected by q (source, metric,
// clone). The caller closes the body; cancelling ctx ends the stream.
func (c *Client) Stream(ctx context.Context, q url.Values) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base()+"/api/v1/stream?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e Error
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return nil, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	return resp.Body, nil
}

// IsAPIError reports whether err is an answer of recond with status code.
func IsAPIError(err error, code int) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == code
}
