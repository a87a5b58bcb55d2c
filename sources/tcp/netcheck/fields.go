// Package netcheck holds what the network checks (tcp, http) share: the TLS
// attribute group, the ip_version attribute, dialing with an address family
// preference, certificate expiry, and failure reasons worded for operators
// ("connection refused", "timeout after 5s").
package netcheck

import (
	"github.com/reconmon/recon/module"
)

// Attribute names of the shared groups.
const (
	FieldIPVersion          = "ip_version"
	FieldCAFile             = "ca_file"
	FieldInsecureSkipVerify = "insecure_skip_verify"
	FieldServerName         = "server_name"
	FieldCertFile           = "cert_file"
	FieldKeyFile            = "key_file"
	FieldCertWarningDays    = "cert_warning_days"
	FieldCertCriticalDays   = "cert_critical_days"
)

// IP version preferences.
const (
	IPAny = "any"
	IPv4  = "ipv4"
	IPv6  = "ipv6"
)

// IPVersionField declares ip_version.
func IPVersionField() module.Field {
	return module.String(FieldIPVersion,
		"Address family used to reach the target: `any` (the first address the resolver returns), `ipv4` or `ipv6` only.").
		Def(IPAny).OneOf(IPAny, IPv4, IPv6)
}

// TLSFields declares the TLS attribute group: trust, SNI, client
// certificate and certificate expiry thresholds.
func TLSFields() []module.Field {
	return []module.Field{
		module.String(FieldCAFile, "PEM file of CA certificates to trust instead of the system pool.").
			Example(`"/etc/recon/ca.pem"`).Adv(),
		module.Bool(FieldInsecureSkipVerify,
			"Accept any server certificate (expired, self-signed, wrong name). The expiry is still measured.").
			Def(false).Adv(),
		module.String(FieldServerName,
			"Name sent as SNI and verified against the certificate; defaults to the host being checked.").
			Example(`"www.example.com"`).Adv(),
		module.String(FieldCertFile, "PEM client certificate presented to the server (needs key_file).").Adv(),
		module.String(FieldKeyFile, "PEM private key of cert_file.").Adv(),
		module.Int(FieldCertWarningDays,
			"Status warning when the server certificate expires in fewer than this many days.").
			AtLeast(0).Example("30"),
		module.Int(FieldCertCriticalDays,
			"Status critical when the server certificate expires in fewer than this many days.").
			AtLeast(0).Example("7"),
	}
}

// ValidateTLS checks the cross-field rules of the TLS group.
func ValidateTLS(a module.Attrs) error {
	if a.Has(FieldCertFile) != a.Has(FieldKeyFile) {
		if a.Has(FieldCertFile) {
			return module.Errorf(FieldCertFile, "cert_file needs key_file")
		}
		return module.Errorf(FieldKeyFile, "key_file needs cert_file")
	}
	if a.Has(FieldCertWarningDays) && a.Has(FieldCertCriticalDays) &&
		a.Int(FieldCertCriticalDays) > a.Int(FieldCertWarningDays) {
		return module.Errorf(FieldCertCriticalDays, "cert_critical_days (%d) must not exceed cert_warning_days (%d)",
			a.Int(FieldCertCriticalDays), a.Int(FieldCertWarningDays))
	}
	return nil
}
