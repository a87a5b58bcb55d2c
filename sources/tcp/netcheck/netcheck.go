package netcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/runtime/sample"
)

// Network returns the Go network name ("tcp", "tcp4", "tcp6", or with
// base "udp"/"ip") for an ip_version preference.
func Network(base, ipVersion string) string {
	switch ipVersion {
	case IPv4:
		return base + "4"
	case IPv6:
		return base + "6"
	}
	return base
}

// TLS is a check's TLS client side: trust, client certificate, SNI and
// expiry thresholds. Handshake records the server's leaf certificate even
// when verification fails, so an expired certificate still has its expiry
// measured.
type TLS struct {
	base       *tls.Config
	verify     bool
	roots      *x509.CertPool
	serverName string
	warnDays   int64
	critDays   int64
}

// NewTLS builds the TLS settings from the TLS attribute group.
func NewTLS(a module.Attrs) (*TLS, error) {
	t := &TLS{
		// Verification is done in VerifyConnection, which sees the peer's
		// certificates before the verdict.
		base:       &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
		verify:     !a.Bool(FieldInsecureSkipVerify),
		serverName: a.String(FieldServerName),
		warnDays:   -1,
		critDays:   -1,
	}
	if a.Has(FieldCertWarningDays) {
		t.warnDays = a.Int(FieldCertWarningDays)
	}
	if a.Has(FieldCertCriticalDays) {
		t.critDays = a.Int(FieldCertCriticalDays)
	}
	if f := a.String(FieldCAFile); f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		t.roots = x509.NewCertPool()
		if !t.roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate found", f)
		}
	}
	if a.Has(FieldCertFile) {
		cert, err := tls.LoadX509KeyPair(a.String(FieldCertFile), a.String(FieldKeyFile))
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		t.base.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// Handshake runs a client handshake over conn for host (the server_name
// attribute wins over host). It returns the leaf certificate's expiry,
// zero when the server sent none. On error the caller closes conn.
func (t *TLS) Handshake(ctx context.Context, conn net.Conn, host string) (*tls.Conn, time.Time, error) {
	name := t.serverName
	if name == "" {
		name = host
	}
	var notAfter time.Time
	cfg := t.base.Clone()
	cfg.ServerName = name
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("server sent no certificate")
		}
		leaf := cs.PeerCertificates[0]
		notAfter = leaf.NotAfter
		if !t.verify {
			return nil
		}
		opts := x509.VerifyOptions{DNSName: name, Roots: t.roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := leaf.Verify(opts)
		return err
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, notAfter, err
	}
	return tc, notAfter, nil
}

// ExpiryDays returns the days from now until notAfter (negative when past).
func ExpiryDays(notAfter, now time.Time) float64 {
	return notAfter.Sub(now).Hours() / 24
}

// Judge applies the expiry thresholds to a certificate expiring in days.
func (t *TLS) Judge(v *Verdict, days float64) {
	var msg string
	if days < 0 {
		msg = fmt.Sprintf("certificate expired %s ago", dayString(-days))
	} else {
		msg = fmt.Sprintf("certificate expires in %s", dayString(days))
	}
	switch {
	case t.critDays >= 0 && days < float64(t.critDays):
		v.Raise(sample.Critical, msg)
	case t.warnDays >= 0 && days < float64(t.warnDays):
		v.Raise(sample.Warning, msg)
	}
}

func dayString(days float64) string {
	n := int64(days)
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return fmt.Sprintf("%.0f hours", days*24)
	}
	return fmt.Sprintf("%d days", n)
}

// Verdict accumulates a run's status: the worst status raised wins, with
// the message it was raised with (the first one at that level).
type Verdict struct {
	Status  sample.Status
	Message string
	set     bool
}

// Raise records st with msg if it is worse than what is recorded.
func (v *Verdict) Raise(st sample.Status, msg string) {
	if !v.set || severity(st) > severity(v.Status) {
		v.Status, v.Message, v.set = st, msg, true
	}
}

// severity orders statuses: ok < unknown < warning < critical.
func severity(s sample.Status) int {
	switch s {
	case sample.OK:
		return 0
	case sample.Unknown:
		return 1
	case sample.Warning:
		return 2
	}
	return 3
}

// Result returns the verdict as a run result.
func (v *Verdict) Result(available bool) sample.Result {
	return sample.Result{Status: v.Status, Message: v.Message, Available: available}
}

// Reason words a network error for an operator: "connection refused",
// "timeout after 5s", "certificate signed by unknown authority" … without
// Go's wrapping ("dial tcp 127.0.0.1:80: connect: ").
func Reason(err error, timeout time.Duration) string {
	var (
		dnsErr   *net.DNSError
		certErr  x509.CertificateInvalidError
		hostErr  x509.HostnameError
		authErr  x509.UnknownAuthorityError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		netErr   net.Error
		errno    syscall.Errno
		urlErr   *url.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout after " + timeout.String()
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "cannot resolve " + dnsErr.Name + ": no such host"
		}
		return "cannot resolve " + dnsErr.Name + ": " + dnsErr.Err
	case errors.As(err, &certErr):
		if certErr.Reason == x509.Expired {
			return "certificate expired or not yet valid"
		}
		return "invalid certificate: " + certErr.Error()
	case errors.As(err, &hostErr):
		return "certificate is not valid for " + hostErr.Host
	case errors.As(err, &authErr):
		return "certificate signed by unknown authority"
	case errors.As(err, &recErr):
		return "TLS handshake failed: server did not answer with TLS"
	case errors.As(err, &alertErr):
		return "TLS handshake failed: server sent alert: " + alertErr.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer"
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &urlErr):
		return Reason(urlErr.Err, timeout)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		// Drop the operation prefix ("read tcp a->b: ").
		return opErr.Err.Error()
	}
	return strings.TrimPrefix(err.Error(), "net/http: ")
}
