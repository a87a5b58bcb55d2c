package pqfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	pq "github.com/parquet-go/parquet-go"
)

func TestOpen(t *testing.T) {
	type row struct {
		A int64 `parquet:"a"`
	}
	var buf bytes.Buffer
	if err := pq.Write(&buf, []row{{1}, {2}}); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	f, err := Open(bytes.NewReader(good), int64(len(good)))
	if err != nil || f.NumRows() != 2 {
		t.Fatalf("a valid file: %v", err)
	}
	huge := bytes.Clone(good)
	binary.LittleEndian.PutUint32(huge[len(huge)-8:], 1<<31) // a footer of 2 GiB
	for name, data := range map[string][]byte{
		"empty":       nil,
		"short":       []byte("PAR1PAR1"),
		"no magic":    append([]byte("XXXX"), good[4:]...),
		"huge footer": huge,
	} {
		if _, err := Open(bytes.NewReader(data), int64(len(data))); !errors.Is(err, ErrNotParquet) {
			t.Errorf("%s: %v, want ErrNotParquet", name, err)
		}
	}
}
