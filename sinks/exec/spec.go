// Package exec is the exec sink module: a command run once per alert
// transition, with the event as JSON on its standard input and in its
// environment.
package exec

import (
	"time"

	"github.com/reconmon/recon/module"
)

// Attribute names of the exec sink.
const (
	FieldCommand     = "command"
	FieldEnv         = "env"
	FieldTimeout     = "timeout"
	FieldMaxAttempts = "max_attempts"
	FieldBackoff     = "backoff"
)

// Spec declares the exec sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "exec",
	Summary: "Alert notifications passed to a command.",
	Description: "Runs `command` (an argv list, no shell) once per alert transition of the rules that " +
		"name the sink in `notify`. The alert event (design §3.2) is written as JSON to the command's " +
		"standard input and is also in its environment: `RECON_ALERT` (the JSON), `RECON_RULE`, " +
		"`RECON_SEVERITY`, `RECON_PREVIOUS`, `RECON_FINGERPRINT`, `RECON_VALUE`, `RECON_MESSAGE`, " +
		"`RECON_TIME` (RFC 3339), `RECON_GROUP` (`k=v,k=v`), plus `env`. An exit status other than 0, " +
		"or a run longer than `timeout` (the process is killed), is retried after `backoff`, doubling, " +
		"at most `max_attempts` times in all. Output of the command is logged.",
	Fields: []module.Field{
		module.StringList(FieldCommand, "Program and arguments; the program is looked up in PATH when it has no slash.").Req().
			Example(`["/usr/local/bin/page-oncall", "--team", "ops"]`),
		module.StringMap(FieldEnv, "Extra environment variables of the command.").
			Example(`{ PAGER_TOKEN = env("PAGER_TOKEN") }`),
		module.Duration(FieldTimeout, "Time limit of one run; the process is killed after it.").
			Def(30*time.Second).Range(0.001, 3600),
		module.Int(FieldMaxAttempts, "Runs per notification, the first included.").Def(3).Range(1, 100),
		module.Duration(FieldBackoff, "Wait before the first retry; doubled after each failed run.").
			Def(time.Second).Range(0.001, 3600).Adv(),
	},
	Validate: validate,
	Example: `sink page exec {
  command = ["/usr/bin/logger", "-t", "recon"]
  timeout = 10s
}`,
}

func validate(a module.Attrs) error {
	cmd := a.Strings(FieldCommand)
	if len(cmd) == 0 || cmd[0] == "" {
		return module.Errorf(FieldCommand, "command must name a program")
	}
	return nil
}
