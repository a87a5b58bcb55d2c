package livekafka

import (
	"encoding/json"
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
