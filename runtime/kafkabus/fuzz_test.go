package kafkabus

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/reconmon/recon/runtime/sample"
)

// FuzzDecode: any message value on the samples topic decodes to a valid
// batch of the contract schema or to an error, never a panic.
func FuzzDecode(f *testing.F) {
	rec := batch("seed", 0, 5)
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		f.Fatal(err)
	}
	w.Close()
	rec.Release()
	f.Add(buf.Bytes())
	f.Add([]byte("not arrow"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0})
	f.Fuzz(func(t *testing.T, value []byte) {
		rec, err := Decode(value, sample.Schema)
		if err != nil {
			return
		}
		defer rec.Release()
		if !rec.Schema().Equal(sample.Schema) {
			t.Fatalf("decoded a foreign schema: %s", rec.Schema())
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			for _, col := range rec.Columns() {
				_ = col.ValueStr(i)
			}
		}
	})
}
