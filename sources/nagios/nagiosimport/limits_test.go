package nagiosimport

import (
	"fmt"
	"strings"
	"testing"
)

// convertText converts one object file's text with the given limits.
func convertText(t *testing.T, text string, lim limits) *converter {
	t.Helper()
	c := newConfig()
	if err := c.read("limits.cfg", t.TempDir(), strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	cv := newConverter(c, Options{Pipeline: "limits"})
	cv.limits = lim
	cv.run()
	return cv
}

func hasNote(cv *converter, substr string) bool {
	for _, n := range cv.notes {
		if strings.Contains(n, substr) {
			return true
		}
	}
	return false
}

// $ARG1$ refers to itself: each of the three expansion levels multiplies
// the line by the number of references (60³ × 360 bytes ≈ 100 MB before
// the limit; FuzzConvert stalled on inputs like it).
func TestMacroExpansionIsBounded(t *testing.T) {
	refs := strings.Repeat("$ARG1$", 60)
	cv := convertText(t, fmt.Sprintf("define command{\ncommand_name c\ncommand_line /x %s\n}\ndefine host{\nhost_name h\ncheck_command c!%s\n}\n", refs, refs), defaultLimits)
	if len(cv.sources) != 1 {
		t.Fatalf("%d sources, want 1", len(cv.sources))
	}
	want := fmt.Sprintf("the command line is longer than %d bytes after macro expansion", defaultLimits.commandLine)
	if s := cv.sources[0]; !strings.Contains(s.disabled, want) {
		t.Fatalf("source disabled = %q, want it to say %q", s.disabled, want)
	}
	if out := cv.render(); len(out) > 4<<10 {
		t.Fatalf("rendered %d bytes for a 1 KB input", len(out))
	}

	// A long line within the limit is expanded whole.
	cv = convertText(t, "define command{\ncommand_name c\ncommand_line /x $ARG1$$ARG1$\n}\ndefine host{\nhost_name h\ncheck_command c!"+strings.Repeat("a", 1000)+"\n}\n", defaultLimits)
	if s := cv.sources[0]; s.disabled != "" || len(s.command) != 2 || len(s.command[1]) != 2000 {
		t.Fatalf("source disabled %q, command of %d words", s.disabled, len(s.command))
	}
}

// Templates that each use the one before three times, with "++…" values
// that stay additive at every level: the value was appended once per use,
// growing 3× per level (3²⁴ here). It is appended once, to the first
// template's value.
func TestAdditiveInheritanceIsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("define host{\nname t0\n_x " + strings.Repeat("+", 25) + "base\nregister 0\n}\n")
	for i := 1; i < 25; i++ {
		fmt.Fprintf(&b, "define host{\nname t%d\nuse t%d,t%d,t%d\n_x +v%d\nregister 0\n}\n", i, i-1, i-1, i-1, i)
	}
	b.WriteString("define host{\nhost_name h\nuse t24\n_x +own\n}\n")
	cv := convertText(t, b.String(), defaultLimits)
	got := cv.hosts["h"].get("_x")
	want := "base,v1,v2,v3,v4,v5,v6,v7,v8,v9,v10,v11,v12,v13,v14,v15,v16,v17,v18,v19,v20,v21,v22,v23,v24,own"
	if !strings.HasSuffix(got, want) || len(got) > len(want)+25 {
		t.Fatalf("_x = %q (%d bytes), want %q after the remaining '+'", got, len(got), want)
	}

	// The bytes built by appending are bounded over the whole conversion.
	lim := defaultLimits
	lim.appended = 30 // b's value (21 bytes) fits, h's would not
	cv = convertText(t, "define host{\nname a\n_x 0123456789\nregister 0\n}\ndefine host{\nname b\nuse a\n_x +0123456789\nregister 0\n}\ndefine host{\nhost_name h\nuse b\n_x +tail\n}\n", lim)
	if got := cv.hosts["h"].get("_x"); got != "tail" {
		t.Errorf("_x = %q past the limit, want the host's own value", got)
	}
	if !hasNote(cv, "additive inheritance builds more than 30 bytes") {
		t.Errorf("no note on the limit: %q", cv.notes)
	}
}

// A chain of templates is resolved once each (a deep chain was quadratic
// through the loop check), and a loop is still reported.
func TestTemplateChainAndLoop(t *testing.T) {
	var b strings.Builder
	b.WriteString("define host{\nname t0\ncheck_interval 7\nregister 0\n}\n")
	for i := 1; i < 2000; i++ {
		fmt.Fprintf(&b, "define host{\nname t%d\nuse t%d\nregister 0\n}\n", i, i-1)
	}
	b.WriteString("define host{\nhost_name h\nuse t1999\n}\n")
	b.WriteString("define host{\nname l1\nuse l2\nregister 0\n}\ndefine host{\nname l2\nuse l1\nregister 0\n}\ndefine host{\nhost_name g\nuse l1\n}\n")
	cv := convertText(t, b.String(), defaultLimits)
	if got := cv.hosts["h"].get("check_interval"); got != "7" {
		t.Errorf("check_interval through 2000 templates = %q, want 7", got)
	}
	if len(cv.cache) != 2000+1+3 {
		t.Errorf("%d objects resolved, want each once (2004)", len(cv.cache))
	}
	if !hasNote(cv, "template loop through l1") {
		t.Errorf("loop not reported: %q", cv.notes)
	}
}

// Services on every host ("*") multiply: the pairs the services name are
// bounded, and the conversion says which services it left out.
func TestHostServicePairsAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("define command{\ncommand_name c\ncommand_line /bin/true\n}\n")
	for i := range 4 {
		fmt.Fprintf(&b, "define host{\nhost_name h%d\n}\n", i)
	}
	for i := range 3 {
		fmt.Fprintf(&b, "define service{\nhost_name *\nservice_description s%d\ncheck_command c\n}\n", i)
	}
	lim := defaultLimits
	lim.pairs = 6
	cv := convertText(t, b.String(), lim)
	// Each service examines 5 pairs (its "*" and the 4 hosts): the third
	// comes after the limit.
	if len(cv.sources) != 8 {
		t.Errorf("%d sources, want 8", len(cv.sources))
	}
	if !hasNote(cv, "the services name more than 6 (host, service) pairs; this service and the 0 after it are not converted") {
		t.Errorf("no note on the limit: %q", cv.notes)
	}

	// The same service on every host again is one note, not one per host.
	cv = convertText(t, b.String()+"define service{\nhost_name *\nservice_description s0\ncheck_command c\n}\n", defaultLimits)
	if len(cv.notes) != 1 || !strings.Contains(cv.notes[0], `service "s0" on 4 hosts (h0, …) defined again`) {
		t.Errorf("notes %q, want one for the duplicate service", cv.notes)
	}
}

// Hostgroups with "*" members multiply hosts by groups: the memberships
// are bounded, and the groups past the limit are noted.
func TestGroupMembershipsAreBounded(t *testing.T) {
	var b strings.Builder
	for i := range 5 {
		fmt.Fprintf(&b, "define host{\nhost_name h%d\n}\n", i)
	}
	for i := range 3 {
		fmt.Fprintf(&b, "define hostgroup{\nhostgroup_name g%d\nmembers *\n}\n", i)
	}
	lim := defaultLimits
	lim.memberships = 12
	cv := convertText(t, b.String(), lim)
	m := cv.groupMembers()
	if len(m["g0"]) != 5 || len(m["g1"]) != 5 || len(m["g2"]) != 0 {
		t.Errorf("members %d %d %d, want 5 5 0", len(m["g0"]), len(m["g1"]), len(m["g2"]))
	}
	if !hasNote(cv, "hostgroup g2: the hostgroups have more than 12 members in total") {
		t.Errorf("no note on the limit: %q", cv.notes)
	}
}

// Many names that sanitize alike get consecutive suffixes (each lookup
// starts where the last one ended).
func TestSourceNamesUnique(t *testing.T) {
	n := &sourceNames{taken: map[string]bool{"x_3": true}, next: map[string]int{}}
	var got []string
	for range 5 {
		got = append(got, n.unique("x"))
	}
	want := []string{"x", "x_2", "x_4", "x_5", "x_6"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("names %q, want %q", got, want)
	}
	if n.next["x"] != 7 {
		t.Errorf("next suffix %d, want 7", n.next["x"])
	}
}

// A long address repeats in every check of its host, and commands expand:
// the text of the generated sources is bounded.
func TestOutputIsBounded(t *testing.T) {
	text := "define command{\ncommand_name c\ncommand_line /bin/check $HOSTADDRESS$\n}\n" +
		"define host{\nhost_name h\naddress " + strings.Repeat("a", 1000) + "\n}\n"
	for i := range 10 {
		text += fmt.Sprintf("define service{\nhost_name h\nservice_description s%d\ncheck_command c\n}\n", i)
	}
	lim := defaultLimits
	lim.output = 3500
	cv := convertText(t, text, lim)
	// Each check carries the 1000-byte address: three fit, the fourth passes the limit.
	if len(cv.sources) != 4 {
		t.Errorf("%d sources, want 4", len(cv.sources))
	}
	if !hasNote(cv, `the generated sources pass 3500 bytes; service "s4" on host h and the checks after it are not converted`) {
		t.Errorf("no note on the limit: %q", cv.notes)
	}
}
