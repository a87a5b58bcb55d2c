package parquet

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/zeebo/xxh3"

	"github.com/reconmon/recon/internal/pqfile"
)

// CompactOptions configures Compact.
type CompactOptions struct {
	// Tables are the tables compacted; nil means SamplesTable and
	// AlertsTable. Other directories of the archive are left alone.
	Tables []Table
	// ClosedBefore selects the hour partitions compacted: those that ended
	// at or before it. The zero time means now: every closed hour.
	ClosedBefore time.Time
	// TargetFileSize caps an output file; a partition with more data gets
	// several (default 512 MiB).
	TargetFileSize int64
	// CompressionLevel is the zstd level of the files written (default
	// DefaultCompactLevel).
	CompressionLevel int
	RowGroupRows     int
	Logger           *slog.Logger

	// fault, when set by tests, is called at each step with its name.
	fault func(step string)
	// readBytes, when set by tests, replaces mergeReadBytes.
	readBytes int64
}

// CompactResult counts what Compact did.
type CompactResult struct {
	Partitions int   // hour partitions compacted
	FilesIn    int   // files merged (and then removed)
	FilesOut   int   // files written
	Rows       int64 // rows moved
}

// compactIntent is written in a partition before its files are swapped.
type compactIntent struct {
	ID       string   `json:"id"`
	Inputs   []string `json:"inputs"`
	Digest   digest   `json:"digest"`
	Verified bool     `json:"verified"`
	Outputs  []string `json:"outputs,omitempty"`
}

const compactIntentName = ".compact.json"

// Compact merges the small files of each closed hour partition of the
// archive at dir into one file (or a few of TargetFileSize), sorted by the
// table's sort columns. It is lossless (the inputs' row count and
// order-independent checksum are checked against the written outputs before
// any input is removed), idempotent (a compacted partition is left as is),
// and crash-safe: an interrupted compaction is finished or rolled back by
// the next Compact or archiver start. Files of a bus range that is not
// committed yet are never touched. It is what `reconc archive compact DIR`
// runs.
func Compact(ctx context.Context, dir string, opts CompactOptions) (CompactResult, error) {
	var res CompactResult
	if opts.Tables == nil {
		opts.Tables = []Table{SamplesTable, AlertsTable}
	}
	if opts.ClosedBefore.IsZero() {
		opts.ClosedBefore = time.Now()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	def := DefaultConfig(dir)
	setDefault(&opts.TargetFileSize, def.TargetFileSize)
	setDefault(&opts.CompressionLevel, def.CompactLevel)
	setDefault(&opts.RowGroupRows, def.RowGroupRows)
	var errs []error
	for _, t := range opts.Tables {
		l, err := t.compile()
		if err != nil {
			return res, err
		}
		root := filepath.Join(dir, l.Name)
		if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		log := opts.Logger.With("table", l.Name)
		if err := recoverTable(root, log); err != nil {
			return res, err
		}
		parts, err := filepath.Glob(filepath.Join(root, "date=*", "hour=*"))
		if err != nil {
			return res, err
		}
		for _, pdir := range parts {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			end, ok := partitionEnd(root, pdir)
			if !ok || end.After(opts.ClosedBefore) {
				continue
			}
			r, err := compactPartition(root, pdir, l, &opts, log)
			if err != nil {
				log.Error("compaction of a partition failed; its files stay as they are", "dir", pdir, "err", err)
				errs = append(errs, err)
				continue
			}
			if r.FilesIn > 0 {
				res.Partitions++
				res.FilesIn += r.FilesIn
				res.FilesOut += r.FilesOut
				res.Rows += r.Rows
			}
		}
	}
	return res, errors.Join(errs...)
}

// partitionEnd parses ROOT/date=YYYY-MM-DD/hour=HH into the end of the hour.
func partitionEnd(root, pdir string) (time.Time, bool) {
	rel, err := filepath.Rel(root, pdir)
	if err != nil {
		return time.Time{}, false
	}
	t, err := time.Parse("date=2006-01-02/hour=15", filepath.ToSlash(rel))
	if err != nil {
		return time.Time{}, false
	}
	return t.Add(time.Hour), true
}

func compactPartition(root, pdir string, l *layout, opts *CompactOptions, log *slog.Logger) (CompactResult, error) {
	lock, err := lockDir(root)
	if err != nil {
		return CompactResult{}, err
	}
	defer lock.unlock()

	inputs, err := compactInputs(root, pdir)
	if err != nil || len(inputs) == 0 || allFromOneCompaction(inputs) {
		return CompactResult{}, err
	}
	h := xxh3.New()
	for _, in := range inputs {
		_, _ = io.WriteString(h, in+"\n")
	}
	sum := h.Sum128().Bytes()
	id := hex.EncodeToString(sum[:8])

	// The digest of the inputs (in the intent) is taken by the row reader,
	// as the outputs' is. The rows are then moved by the column reader: the
	// inputs, each sorted by the table's order, are merged a bounded number
	// of rows at a time (ties in input order: the order a stable sort of
	// all their rows gives) and written by the archiver's encoder. The
	// column reader digests what it read, which must agree with the row
	// reader, input by input: a fault of the column reader cannot pass as
	// lossless.
	paths := make([]string, len(inputs))
	rowDigests := make([]digest, len(inputs))
	var in digest
	for i, name := range inputs {
		paths[i] = filepath.Join(pdir, name)
		rowDigests[i], err = digestPath(paths[i])
		if err != nil {
			return CompactResult{}, err
		}
		in.merge(&rowDigests[i])
	}

	intent := compactIntent{ID: id, Inputs: inputs, Digest: in}
	if err := writeIntent(pdir, &intent); err != nil {
		return CompactResult{}, err
	}
	opts.step("intent")
	enc := newEncoder(l, writerConfig{CompressionLevel: opts.CompressionLevel, RowGroupRows: opts.RowGroupRows, PageBytes: pageBytes})
	outputs, err := mergeInto(pdir, id, l, enc, paths, rowDigests, opts)
	if err != nil {
		return CompactResult{}, rollback(pdir, id, err)
	}
	opts.step("outputs")
	var out digest
	for _, name := range outputs {
		d, err := digestPath(filepath.Join(pdir, name))
		if err != nil {
			return CompactResult{}, rollback(pdir, id, err)
		}
		out.merge(&d)
	}
	if !out.equal(&in) {
		return CompactResult{}, rollback(pdir, id, fmt.Errorf("%s: compacted files hold %s, inputs %s", pdir, &out, &in))
	}
	intent.Verified, intent.Outputs = true, outputs
	if err := writeIntent(pdir, &intent); err != nil {
		return CompactResult{}, rollback(pdir, id, err)
	}
	opts.step("verified")
	if err := finish(pdir, &intent); err != nil {
		return CompactResult{}, err
	}
	log.Info("compacted", "dir", pdir, "files_in", len(inputs), "files_out", len(outputs), "rows", in.Rows)
	return CompactResult{FilesIn: len(inputs), FilesOut: len(outputs), Rows: in.Rows}, nil
}

func (o *CompactOptions) step(name string) {
	if o.fault != nil {
		o.fault(name)
	}
}

// compactInputs lists the data files of a partition that may be compacted:
// all but those of a bus range an archiver has not committed yet.
func compactInputs(root, pdir string) ([]string, error) {
	intents, err := loadIntents(root)
	if err != nil {
		return nil, err
	}
	busy := map[string]bool{}
	for _, it := range intents {
		busy[rangeFileName(it.Partition, it.First, it.Last)] = true
	}
	entries, err := os.ReadDir(pdir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if isParquet(e) && !busy[e.Name()] {
			names = append(names, e.Name())
		}
	}
	return names, nil // ReadDir sorts by name
}

// allFromOneCompaction reports whether names are the outputs of a single
// earlier compaction (c-<id>-<n>.parquet): nothing left to merge. A
// partition holding a single file the archiver wrote is still compacted: it
// is rewritten at the compaction level.
func allFromOneCompaction(names []string) bool {
	prefix := ""
	for _, n := range names {
		if !strings.HasPrefix(n, "c-") {
			return false
		}
		i := strings.LastIndexByte(n, '-')
		if prefix == "" {
			prefix = n[:i]
		} else if n[:i] != prefix {
			return false
		}
	}
	return true
}

// mergeInto merges the files at paths (whose row-reader digests are
// rowDigests) into c-<id>-<n>.parquet files of about targetSize each,
// durably, and returns their names. It fails if the column reader's digest
// of an input differs from its row reader's.
//
// A merge holds a page per column of each file it reads (readMemory: ~70
// bytes per row of an archiver file, ~18 MB for one of DefaultFlushRows
// rows), so one merge reads files within mergeReadBytes (and at most
// maxFanIn of them): more are merged in rounds (spillRuns), runs of
// consecutive inputs into intermediate temp files first (zstd 1, small
// pages: ~3 MB held per file read), removed at the end or, after a crash,
// by the next recovery.
// Runs of consecutive inputs keep ties in input order: the rows, and so the
// output bytes, are the same as a merge of all the inputs at once.
func mergeInto(pdir, id string, l *layout, enc *encoder, paths []string, rowDigests []digest, opts *CompactOptions) (_ []string, err error) {
	orig := make([]int, len(paths)) // index in rowDigests, or -1 for a spill
	mem := make([]int64, len(paths))
	for i := range paths {
		orig[i] = i
		if mem[i], err = readMemory(paths[i]); err != nil {
			return nil, err
		}
	}
	var spills []string
	defer func() {
		for _, p := range spills {
			if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
	}()
	budget := cmp.Or(opts.readBytes, mergeReadBytes)
	// What reading an intermediate file holds: per column, a page
	// compressed, uncompressed and decoded (readMemory cannot tell small
	// pages from the footer).
	spillMem := int64(len(l.schema.Columns())) * 3 * spillPageBytes
	spillEnc := newEncoder(l, writerConfig{CompressionLevel: spillLevel, RowGroupRows: opts.RowGroupRows, PageBytes: spillPageBytes})
	for round := 0; ; round++ {
		runs := spillRuns(mem, budget)
		if runs == nil {
			break // one merge reads them all
		}
		var next []string
		var nextOrig []int
		var nextMem []int64
		start := 0
		for r, n := range runs {
			if n == 1 {
				next, nextOrig, nextMem = append(next, paths[start]), append(nextOrig, orig[start]), append(nextMem, mem[start])
				start++
				continue
			}
			path := filepath.Join(pdir, tempName(fmt.Sprintf("c-%s-r%d-%d.parquet", id, round, r)))
			spills = append(spills, path)
			if err := spill(path, l, spillEnc, paths[start:start+n], orig[start:start+n], rowDigests); err != nil {
				return nil, err
			}
			next, nextOrig, nextMem = append(next, path), append(nextOrig, -1), append(nextMem, spillMem)
			start += n
		}
		paths, orig, mem = next, nextOrig, nextMem
	}

	m, err := newMerger(l, paths, orig)
	if err != nil {
		return nil, err
	}
	defer m.close()
	var names []string
	for n := 0; !m.done(); n++ {
		name := fmt.Sprintf("c-%s-%d.parquet", id, n)
		if _, err := writeAtomic(pdir, name, func(w io.Writer) error { return enc.writeMerged(w, m, opts.TargetFileSize) }); err != nil {
			return names, err
		}
		names = append(names, name)
	}
	return names, m.checkDigests(rowDigests)
}

// spillRuns plans a round of a merge of files whose readMemory is mem: it
// splits them, in order, into runs of consecutive files, a run of two or
// more to be merged into an intermediate file, a run of one kept as it is,
// and returns the runs' lengths; none when one merge reads them all (within
// budget bytes and maxFanIn files, or a single file).
//
// More than maxFanIn files are cut into runs within the budget and
// maxFanIn. Fewer but over the budget, only the pairs of consecutive files
// that hold most are merged first, until the others fit with them: the
// fewer rows go through an intermediate file, the less it costs.
func spillRuns(mem []int64, budget int64) []int {
	var total int64
	for _, m := range mem {
		total += m
	}
	if len(mem) <= 1 || (len(mem) <= maxFanIn && total <= budget) {
		return nil
	}
	var runs []int
	if len(mem) > maxFanIn {
		n, sum := 0, int64(0)
		for _, m := range mem {
			if n > 0 && (n == maxFanIn || (n >= 2 && sum+m > budget)) {
				runs = append(runs, n)
				n, sum = 0, 0
			}
			n++
			sum += m
		}
		return append(runs, n)
	}
	pairs := make([]int, len(mem)/2) // pair p is files 2p and 2p+1
	for p := range pairs {
		pairs[p] = p
	}
	pairMem := func(p int) int64 { return mem[2*p] + mem[2*p+1] }
	slices.SortStableFunc(pairs, func(a, b int) int { return cmp.Compare(pairMem(b), pairMem(a)) })
	merged := make([]bool, len(pairs))
	for _, p := range pairs {
		if total <= budget {
			break
		}
		merged[p] = true
		total -= pairMem(p) // an intermediate file holds little
	}
	for i := 0; i < len(mem); {
		if i%2 == 0 && i/2 < len(merged) && merged[i/2] {
			runs = append(runs, 2)
			i += 2
			continue
		}
		runs = append(runs, 1)
		i++
	}
	return runs
}

// Merges in rounds: the memory and the number of files one merge reads,
// and how the intermediate files are written.
const (
	mergeReadBytes = 64 << 20
	maxFanIn       = 64
	spillLevel     = 1
	spillPageBytes = 128 << 10
)

// readMemory estimates what a merge holds to read the file at path, an
// archive file, from its footer: for the row group that needs most, a page
// of each column chunk uncompressed (its whole chunk, at most pageBytes, the
// archive's page size) and 4 bytes per value of it decoded (dictionary
// indexes, string offsets).
func readMemory(path string) (n int64, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("read %s: corrupt parquet file: %v", path, p)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := checkFooter(f, fi.Size()); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	pf, err := pqfile.Open(f, fi.Size(), pq.SkipPageIndex(true), pq.SkipBloomFilters(true))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	for _, rg := range pf.Metadata().RowGroups {
		var sum int64
		for _, c := range rg.Columns {
			sum += min(c.MetaData.TotalUncompressedSize, pageBytes) + 4*min(c.MetaData.NumValues, pageBytes/4)
		}
		n = max(n, sum)
	}
	return n, nil
}

// spill merges the files at paths into one intermediate file at path,
// written by enc; orig maps each input to its row-reader digest in
// rowDigests (-1: an intermediate file, not checked).
func spill(path string, l *layout, enc *encoder, paths []string, orig []int, rowDigests []digest) error {
	m, err := newMerger(l, paths, orig)
	if err != nil {
		return err
	}
	defer m.close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = enc.writeMerged(bw, m, math.MaxInt64)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return m.checkDigests(rowDigests)
}

// sizeCheckRows is how many rows a file gets between two checks of its size
// against the target.
const sizeCheckRows = 64 << 10

// writeMerged writes the next rows of m as one Parquet file: row groups of
// up to RowGroupRows until the file reaches targetSize (checked every
// sizeCheckRows rows) or m is done.
func (e *encoder) writeMerged(out io.Writer, m *merger, targetSize int64) error {
	w := pq.NewWriter(out, e.opts...) // a new writer per file: see writeFile
	inGroup := 0
	for {
		batches, chunk, err := m.next(min(sizeCheckRows, e.cfg.RowGroupRows-inGroup))
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			break
		}
		if err := e.writeRowGroup(w.ColumnWriters(), batches, chunk, seriesKeys{}); err != nil {
			return err
		}
		inGroup += len(chunk)
		if inGroup >= e.cfg.RowGroupRows || w.Size() >= targetSize {
			if err := w.Flush(); err != nil {
				return err
			}
			inGroup = 0
			if w.Size() >= targetSize {
				break
			}
		}
	}
	return w.Close()
}

func writeIntent(pdir string, it *compactIntent) error {
	_, err := writeAtomic(pdir, compactIntentName, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		if err := json.NewEncoder(bw).Encode(it); err != nil {
			return err
		}
		return bw.Flush()
	})
	return err
}

// finish removes the inputs of a verified compaction, then its intent.
func finish(pdir string, it *compactIntent) error {
	if err := removeDurable(pdir, it.Inputs...); err != nil {
		return err
	}
	return removeDurable(pdir, compactIntentName)
}

// rollback removes the outputs of an unverified compaction and its intent;
// the inputs were never touched. It returns cause, joined with any error of
// its own.
func rollback(pdir, id string, cause error) error {
	outs, err := filepath.Glob(filepath.Join(pdir, "c-"+id+"-*.parquet"))
	if err != nil {
		return errors.Join(cause, err)
	}
	names := []string{}
	for _, o := range outs {
		names = append(names, filepath.Base(o))
	}
	if err := removeDurable(pdir, append(names, compactIntentName)...); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// recoverTable removes the temp files and finishes or rolls back the
// compactions that a crash left in the table at root. It holds the table's
// lock, which every write and compaction holds from its first temp file to
// its last rename: what it finds is a crash's leftover, never the work in
// progress of another archiver or compaction sharing the directory.
func recoverTable(root string, log *slog.Logger) error {
	lock, err := lockDir(root)
	if err != nil {
		return err
	}
	defer lock.unlock()
	if err := cleanTemps(root); err != nil {
		return err
	}
	return recoverCompactions(root, log)
}

// recoverCompactions finishes (verified) or rolls back (unverified) every
// compaction of the table at root that a crash interrupted.
func recoverCompactions(root string, log *slog.Logger) error {
	paths, err := filepath.Glob(filepath.Join(root, "date=*", "hour=*", compactIntentName))
	if err != nil {
		return err
	}
	for _, p := range paths {
		pdir := filepath.Dir(p)
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		var it compactIntent
		if err := json.Unmarshal(data, &it); err != nil || it.ID == "" || strings.ContainsAny(it.ID, `/\*?[`) {
			return fmt.Errorf("compaction intent %s is damaged (%q): inspect the partition by hand", p, data)
		}
		if it.Verified {
			log.Info("finishing an interrupted compaction", "dir", pdir, "id", it.ID)
			if err := finish(pdir, &it); err != nil {
				return err
			}
			continue
		}
		log.Info("rolling back an interrupted compaction", "dir", pdir, "id", it.ID)
		if err := rollback(pdir, it.ID, nil); err != nil {
			return err
		}
	}
	return nil
}
