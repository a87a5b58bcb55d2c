// Package nagios is the nagios source module: it runs a Nagios/Monitoring
// Plugins plugin unchanged, maps its exit code to the run status and keeps
// every perfdata value as a sample row.
package nagios

import (
	"github.com/reconmon/recon/module"
)

// Attribute names.
const (
	FieldCommand       = "command"
	FieldShell         = "shell"
	FieldEnv           = "env"
	FieldDir           = "dir"
	FieldUser          = "user"
	FieldMacros        = "macros"
	FieldTimeoutStatus = "timeout_status"
	FieldMaxOutput     = "max_output"
	FieldKillGrace     = "kill_grace"
)

// Metric names (the runtime adds status, available and duration; every
// perfdata value is a row named after its perfdata label).
const (
	MetricLongOutput      = "long_output"
	MetricPerfdataErrors  = "perfdata_errors"
	MetricOutputDiscarded = "output_discarded"
)

// Label keys on perfdata rows.
const (
	LabelWarn           = "warn"
	LabelCrit           = "crit"
	LabelMin            = "min"
	LabelMax            = "max"
	LabelNormalizedFrom = "normalized_from"
)

// DefaultMaxOutput is the default cap on the plugin output kept per run.
const DefaultMaxOutput = 64 << 10

// Spec declares the nagios source.
var Spec = &module.Spec{
	Kind:    module.KindSource,
	Name:    "nagios",
	Summary: "Runs a Nagios/Monitoring Plugins plugin and keeps its status, output and every perfdata value.",
	Description: `Runs ` + "`command`" + ` (an argv list, no shell) every period, exactly as Nagios would, and maps
the exit code to the run status: 0 ok, 1 warning, 2 critical, 3 unknown; any other code
(or a plugin killed by a signal) is unknown with the code in the message. The first output
line (before ` + "`|`" + `) is the status message; the following lines are kept as one
` + "`long_output`" + ` text row; perfdata after ` + "`|`" + ` on the first line and on later lines
becomes one row per value: ` + "`metric`" + ` = the perfdata label, ` + "`value`, `unit`" + ` as reported,
and the labels ` + "`warn`, `crit`, `min`, `max`" + ` (Nagios range syntax, kept as written).
Values in ` + "`ms`, `us`, `KB`, `MB`, `GB`, `TB`" + ` get a second row with the same metric in the
base unit (` + "`s`" + ` or ` + "`B`" + `, 1 KB = 1024 B) and the label ` + "`normalized_from`" + `: filter on
` + "`unit = 's'`" + ` or ` + "`unit = 'B'`" + ` to compare plugins that report differently.

Macros, Nagios style, are replaced in ` + "`command`" + ` and ` + "`env`" + ` values when the source is
built: ` + "`$TARGET$`" + ` and ` + "`$HOSTADDRESS$`" + ` (the target), ` + "`$HOSTNAME$`" + ` (the target),
` + "`$SOURCE$`, `$PIPELINE$`, `$NODE$`" + `, ` + "`$TIMEOUT$`" + ` (whole seconds), every key of
` + "`macros`" + `, and ` + "`$$`" + ` for a literal dollar. (` + "`${name}`" + ` is the language's own
compile-time interpolation of constants; the ` + "`$NAME$`" + ` form is left for the runtime.)
A command name without a slash is looked up in /usr/lib/nagios/plugins,
/usr/lib/monitoring-plugins, then PATH.

The plugin runs in its own process group with a clean environment (PATH, LANG=C, plus
` + "`env`" + `). At the timeout the whole group gets SIGTERM, then SIGKILL after
` + "`kill_grace`" + `; the run is ` + "`timeout_status`" + ` with the reason. Output beyond
` + "`max_output`" + ` is read and discarded (the plugin never blocks on a full pipe) and
counted in ` + "`output_discarded`" + `. Unparseable perfdata never fails the run: the status row
is written and ` + "`perfdata_errors`" + ` counts what was skipped, with the first problem as text.
Available means the plugin gave a verdict (exit code 0, 1 or 2).`,
	Fields: []module.Field{
		module.StringList(FieldCommand, "Plugin and arguments (argv, no shell); with shell = true a single command line for /bin/sh -c.").
			Req().
			Example(`["check_tcp", "-H", "$HOSTADDRESS$", "-p", "22"]`, `["/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-c", "5%", "-p", "/"]`),
		module.Bool(FieldShell, "Run command (a single string) with /bin/sh -c.").Def(false),
		module.StringMap(FieldEnv, "Extra environment variables for the plugin (macros are replaced in values).").
			Example(`{ LC_ALL = "C" }`),
		module.String(FieldDir, "Working directory of the plugin (default: recond's).").Adv(),
		module.String(FieldUser, "Run the plugin as this user (and its primary group); recond must run as root.").
			Example(`"nagios"`).Adv(),
		module.StringMap(FieldMacros, "Extra $NAME$ macros for command and env (names: A-Z, 0-9, _).").
			Example(`{ WARN = "80", CRIT = "90" }`),
		module.String(FieldTimeoutStatus, "Status of a run killed at the timeout.").
			Def("unknown").OneOf("unknown", "critical"),
		module.Size(FieldMaxOutput, "Plugin output (stdout) kept per run; the rest is read and discarded.").
			Def(DefaultMaxOutput).Range(1<<10, 16<<20).Adv(),
		module.Duration(FieldKillGrace, "Time between SIGTERM and SIGKILL to the plugin's process group at the timeout.").
			Def(defaultKillGrace).Range(0, 60).Adv(),
	},
	Metrics: []module.Metric{
		{Name: "<perfdata label>", Unit: "as reported", Summary: "One row per perfdata value; labels warn, crit, min, max; a second row in s or B for ms, us, KB, MB, GB, TB (label normalized_from)."},
		{Name: MetricLongOutput, Summary: "Text: the plugin's output lines after the first (perfdata removed), when there are any."},
		{Name: MetricPerfdataErrors, Summary: "Perfdata items skipped as unparseable (only when > 0); text: the first problem."},
		{Name: MetricOutputDiscarded, Unit: "B", Summary: "Output bytes discarded beyond max_output (only when > 0)."},
	},
	Example: `pipeline "plugins"

source root_disk nagios {
  target  = "127.0.0.1"
  command = ["/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-c", "5%", "-p", "/"]
  period  = 5m
}

source ssh nagios {
  target  = "127.0.0.1"
  command = ["check_tcp", "-H", "$HOSTADDRESS$", "-p", "$PORT$", "-t", "$TIMEOUT$"]
  macros  = { PORT = "22" }
  timeout = 10s
  timeout_status = "critical"
}

source load nagios {
  target  = "127.0.0.1"
  command = "check_load -r -w 4,3,2 -c 8,6,4 2>&1"
  shell   = true
  env     = { LC_ALL = "C" }
}
`,
	Validate: validate,
	NewCheck: NewCheck,
}
