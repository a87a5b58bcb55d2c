package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// keyPairCheckEvery bounds how often a handshake looks at the files' times.
const keyPairCheckEvery = 10 * time.Second

// keyPair serves a certificate from PEM files and reloads it when either
// file's modification time changes. A reload that fails (a half-written
// renewal, say) keeps the previous pair and logs why.
type keyPair struct {
	certFile, keyFile string
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certMod   time.Time
	keyMod    time.Time
	lastCheck time.Time
}

func newKeyPair(certFile, keyFile string, log *slog.Logger) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile, log: log}
	if err := kp.load(); err != nil {
		return nil, err
	}
	kp.lastCheck = time.Now()
	return kp, nil
}

func (kp *keyPair) load() error {
	cm, km, err := kp.modTimes()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("TLS key pair %s, %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cert, kp.certMod, kp.keyMod = &cert, cm, km
	return nil
}

func (kp *keyPair) modTimes() (cert, key time.Time, err error) {
	ci, err := os.Stat(kp.certFile)
	if err != nil {
		return cert, key, fmt.Errorf("TLS certificate: %w", err)
	}
	ki, err := os.Stat(kp.keyFile)
	if err != nil {
		return cert, key, fmt.Errorf("TLS key: %w", err)
	}
	return ci.ModTime(), ki.ModTime(), nil
}

// get is tls.Config.GetCertificate.
func (kp *keyPair) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if now := time.Now(); now.Sub(kp.lastCheck) >= keyPairCheckEvery {
		kp.lastCheck = now
		cm, km, err := kp.modTimes()
		switch {
		case err != nil:
			kp.log.Warn("TLS files unreadable; serving the loaded certificate", "err", err)
		case !cm.Equal(kp.certMod) || !km.Equal(kp.keyMod):
			if err := kp.load(); err != nil {
				kp.log.Warn("TLS reload failed; serving the previous certificate", "err", err)
			} else {
				kp.log.Info("TLS certificate reloaded", "cert", kp.certFile)
			}
		}
	}
	return kp.cert, nil
}
