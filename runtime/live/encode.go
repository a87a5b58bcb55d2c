package live

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/reconmon/recon/runtime/sample"
)

// columns are the typed columns of one sample batch.
type columns struct {
	ts                                       *array.Timestamp
	pipeline, source, module, target, metric *array.String
	text, unit, node, lkeys, litems          *array.String
	value                                    *array.Float64
	labels                                   *array.Map
}

// bind types rec's columns; ok is false when rec is not a sample batch.
func bind(rec arrow.RecordBatch) (c columns, ok bool) {
	if rec.NumCols() != int64(len(sample.Schema.Fields())) {
		return c, false
	}
	str := func(i int) *array.String { s, _ := rec.Column(i).(*array.String); return s }
	c.ts, _ = rec.Column(sample.IdxTs).(*array.Timestamp)
	c.pipeline, c.source, c.module = str(sample.IdxPipeline), str(sample.IdxSource), str(sample.IdxModule)
	c.target, c.metric, c.text = str(sample.IdxTarget), str(sample.IdxMetric), str(sample.IdxText)
	c.unit, c.node = str(sample.IdxUnit), str(sample.IdxNode)
	c.value, _ = rec.Column(sample.IdxValue).(*array.Float64)
	c.labels, _ = rec.Column(sample.IdxLabels).(*array.Map)
	if c.ts == nil || c.pipeline == nil || c.source == nil || c.module == nil || c.target == nil ||
		c.metric == nil || c.text == nil || c.unit == nil || c.node == nil || c.value == nil || c.labels == nil {
		return c, false
	}
	c.lkeys, _ = c.labels.Keys().(*array.String)
	c.litems, _ = c.labels.Items().(*array.String)
	return c, c.lkeys != nil && c.litems != nil
}

// appendRow appends row i as one JSON object, with the sample column names
// as keys (the same shape as `reconc tail --json`): ts as RFC 3339 with
// nanoseconds, value/text/unit null when absent (and value null for NaN
// and ±Inf, which JSON cannot carry), labels as an object.
func (c *columns) appendRow(dst []byte, i int) []byte {
	dst = append(dst, `{"ts":"`...)
	dst = time.Unix(0, int64(c.ts.Value(i))).UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","pipeline":`...)
	dst = appendString(dst, c.pipeline.Value(i))
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, c.source.Value(i))
	dst = append(dst, `,"module":`...)
	dst = appendString(dst, c.module.Value(i))
	dst = append(dst, `,"target":`...)
	dst = appendString(dst, c.target.Value(i))
	dst = append(dst, `,"metric":`...)
	dst = appendString(dst, c.metric.Value(i))
	dst = append(dst, `,"value":`...)
	if v := c.value.Value(i); c.value.IsValid(i) && !math.IsNaN(v) && !math.IsInf(v, 0) {
		dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"text":`...)
	dst = appendNullable(dst, c.text, i)
	dst = append(dst, `,"unit":`...)
	dst = appendNullable(dst, c.unit, i)
	dst = append(dst, `,"labels":{`...)
	if c.labels.IsValid(i) {
		start, end := c.labels.ValueOffsets(i)
		for j := start; j < end; j++ {
			if j > start {
				dst = append(dst, ',')
			}
			dst = appendString(dst, c.lkeys.Value(int(j)))
			dst = append(dst, ':')
			dst = appendString(dst, c.litems.Value(int(j)))
		}
	}
	dst = append(dst, `},"node":`...)
	dst = appendString(dst, c.node.Value(i))
	return append(dst, '}')
}

func appendNullable(dst []byte, a *array.String, i int) []byte {
	if !a.IsValid(i) {
		return append(dst, "null"...)
	}
	return appendString(dst, a.Value(i))
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// U+2028 and U+2029 are escaped so the output is safe inside <script> and
// JavaScript string literals, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
