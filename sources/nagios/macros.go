package nagios

import (
	"fmt"
	"strings"
	"time"

	"github.com/reconmon/recon/module"
)

const defaultKillGrace = time.Second

// Built-in macro names.
const (
	macroTarget      = "TARGET"
	macroHostAddress = "HOSTADDRESS"
	macroHostName    = "HOSTNAME"
	macroSource      = "SOURCE"
	macroPipeline    = "PIPELINE"
	macroNode        = "NODE"
	macroTimeout     = "TIMEOUT"
)

var builtinMacros = []string{macroTarget, macroHostAddress, macroHostName, macroSource, macroPipeline, macroNode, macroTimeout}

// isMacroName reports whether s is a valid macro name: A-Z, 0-9 and _.
func isMacroName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// expandMacros replaces $NAME$ with lookup(NAME) and $$ with $. A '$' that
// does not start a well-formed macro ($ followed by a name and a closing $)
// is kept literally, so regexps such as "^ok$" pass through. An unknown
// well-formed macro is an error.
func expandMacros(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			b.WriteByte('$')
			i += 2
			continue
		}
		end := strings.IndexByte(s[i+1:], '$')
		if end < 0 || !isMacroName(s[i+1:i+1+end]) {
			b.WriteByte('$')
			i++
			continue
		}
		name := s[i+1 : i+1+end]
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("unknown macro $%s$ (known: %s, macros keys; write $$ for a literal $)", name, knownMacros())
		}
		b.WriteString(v)
		i += end + 2
	}
	return b.String(), nil
}

func knownMacros() string {
	parts := make([]string, len(builtinMacros))
	for i, m := range builtinMacros {
		parts[i] = "$" + m + "$"
	}
	return strings.Join(parts, " ")
}

// macroLookup returns the lookup for an instance's macros. user holds the
// macros attribute; built-ins cannot be overridden.
func macroLookup(env module.Env, user map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		switch name {
		case macroTarget, macroHostAddress, macroHostName:
			return env.Target, true
		case macroSource:
			return env.Source, true
		case macroPipeline:
			return env.Pipeline, true
		case macroNode:
			return env.Node, true
		case macroTimeout:
			return fmt.Sprint(int64(env.Timeout / time.Second)), true
		}
		v, ok := user[name]
		return v, ok
	}
}

// validate checks what spans attributes: a shell command is one string,
// macro names are well formed and every macro used is defined.
func validate(a module.Attrs) error {
	cmd := a.Strings(FieldCommand)
	if len(cmd) == 0 || cmd[0] == "" {
		return module.Errorf(FieldCommand, "command needs at least the plugin to run")
	}
	if a.Bool(FieldShell) && len(cmd) != 1 {
		return module.Errorf(FieldCommand, "with shell = true, command is a single command line string (got %d elements)", len(cmd))
	}
	user := a.Map(FieldMacros)
	for k := range user {
		if !isMacroName(k) {
			return module.Errorf(FieldMacros, "macro name %q: use A-Z, 0-9 and _ only", k)
		}
		for _, b := range builtinMacros {
			if k == b {
				return module.Errorf(FieldMacros, "macro %s is built in and cannot be redefined", k)
			}
		}
	}
	// Validation runs before the runtime values exist: check with placeholders.
	lookup := macroLookup(module.Env{}, user)
	for _, arg := range cmd {
		if _, err := expandMacros(arg, lookup); err != nil {
			return module.Errorf(FieldCommand, "%v", err)
		}
	}
	for k, v := range a.Map(FieldEnv) {
		if _, err := expandMacros(v, lookup); err != nil {
			return module.Errorf(FieldEnv, "%s: %v", k, err)
		}
	}
	return nil
}
