// Package snmptrap is the snmp_trap listener: SNMP v1/v2c/v3 traps and
// informs, each turned into rows.
package snmptrap

import (
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/snmp"
)

// Field names.
const (
	FieldListen      = "listen"
	FieldCommunities = "communities"
	FieldVersions    = "versions"
	FieldUsers       = "v3_users"
	FieldEngineID    = "engine_id"
	FieldReadBuffer  = "read_buffer"
	FieldWorkers     = "workers"
)

// Spec declares the snmp_trap listener.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "snmp_trap",
	Passive: true,
	Summary: "SNMP trap and inform listener (v1, v2c, v3 USM).",
	Description: "Listens for traps and informs. Each trap yields one row with `metric` = the trap " +
		"OID (named `MODULE::name` from the MIBs in `mib_dirs`, or the built-in names of the " +
		"standard traps), `value` = 1, `target` = the sending agent (agent-addr for v1), and " +
		"every varbind as a label: the object's name without its instance (`ifIndex`), or the " +
		"numeric OID as received when no MIB names it. Traps with a " +
		"community or v3 user that is not configured are dropped and counted, never archived.",
	Fields: append([]module.Field{
		module.String(FieldListen, "UDP address to listen on.").Def("0.0.0.0:162").Example(`"127.0.0.1:1162"`),
		module.StringList(FieldCommunities, "Accepted v1/v2c communities.").Def([]string{"public"}),
		module.StringList(FieldVersions, "Accepted SNMP versions.").OneOf("1", "2c", "3").Def([]string{"1", "2c", "3"}),
		module.StringList(FieldUsers, "SNMPv3 users as NAME:LEVEL:AUTHPROTO:AUTHPASS:PRIVPROTO:PRIVPASS (LEVEL noAuthNoPriv|authNoPriv|authPriv; trailing parts may be omitted for lower levels).").Example(`["ops:authPriv:SHA:authpass1:AES:privpass1"]`),
		module.String(FieldEngineID, "Local engine ID (hex) used to answer v3 informs; default derived from the node name.").Adv(),
		module.Size(FieldReadBuffer, "Socket receive buffer (SO_RCVBUF, SO_RCVBUFFORCE when root): the headroom for trap bursts.").Def(int64(16 << 20)).Adv(),
		module.Int(FieldWorkers, "Goroutines decoding packets off the socket goroutine.").Range(1, 64).Def(2).Adv(),
	}, snmp.MIBFields()...),
	Metrics: []module.Metric{
		{Name: "<trap OID>", Summary: "one row per trap; varbinds as labels"},
	},
	Example: `source traps snmp_trap {
  listen      = "127.0.0.1:1162"
  communities = ["public"]
}`,
}
