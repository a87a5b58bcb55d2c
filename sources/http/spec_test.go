package http_test

import (
	"strings"
	"testing"

	"github.com/reconmon/recon/module"
	httpsource "github.com/reconmon/recon/sources/http"
)

// TestValidate checks the cross-field rules the compiler reports at the
// attribute they name.
func TestValidate(t *testing.T) {
	cases := []struct {
		set   module.Attrs
		field string
		msg   string
	}{
		{module.Attrs{"url": "ftp://h/"}, "url", `scheme must be http or https, not "ftp"`},
		{module.Attrs{"url": "http:///x"}, "url", "URL has no host"},
		{module.Attrs{"url": "http://h/", "expect_code": []string{"2xx"}}, "expect_code", `"2xx" is neither a code`},
		{module.Attrs{"url": "http://h/", "expect_code": []string{"299-200"}}, "expect_code", "codes are 100-599, low to high"},
		{module.Attrs{"url": "http://h/", "body_match": "("}, "body_match", "bad regexp"},
		{module.Attrs{"url": "http://h/", "password": "x"}, "password", "password needs user"},
		{module.Attrs{"url": "http://h/", "user": "u", "bearer_token": "t"}, "bearer_token", "not both"},
		{module.Attrs{"url": "https://h/", "cert_file": "c.pem"}, "cert_file", "needs key_file"},
		{module.Attrs{"url": "https://h/", "cert_warning_days": int64(7), "cert_critical_days": int64(30)}, "cert_critical_days", "must not exceed"},
	}
	for _, c := range cases {
		err := httpsource.Spec.Validate(c.set)
		fe, ok := err.(*module.FieldError)
		if !ok || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%v: error %v, want %s: …%s…", c.set, err, c.field, c.msg)
		}
	}
	if err := httpsource.Spec.Validate(module.Attrs{"url": "https://h:8443/x", "expect_code": []string{"200", "301-308"}}); err != nil {
		t.Errorf("valid attributes: %v", err)
	}
}
