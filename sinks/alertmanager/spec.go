// Package alertmanager is the alertmanager sink module: alert states are
// posted to Prometheus Alertmanager's v2 API (POST /api/v2/alerts), so that
// a site keeps its routing, grouping, silences and inhibition in
// Alertmanager. Firing alerts are re-sent every resend_interval, as
// Prometheus does, because Alertmanager resolves an alert by itself once the
// alert's endsAt passes.
package alertmanager

import (
	"errors"
	"net/url"
	"os"
	"time"

	"github.com/reconmon/recon/module"
)

// Attribute names of the alertmanager sink.
const (
	FieldURLs               = "urls"
	FieldTimeout            = "timeout"
	FieldMaxAttempts        = "max_attempts"
	FieldBackoff            = "backoff"
	FieldMaxBackoff         = "max_backoff"
	FieldResendInterval     = "resend_interval"
	FieldLabels             = "labels"
	FieldGeneratorURL       = "generator_url"
	FieldUser               = "user"
	FieldPassword           = "password"
	FieldBearerToken        = "bearer_token"
	FieldCAFile             = "ca_file"
	FieldInsecureSkipVerify = "insecure_skip_verify"
)

// Labels the sink sets on every alert; a group label or a static label of
// the same name is renamed with the prefix ExportedPrefix.
const (
	LabelAlertname = "alertname"
	LabelSeverity  = "severity"
	LabelPipeline  = "pipeline"
	ExportedPrefix = "exported_"
)

// Spec declares the alertmanager sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "alertmanager",
	Summary: "Alerts posted to Prometheus Alertmanager (v2 API).",
	Description: "Posts the alert state of the rules that name the sink in `notify` to every Alertmanager in " +
		"`urls` (`POST <url>/api/v2/alerts`; list every member of an HA cluster). One Alertmanager alert " +
		"stands for one rule and group: labels `alertname` (the rule), `severity` (`warning` or `critical`), " +
		"`pipeline`, the group's labels and the static `labels`; annotations `summary` (the event message), " +
		"`value` and `fingerprint`; `startsAt` is when the group entered its severity. A firing alert is " +
		"re-sent every `resend_interval` with `endsAt` four intervals ahead, so Alertmanager keeps it " +
		"active while recond runs and resolves it by itself if recond stops for good. A transition to ok " +
		"posts the alert with `endsAt` set (resolved); a change between warning and critical resolves the " +
		"alert of the old severity and posts the new one. When the rule engine starts, the groups that " +
		"are firing are posted again at once, so a restart loses no alert. Routing, grouping, silences " +
		"and inhibition stay Alertmanager's. A request that fails (connection error, timeout, 408, 429, " +
		"5xx) is retried with exponential backoff from `backoff` up to `max_backoff`, at most " +
		"`max_attempts` times in all; Alertmanager's own error text is reported when it rejects a request.",
	Fields: []module.Field{
		module.StringList(FieldURLs, "Alertmanager base URLs (`http://` or `https://`, the path prefix "+
			"included when Alertmanager runs with `--web.route-prefix`); every alert goes to each.").Req().
			Example(`["http://127.0.0.1:9093"]`, `["http://am1:9093", "http://am2:9093"]`),
		module.Duration(FieldTimeout, "Time limit of one request, response included.").
			Def(10*time.Second).Range(0.001, 600),
		module.Int(FieldMaxAttempts, "Attempts per notification, the first included (re-sends are not retried: "+
			"the next re-send is).").Def(3).Range(1, 100),
		module.Duration(FieldBackoff, "Wait before the first retry; doubled after each failed attempt.").
			Def(500*time.Millisecond).Range(0.001, 3600).Adv(),
		module.Duration(FieldMaxBackoff, "Longest wait between two attempts.").
			Def(10*time.Second).Range(0.001, 86400).Adv(),
		module.Duration(FieldResendInterval, "Time between two posts of the firing alerts; each post sets "+
			"`endsAt` to four intervals ahead.").Def(time.Minute).Range(0.01, 3600),
		module.StringMap(FieldLabels, "Static labels added to every alert (a group label of the same name wins; "+
			"`alertname`, `severity` and `pipeline` are the sink's).").
			Example(`{ team = "network", site = "par1" }`),
		module.String(FieldGeneratorURL, "URL every alert links back to (`generatorURL`), for example "+
			"recond's graph page.").Example(`"http://recond.example.com:8080/"`),
		module.String(FieldUser, "User name for HTTP basic authentication.").Adv(),
		module.String(FieldPassword, "Password for HTTP basic authentication (needs user). Read it with "+
			"`env(\"…\")` rather than writing it in the file.").Adv(),
		module.String(FieldBearerToken, "Bearer token sent in the Authorization header (not with user).").
			Example(`env("AM_TOKEN")`).Adv(),
		module.String(FieldCAFile, "PEM file of CA certificates to trust instead of the system pool (https).").
			Example(`"/etc/recon/ca.pem"`).Adv(),
		module.Bool(FieldInsecureSkipVerify, "Accept any server certificate (https; testing only).").
			Def(false).Adv(),
	},
	Validate: validate,
	Example: `sink am alertmanager {
  urls            = ["http://127.0.0.1:9093"]
  resend_interval = 1m
  labels          = { team = "network" }
}`,
}

func validate(a module.Attrs) error {
	urls := a.Strings(FieldURLs)
	if len(urls) == 0 {
		return module.Errorf(FieldURLs, "urls must list at least one Alertmanager")
	}
	seen := map[string]bool{}
	for _, u := range urls {
		if err := checkURL(u); err != nil {
			return module.Errorf(FieldURLs, "url %q: %v", u, err)
		}
		if seen[u] {
			return module.Errorf(FieldURLs, "url %q is listed twice", u)
		}
		seen[u] = true
	}
	if a.Duration(FieldMaxBackoff) < a.Duration(FieldBackoff) {
		return module.Errorf(FieldMaxBackoff, "max_backoff %s is shorter than backoff %s", a.Duration(FieldMaxBackoff), a.Duration(FieldBackoff))
	}
	if g := a.String(FieldGeneratorURL); g != "" {
		if err := checkURL(g); err != nil {
			return module.Errorf(FieldGeneratorURL, "generator_url %q: %v", g, err)
		}
	}
	if a.String(FieldPassword) != "" && a.String(FieldUser) == "" {
		return module.Errorf(FieldPassword, "password needs user")
	}
	if a.String(FieldUser) != "" && a.String(FieldBearerToken) != "" {
		return module.Errorf(FieldBearerToken, "bearer_token and user (basic authentication) exclude each other")
	}
	for k := range a.Map(FieldLabels) {
		if !validLabelName(k) {
			return module.Errorf(FieldLabels, "label name %q is not a valid Alertmanager label name ([a-zA-Z_][a-zA-Z0-9_]*)", k)
		}
		if k == LabelAlertname || k == LabelSeverity || k == LabelPipeline {
			return module.Errorf(FieldLabels, "label %q is set by the sink", k)
		}
	}
	if f := a.String(FieldCAFile); f != "" {
		if _, err := os.Stat(f); err != nil {
			return module.Errorf(FieldCAFile, "ca_file: %v", err)
		}
	}
	return nil
}

// checkURL accepts an absolute http(s) URL with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must start with http:// or https://")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]*.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
