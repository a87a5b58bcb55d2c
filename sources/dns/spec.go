// Package dns is the dns source module: one query per run against the
// target server, over UDP with a TCP retry when the answer is truncated.
package dns

import (
	"strings"

	"github.com/reconmon/recon/module"
)

// Attribute names.
const (
	FieldQuery       = "query"
	FieldType        = "type"
	FieldPort        = "port"
	FieldRecursion   = "recursion"
	FieldTCP         = "tcp"
	FieldExpect      = "expect"
	FieldExpectRcode = "expect_rcode"
	FieldMismatch    = "mismatch"
)

// Metric names (the runtime adds status, available and duration).
const (
	MetricRTT     = "rtt"
	MetricAnswers = "answers"
	MetricRcode   = "rcode"
	MetricAnswer  = "answer"
)

// Label keys of the answer rows and of rtt.
const (
	LabelName      = "name"
	LabelType      = "type"
	LabelTTL       = "ttl"
	LabelTransport = "transport"
)

// Types are the query types the module accepts.
var Types = []string{"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"}

// Rcodes are the response codes expect_rcode accepts.
var Rcodes = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}

// Spec declares the dns source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "dns",
	Summary: "DNS query check.",
	Description: `Sends one query per run to the server ` + "`target`:`port`" + ` over UDP; when the
answer comes back truncated (TC bit), the query is repeated over TCP (the
` + "`rtt`" + ` row's label ` + "`transport`" + ` says which answered). ` + "`tcp = true`" + ` always uses TCP.
For PTR, ` + "`query`" + ` may be an address (` + "`\"10.0.0.5\"`" + `); it is turned into its
in-addr.arpa / ip6.arpa name.

Each answer record of the queried type is a row with metric ` + "`answer`" + `, its
data in presentation format as ` + "`text`" + ` (` + "`10.0.0.5`, `10 mail.example.com.`" + `, TXT
strings joined) and labels ` + "`name`, `type`, `ttl`" + `, so a query such as
` + "`SELECT ts, text FROM samples WHERE source = 'resolver' AND metric = 'answer'`" + `
lists what a name resolved to over time.

Status, as check_dig: no answer from the server (timeout, refused) is
critical; an rcode other than ` + "`expect_rcode`" + ` is critical; NOERROR without a record
of the queried type is critical; a missing ` + "`expect`" + ` value gets the status
` + "`mismatch`" + ` says (warning by default). Available means the server answered.`,
	Fields: []module.Field{
		module.String(FieldQuery, "Name to look up (an address, for PTR).").Req().
			Example(`"example.com"`, `"_ldap._tcp.example.com"`),
		module.String(FieldType, "Query type.").Def("A").OneOf(Types...),
		module.Int(FieldPort, "Server port.").Def(53).Range(1, 65535),
		module.Bool(FieldRecursion, "Set the recursion-desired flag (off for querying authoritative servers).").Def(true),
		module.Bool(FieldTCP, "Query over TCP only.").Def(false).Adv(),
		module.StringList(FieldExpect,
			"Values that must all be among the answers, in presentation format (names fully qualified or not; case-insensitive).").
			Example(`"10.0.0.5"`, `["10 mx1.example.com", "20 mx2.example.com"]`),
		module.String(FieldMismatch, "Status when a value of expect is not among the answers.").
			Def("warning").OneOf("ok", "warning", "critical"),
		module.String(FieldExpectRcode, "Expected response code, e.g. NXDOMAIN for a name that must not exist.").
			Def("NOERROR").OneOf(Rcodes...).Adv(),
	},
	Metrics: []module.Metric{
		{Name: MetricRTT, Unit: "s", Summary: "Round trip of the query that was answered (label transport = udp|tcp)."},
		{Name: MetricAnswers, Summary: "Records of the queried type in the answer section."},
		{Name: MetricRcode, Summary: "Response code: value as numbered by DNS (0 NOERROR, 3 NXDOMAIN …), text its name."},
		{Name: MetricAnswer, Summary: "One row per answer record: text is its data, labels name, type and ttl."},
	},
	Example: `pipeline "dns"

source resolver dns {
  target = "127.0.0.1"
  query  = "example.com"
  type   = "A"
  expect = ["93.184.215.14"]
}

source mail dns {
  target    = "127.0.0.1"
  port      = 5353
  query     = "example.com"
  type      = "MX"
  recursion = false
}
`,
	Validate: validate,
	NewCheck: NewCheck,
}

func validate(a module.Attrs) error {
	q := a.String(FieldQuery)
	if strings.TrimSpace(q) == "" || strings.Contains(q, " ") {
		return module.Errorf(FieldQuery, "%q is not a domain name", q)
	}
	if _, err := questionName(q, a.String(FieldType)); err != nil {
		return module.Errorf(FieldQuery, "%v", err)
	}
	return nil
}
