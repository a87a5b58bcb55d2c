package journal

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

const fsizeChildEnv = "RECON_JOURNAL_FSIZE_CHILD"

// fsizeChild runs in a re-executed test binary limited by RLIMIT_FSIZE: it
// publishes from four goroutines until each fails ("err MSG"), lifts the
// limit, publishes five more, and prints "ack SEQ OFFSET" for every
// acknowledged batch.
func fsizeChild() int {
	dir := os.Getenv(fsizeChildEnv)
	j, err := Open(dir, Options{SegmentSize: 1 << 30, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	limited := old
	limited.Cur = 512 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limited); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	publish := func() error {
		seq := next.Add(1) - 1
		rec := sampleBatch(memory.DefaultAllocator, seq, 400)
		defer rec.Release()
		off, err := j.Append(context.Background(), "k", rec)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			fmt.Printf("err %v\n", err)
			return err
		}
		fmt.Printf("ack %d %d\n", seq, off)
		return nil
	}
	for range 4 {
		wg.Go(func() {
			for publish() == nil {
			}
		})
	}
	wg.Wait()
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for range 5 {
		if err := publish(); err != nil {
			fmt.Fprintln(os.Stderr, "publish after lifting the limit:", err)
			return 3
		}
	}
	if err := j.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// TestFileSizeLimit hits a real write failure without privileges: a child
// under RLIMIT_FSIZE gets EFBIG, every acknowledged batch stays intact, no
// partial frame is left, and publishing resumes once the limit is lifted.
func TestFileSizeLimit(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), fsizeChildEnv+"="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	acked := make(map[int64]int64)
	errs := 0
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Text()
		if msg, ok := strings.CutPrefix(line, "err "); ok {
			if !strings.Contains(msg, "file too large") {
				t.Fatalf("publish failed with %q, want EFBIG", msg)
			}
			errs++
			continue
		}
		var seq, off int64
		if _, err := fmt.Sscanf(line, "ack %d %d", &seq, &off); err != nil {
			t.Fatalf("child printed %q", line)
		}
		acked[seq] = off
	}
	if errs == 0 || len(acked) <= 5 {
		t.Fatalf("%d failures, %d acknowledged: the limit did not bite", errs, len(acked))
	}

	var logs logBuffer
	j := openT(t, dir, Options{Logger: logs.logger()})
	defer j.Close()
	if strings.Contains(logs.String(), "cut torn tail") {
		t.Fatalf("journal needed repair after the write failures: %s", logs.String())
	}
	n := int(j.Stats().LastOffset + 1)
	if n != len(acked) {
		t.Fatalf("%d batches stored, %d acknowledged", n, len(acked))
	}
	c, err := j.Consumer("verify")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs := fetchN(t, c, n)
	defer release(msgs)
	for _, m := range msgs {
		seq := seqOf(m.Record)
		if off, ok := acked[seq]; !ok || off != m.Offset {
			t.Fatalf("offset %d holds batch %d, acknowledged at %d (%v)", m.Offset, seq, off, ok)
		}
		checkBatch(t, m.Record, seq, 400)
	}
}
