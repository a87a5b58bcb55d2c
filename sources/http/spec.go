// Package http is the http source module: one HTTP(S) request per run,
// timed phase by phase, its status code and body checked.
package http

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// Attribute names.
const (
	FieldURL             = "url"
	FieldMethod          = "method"
	FieldHeaders         = "headers"
	FieldBody            = "body"
	FieldUser            = "user"
	FieldPassword        = "password"
	FieldBearerToken     = "bearer_token"
	FieldExpectCode      = "expect_code"
	FieldBodyMatch       = "body_match"
	FieldBodyNotMatch    = "body_not_match"
	FieldFollowRedirects = "follow_redirects"
	FieldMaxRedirects    = "max_redirects"
	FieldKeepAlive       = "keep_alive"
	FieldMaxBody         = "max_body"
	FieldMaxHeader       = "max_header"
	FieldUserAgent       = "user_agent"
)

// Metric names (the runtime adds status, available and duration).
const (
	MetricResolve        = "resolve"
	MetricConnect        = "connect"
	MetricTLSHandshake   = "tls_handshake"
	MetricFirstByte      = "first_byte"
	MetricCode           = "code"
	MetricBytes          = "bytes"
	MetricCertExpiryDays = "cert_expiry_days"
)

// DefaultUserAgent is sent unless user_agent is set.
const DefaultUserAgent = "Recon-http-check/1"

// Spec declares the http source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "http",
	Summary: "HTTP(S) request check.",
	Description: `Sends one request per run and checks the answer: status code, body
regexps, TLS certificate expiry. The request connects to the source's
` + "`target`" + ` at the URL's port and sends the URL's host in the Host header and as
TLS SNI, so ` + "`target = \"10.0.0.5\"  url = \"https://www.example.com/\"`" + ` checks one
backend of a load-balanced site (like check_http -I/-H).

Status: transport failures (connection refused, timeout, TLS errors) are
critical with the reason as message. Without ` + "`expect_code`" + ` the code maps as in
check_http: 1xx-3xx ok, 4xx warning, 5xx critical; with it, any other code is
critical. A failed ` + "`body_match`" + `/` + "`body_not_match`" + ` is critical; a certificate
closer to expiry than ` + "`cert_warning_days`/`cert_critical_days`" + ` is warning/critical.
Available means an HTTP response arrived.

At most ` + "`max_body`" + ` bytes of the body are read (and matched); a longer body is cut
there and the connection closed. The runtime's ` + "`duration`" + ` row is the whole
request, from dialing to the last byte read.`,
	Fields: append([]module.Field{
		module.String(FieldURL, "URL to request; http or https. Without `target`, the URL's host is the target (the address connected to).").Req().
			Example(`"http://${web}/health"`, `"https://www.example.com/login"`),
		module.String(FieldMethod, "Request method.").Def("GET").
			OneOf("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"),
		module.StringMap(FieldHeaders, "Extra request headers.").
			Example(`{ Accept = "application/json" }`),
		module.String(FieldBody, "Request body (for POST, PUT, PATCH).").Example(`"{\"ping\":1}"`),
		module.String(FieldUser, "User name for HTTP basic authentication.").Adv(),
		module.String(FieldPassword, "Password for HTTP basic authentication (needs user).").
			Example(`env("HEALTH_PASSWORD")`).Adv(),
		module.String(FieldBearerToken, "Token sent as `Authorization: Bearer …`.").
			Example(`env("HEALTH_TOKEN")`).Adv(),
		module.StringList(FieldExpectCode,
			"Acceptable status codes: codes and ranges. Any other code is critical. Unset: 1xx-3xx ok, 4xx warning, 5xx critical.").
			Example(`200`, `["200-299", 304]`).TakesInts(),
		module.String(FieldBodyMatch, "Regexp (RE2) the body must match, else critical.").Example(`"ok"`, `"\"status\":\\s*\"up\""`),
		module.String(FieldBodyNotMatch, "Regexp (RE2) the body must not match, else critical.").Example(`"(?i)error"`),
		module.Bool(FieldFollowRedirects, "Follow redirects; off: a 3xx answer is the result.").Def(false),
		module.Int(FieldMaxRedirects, "Redirects followed at most; one more is critical.").Def(10).Range(0, 100).Adv(),
		netcheck.IPVersionField(),
		module.Bool(FieldKeepAlive,
			"Reuse the connection between runs. Off by default: every run measures a fresh connect and TLS handshake.").
			Def(false).Adv(),
		module.Size(FieldMaxBody, "Body bytes read and matched at most.").Def(1<<20).Range(0, 1<<30).Adv(),
		module.Size(FieldMaxHeader, "Response header bytes accepted at most; more is critical.").
			Def(64<<10).Range(1<<10, 16<<20).Adv(),
		module.String(FieldUserAgent, "User-Agent header.").Def(DefaultUserAgent).Adv(),
	}, netcheck.TLSFields()...),
	Metrics: []module.Metric{
		{Name: MetricResolve, Unit: "s", Summary: "Name lookup of the target (only when the target is a name)."},
		{Name: MetricConnect, Unit: "s", Summary: "TCP connect."},
		{Name: MetricTLSHandshake, Unit: "s", Summary: "TLS handshake (https only)."},
		{Name: MetricFirstByte, Unit: "s", Summary: "From the start of the run to the first response byte."},
		{Name: MetricCode, Summary: "HTTP status code of the final response."},
		{Name: MetricBytes, Unit: "B", Summary: "Body bytes read (at most max_body)."},
		{Name: MetricCertExpiryDays, Unit: "d", Summary: "Days until the server's leaf certificate expires (https only; negative when expired)."},
	},
	Example: `pipeline "web"

source homepage http {
  target            = "127.0.0.1"
  url               = "https://www.example.com/health"
  period            = 30s
  timeout           = 5s
  expect_code       = ["200-299"]
  body_match        = "ok"
  follow_redirects  = true
  headers           = { Accept = "text/plain" }
  cert_warning_days = 30
  cert_critical_days = 7
}
`,
	Validate:      validate,
	DefaultTarget: urlHost,
	NewCheck:      NewCheck,
}

// urlHost is the target of an http source that sets none: the URL's host.
func urlHost(a module.Attrs) string {
	u, err := url.Parse(a.String(FieldURL))
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func validate(a module.Attrs) error {
	u, err := url.Parse(a.String(FieldURL))
	if err != nil {
		return module.Errorf(FieldURL, "%v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return module.Errorf(FieldURL, "scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" {
		return module.Errorf(FieldURL, "URL has no host")
	}
	if _, err := parseCodes(a.Strings(FieldExpectCode)); err != nil {
		return module.Errorf(FieldExpectCode, "%v", err)
	}
	for _, f := range []string{FieldBodyMatch, FieldBodyNotMatch} {
		if a.Has(f) {
			if _, err := regexp.Compile(a.String(f)); err != nil {
				return module.Errorf(f, "bad regexp: %v", err)
			}
		}
	}
	if a.Has(FieldPassword) && !a.Has(FieldUser) {
		return module.Errorf(FieldPassword, "password needs user")
	}
	if a.Has(FieldBearerToken) && a.Has(FieldUser) {
		return module.Errorf(FieldBearerToken, "use either user/password or bearer_token, not both")
	}
	return netcheck.ValidateTLS(a)
}

// codeRange is an inclusive range of status codes.
type codeRange struct{ lo, hi int }

// parseCodes parses expect_code: "200", "200-299".
func parseCodes(list []string) ([]codeRange, error) {
	out := make([]codeRange, 0, len(list))
	for _, s := range list {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(s), "-")
		if !isRange {
			hi = lo
		}
		var r codeRange
		var err1, err2 error
		r.lo, err1 = strconv.Atoi(strings.TrimSpace(lo))
		r.hi, err2 = strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q is neither a code (200) nor a range (200-299)", s)
		}
		if r.lo < 100 || r.hi > 599 || r.lo > r.hi {
			return nil, fmt.Errorf("%q: codes are 100-599, low to high", s)
		}
		out = append(out, r)
	}
	return out, nil
}
