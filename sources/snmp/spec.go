// Package snmp is the snmp polling source: get and walk over SNMP v1, v2c
// and v3 (USM).
package snmp

import (
	"github.com/reconmon/recon/module"
)

// Field names shared with the snmp_trap listener.
const (
	FieldVersion       = "version"
	FieldCommunity     = "community"
	FieldSecLevel      = "security_level"
	FieldUsername      = "username"
	FieldAuthProtocol  = "auth_protocol"
	FieldAuthPassword  = "auth_password"
	FieldPrivProtocol  = "priv_protocol"
	FieldPrivPassword  = "priv_password"
	FieldContextName   = "context_name"
	FieldGet           = "get"
	FieldWalk          = "walk"
	FieldPort          = "port"
	FieldRetries       = "retries"
	FieldBulk          = "bulk"
	FieldMaxRepetition = "max_repetitions"
	FieldMaxOIDs       = "max_oids"
	FieldIndexLabel    = "index_label"
)

// Protocol names accepted for USM.
var (
	AuthProtocols  = []string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}
	PrivProtocols  = []string{"DES", "AES", "AES192", "AES256", "AES192C", "AES256C"}
	SecurityLevels = []string{"noAuthNoPriv", "authNoPriv", "authPriv"}
)

// USMFields declares the SNMPv3 user-based security attributes.
func USMFields() []module.Field {
	return []module.Field{
		module.String(FieldSecLevel, "SNMPv3 security level.").OneOf(SecurityLevels...).Def("authPriv"),
		module.String(FieldUsername, "SNMPv3 user name (required for version 3)."),
		module.String(FieldAuthProtocol, "SNMPv3 authentication protocol.").OneOf(AuthProtocols...).Def("SHA"),
		module.String(FieldAuthPassword, "SNMPv3 authentication passphrase (at least 8 characters); use env(\"...\") to keep it out of the file."),
		module.String(FieldPrivProtocol, "SNMPv3 privacy (encryption) protocol; AES192C/AES256C are the Cisco key-extension variants.").OneOf(PrivProtocols...).Def("AES"),
		module.String(FieldPrivPassword, "SNMPv3 privacy passphrase (at least 8 characters)."),
		module.String(FieldContextName, "SNMPv3 context name.").Adv(),
	}
}

// ValidateUSM checks the v3 attributes when version is 3.
func ValidateUSM(a module.Attrs) error {
	if a.String(FieldVersion) != "3" {
		return nil
	}
	if a.String(FieldUsername) == "" {
		return module.Errorf(FieldUsername, "version 3 needs a username")
	}
	level := a.String(FieldSecLevel)
	if level != "noAuthNoPriv" && len(a.String(FieldAuthPassword)) < 8 {
		return module.Errorf(FieldAuthPassword, "security level %s needs an auth_password of at least 8 characters", level)
	}
	if level == "authPriv" && len(a.String(FieldPrivPassword)) < 8 {
		return module.Errorf(FieldPrivPassword, "security level authPriv needs a priv_password of at least 8 characters")
	}
	return nil
}

// Spec declares the snmp source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "snmp",
	Summary: "SNMP polling (get and walk), v1/v2c/v3.",
	Description: "Polls an SNMP agent each period. Every value becomes a row: `metric` is the " +
		"name given in `get`/`walk` (or the OID), walked table columns carry the row index in " +
		"the label named by `index_label`, and the SNMP type is kept in the label `type` " +
		"(Counter32, Counter64, Gauge32, TimeTicks …) so that rules can take counter-aware rates. " +
		"OctetStrings that are printable go to `text`, others are hex. OIDs are numeric, or MIB names " +
		"(`IF-MIB::ifInOctets`, `sysUpTime.0`) resolved from the MIB files in `mib_dirs` when the " +
		"plan is compiled.",
	Fields: append([]module.Field{
		module.String(FieldVersion, "SNMP version.").OneOf("1", "2c", "3").Def("2c"),
		module.Int(FieldPort, "Agent UDP port.").Range(1, 65535).Def(161),
		module.String(FieldCommunity, "Community string for v1/v2c.").Def("public"),
		module.StringMap(FieldGet, "Scalars to get: metric name → OID (numeric, or a MIB name with its instance when mib_dirs is set).").Example(`{ uptime = "1.3.6.1.2.1.1.3.0" }`, `{ uptime = "SNMPv2-MIB::sysUpTime.0" }`),
		module.StringMap(FieldWalk, "Table columns to walk: metric name → column OID (numeric, or a MIB name when mib_dirs is set).").Example(`{ ifInOctets = "1.3.6.1.2.1.2.2.1.10" }`, `{ ifInOctets = "IF-MIB::ifInOctets" }`),
		module.Bool(FieldBulk, "Walk with GETBULK (v2c/v3).").Def(true),
		module.Int(FieldMaxRepetition, "GETBULK max-repetitions.").Range(1, 1000).Def(25).Adv(),
		module.Int(FieldMaxOIDs, "Most OIDs in one request; larger gets are split.").Range(1, 128).Def(60).Adv(),
		module.Int(FieldRetries, "Retries per request after a timeout.").Range(0, 10).Def(1),
		module.String(FieldIndexLabel, "Label holding a walked row's index (the OID suffix after the column).").Def("index"),
	}, append(MIBFields(), USMFields()...)...),
	Metrics: []module.Metric{
		{Name: "<get/walk name>", Summary: "one row per value; labels `type`, and `index_label` for walks"},
	},
	Example: `source core snmp {
  target    = "127.0.0.1"
  version   = "2c"
  community = env("SNMP_COMMUNITY", "public")
  get       = { uptime = "1.3.6.1.2.1.1.3.0" }
  walk      = { ifInOctets = "1.3.6.1.2.1.2.2.1.10", ifOutOctets = "1.3.6.1.2.1.2.2.1.16" }
}`,
	Validate: func(a module.Attrs) error {
		if len(a.Map(FieldGet)) == 0 && len(a.Map(FieldWalk)) == 0 {
			return module.Errorf(FieldGet, "nothing to poll: set get and/or walk")
		}
		set, err := LoadMIBs(a)
		if err != nil {
			return err
		}
		for _, field := range []string{FieldGet, FieldWalk} {
			if _, err := objects(a.Map(field), set); err != nil {
				return module.Errorf(field, "%v", err)
			}
		}
		return ValidateUSM(a)
	},
}
