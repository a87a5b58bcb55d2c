package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/alert"
)

// EventIDHeader carries the alert event id; retries of one event carry the
// same id.
const EventIDHeader = "X-Recon-Event-Id"

// Notifier POSTs alert events.
type Notifier struct {
	name       string
	url        string
	headers    map[string]string
	client     *http.Client
	attempts   int
	backoff    time.Duration
	maxBackoff time.Duration
	secret     []byte
	sigHeader  string
	log        *slog.Logger
}

// New returns the notifier of sink name with attrs (decoded against Spec).
func New(name string, attrs module.Attrs, logger *slog.Logger) (*Notifier, error) {
	if err := validate(attrs); err != nil {
		return nil, fmt.Errorf("sink %s: %w", name, err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Notifier{
		name: name, url: attrs.String(FieldURL), headers: attrs.Map(FieldHeaders),
		client:   &http.Client{Timeout: attrs.Duration(FieldTimeout)},
		attempts: int(max(1, attrs.Int(FieldMaxAttempts))), backoff: attrs.Duration(FieldBackoff),
		maxBackoff: attrs.Duration(FieldMaxBackoff), secret: []byte(attrs.String(FieldSecret)),
		sigHeader: attrs.String(FieldSignatureHeader), log: logger.With("sink", name),
	}, nil
}

// Sign returns the signature header value of body: sha256=<hex HMAC>.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Notify POSTs ev, retrying failures with exponential backoff.
func (n *Notifier) Notify(ctx context.Context, ev *alert.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("webhook %s: encode alert: %w", n.name, err)
	}
	wait := n.backoff
	var lastErr error
	for attempt := 1; attempt <= n.attempts; attempt++ {
		retry, err := n.post(ctx, ev.ID, body)
		if err == nil {
			return nil
		}
		lastErr = err
		if !retry || attempt == n.attempts {
			break
		}
		n.log.Warn("webhook attempt failed, retrying", "attempt", attempt, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("webhook %s: %w (last error: %v)", n.name, ctx.Err(), lastErr)
		}
		wait = min(wait*2, n.maxBackoff)
	}
	return fmt.Errorf("webhook %s: %s: %w", n.name, n.url, lastErr)
}

// post makes one attempt; retry reports whether a failure is worth retrying.
func (n *Notifier) post(ctx context.Context, id string, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "recon")
	for k, v := range n.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set(EventIDHeader, id)
	if len(n.secret) > 0 {
		req.Header.Set(n.sigHeader, Sign(n.secret, body))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("status %s", resp.Status)
	}
	return false, fmt.Errorf("status %s (not retried)", resp.Status)
}
