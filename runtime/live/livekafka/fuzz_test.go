package livekafka

import (
	"encoding/json"
	"strings"
	"testing"
)

// Control messages come from a shared topic: anything decodes to an error
// or to a message that re-encodes and decodes the same.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"op":"start","origin":"dc1","clone":{"id":"ab12","name":"web~ab12","source":"web","period":"1s","ttl":"1m","archive":true,"declared":false,"viewers":0}}`,
		`{"op":"stop","origin":"v","clone":{"id":"ab12"}}`,
		`{"op":"start","clone":{"id":"x","period":"-1s"}}`,
		`{"op":"explode"}`, `null`, `[]`, `{"op":"stop","clone":{"id":"x","expires":"not a time"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(again)
		if err != nil || m2.Op != m.Op || m2.Clone.ID != m.Clone.ID || m2.Clone.Source != m.Clone.Source {
			t.Fatalf("%s decoded as %+v, re-encoded %s as %+v (%v)", b, m, again, m2, err)
		}
	})
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{`{"op":"start","clone":{"id":"ab","name":"web","source":"web","period":"1s"}}`, "is not \"web~ab\""},
		{`{"op":"start","clone":{"id":"ab","name":"x~ab"}}`, "without a source"},
		{`{"op":"stop","clone":{}}`, "no clone id"},
		{`{"op":"reboot","clone":{"id":"ab"}}`, "unknown op"},
		{`{"op":`, "control message"},
	} {
		if _, err := Decode([]byte(tc.msg)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%s) = %v, want an error with %q", tc.msg, err, tc.want)
		}
	}
	if _, err := Decode([]byte(strings.Repeat(" ", maxMessage+1))); err == nil {
		t.Error("an oversized message was accepted")
	}
}
