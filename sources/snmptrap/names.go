package snmptrap

import (
	"strings"

	"github.com/reconmon/recon/sources/snmp/mib"
)

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

// namer names trap OIDs and varbinds: from the loaded MIBs first, then the
// built-in table. A nil set uses the table alone.
type namer struct{ mibs *mib.Set }

// trap returns the name of a trap OID (MODULE::name), or the OID itself.
func (n namer) trap(oid string) string {
	if o, ok := n.mibs.Name(oid); ok {
		return o.String()
	}
	if name, ok := wellKnown[oid]; ok {
		return name
	}
	return oid
}

// varbind returns the label key for a varbind OID: the name of the object
// it is an instance of, without the instance suffix (ifIndex.3 → ifIndex),
// or the numeric OID as received.
func (n namer) varbind(oid string) string {
	if o, _, ok := n.mibs.Instance(oid); ok {
		return o.Name
	}
	for i := len(oid); i > 0; i = strings.LastIndexByte(oid[:i], '.') {
		if name, ok := wellKnown[oid[:i]]; ok && !strings.Contains(name, "::") {
			return name
		}
	}
	return oid
}
