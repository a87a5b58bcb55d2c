package dns

import (
	"fmt"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// questionName returns the fully qualified name to ask about: the reverse
// name of an address for PTR, else query itself.
func questionName(query, qtype string) (string, error) {
	if qtype == "PTR" {
		if addr, err := netip.ParseAddr(query); err == nil {
			name, err := mdns.ReverseAddr(addr.String())
			if err != nil {
				return "", fmt.Errorf("reverse name of %s: %w", query, err)
			}
			return name, nil
		}
	}
	if _, ok := mdns.IsDomainName(query); !ok {
		return "", fmt.Errorf("%q is not a domain name", query)
	}
	return mdns.Fqdn(query), nil
}
