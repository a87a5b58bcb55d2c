package snmp

import (
	"fmt"

	"github.com/gosnmp/gosnmp"
)

var authProtocols = map[string]gosnmp.SnmpV3AuthProtocol{
	"MD5": gosnmp.MD5, "SHA": gosnmp.SHA, "SHA224": gosnmp.SHA224,
	"SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512,
}

var privProtocols = map[string]gosnmp.SnmpV3PrivProtocol{
	"DES": gosnmp.DES, "AES": gosnmp.AES, "AES192": gosnmp.AES192,
	"AES256": gosnmp.AES256, "AES192C": gosnmp.AES192C, "AES256C": gosnmp.AES256C,
}

// User is one SNMPv3 USM user.
type User struct {
	Name, Level            string
	AuthProtocol, AuthPass string
	PrivProtocol, PrivPass string
}

// Flags returns the message flags the user's security level requires.
func (u User) Flags() (gosnmp.SnmpV3MsgFlags, error) {
	switch u.Level {
	case "noAuthNoPriv":
		return gosnmp.NoAuthNoPriv, nil
	case "authNoPriv":
		return gosnmp.AuthNoPriv, nil
	case "authPriv", "":
		return gosnmp.AuthPriv, nil
	}
	return 0, fmt.Errorf("unknown security level %q (want noAuthNoPriv, authNoPriv or authPriv)", u.Level)
}

// Params returns gosnmp's USM parameters for the user.
func (u User) Params() (*gosnmp.UsmSecurityParameters, error) {
	flags, err := u.Flags()
	if err != nil {
		return nil, err
	}
	p := &gosnmp.UsmSecurityParameters{UserName: u.Name}
	if flags&gosnmp.AuthNoPriv != 0 {
		proto, ok := authProtocols[u.AuthProtocol]
		if !ok {
			return nil, fmt.Errorf("user %s: unknown auth protocol %q", u.Name, u.AuthProtocol)
		}
		p.AuthenticationProtocol, p.AuthenticationPassphrase = proto, u.AuthPass
	}
	if flags&gosnmp.AuthPriv == gosnmp.AuthPriv {
		proto, ok := privProtocols[u.PrivProtocol]
		if !ok {
			return nil, fmt.Errorf("user %s: unknown priv protocol %q", u.Name, u.PrivProtocol)
		}
		p.PrivacyProtocol, p.PrivacyPassphrase = proto, u.PrivPass
	}
	return p, nil
}
