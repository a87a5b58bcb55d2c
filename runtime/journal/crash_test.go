package journal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sys/unix"
)

// publishN appends batches first..first+n-1 and returns their offsets.
func publishN(t *testing.T, j *Journal, first, n int64, rows int) {
	t.Helper()
	for seq := first; seq < first+n; seq++ {
		rec := sampleBatch(memory.DefaultAllocator, seq, rows)
		off, err := j.Append(context.Background(), "k", rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
		if off != seq {
			t.Fatalf("batch %d stored at offset %d", seq, off)
		}
	}
}

// verifyAll reads the whole journal with a fresh consumer and checks that
// offset i holds batch i, intact.
func verifyAll(t *testing.T, j *Journal, name string, rows int) int64 {
	t.Helper()
	c, err := j.Consumer(name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := j.Stats().LastOffset + 1
	msgs := fetchN(t, c, int(n))
	defer release(msgs)
	for i, m := range msgs {
		if m.Offset != int64(i) {
			t.Fatalf("message %d has offset %d", i, m.Offset)
		}
		checkBatch(t, m.Record, int64(i), rows)
	}
	assertEmpty(t, c)
	return n
}

func TestTornTailIsCutOff(t *testing.T) {
	cases := []struct {
		name string
		// damage changes the segment whose last frame spans [start,size).
		damage func(t *testing.T, path string, start, size int64)
		keep   int64 // batches that survive out of 5
	}{
		{"truncated mid-frame", func(t *testing.T, path string, start, size int64) {
			if err := os.Truncate(path, start+(size-start)/2); err != nil {
				t.Fatal(err)
			}
		}, 4},
		{"truncated inside the frame header", func(t *testing.T, path string, start, size int64) {
			if err := os.Truncate(path, start+7); err != nil {
				t.Fatal(err)
			}
		}, 4},
		{"garbage appended", func(t *testing.T, path string, start, size int64) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(bytes.Repeat([]byte{0xA5, 0x00, 0x17}, 100)); err != nil {
				t.Fatal(err)
			}
		}, 5},
		{"byte flipped in the last frame", func(t *testing.T, path string, start, size int64) {
			flipByte(t, path, start+(size-start)/2)
		}, 4},
		{"byte flipped in the last frame's offset", func(t *testing.T, path string, start, size int64) {
			flipByte(t, path, start+9)
		}, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j := openT(t, dir, Options{})
			publishN(t, j, 0, 5, 500)
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, segmentName(0))
			seg, err := scanSealed(path, 0)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path, seg.pos[4], seg.size)

			var logs logBuffer
			j = openT(t, dir, Options{Logger: logs.logger()})
			if !strings.Contains(logs.String(), "cut torn tail") || !strings.Contains(logs.String(), fmt.Sprintf("offset=%d", tc.keep)) {
				t.Fatalf("repair not logged with its offset: %s", logs.String())
			}
			if got := j.Stats().LastOffset + 1; got != tc.keep {
				t.Fatalf("%d batches after repair, want %d", got, tc.keep)
			}
			// Appends continue right after the last intact frame.
			publishN(t, j, tc.keep, 3, 500)
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			logs = logBuffer{}
			j = openT(t, dir, Options{Logger: logs.logger()})
			defer j.Close()
			if strings.Contains(logs.String(), "cut") {
				t.Fatalf("second open repaired again: %s", logs.String())
			}
			if n := verifyAll(t, j, "check", 500); n != tc.keep+3 {
				t.Fatalf("%d batches, want %d", n, tc.keep+3)
			}
		})
	}
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// A crash can leave a half-created segment, checkpoint temp files, and (only
// by tampering) a checkpoint past the end: Open repairs or ignores them.
func TestOpenRepairsCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{})
	publishN(t, j, 0, 3, 100)
	c, err := j.Consumer("archiver")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// A segment whose creation was cut short after 5 bytes of header.
	if err := os.WriteFile(filepath.Join(dir, segmentName(3)), []byte(segMagic[:5]), 0o644); err != nil {
		t.Fatal(err)
	}
	temps := []string{filepath.Join(dir, "consumers", "archiver.ckpt.tmp"), filepath.Join(dir, "x.tmp")}
	for _, p := range temps {
		if err := os.WriteFile(p, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "consumers", "rules.ckpt"), encodeCheckpoint(99), 0o644); err != nil {
		t.Fatal(err)
	}

	var logs logBuffer
	j = openT(t, dir, Options{Logger: logs.logger()})
	defer j.Close()
	for _, want := range []string{"rewrote torn segment header", "removed leftover temp file", "checkpoint points past the end"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q: %s", want, logs.String())
		}
	}
	for _, p := range temps {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("temp file %s survived Open: %v", p, err)
		}
	}
	if st := j.Stats(); st.LastOffset != 2 || st.Segments != 2 {
		t.Fatalf("stats after repair: %+v", st)
	}
	publishN(t, j, 3, 2, 100)
	rules, err := j.Consumer("rules")
	if err != nil {
		t.Fatal(err)
	}
	defer rules.Close()
	m := fetchN(t, rules, 2)
	defer release(m)
	if m[0].Offset != 3 {
		t.Fatalf("clamped consumer resumes at %d, want 3 (the end at open)", m[0].Offset)
	}
	if n := verifyAll(t, j, "check", 100); n != 5 {
		t.Fatalf("%d batches, want 5", n)
	}
}

// A damaged sealed segment is not a crash tail: Open refuses rather than
// dropping acknowledged data behind it.
func TestOpenRefusesDamagedSealedSegment(t *testing.T) {
	dir := t.TempDir()
	j := openT(t, dir, Options{SegmentSize: 16 << 10})
	publishN(t, j, 0, 6, 200)
	if j.Stats().Segments < 2 {
		t.Fatal("the test needs two segments")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, segmentName(0))
	if err := os.Truncate(path, segHeaderSize+10); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Logger: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "sealed segment") {
		t.Fatalf("Open of a journal with a damaged sealed segment: %v", err)
	}
}

const (
	childEnv    = "RECON_JOURNAL_CRASH_CHILD"
	childSeqEnv = "RECON_JOURNAL_CRASH_SEQ"
)

func childRows(seq int64) int { return 50 + int(seq%97) }

// crashChild runs in a re-executed test binary: it publishes numbered
// batches from four goroutines forever, printing "ack SEQ OFFSET" for each
// acknowledged one, until its parent kills it.
func crashChild() int {
	dir := os.Getenv(childEnv)
	base, err := strconv.ParseInt(os.Getenv(childSeqEnv), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", childSeqEnv, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	j, err := Open(dir, Options{SegmentSize: 96 << 10, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var (
		next atomic.Int64
		mu   sync.Mutex
	)
	for range 4 {
		go func() {
			for {
				seq := base + next.Add(1) - 1
				rec := sampleBatch(memory.DefaultAllocator, seq, childRows(seq))
				off, err := j.Append(context.Background(), fmt.Sprintf("s%d", seq%7), rec)
				rec.Release()
				if err != nil {
					fmt.Fprintln(os.Stderr, "publish:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d\n", seq, off)
				mu.Unlock()
			}
		}()
	}
	select {}
}

func TestKill9LosesNoAcknowledgedBatch(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	acked := make(map[int64]int64) // seq -> offset
	const rounds = 6
	var tornRounds [rounds]bool
	for round := range rounds {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+dir, childSeqEnv+"="+strconv.Itoa(round*1_000_000))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		first := make(chan struct{})
		lines := make(chan []string, 1)
		go func() {
			var got []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				got = append(got, sc.Text())
				if len(got) == 1 {
					close(first)
				}
			}
			lines <- got
		}()
		select {
		case <-first:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: child acknowledged nothing: %s", round, stderr.String())
		}
		time.Sleep(time.Duration(20+mrand.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		got := <-lines
		werr := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(werr, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not by SIGKILL: %s", round, werr, stderr.String())
		}
		for _, l := range got {
			var seq, off int64
			if _, err := fmt.Sscanf(l, "ack %d %d", &seq, &off); err != nil {
				t.Fatalf("round %d: child printed %q", round, l)
			}
			acked[seq] = off
		}
		repairs := strings.Count(stderr.String(), "cut torn tail")
		t.Logf("round %d: %d batches acknowledged before SIGKILL; repairs at open: %d", round, len(got), repairs)
		if round > 0 && tornRounds[round-1] && repairs == 0 {
			t.Fatalf("round %d: the torn tail left by round %d was not repaired: %s", round, round-1, stderr.String())
		}
		// A kill leaves whole writes in the page cache; a power cut can also
		// leave part of an unsynced frame. Simulate that every other round.
		if round%2 == 0 {
			tornRounds[round] = tearTail(t, dir)
		}
	}

	var logs logBuffer
	j := openT(t, dir, Options{Logger: logs.logger()})
	defer j.Close()
	c, err := j.Consumer("verify")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := int(j.Stats().LastOffset + 1)
	seen := make(map[int64]int64, n)
	ctx := context.Background()
	for i := range n {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("offset %d: %v", i, err)
		}
		seq := seqOf(m.Record)
		if prev, dup := seen[seq]; dup {
			t.Fatalf("batch %d stored twice, at offsets %d and %d", seq, prev, m.Offset)
		}
		seen[seq] = m.Offset
		if m.Key != fmt.Sprintf("s%d", seq%7) {
			t.Fatalf("offset %d: key %q", m.Offset, m.Key)
		}
		checkBatch(t, m.Record, seq, childRows(seq))
		m.Record.Release()
	}
	for seq, off := range acked {
		got, ok := seen[seq]
		if !ok {
			t.Fatalf("acknowledged batch %d (offset %d) lost", seq, off)
		}
		if got != off {
			t.Fatalf("acknowledged batch %d at offset %d, found at %d", seq, off, got)
		}
	}
	t.Logf("%d acknowledged, %d stored, %d segments", len(acked), n, j.Stats().Segments)
}

// tearTail appends the start of a plausible frame (a header promising more
// bytes than follow) to the newest segment of dir, and reports whether it
// did. A segment whose header is not complete yet (the kill came while it
// was being created) is left alone: frames are written only after the
// header is durable, so no crash leaves frame bytes in such a file.
func tearTail(t *testing.T, dir string) bool {
	t.Helper()
	segs := segmentFiles(t, dir)
	last := filepath.Join(dir, segs[len(segs)-1])
	if st, err := os.Stat(last); err != nil {
		t.Fatal(err)
	} else if st.Size() < segHeaderSize {
		return false
	}
	junk := make([]byte, frameHeaderSize+mrand.IntN(2000))
	_, _ = rand.Read(junk)
	junk[0], junk[1], junk[2], junk[3] = 0, 0, 1, 0 // length 65536
	junk[18], junk[19] = 0, 0
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(junk); err != nil {
		t.Fatal(err)
	}
	return true
}

// peerMissing fails in CI and skips elsewhere.
func peerMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (CI=true makes this a failure)", args...)
}

// TestDiskFull fills a real tiny tmpfs: publishes fail with ENOSPC, nothing
// partial stays on disk, and publishing resumes once there is room.
func TestDiskFull(t *testing.T) {
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		peerMissing(t, "disk-full test mounts a 4 MiB tmpfs and needs root (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	filler := filepath.Join(mnt, "filler")
	fill := make([]byte, 3<<20)
	_, _ = rand.Read(fill)
	if err := os.WriteFile(filler, fill, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "journal")
	j := openT(t, dir, Options{SegmentSize: 128 << 10})

	var (
		mu      sync.Mutex
		acked   = make(map[int64]int64)
		failed  []error
		nextSeq atomic.Int64
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				seq := nextSeq.Add(1) - 1
				rec := sampleBatch(memory.DefaultAllocator, seq, 400)
				off, err := j.Append(context.Background(), "k", rec)
				rec.Release()
				mu.Lock()
				if err != nil {
					failed = append(failed, err)
					mu.Unlock()
					return
				}
				acked[seq] = off
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing fitted on the disk; the test needs some room")
	}
	for _, err := range failed {
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("publish on a full disk failed with %v, want ENOSPC", err)
		}
	}
	st := j.Stats()
	if st.PublishErrors == 0 {
		t.Fatal("no publish error counted")
	}
	if onDisk := segmentBytes(t, dir); onDisk != st.Bytes {
		t.Fatalf("%d bytes in segment files, %d acknowledged: a partial frame was left", onDisk, st.Bytes)
	}

	// Make room: publishing works again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		seq := nextSeq.Add(1) - 1
		rec := sampleBatch(memory.DefaultAllocator, seq, 400)
		off, err := j.Append(context.Background(), "k", rec)
		rec.Release()
		if err != nil {
			t.Fatalf("publish after freeing space: %v", err)
		}
		acked[seq] = off
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	var logs logBuffer
	j = openT(t, dir, Options{Logger: logs.logger()})
	defer j.Close()
	if strings.Contains(logs.String(), "cut torn tail") {
		t.Fatalf("journal needed repair after disk full: %s", logs.String())
	}
	c, err := j.Consumer("verify")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := int(j.Stats().LastOffset + 1)
	if n != len(acked) {
		t.Fatalf("%d batches stored, %d acknowledged", n, len(acked))
	}
	msgs := fetchN(t, c, n)
	defer release(msgs)
	bySeq := make(map[int64]int64)
	for _, m := range msgs {
		seq := seqOf(m.Record)
		checkBatch(t, m.Record, seq, 400)
		bySeq[seq] = m.Offset
	}
	for seq, off := range acked {
		if bySeq[seq] != off {
			t.Fatalf("acknowledged batch %d at offset %d, found at %d", seq, off, bySeq[seq])
		}
	}
}

func segmentBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	for _, name := range segmentFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	return total
}
