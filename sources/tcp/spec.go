// Package tcp is the tcp source module: connect, optionally TLS, optionally
// send a string and match the answer against a regexp.
package tcp

import (
	"regexp"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// Attribute names.
const (
	FieldPort     = "port"
	FieldTLS      = "tls"
	FieldSend     = "send"
	FieldExpect   = "expect"
	FieldMaxRead  = "max_read"
	FieldMismatch = "mismatch"
)

// Metric names (the runtime adds status, available and duration).
const (
	MetricConnect        = "connect"
	MetricTLSHandshake   = "tls_handshake"
	MetricFirstByte      = "first_byte"
	MetricBytes          = "bytes"
	MetricCertExpiryDays = "cert_expiry_days"
)

// Spec declares the tcp source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "tcp",
	Summary: "TCP connect check, with optional TLS, send string and banner match.",
	Description: `Connects to ` + "`target`:`port`" + `, optionally completes a TLS handshake, sends
` + "`send`" + ` and reads until ` + "`expect`" + ` matches, ` + "`max_read`" + ` bytes arrived, the peer closed
or the timeout expired. Without ` + "`expect`" + ` nothing is read: a completed connect (and
handshake) is the check, as in check_tcp.

Status: a failed connect or handshake is critical with the reason as message
(` + "`connection refused`, `timeout after 5s`" + `); an answer that does not match ` + "`expect`" + `
gets the status ` + "`mismatch`" + ` says (warning by default, as check_tcp's -M); no
answer at all (the server closed, or the timeout passed) is critical; a
certificate closer to expiry than the thresholds is warning/critical.
Available means the connection was established.`,
	Fields: append([]module.Field{
		module.Int(FieldPort, "TCP port.").Req().Range(1, 65535).Example("22", "443"),
		module.Bool(FieldTLS, "Complete a TLS handshake after connecting.").Def(false),
		module.String(FieldSend, "String sent after connecting (and the handshake). Use the language's escapes for line ends (\\r\\n).").
			Example(`"QUIT\r\n"`),
		module.String(FieldExpect, "Regexp (RE2) the answer must match; reading stops as soon as it does.").
			Example(`"^SSH-2\\.0-"`, `"^220 "`),
		module.Size(FieldMaxRead, "Answer bytes read at most while waiting for expect.").Def(4096).Range(1, 1<<20).Adv(),
		module.String(FieldMismatch, "Status when the answer does not match expect.").
			Def("warning").OneOf("ok", "warning", "critical"),
		netcheck.IPVersionField(),
	}, netcheck.TLSFields()...),
	Metrics: []module.Metric{
		{Name: MetricConnect, Unit: "s", Summary: "TCP connect (including the name lookup, if any)."},
		{Name: MetricTLSHandshake, Unit: "s", Summary: "TLS handshake (tls only)."},
		{Name: MetricFirstByte, Unit: "s", Summary: "From the start of the run to the first answer byte (expect only)."},
		{Name: MetricBytes, Unit: "B", Summary: "Answer bytes read (expect only)."},
		{Name: MetricCertExpiryDays, Unit: "d", Summary: "Days until the server's leaf certificate expires (tls only; negative when expired)."},
	},
	Example: `pipeline "edge"

source ssh tcp {
  target = "127.0.0.1"
  port   = 22
  expect = "^SSH-2\\.0-"
}

source smtps tcp {
  target            = "127.0.0.1"
  port              = 465
  tls               = true
  server_name       = "mail.example.com"
  expect            = "^220 "
  mismatch          = "critical"
  cert_warning_days = 21
}
`,
	Validate: validate,
	NewCheck: NewCheck,
}

func validate(a module.Attrs) error {
	if a.Has(FieldExpect) {
		if _, err := regexp.Compile(a.String(FieldExpect)); err != nil {
			return module.Errorf(FieldExpect, "bad regexp: %v", err)
		}
	}
	if !a.Bool(FieldTLS) {
		for _, f := range netcheck.TLSFields() {
			if (a.Has(f.Name) && f.Default == nil) || (f.Name == netcheck.FieldInsecureSkipVerify && a.Bool(f.Name)) {
				return module.Errorf(f.Name, "%s needs tls = true", f.Name)
			}
		}
	}
	return netcheck.ValidateTLS(a)
}
