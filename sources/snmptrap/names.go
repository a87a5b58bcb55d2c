package snmptrap

import "strings"

// wellKnown names the objects of the standard traps (SNMPv2-MIB, IF-MIB),
// so that the commonest rules read `metric == "IF-MIB::linkDown"` and
// `labels["ifIndex"]` without any MIB files loaded.
var wellKnown = map[string]string{
	"1.3.6.1.6.3.1.1.5.1":    "SNMPv2-MIB::coldStart",
	"1.3.6.1.6.3.1.1.5.2":    "SNMPv2-MIB::warmStart",
	"1.3.6.1.6.3.1.1.5.3":    "IF-MIB::linkDown",
	"1.3.6.1.6.3.1.1.5.4":    "IF-MIB::linkUp",
	"1.3.6.1.6.3.1.1.5.5":    "SNMPv2-MIB::authenticationFailure",
	"1.3.6.1.2.1.1.3":        "sysUpTime",
	"1.3.6.1.6.3.1.1.4.1":    "snmpTrapOID",
	"1.3.6.1.6.3.1.1.4.3":    "snmpTrapEnterprise",
	"1.3.6.1.2.1.1.5":        "sysName",
	"1.3.6.1.2.1.2.2.1.1":    "ifIndex",
	"1.3.6.1.2.1.2.2.1.2":    "ifDescr",
	"1.3.6.1.2.1.2.2.1.7":    "ifAdminStatus",
	"1.3.6.1.2.1.2.2.1.8":    "ifOperStatus",
	"1.3.6.1.2.1.31.1.1.1.1": "ifName",
}

// trapName returns the name of a trap OID, or the OID itself.
func trapName(oid string) string {
	if n, ok := wellKnown[oid]; ok {
		return n
	}
	return oid
}

// varbindName returns the label key for a varbind OID: a well-known
// object's name with its instance suffix dropped (ifIndex.3 → ifIndex), or
// the numeric OID as received.
func varbindName(oid string) string {
	for i := len(oid); i > 0; i = strings.LastIndexByte(oid[:i], '.') {
		if n, ok := wellKnown[oid[:i]]; ok && !strings.Contains(n, "::") {
			return n
		}
	}
	return oid
}
