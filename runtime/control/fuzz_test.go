package control

import (
	"testing"
	"time"

	"github.com/reconmon/recon/catalog"
	"github.com/reconmon/recon/plan"
)

// Deployed plans come from the network: whatever the body, decoding and
// validating it returns reasons or accepts it, never panics, and a plan
// with reasons is never half accepted (Diff against it still works).
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{"format":1,"pipeline":"p","sources":[{"name":"web","module":"tcp","target":"127.0.0.1","period":"1m0s","timeout":"2s","attrs":{"port":80},"pos":"a:1:1"}],"streams":[{"name":"live","clone":"web","period":"1s","archive":true}],"rules":[],"sinks":[]}`,
		`{"format":1,"sources":[{"name":"x","module":"generator","period":"1s","attrs":{"rate":"fast"}}]}`,
		`{"format":1,"rules":[{"name":"r","from":["x"],"window":{"kind":"tumbling","size":"1m0s"},"clauses":[{"severity":"warning","when":{"op":">","args":[{"op":"call","name":"max","args":[{"op":"col","name":"value"}]},{"op":"num","num":1}]}}]}]}`,
		`{"format":1,"streams":[{"name":"s","clone":"s","period":"-1s"}],"sinks":[{"name":"k","kind":"kafka","attrs":{}}]}`,
		`{"format":2}`, `{"format":1,"hash":"sha256:00"}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	reg := catalog.Default()
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := plan.Unmarshal(body)
		if err != nil {
			return
		}
		reasons := Validate(p, reg, time.Second)
		d := Diff(nil, p)
		if len(reasons) == 0 && len(d.Sources.Added) != len(p.Sources) {
			t.Fatalf("a valid plan with %d sources diffs as %d added", len(p.Sources), len(d.Sources.Added))
		}
	})
}
