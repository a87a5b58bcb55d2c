// Package parquet is the parquet sink module: the archive of design §3.4,
// kept forever. The Archiver consumes sample (or alert) batches from the bus
// and writes them as hive-partitioned Parquet files
// (ARCHIVE/<table>/date=YYYY-MM-DD/hour=HH/*.parquet), named after the bus
// range they hold so that a replay rewrites the same files; Compact merges
// the small files of closed hours.
package parquet

import (
	"path/filepath"
	"time"

	"github.com/reconmon/recon/module"
)

// Attribute names of the parquet sink.
const (
	FieldPath             = "path"
	FieldFlushRows        = "flush_rows"
	FieldFlushInterval    = "flush_interval"
	FieldCompressionLevel = "compression_level"
	FieldCompactLevel     = "compact_compression_level"
	FieldRowGroupRows     = "row_group_rows"
	FieldCompact          = "compact"
	FieldCompactAfter     = "compact_after"
	FieldTargetFileSize   = "target_file_size"
)

// Defaults of the parquet sink.
const (
	DefaultPath             = "archive"
	DefaultFlushRows        = 262_144
	DefaultFlushInterval    = 10 * time.Second
	DefaultCompressionLevel = 3
	DefaultCompactLevel     = 19
	DefaultRowGroupRows     = 1_000_000
	DefaultCompactAfter     = time.Hour
	DefaultTargetFileSize   = 512 << 20
)

// Spec declares the parquet sink.
var Spec = &module.Spec{
	Kind:    module.KindSink,
	Name:    "parquet",
	Summary: "The Parquet archive, kept forever.",
	Description: "Archives every sample at its original granularity as hive-partitioned Parquet " +
		"(`PATH/samples/date=YYYY-MM-DD/hour=HH/*.parquet`, UTC, by each row's `ts`; alerts under " +
		"`PATH/alerts/`), readable by DuckDB, Spark or pandas without Recon. Rows are sorted within " +
		"a file by (source, metric, target, ts) and compressed with zstd. A batch counts as archived " +
		"only once its file is fsynced; file names follow the bus range they hold, so a restart " +
		"never loses nor doubles a row. Small files of an hour are compacted into larger ones once " +
		"the hour closed `compact_after` ago. There is no retention: nothing is ever deleted. " +
		"See docs/archive.md.",
	Fields: []module.Field{
		module.String(FieldPath, "Archive directory; a relative path resolves against recond's `--data` directory.").
			Def(DefaultPath).Example(`"archive"`, `"/srv/recon/archive"`),
		module.Int(FieldFlushRows, "Rows buffered before they are written out as files.").
			Def(DefaultFlushRows).Range(1, 100_000_000),
		module.Duration(FieldFlushInterval, "Longest time a row waits in the buffer before it is written out.").
			Def(DefaultFlushInterval).Range(0.01, 3600),
		module.Int(FieldCompressionLevel, "zstd level of the files written as rows arrive (1 fastest … 22 smallest); compaction rewrites them smaller.").
			Def(DefaultCompressionLevel).Range(1, 22).Adv(),
		module.Int(FieldCompactLevel, "zstd level of the files compaction writes, the archive's final form.").
			Def(DefaultCompactLevel).Range(1, 22).Adv(),
		module.Int(FieldRowGroupRows, "Largest row group of a file, in rows; bigger groups compress better.").
			Def(DefaultRowGroupRows).Range(1024, 100_000_000).Adv(),
		module.Bool(FieldCompact, "Compact the small files of closed hours automatically.").Def(true),
		module.Duration(FieldCompactAfter, "How long after an hour ends its files are compacted (late rows still go in as new files).").
			Def(DefaultCompactAfter).Range(0, 30*24*3600).Adv(),
		module.Size(FieldTargetFileSize, "Largest file compaction writes; an hour with more data gets several files.").
			Def(DefaultTargetFileSize).Range(1<<20, 1<<40).Adv(),
	},
	Example: `sink archive parquet {
  path           = "archive"
  flush_interval = 10s
}`,
}

// Config is the parquet sink's settings, read from its attributes.
type Config struct {
	// Dir is the archive root.
	Dir              string
	FlushRows        int
	FlushInterval    time.Duration
	CompressionLevel int
	// CompactLevel is the zstd level of compacted files.
	CompactLevel   int
	RowGroupRows   int
	Compact        bool
	CompactAfter   time.Duration
	TargetFileSize int64
}

// ConfigFromAttrs reads a sink's attributes (defaults filled in by the
// compiler); a relative path resolves against dataDir.
func ConfigFromAttrs(a module.Attrs, dataDir string) Config {
	dir := a.String(FieldPath)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(dataDir, dir)
	}
	return Config{
		Dir:              dir,
		FlushRows:        int(a.Int(FieldFlushRows)),
		FlushInterval:    a.Duration(FieldFlushInterval),
		CompressionLevel: int(a.Int(FieldCompressionLevel)),
		CompactLevel:     int(a.Int(FieldCompactLevel)),
		RowGroupRows:     int(a.Int(FieldRowGroupRows)),
		Compact:          a.Bool(FieldCompact),
		CompactAfter:     a.Duration(FieldCompactAfter),
		TargetFileSize:   a.Size(FieldTargetFileSize),
	}
}

// DefaultConfig returns the defaults for an archive at dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:              dir,
		FlushRows:        DefaultFlushRows,
		FlushInterval:    DefaultFlushInterval,
		CompressionLevel: DefaultCompressionLevel,
		CompactLevel:     DefaultCompactLevel,
		RowGroupRows:     DefaultRowGroupRows,
		Compact:          true,
		CompactAfter:     DefaultCompactAfter,
		TargetFileSize:   DefaultTargetFileSize,
	}
}
