package netcheck

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
)

func TestVerdictKeepsTheWorst(t *testing.T) {
	var v Verdict
	v.Raise(sample.OK, "")
	v.Raise(sample.Warning, "certificate expires in 20 days")
	v.Raise(sample.Unknown, "ignored: unknown is milder than warning")
	v.Raise(sample.Critical, "body did not match \"ok\"")
	v.Raise(sample.Critical, "second critical keeps the first message")
	v.Raise(sample.Warning, "milder")
	if r := v.Result(true); r.Status != sample.Critical || r.Message != `body did not match "ok"` || !r.Available {
		t.Fatalf("result %+v", r)
	}
}

func TestJudgeExpiry(t *testing.T) {
	tl, err := NewTLS(module.Attrs{FieldCertWarningDays: int64(30), FieldCertCriticalDays: int64(7)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		days float64
		st   sample.Status
		msg  string
	}{
		{90, sample.OK, ""},
		{29.5, sample.Warning, "certificate expires in 29 days"},
		{6.9, sample.Critical, "certificate expires in 6 days"},
		{1.2, sample.Critical, "certificate expires in 1 day"},
		{0.25, sample.Critical, "certificate expires in 6 hours"},
		{-3.5, sample.Critical, "certificate expired 3 days ago"},
	}
	for _, c := range cases {
		var v Verdict
		v.Raise(sample.OK, "")
		tl.Judge(&v, c.days)
		if v.Status != c.st || v.Message != c.msg {
			t.Errorf("%v days: %v %q, want %v %q", c.days, v.Status, v.Message, c.st, c.msg)
		}
	}
}

func TestReason(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout after 5s"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "timeout after 5s"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "connection refused"},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, "connection reset by peer"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.EHOSTUNREACH}, "no route to host"},
		{&net.DNSError{Name: "db.invalid", Err: "no such host", IsNotFound: true}, "cannot resolve db.invalid: no such host"},
	}
	for _, c := range cases {
		if got := Reason(c.err, 5*time.Second); got != c.want {
			t.Errorf("Reason(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{IPAny: "tcp", IPv4: "tcp4", IPv6: "tcp6"} {
		if got := Network("tcp", in); got != want {
			t.Errorf("Network(tcp, %s) = %s", in, got)
		}
	}
}
