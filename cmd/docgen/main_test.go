package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/compiler"
	"github.com/reconmon/recon/module"
)

// TestCheckedInReferenceIsCurrent fails when docs/modules.md no longer
// matches the specs: regenerate it with `make docs`.
func TestCheckedInReferenceIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "modules.md")
	var stderr bytes.Buffer
	if code := run([]string{"-check", path}, &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("docgen -check %s = %d: %s", path, code, stderr.String())
	}
}

func TestCheckDetectsStaleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "modules.md")
	if code := run([]string{"-o", path}, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("docgen -o = %d", code)
	}
	if code := run([]string{"-check", path}, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("fresh file reported stale (exit %d)", code)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, "edited by hand\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"-check", path}, &bytes.Buffer{}, &stderr); code != 1 {
		t.Fatalf("stale file: exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "stale") {
		t.Errorf("stderr %q does not say the file is stale", stderr.String())
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temporary files left next to the output: %v", entries)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"-o", "a", "-check", "b"}, {"-nope"}} {
		if code := run(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("docgen %q = %d, want 2", args, code)
		}
	}
}

// TestEveryModuleDocumented checks that each registered module, its fields
// and its metrics appear in the generated reference.
func TestEveryModuleDocumented(t *testing.T) {
	reg := catalog.Default()
	var buf bytes.Buffer
	if err := Generate(&buf, reg); err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	for _, k := range []module.Kind{module.KindSource, module.KindSink} {
		for _, s := range reg.Specs(k) {
			if !strings.Contains(doc, "### "+s.Name+" ("+string(k)+")") {
				t.Errorf("no section for %s %s", k, s.Name)
			}
			for _, f := range s.Fields {
				if !strings.Contains(doc, "| `"+f.Name+"` |") {
					t.Errorf("%s %s: field %s missing", k, s.Name, f.Name)
				}
			}
			for _, m := range s.Metrics {
				if !strings.Contains(doc, "| `"+cell(m.Name)+"` |") {
					t.Errorf("%s %s: metric %s missing", k, s.Name, m.Name)
				}
			}
		}
	}
	for _, common := range []string{"target", "period", "timeout"} {
		if !strings.Contains(doc, "| `"+common+"` |") {
			t.Errorf("common attribute %s missing", common)
		}
	}
}

func TestFieldRendering(t *testing.T) {
	reg := module.NewRegistry()
	spec := &module.Spec{
		Kind: module.KindSource, Name: "demo", Summary: "A demo.",
		Fields: []module.Field{
			module.Int("port", "TCP port.").Req().Range(1, 65535),
			module.Duration("interval", "Pause.").Def(90 * time.Second).AtLeast(0.25).Adv(),
			module.Size("max", "Cap.").Def(64 << 10),
			module.String("mode", "Mode | kind.").Def("fast").OneOf("fast", "slow").Deprecate("use `speed`."),
			module.StringList("tags", "Tags.").Def([]string{"a", "b"}),
			module.StringMap("headers", "Headers.").Def(map[string]string{"b": "2", "a": "1"}),
		},
		Metrics: []module.Metric{{Name: "rtt", Unit: "s", Summary: "Round trip."}},
		Example: "source d demo { port = 1 }",
	}
	if err := reg.Register(spec); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Generate(&buf, reg); err != nil {
		t.Fatal(err)
	}
	doc := buf.String()
	for _, want := range []string{
		"| `port` | int |  | yes |  | 1 … 65535 | TCP port. |",
		"| `max` | size | `64KiB` |  |  |  | Cap. |",
		"| `mode` | string | `\"fast\"` |  | `\"fast\"`, `\"slow\"` |  | Mode \\| kind. **Deprecated:** use `speed`. |",
		"| `tags` | list(string) | `[\"a\", \"b\"]` |",
		"| `headers` | map(string) | `{ a = \"1\", b = \"2\" }` |",
		"| `interval` | duration | `1m30s` |  |  | ≥ 250ms | *Advanced.* Pause. |",
		"| `rtt` | `s` | Round trip. |",
		"```recon\nsource d demo { port = 1 }\n```",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("reference lacks %q", want)
		}
	}
	// Advanced fields come after the others.
	if strings.Index(doc, "`interval`") < strings.Index(doc, "`headers` |") {
		t.Error("advanced field listed before ordinary ones")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 250 * time.Millisecond: "250ms", 90 * time.Minute: "1h30m",
		49 * time.Hour: "2d1h", -time.Second: "-1s", 1500 * time.Microsecond: "1ms500µs",
	} {
		if got := compiler.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
