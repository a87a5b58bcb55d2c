package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/internal/testcert"
)

func tlsClient(certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestTLSServesHTTPSAndReloadsRenewedCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := testcert.Write(t, certFile, keyFile, "first")
	s := New(Options{Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())

	served := func(c *http.Client) (string, error) {
		resp, err := c.Get("https://" + s.Addr() + "/healthz")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz over TLS: %s", resp.Status)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName, nil
	}
	if cn, err := served(tlsClient(first)); err != nil || cn != "first" {
		t.Fatalf("first certificate: %q, %v", cn, err)
	}
	// Plain HTTP gets no answer from a TLS listener.
	if resp, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		t.Fatal("plain HTTP was served by the TLS listener")
	}

	// A renewal replaces both files; the next handshake after the check
	// interval serves it, without a restart.
	second := testcert.Write(t, certFile, keyFile, "second")
	future := time.Now().Add(time.Minute)
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, future, future); err != nil {
			t.Fatal(err)
		}
	}
	s.keys.mu.Lock()
	s.keys.lastCheck = time.Time{}
	s.keys.mu.Unlock()
	if cn, err := served(tlsClient(second)); err != nil || cn != "second" {
		t.Fatalf("renewed certificate: %q, %v", cn, err)
	}

	// A broken renewal keeps the working certificate.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := future.Add(time.Minute)
	if err := os.Chtimes(certFile, later, later); err != nil {
		t.Fatal(err)
	}
	s.keys.mu.Lock()
	s.keys.lastCheck = time.Time{}
	s.keys.mu.Unlock()
	if cn, err := served(tlsClient(second)); err != nil || cn != "second" {
		t.Fatalf("after a broken renewal: %q, %v", cn, err)
	}
}

func TestTLSRefusesBadKeyPair(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	testcert.Write(t, certFile, keyFile, "a")
	testcert.Write(t, filepath.Join(dir, "other.pem"), keyFile, "b") // key no longer matches cert.pem
	for name, o := range map[string]Options{
		"mismatched key": {TLSCertFile: certFile, TLSKeyFile: keyFile},
		"missing key":    {TLSCertFile: certFile},
		"missing file":   {TLSCertFile: filepath.Join(dir, "nope.pem"), TLSKeyFile: keyFile},
	} {
		o.Addr = "127.0.0.1:0"
		s := New(o)
		err := s.Start()
		if err == nil {
			s.Shutdown(context.Background())
			t.Fatalf("%s: started", name)
		}
		if !strings.Contains(err.Error(), "TLS") {
			t.Errorf("%s: error does not say TLS: %v", name, err)
		}
	}
}
