package dns_test

import (
	"strings"
	"testing"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/dns"
)

func TestValidate(t *testing.T) {
	for _, q := range []string{"", "two words", "a..b"} {
		err := dns.Spec.Validate(module.Attrs{"query": q, "type": "A"})
		fe, ok := err.(*module.FieldError)
		if !ok || fe.Field != "query" || !strings.Contains(fe.Msg, "not a domain name") {
			t.Errorf("query %q: error %v", q, err)
		}
	}
	for _, a := range []module.Attrs{
		{"query": "example.com", "type": "MX"},
		{"query": "10.0.0.5", "type": "PTR"},
		{"query": "::1", "type": "PTR"},
	} {
		if err := dns.Spec.Validate(a); err != nil {
			t.Errorf("%v: %v", a, err)
		}
	}
}
