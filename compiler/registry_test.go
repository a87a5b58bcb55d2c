package compiler

import (
	"net/url"
	"regexp"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sinks/kafka"
)

// testRegistry holds stand-ins for the real modules with fixed specs, so
// that the golden files test the compiler, not the current state of every
// module's spec (the examples and the specs' own examples are compiled
// against the real catalog in TestExamples and TestSpecExamples).
func testRegistry() *module.Registry {
	r := module.NewRegistry()
	for _, s := range []*module.Spec{
		{
			Kind: module.KindSource, Name: "http", Summary: "HTTP check.",
			Fields: []module.Field{
				module.String("url", "URL.").Req(),
				module.String("method", "Method.").Def("GET").OneOf("GET", "HEAD", "POST"),
				module.StringMap("headers", "Headers."),
				module.StringList("expect_code", "Codes.").Def([]string{"200-299"}).TakesInts(),
				module.String("body_match", "Regexp."),
				module.Size("max_body", "Cap.").Def(1<<20).Range(0, 1<<30),
				module.Bool("follow_redirects", "Follow.").Def(false),
				module.Int("redirects", "Old name.").Deprecate("use follow_redirects"),
			},
			Validate: func(a module.Attrs) error {
				if u, err := url.Parse(a.String("url")); err != nil || u.Host == "" {
					return module.Errorf("url", "URL has no host")
				}
				return nil
			},
			DefaultTarget: func(a module.Attrs) string {
				u, _ := url.Parse(a.String("url"))
				return u.Hostname()
			},
		},
		{
			Kind: module.KindSource, Name: "tcp", Summary: "TCP check.",
			Fields: []module.Field{
				module.Int("port", "Port.").Req().Range(1, 65535),
				module.Bool("tls", "TLS.").Def(false),
				module.String("expect", "Regexp."),
				module.String("mismatch", "Status.").Def("warning").OneOf("ok", "warning", "critical"),
			},
			Validate: func(a module.Attrs) error {
				if _, err := regexp.Compile(a.String("expect")); err != nil {
					return module.Errorf("expect", "not a regular expression")
				}
				return nil
			},
		},
		{
			Kind: module.KindSource, Name: "dns", Summary: "DNS check.",
			Fields: []module.Field{
				module.String("query", "Name.").Req(),
				module.String("type", "Type.").Def("A").OneOf("A", "AAAA", "MX", "TXT"),
			},
		},
		{
			Kind: module.KindSource, Name: "ping", Summary: "Ping.",
			Fields: []module.Field{
				module.Int("count", "Echoes.").Def(5).Range(1, 100),
				module.Float("loss_warning", "Percent.").Def(20).Range(0, 100),
				module.Duration("interval", "Pause.").Def(time.Second).AtLeast(0.2),
			},
		},
		{
			Kind: module.KindSource, Name: "snmp", Summary: "SNMP polling.",
			Fields: []module.Field{
				module.String("version", "Version.").Def("2c").OneOf("1", "2c", "3"),
				module.String("community", "Community.").Def("public"),
				module.Int("port", "Port.").Def(161).Range(1, 65535),
				module.StringMap("get", "Scalars."),
				module.StringMap("walk", "Columns."),
			},
			Validate: func(a module.Attrs) error {
				if len(a.Map("get")) == 0 && len(a.Map("walk")) == 0 {
					return module.Errorf("get", "nothing to poll: set get and/or walk")
				}
				return nil
			},
		},
		{
			Kind: module.KindSource, Name: "snmp_trap", Summary: "Trap listener.", Passive: true,
			Fields: []module.Field{
				module.String("listen", "Address.").Def("0.0.0.0:162"),
				module.StringList("communities", "Communities.").Def([]string{"public"}),
			},
		},
		{
			Kind: module.KindSource, Name: "selfcheck", Summary: "recond's own figures.",
			Fields: []module.Field{
				module.String("target", "Shown as the target.").Def("recond"),
			},
		},
		{
			Kind: module.KindSink, Name: "parquet", Summary: "Archive.",
			Fields: []module.Field{
				module.String("path", "Directory.").Req(),
				module.Int("flush_rows", "Rows.").Def(1000000).AtLeast(1),
			},
		},
		{
			Kind: module.KindSink, Name: "stdout", Summary: "Print.",
			Fields: []module.Field{module.String("format", "Format.").Def("text").OneOf("text", "json")},
		},
		{
			Kind: module.KindSink, Name: "webhook", Summary: "POST.",
			Fields: []module.Field{
				module.String("url", "URL.").Req(),
				module.Duration("timeout", "Limit.").Def(10 * time.Second),
			},
		},
		{
			Kind: module.KindSink, Name: "exec", Summary: "Command.",
			Fields: []module.Field{module.StringList("command", "Argv.").Req()},
		},
		kafka.Spec,
	} {
		if err := r.Register(s); err != nil {
			panic(err)
		}
	}
	return r
}
