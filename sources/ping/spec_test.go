package ping_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/ping"
)

func TestValidate(t *testing.T) {
	cases := []struct {
		set   module.Attrs
		field string
		msg   string
	}{
		{module.Attrs{"count": int64(2), "avail_needed": int64(3)}, "avail_needed", "exceeds count"},
		{module.Attrs{"count": int64(5), "avail_needed": int64(1), "rtt_warning": time.Second, "rtt_critical": time.Millisecond}, "rtt_warning", "must not exceed"},
		{module.Attrs{"count": int64(5), "avail_needed": int64(1), "loss_warning": 50.0, "loss_critical": 20.0}, "loss_warning", "must not exceed"},
	}
	for _, c := range cases {
		err := ping.Spec.Validate(c.set)
		fe, ok := err.(*module.FieldError)
		if !ok || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%v: error %v, want %s: …%s…", c.set, err, c.field, c.msg)
		}
	}
}

// The requests must fit in the timeout, which only the runtime knows.
func TestRequestsMustFitTimeout(t *testing.T) {
	_, err := ping.NewCheck(module.Env{Target: "127.0.0.1", Timeout: time.Second, Attrs: module.Attrs{
		"count": int64(5), "interval": time.Second, "size": int64(56), "ip_version": "any", "avail_needed": int64(1)}})
	if err == nil || !strings.Contains(err.Error(), "not less than the timeout 1s") {
		t.Fatalf("error %v", err)
	}
}
