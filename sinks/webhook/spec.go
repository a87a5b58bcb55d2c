// Package webhook is the webhook sink module: every alert transition is
// POSTed as one JSON alert event (design §3.2) to a URL, retried with
// exponential backoff until the receiver answers 2xx.
package webhook

import (
	"time"

	"github.com/reconmon/recon/module"
)

// Attribute names of the webhook sink.
const (
	FieldURL             = "url"
	FieldHeaders         = "headers"
	FieldTimeout         = "timeout"
	FieldMaxAttempts     = "max_attempts"
	FieldBackoff         = "backoff"
	FieldMaxBackoff      = "max_backoff"
	FieldSecret          = "secret"
	FieldSignatureHeader = "signature_header"
)

// DefaultSignatureHeader carries the HMAC of the body when a secret is set.
const DefaultSignatureHeader = "X-Recon-Signature"

// Spec declares the webhook sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "webhook",
	Summary: "Alert notifications as HTTP POSTs.",
	Description: "POSTs every alert transition of the rules that name the sink in `notify` to `url`, " +
		"one JSON alert event per request (`Content-Type: application/json`; fields `time`, `rule`, " +
		"`severity`, `previous`, `group`, `value`, `message`, `pipeline`, `fingerprint`, `since`, `id`). " +
		"A request that fails (connection error, timeout, or a status other than 2xx) is retried with " +
		"exponential backoff, from `backoff` doubling up to `max_backoff`, at most `max_attempts` times " +
		"in all; a 4xx other than 408 and 429 is not retried. Retries carry the same `X-Recon-Event-Id` " +
		"header, so a receiver can drop a duplicate. With `secret` set, `signature_header` carries " +
		"`sha256=<hex HMAC-SHA256 of the body keyed with the secret>`.",
	Fields: []module.Field{
		module.String(FieldURL, "Receiver URL, `http://` or `https://`.").Req().
			Example(`"http://127.0.0.1:9000/hook"`),
		module.StringMap(FieldHeaders, "Extra request headers (for example an authorization token).").
			Example(`{ Authorization = env("HOOK_TOKEN") }`),
		module.Duration(FieldTimeout, "Time limit of one request, response included.").
			Def(10*time.Second).Range(0.001, 600),
		module.Int(FieldMaxAttempts, "Attempts per notification, the first included.").
			Def(5).Range(1, 100),
		module.Duration(FieldBackoff, "Wait before the first retry; doubled after each failed attempt.").
			Def(time.Second).Range(0.001, 3600).Adv(),
		module.Duration(FieldMaxBackoff, "Longest wait between two attempts.").
			Def(time.Minute).Range(0.001, 86400).Adv(),
		module.String(FieldSecret, "Key of the HMAC-SHA256 signature of each body; empty: requests are not signed. "+
			"Read it with `env(\"…\")` rather than writing it in the file.").
			Example(`env("HOOK_SECRET")`),
		module.String(FieldSignatureHeader, "Header carrying the signature.").Def(DefaultSignatureHeader).Adv(),
	},
	Validate: validate,
	Example: `sink pager webhook {
  url     = "http://127.0.0.1:9000/hook"
  timeout = 5s
}`,
}

func validate(a module.Attrs) error {
	u := a.String(FieldURL)
	if !hasScheme(u, "http://") && !hasScheme(u, "https://") {
		return module.Errorf(FieldURL, "url %q must start with http:// or https://", u)
	}
	if a.Duration(FieldMaxBackoff) < a.Duration(FieldBackoff) {
		return module.Errorf(FieldMaxBackoff, "max_backoff %s is shorter than backoff %s", a.Duration(FieldMaxBackoff), a.Duration(FieldBackoff))
	}
	if a.String(FieldSecret) != "" && a.String(FieldSignatureHeader) == "" {
		return module.Errorf(FieldSignatureHeader, "signature_header must not be empty when secret is set")
	}
	return nil
}

func hasScheme(u, scheme string) bool {
	return len(u) > len(scheme) && u[:len(scheme)] == scheme
}
