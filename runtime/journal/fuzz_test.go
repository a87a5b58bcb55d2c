package journal

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// seedSegment returns the bytes of a real segment holding n batches.
func seedSegment(f *testing.F, comp Compression, n int64) []byte {
	f.Helper()
	dir := f.TempDir()
	j, err := Open(dir, Options{Compression: comp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	for seq := range n {
		rec := sampleBatch(memory.DefaultAllocator, seq, 5)
		if err := j.Publish(context.Background(), "src", rec); err != nil {
			f.Fatal(err)
		}
		rec.Release()
	}
	if err := j.Close(); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, segmentName(0)))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzOpenSegment opens a journal whose only segment is arbitrary bytes:
// Open either fails or repairs it, every retained frame can be fetched (or
// reports an error), and the repaired journal accepts new batches.
func FuzzOpenSegment(f *testing.F) {
	good := seedSegment(f, CompressionLZ4, 3)
	f.Add(good)
	f.Add(seedSegment(f, CompressionNone, 2))
	f.Add(good[:len(good)-9])
	f.Add(good[:segHeaderSize+frameHeaderSize-1])
	f.Add(good[:segHeaderSize])
	f.Add(good[:3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		j, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return
		}
		defer j.Close()
		c, err := j.OpenConsumer("fuzz")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n := j.Stats().LastOffset + 1
		for i := int64(0); i < n; i++ {
			m, err := c.Fetch(ctx)
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Fetch of retained offset %d blocked", i)
				}
				return
			}
			m.Record.Release()
		}
		rec := sampleBatch(memory.DefaultAllocator, n, 2)
		defer rec.Release()
		off, err := j.Append(ctx, "k", rec)
		if err != nil {
			t.Fatalf("append after repair: %v", err)
		}
		if off != n {
			t.Fatalf("append after repair stored at %d, want %d", off, n)
		}
	})
}

// FuzzDecode feeds arbitrary bytes to the IPC decoder behind Fetch, as a
// frame whose checksum matches would: an error, never a panic.
func FuzzDecode(f *testing.F) {
	for _, comp := range []Compression{CompressionLZ4, CompressionNone} {
		rec := sampleBatch(memory.DefaultAllocator, 1, 3)
		var e encoded
		if err := encode(&e, rec, comp, memory.DefaultAllocator); err != nil {
			f.Fatal(err)
		}
		rec.Release()
		b := e.buf.Bytes()
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(b[:len(b)-8])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec, err := decode(body, memory.DefaultAllocator)
		if err == nil {
			rec.Release()
		}
	})
}
