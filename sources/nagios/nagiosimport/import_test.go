package nagiosimport

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/dsl"
	"github.com/reconmon/recon/module"
	"github.com/reconmon/recon/plan"
	"github.com/reconmon/recon/sources/nagios"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const site = "testdata/site/nagios.cfg"

// compile compiles generated .recon text with the real compiler.
func compile(t *testing.T, text []byte) *plan.Plan {
	t.Helper()
	p, diags := compiler.CompileSource("site.recon", text, compiler.Options{})
	if diags.HasErrors() {
		t.Fatalf("generated file does not compile:\n%v", diags.Error())
	}
	return p
}

func TestSiteGolden(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{site}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	golden := "testdata/site.recon.golden"
	if *update {
		if err := os.WriteFile(golden, stdout.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Fatalf("output differs from %s (run with -update after checking the diff):\n%s", golden, stdout.String())
	}
	// Canonical: reconc fmt leaves it as it is.
	f, diags := dsl.Parse("site.recon", stdout.Bytes())
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if formatted := dsl.Format(f); !bytes.Equal(formatted, stdout.Bytes()) {
		t.Errorf("output is not in reconc fmt's canonical form:\n%s", formatted)
	}
	// Stable: a second run gives the same bytes.
	var again bytes.Buffer
	Main([]string{site}, &again, &bytes.Buffer{})
	if !bytes.Equal(again.Bytes(), stdout.Bytes()) {
		t.Fatal("two runs gave different output")
	}
}

func TestSiteCompiles(t *testing.T) {
	text, warnings, err := Convert([]string{site}, Options{Pipeline: "dc1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings on a clean site: %q", warnings)
	}
	p := compile(t, text)
	if p.Pipeline != "dc1" {
		t.Errorf("pipeline = %q", p.Pipeline)
	}
	byName := map[string]plan.Source{}
	for _, s := range p.Sources {
		if s.Module != "nagios" {
			t.Errorf("source %s has module %s", s.Name, s.Module)
		}
		byName[s.Name] = s
	}
	// 35 hosts: 34 host checks (legacy-box has check_interval 0), plus
	// services; the commented-out ones are not sources.
	if n := len(p.Sources); n < 150 {
		t.Errorf("%d sources, want the whole site (≥ 150)", n)
	}
	cases := []struct {
		name    string
		target  string
		command []string
		shell   bool
		period  string
		timeout string
	}{
		// Template chain linux-server → generic-host, $USER1$ from resource.cfg.
		{"app01_host", "10.0.2.1", []string{"/usr/lib/nagios/plugins/check_ping", "-H", "$HOSTADDRESS$", "-w", "3000.0,80%", "-c", "5000.0,100%", "-p", "5"}, false, "5m0s", "30s"},
		// Hostgroup service; the host-specific definition overrides it on app03.
		{"app01_app_port_8080", "10.0.2.1", []string{"/usr/lib/nagios/plugins/check_tcp", "-H", "$HOSTADDRESS$", "-p", "8080", "-w", "0.2", "-c", "1"}, false, "10m0s", "1m0s"},
		{"app03_app_port_8080", "10.0.2.3", []string{"/usr/lib/nagios/plugins/check_tcp", "-H", "$HOSTADDRESS$", "-p", "8081"}, false, "10m0s", "1m0s"},
		// Multiple inheritance: fast-service's 0.5 × 60 s wins; the timeout is lowered below the period.
		{"web07_example_com_http", "10.0.1.7", []string{"/usr/lib/nagios/plugins/check_http", "-I", "$HOSTADDRESS$", "-u", "/health", "-e", "200"}, false, "30s", "22s"},
		// Custom host variables through the db-server template.
		{"db04_mysql", "10.0.3.4", []string{"/usr/lib/nagios/plugins/check_mysql", "-H", "$HOSTADDRESS$", "-u", "monitor", "-p", "s3cret"}, false, "10m0s", "1m0s"},
		// A pipe needs the shell.
		{"mail01_mail_queue", "10.0.4.1", []string{"/usr/bin/mailq | /usr/local/lib/nagios/plugins/check_mailq_stdin -w 100 -c 500"}, true, "10m0s", "1m0s"},
		// $HOSTNAME$ and $SERVICEDESC$ resolved at import, quoted argument kept whole.
		{"lb02_haproxy_backends", "10.0.5.2", []string{"/usr/local/lib/nagios/plugins/check_haproxy", "-u", "http://$HOSTADDRESS$:8404/stats", "-U", "monitor", "--name", "lb02 HAProxy backends"}, false, "10m0s", "1m0s"},
		// Nested hostgroup frontends = web-servers + load-balancers.
		{"lb01_nrpe_procs", "10.0.5.1", nil, false, "10m0s", "1m0s"},
		{"web10_example_com_nrpe_procs", "10.0.1.10", nil, false, "10m0s", "1m0s"},
	}
	for _, c := range cases {
		s, ok := byName[c.name]
		if !ok {
			t.Errorf("source %s missing", c.name)
			continue
		}
		a, err := module.DecodeAttrs(nagios.Spec, s.Attrs)
		if err != nil {
			t.Fatal(err)
		}
		if s.Target != c.target || s.Period.D().String() != c.period || s.Timeout.D().String() != c.timeout || a.Bool(nagios.FieldShell) != c.shell {
			t.Errorf("%s: target %s period %s timeout %s shell %v; want %s %s %s %v",
				c.name, s.Target, s.Period.D(), s.Timeout.D(), a.Bool(nagios.FieldShell), c.target, c.period, c.timeout, c.shell)
		}
		if c.command != nil && !slices.Equal(a.Strings(nagios.FieldCommand), c.command) {
			t.Errorf("%s: command %q, want %q", c.name, a.Strings(nagios.FieldCommand), c.command)
		}
	}
	for _, name := range []string{
		"db01_ssh",                     // linux-servers,!databases… SSH is on all linux servers
		"web01_example_com_shop_vhost", // direct host_name list
	} {
		if _, ok := byName[name]; !ok {
			t.Errorf("source %s missing", name)
		}
	}
	for _, name := range []string{
		"db01_root_partition_2",   // databases get their own Root Partition, not a duplicate
		"core_sw1_ssh",            // !switches
		"legacy_box_host",         // check_interval 0
		"core_sw1_uplink_traffic", // passive
		"core_sw2_state_echo",     // $SERVICESTATE$
		"app01_undefined_command", // no such command
	} {
		if _, ok := byName[name]; ok {
			t.Errorf("source %s should not exist", name)
		}
	}
	// The databases' own Root Partition definition wins over the excluded one.
	a, _ := module.DecodeAttrs(nagios.Spec, byName["db02_root_partition"].Attrs)
	if got := a.Strings(nagios.FieldCommand); !slices.Equal(got, []string{"/usr/lib/nagios/plugins/check_disk", "-w", "10%", "-c", "5%", "-p", "/"}) {
		t.Errorf("db02 root partition command %q", got)
	}
	for _, want := range []string{
		"# not converted: source core_sw2_state_echo: command check_state_echo (objects/commands.cfg:61): macros with no Recon equivalent: $SERVICESTATE$",
		"# not converted: source legacy_box_host: check_interval 0: not scheduled",
		`# not converted: source app01_undefined_command: command "check_nothing" (objects/services.cfg:106) is not defined`,
		"# not converted: define contact oncall (objects/contacts.cfg:1)",
		"# not converted: define timeperiod workhours (objects/timeperiods.cfg:12)",
		"# not converted: event_handler restart-postfix (objects/services.cfg:74)",
		"#   notification_interval (48, objects/templates.cfg:20)",
	} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestMainFlagsAndAtomicOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "site.recon")
	objects := filepath.Join(dir, "objects.cfg")
	resource := filepath.Join(dir, "resource.cfg")
	if err := os.WriteFile(resource, []byte("$USER1$=/opt/plugins\n$USER5$=${HOME}/x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := `define command {
	command_name check_x
	command_line $USER1$/check_x -H $HOSTADDRESS$ -a '$ARG1$' -b '$USER5$' -r '^OK$$' -q "a b"
}
define host {
	host_name  Mixed Case.host ; comment
	address    127.0.0.1
}
define service {
	host_name            Mixed Case.host
	service_description  Weird / name
	check_command        check_x!one two
	check_interval       2
}
define service {
	host_name            Mixed Case.host
	service_description  weird name
	check_command        check_x!x
}
`
	if err := os.WriteFile(objects, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Main([]string{objects, "-o", out, "--pipeline", "lab", "--resource", resource}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout not empty with -o: %q", stdout.String())
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("temp files left: %v", entries)
	}
	p := compile(t, text)
	if p.Pipeline != "lab" || len(p.Sources) != 2 {
		t.Fatalf("plan: pipeline %q, %d sources:\n%s", p.Pipeline, len(p.Sources), text)
	}
	names := []string{p.Sources[0].Name, p.Sources[1].Name}
	slices.Sort(names)
	if !slices.Equal(names, []string{"mixed_case_host_weird_name", "mixed_case_host_weird_name_2"}) {
		t.Fatalf("names %v, want sanitised and unique", names)
	}
	for _, s := range p.Sources {
		a, err := module.DecodeAttrs(nagios.Spec, s.Attrs)
		if err != nil {
			t.Fatal(err)
		}
		cmd := a.Strings(nagios.FieldCommand)
		// "${HOME}" must survive the language's interpolation, '$' the
		// runtime's macros: $$ is a literal dollar for the nagios module.
		want := []string{"/opt/plugins/check_x", "-H", "$HOSTADDRESS$", "-a", "", "-b", "$${HOME}/x", "-r", "^OK$$", "-q", "a b"}
		if s.Period.D().String() == "2m0s" {
			want[4] = "one two"
		} else {
			want[4] = "x"
		}
		if !slices.Equal(cmd, want) {
			t.Errorf("%s: command %q, want %q", s.Name, cmd, want)
		}
		if err := nagios.Spec.Validate(a); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
	}

	// Usage errors.
	if code := Main(nil, &stdout, &stderr); code != 2 {
		t.Errorf("no files: exit %d, want 2", code)
	}
	if code := Main([]string{"-bogus"}, &stdout, &stderr); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
	stderr.Reset()
	if code := Main([]string{filepath.Join(dir, "missing.cfg")}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "missing.cfg") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr.String())
	}
}

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in    string
		words []string
		ok    bool
	}{
		{`check_x -a 'b c' -d "e f" g\ h`, []string{"check_x", "-a", "b c", "-d", "e f", "g h"}, true},
		{`check_x -r '^a$'`, []string{"check_x", "-r", "^a$"}, true},
		{`check_x a#b`, []string{"check_x", "a#b"}, true},
		{`a | b`, nil, false},
		{`a > /dev/null`, nil, false},
		{`a "$HOME"`, nil, false},
		{`a 'open`, nil, false},
		{`a *.log`, nil, false},
		{``, nil, false},
	}
	for _, c := range cases {
		w, ok := splitWords(c.in)
		if ok != c.ok || !slices.Equal(w, c.words) {
			t.Errorf("splitWords(%q) = %q %v, want %q %v", c.in, w, ok, c.words, c.ok)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"web01.example.com_HTTP": "web01_example_com_http",
		"  --Disk /var-- ":       "disk_var",
		"9lives":                 "n_9lives",
		"":                       "n_",
		"not":                    "not_",
		"été":                    "t",
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzConvert(f *testing.F) {
	for _, p := range []string{"testdata/site/objects/templates.cfg", "testdata/site/objects/services.cfg", "testdata/site/objects/commands.cfg"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("define command{\ncommand_name c\ncommand_line $USER1$/x $ARG1$ '${a}' \"$$\" \\\n}\ndefine host{\nhost_name h\ncheck_command c!a!b\ncheck_interval 0.001\n}\n"))
	f.Add([]byte("define host {\nuse a,b\nname a\nhost_name \"q\"\n}\ndefine host{\nname b\nuse a\nregister 0}\n"))
	dir := f.TempDir() // no file is read from it: includes are not inputs here
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Contains(data, []byte("cfg_")) || bytes.Contains(data, []byte("resource_file")) {
			return // includes would read the machine's files: not an input for this target
		}
		c := newConfig()
		if err := c.read("fuzz.cfg", dir, bytes.NewReader(data)); err != nil {
			return // e.g. a line longer than the scanner's limit
		}
		cv := newConverter(c, Options{Pipeline: "fuzz"})
		cv.run()
		compile(t, cv.render())
	})
}
