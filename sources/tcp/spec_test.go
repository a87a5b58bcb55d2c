package tcp_test

import (
	"strings"
	"testing"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/tcp"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		set   module.Attrs
		field string
		msg   string
	}{
		{module.Attrs{"port": int64(22), "expect": "["}, "expect", "bad regexp"},
		{module.Attrs{"port": int64(22), "ca_file": "ca.pem"}, "ca_file", "needs tls = true"},
		{module.Attrs{"port": int64(22), "insecure_skip_verify": true}, "insecure_skip_verify", "needs tls = true"},
		{module.Attrs{"port": int64(22), "tls": true, "key_file": "k.pem"}, "key_file", "needs cert_file"},
	}
	for _, c := range cases {
		err := tcp.Spec.Validate(c.set)
		fe, ok := err.(*module.FieldError)
		if !ok || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%v: error %v, want %s: …%s…", c.set, err, c.field, c.msg)
		}
	}
	if err := tcp.Spec.Validate(module.Attrs{"port": int64(465), "tls": true, "insecure_skip_verify": false, "cert_warning_days": int64(20)}); err != nil {
		t.Errorf("valid attributes: %v", err)
	}
}
