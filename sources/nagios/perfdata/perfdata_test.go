package perfdata

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// item renders a Perf compactly for comparisons.
func item(p Perf) string {
	v := "U"
	if p.HasValue {
		v = strconv.FormatFloat(p.Value, 'f', -1, 64)
	}
	return fmt.Sprintf("%s=%s%s;%s;%s;%s;%s", p.Label, v, p.UOM, p.Warn, p.Crit, p.Min, p.Max)
}

func TestParse(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		text     string
		long     string
		perf     []string
		errors   int
		firstErr string
	}{
		{
			name: "check_disk",
			in:   "DISK OK - free space: / 77681MiB (83% inode=97%);| /=16337862656B;216442024755;243497277849;0;270552530944\n",
			text: "DISK OK - free space: / 77681MiB (83% inode=97%);",
			perf: []string{"/=16337862656B;216442024755;243497277849;0;270552530944"},
		},
		{
			name: "check_load three values",
			in:   "LOAD OK - total load average: 0.52, 0.41, 0.37|load1=0.520;4.000;8.000;0; load5=0.410;3.000;6.000;0; load15=0.370;2.000;4.000;0; \n",
			text: "LOAD OK - total load average: 0.52, 0.41, 0.37",
			perf: []string{"load1=0.52;4.000;8.000;0;", "load5=0.41;3.000;6.000;0;", "load15=0.37;2.000;4.000;0;"},
		},
		{
			name: "no perfdata",
			in:   "CRITICAL - Socket timeout\n",
			text: "CRITICAL - Socket timeout",
		},
		{
			name: "guidelines long output",
			in: "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n" +
				"/ 15272 MB (77%);\n" +
				"/boot 68 MB (69%);\n" +
				"/home 69357 MB (27%);\n" +
				"/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n" +
				"/home=69357MB;253404;253409;0;253414 \n" +
				"/var/log=818MB;970;975;0;980\n",
			text: "DISK OK - free space: / 3326 MB (56%);",
			long: "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);",
			perf: []string{
				"/=2643MB;5948;5958;0;5968", "/boot=68MB;88;93;0;98",
				"/home=69357MB;253404;253409;0;253414", "/var/log=818MB;970;975;0;980",
			},
		},
		{
			name: "quoted labels with escapes and spaces",
			in:   "OK | 'in use'=5 'it''s'=1.5s;;;; 'a=b'=-3e2%;@10:20;~:30",
			text: "OK",
			perf: []string{"in use=5;;;;", "it's=1.5s;;;;", "a=b=-300%;@10:20;~:30;;"},
		},
		{
			name: "ranges and units",
			in:   "OK | a=1ms;10;20 b=2us;10:;~:5 c=3KB;@1:2 d=4c e=5TB f=U;1;2 g=0.5",
			text: "OK",
			perf: []string{"a=1ms;10;20;;", "b=2us;10:;~:5;;", "c=3KB;@1:2;;;", "d=4c;;;;", "e=5TB;;;;", "f=U;1;2;;", "g=0.5;;;;"},
		},
		{
			name:     "garbage perfdata keeps the good items",
			in:       "WARNING - odd | foo bar=1 x=abc y=2;1:2:3 'open z=3s;;;;;;\n",
			text:     "WARNING - odd",
			perf:     []string{"bar=1;;;;"},
			errors:   4,
			firstErr: `no '=' after label in "foo"`,
		},
		{
			name: "CRLF and blank long text",
			in:   "OK | a=1\r\n\r\n",
			text: "OK",
			perf: []string{"a=1;;;;"},
		},
		{
			name: "empty",
			in:   "",
		},
	}
	var o Output // reused across cases on purpose
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			Parse([]byte(c.in), &o)
			if string(o.Text) != c.text {
				t.Errorf("text = %q, want %q", o.Text, c.text)
			}
			if string(o.LongText) != c.long {
				t.Errorf("long = %q, want %q", o.LongText, c.long)
			}
			var got []string
			for _, p := range o.Perf {
				got = append(got, item(p))
			}
			if strings.Join(got, " | ") != strings.Join(c.perf, " | ") {
				t.Errorf("perf =\n  %q\nwant\n  %q", got, c.perf)
			}
			if o.Errors != c.errors {
				t.Errorf("errors = %d (%s), want %d", o.Errors, o.FirstError, c.errors)
			}
			if c.firstErr != "" && o.FirstError != c.firstErr {
				t.Errorf("first error = %q, want %q", o.FirstError, c.firstErr)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		v    float64
		uom  string
		base string
		want float64
		ok   bool
	}{
		{250, "ms", "s", 0.25, true},
		{1500, "us", "s", 0.0015, true},
		{2, "KB", "B", 2048, true},
		{3, "MB", "B", 3 << 20, true},
		{1, "GB", "B", 1 << 30, true},
		{1, "TB", "B", 1 << 40, true},
		{1, "s", "", 0, false},
		{1, "B", "", 0, false},
		{1, "%", "", 0, false},
		{1, "", "", 0, false},
	}
	for _, c := range cases {
		base, v, ok := Normalize(c.v, []byte(c.uom))
		if base != c.base || ok != c.ok || math.Abs(v-c.want) > 1e-12 {
			t.Errorf("Normalize(%v, %q) = %q %v %v, want %q %v %v", c.v, c.uom, base, v, ok, c.base, c.want, c.ok)
		}
	}
}

// TestParseLabelsSurviveScratch checks that several escaped labels in one
// output all stay intact (the scratch buffer must not move under them).
func TestParseLabelsSurviveScratch(t *testing.T) {
	var in strings.Builder
	in.WriteString("OK |")
	var want []string
	for i := range 50 {
		fmt.Fprintf(&in, " 'l''%d'=%d", i, i)
		want = append(want, fmt.Sprintf("l'%d", i))
	}
	var o Output
	Parse([]byte(in.String()), &o)
	if len(o.Perf) != len(want) {
		t.Fatalf("got %d items, want %d (errors %d: %s)", len(o.Perf), len(want), o.Errors, o.FirstError)
	}
	for i, p := range o.Perf {
		if string(p.Label) != want[i] {
			t.Fatalf("label %d = %q, want %q", i, p.Label, want[i])
		}
	}
}

var benchOutput = []byte("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n" +
	"/ 15272 MB (77%);\n/boot 68 MB (69%);\n" +
	"/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n" +
	"'/home dir'=69357MB;253404;253409;0;253414 time=0.004512s;;;0.000000;10.000000 load1=0.520;4.000;8.000;0;\n")

func BenchmarkParse(b *testing.B) {
	var o Output
	b.ReportAllocs()
	b.SetBytes(int64(len(benchOutput)))
	for b.Loop() {
		Parse(benchOutput, &o)
	}
	if len(o.Perf) != 5 {
		b.Fatalf("parsed %d items", len(o.Perf))
	}
}

func FuzzParseOutput(f *testing.F) {
	seeds := []string{
		"DISK OK - free space: / 77681MiB (83% inode=97%);| /=16337862656B;216442024755;243497277849;0;270552530944\n",
		"OK | 'in use'=5 'it''s'=1.5s;;;; 'a=b'=-3e2%;@10:20;~:30",
		"WARNING - odd | foo bar=1 x=abc y=2;1:2:3 'open z=3s;;;;;;\n",
		string(benchOutput),
		"|\n|\n|",
		"''=''",
		"a=U;~:;@;:",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	var o Output
	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		Parse(data, &o)
		if !bytes.Equal(in, data) {
			t.Fatal("Parse modified its input")
		}
		if len(o.Text) > len(data) || len(o.LongText) > len(data) {
			t.Fatal("text longer than the input")
		}
		if bytes.IndexByte(o.Text, '\n') >= 0 {
			t.Fatalf("text %q spans lines", o.Text)
		}
		if (o.Errors == 0) != (o.FirstError == "") {
			t.Fatalf("errors %d with first error %q", o.Errors, o.FirstError)
		}
		for _, p := range o.Perf {
			if len(p.Label) == 0 {
				t.Fatal("empty label accepted")
			}
			if p.HasValue && math.IsNaN(p.Value) && !bytes.Contains(bytes.ToLower(data), []byte("nan")) {
				t.Fatalf("NaN value from %q", data)
			}
			if !validRange(p.Warn) || !validRange(p.Crit) || !validNumber(p.Min) || !validNumber(p.Max) {
				t.Fatalf("invalid thresholds accepted: %s", item(p))
			}
			if utf8.Valid(data) && !utf8.Valid(p.Label) {
				t.Fatalf("label %q not valid UTF-8 from valid input", p.Label)
			}
		}
	})
}
