package snmp

import (
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/sources/snmp/mib"
)

// MIB field names, shared with the snmp_trap listener.
const (
	FieldMIBDirs = "mib_dirs"
	FieldMIBs    = "mibs"
)

// MIBFields declares where MIB files are read from.
func MIBFields() []module.Field {
	return []module.Field{
		module.StringList(FieldMIBDirs, "Directories searched, in order, for MIB files; relative paths resolve against the working directory of reconc and recond. Without them OIDs are numeric.").Example(`["/usr/share/snmp/mibs"]`),
		module.StringList(FieldMIBs, "MIB modules to load, with what they import (default: every MIB file in mib_dirs). An OID defined by several modules is named after the SMIv2 one.").Example(`["IF-MIB", "SNMPv2-MIB"]`),
	}
}

// LoadMIBs loads the MIB modules named by an instance's attributes. It
// returns a nil set, which resolves numeric OIDs only, when mib_dirs is
// empty.
func LoadMIBs(a module.Attrs) (*mib.Set, error) {
	dirs, mods := a.Strings(FieldMIBDirs), a.Strings(FieldMIBs)
	if len(dirs) == 0 {
		if len(mods) > 0 {
			return nil, module.Errorf(FieldMIBs, "mibs %v need mib_dirs to be loaded from", mods)
		}
		return nil, nil
	}
	set, err := mib.Cached(dirs, mods)
	if err != nil {
		field := FieldMIBDirs
		if len(mods) > 0 {
			field = FieldMIBs
		}
		return nil, module.Errorf(field, "%v", err)
	}
	return set, nil
}
