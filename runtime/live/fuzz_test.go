package live

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// Sample strings come from outside (SNMP varbinds, plugin output, HTTP
// bodies): whatever their bytes, the stream carries valid JSON that
// decodes to the same text (invalid UTF-8 as U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f\n\r\t", "bad\xff\xfeutf8", "\u2028\u2029", "日本語", "</script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendString([]byte("x"), s)[1:]
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q for %q", out, s)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		want := s
		if !utf8.ValidString(s) {
			// encoding/json replaces each invalid byte; so does appendString.
			var b strings.Builder
			for i := 0; i < len(s); {
				r, n := utf8.DecodeRuneInString(s[i:])
				b.WriteRune(r)
				i += n
			}
			want = b.String()
		}
		if back != want {
			t.Fatalf("%q encoded as %s decodes to %q", s, out, back)
		}
	})
}
