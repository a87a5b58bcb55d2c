package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
	"github.com/reconmon/recon/sources/tcp/netcheck"
)

// check is one dns source. Run is never called concurrently with itself,
// so the query, the row and the scratch slices are reused across runs.
type check struct {
	server      string
	qtype       uint16
	typeName    string
	tcpOnly     bool
	expect      []string // normalized
	expectRcode int
	mismatch    sample.Status
	timeout     time.Duration
	udp, tcp    *mdns.Client
	query       *mdns.Msg
	row         sample.Row
	answers     []string // normalized answers of the last run
	missing     []string
}

// NewCheck builds a dns check from env (attributes already validated by the
// compiler).
func NewCheck(env module.Env) (module.Check, error) {
	a := env.Attrs
	if env.Target == "" {
		return nil, errors.New("dns: target is empty")
	}
	typeName := a.String(FieldType)
	qtype, ok := mdns.StringToType[typeName]
	if !ok {
		return nil, fmt.Errorf("dns: unknown type %q", typeName)
	}
	name, err := questionName(a.String(FieldQuery), typeName)
	if err != nil {
		return nil, fmt.Errorf("dns: query: %w", err)
	}
	rcode, ok := mdns.StringToRcode[a.String(FieldExpectRcode)]
	if !ok {
		return nil, fmt.Errorf("dns: unknown rcode %q", a.String(FieldExpectRcode))
	}
	mismatch, ok := sample.ParseStatus(a.String(FieldMismatch))
	if !ok {
		return nil, fmt.Errorf("dns: mismatch: unknown status %q", a.String(FieldMismatch))
	}
	c := &check{
		server:      net.JoinHostPort(env.Target, strconv.FormatInt(a.Int(FieldPort), 10)),
		qtype:       qtype,
		typeName:    typeName,
		tcpOnly:     a.Bool(FieldTCP),
		expectRcode: rcode,
		mismatch:    mismatch,
		timeout:     env.Timeout,
		udp:         &mdns.Client{Net: "udp", Timeout: env.Timeout},
		tcp:         &mdns.Client{Net: "tcp", Timeout: env.Timeout},
		query:       new(mdns.Msg),
	}
	for _, e := range a.Strings(FieldExpect) {
		c.expect = append(c.expect, normalize(e))
	}
	c.query.SetQuestion(name, qtype)
	c.query.RecursionDesired = a.Bool(FieldRecursion)
	return c, nil
}

// Run sends the query (over TCP again if the UDP answer is truncated) and
// judges the answer.
func (c *check) Run(ctx context.Context, w sample.Writer) sample.Result {
	var v netcheck.Verdict
	v.Raise(sample.OK, "")
	c.query.Id = mdns.Id()
	transport := "udp"
	client := c.udp
	if c.tcpOnly {
		transport, client = "tcp", c.tcp
	}
	resp, rtt, err := client.ExchangeContext(ctx, c.query, c.server)
	if err == nil && resp.Truncated && transport == "udp" {
		transport = "tcp"
		resp, rtt, err = c.tcp.ExchangeContext(ctx, c.query, c.server)
	}
	if err != nil {
		v.Raise(sample.Critical, transport+": "+netcheck.Reason(err, c.timeout))
		return v.Result(false)
	}

	c.row.Reset()
	c.row.Metric, c.row.Value, c.row.HasValue, c.row.Unit = MetricRTT, rtt.Seconds(), true, "s"
	c.row.Labels = append(c.row.Labels, sample.Label{Key: LabelTransport, Value: transport})
	w.Write(&c.row)
	c.writeAnswers(w, resp)

	switch {
	case resp.Rcode != c.expectRcode:
		v.Raise(sample.Critical, fmt.Sprintf("rcode %s, expected %s", rcodeName(resp.Rcode), rcodeName(c.expectRcode)))
	case c.expectRcode == mdns.RcodeSuccess && len(c.answers) == 0:
		v.Raise(sample.Critical, fmt.Sprintf("no %s record for %s", c.typeName, c.query.Question[0].Name))
	default:
		c.judgeExpect(&v)
	}
	return v.Result(true)
}

// writeAnswers writes rcode, answers and one answer row per record of the
// queried type, and keeps their normalized data for judging.
func (c *check) writeAnswers(w sample.Writer, resp *mdns.Msg) {
	c.answers = c.answers[:0]
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype != c.qtype {
			continue
		}
		data := rdata(rr)
		c.answers = append(c.answers, normalize(data))
		c.row.Reset()
		c.row.Metric, c.row.Text, c.row.HasText = MetricAnswer, data, true
		c.row.Labels = append(c.row.Labels,
			sample.Label{Key: LabelName, Value: rr.Header().Name},
			sample.Label{Key: LabelType, Value: c.typeName},
			sample.Label{Key: LabelTTL, Value: strconv.FormatUint(uint64(rr.Header().Ttl), 10)})
		w.Write(&c.row)
	}
	c.row.Reset()
	c.row.Metric, c.row.Value, c.row.HasValue = MetricAnswers, float64(len(c.answers)), true
	w.Write(&c.row)
	c.row.Reset()
	c.row.Metric, c.row.Value, c.row.HasValue = MetricRcode, float64(resp.Rcode), true
	c.row.Text, c.row.HasText = rcodeName(resp.Rcode), true
	w.Write(&c.row)
}

func (c *check) judgeExpect(v *netcheck.Verdict) {
	c.missing = c.missing[:0]
	for _, e := range c.expect {
		found := false
		for _, a := range c.answers {
			if a == e {
				found = true
				break
			}
		}
		if !found {
			c.missing = append(c.missing, e)
		}
	}
	if len(c.missing) > 0 {
		v.Raise(c.mismatch, fmt.Sprintf("expected %s not in answers (%s)",
			strings.Join(c.missing, ", "), strings.Join(c.answers, ", ")))
	}
}

// rdata returns a record's data in presentation format; TXT strings are
// joined unquoted.
func rdata(rr mdns.RR) string {
	if t, ok := rr.(*mdns.TXT); ok {
		return strings.Join(t.Txt, "")
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// normalize makes answers comparable: addresses in canonical form
// (fd00:0::5 is fd00::5), lower case, single spaces, no trailing dots on
// names.
func normalize(s string) string {
	if addr, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil {
		return addr.String()
	}
	f := strings.Fields(strings.ToLower(s))
	for i, w := range f {
		if len(w) > 1 {
			f[i] = strings.TrimSuffix(w, ".")
		}
	}
	return strings.Join(f, " ")
}

func rcodeName(rcode int) string {
	if n, ok := mdns.RcodeToString[rcode]; ok {
		return n
	}
	return "RCODE" + strconv.Itoa(rcode)
}
