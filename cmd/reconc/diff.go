package main

import (
	"fmt"
	"strings"
)

// unifiedDiff returns the unified diff (3 lines of context) turning old
// into new, with gofmt's headers "name.orig" and "name"; "" when they are
// equal.
func unifiedDiff(name string, old, new []byte) string {
	a, b := splitLines(string(old)), splitLines(string(new))
	ops := diffLines(a, b)
	var out strings.Builder
	const ctx = 3
	for i := 0; i < len(ops); {
		// Find the next change.
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i == len(ops) {
			break
		}
		start := max(i-ctx, 0)
		// Extend the hunk while changes are closer than 2*ctx lines apart.
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*ctx {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		if out.Len() == 0 {
			fmt.Fprintf(&out, "--- %s.orig\n+++ %s\n", name, name)
		}
		aStart, bStart := ops[start].a, ops[start].b
		var aLen, bLen int
		for _, op := range ops[start:end] {
			if op.kind != '+' {
				aLen++
			}
			if op.kind != '-' {
				bLen++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, op := range ops[start:end] {
			out.WriteByte(op.kind)
			out.WriteString(op.text)
			if !strings.HasSuffix(op.text, "\n") {
				out.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	if n == 1 {
		return fmt.Sprint(start + 1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// splitLines splits s after each newline; the last line may lack one.
func splitLines(s string) []string {
	var lines []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

// lineOp is one line of an edit script: ' ' kept, '-' deleted from a,
// '+' inserted from b; a and b are the 0-based line indexes before it.
type lineOp struct {
	kind byte
	text string
	a, b int
}

// maxEdits bounds the edit distance diffLines searches (its memory grows
// with its square); beyond it the whole file is shown as replaced.
const maxEdits = 4096

// diffLines computes a shortest edit script with Myers' algorithm, in
// O((N+M)·D) time and O(D²) memory: cheap for the small edits formatting
// makes.
func diffLines(a, b []string) []lineOp {
	n, m := len(a), len(b)
	maxD := n + m
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	// trace[d] holds v[-d..d] as it was before step d.
	var trace [][]int
	done := false
	for d := 0; d <= maxD && !done; d++ {
		if d > maxEdits {
			return replaceAll(a, b)
		}
		trace = append(trace, append([]int(nil), v[off-d:off+d+1]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				done = true
				break
			}
		}
	}
	// Walk the trace back from (n, m), collecting operations in reverse.
	var rev []lineOp
	x, y := n, m
	for d := len(trace) - 1; d >= 0 && (x > 0 || y > 0); d-- {
		if d == 0 {
			for x > 0 && y > 0 {
				x--
				y--
				rev = append(rev, lineOp{' ', a[x], x, y})
			}
			break
		}
		vd := trace[d]
		k := x - y
		var prevK int
		if k == -d || (k != d && vd[d+k-1] < vd[d+k+1]) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := vd[d+prevK]
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			x--
			y--
			rev = append(rev, lineOp{' ', a[x], x, y})
		}
		if x == prevX {
			y--
			rev = append(rev, lineOp{'+', b[y], x, y})
		} else {
			x--
			rev = append(rev, lineOp{'-', a[x], x, y})
		}
	}
	ops := make([]lineOp, len(rev))
	for i, op := range rev {
		ops[len(rev)-1-i] = op
	}
	return ops
}

func replaceAll(a, b []string) []lineOp {
	ops := make([]lineOp, 0, len(a)+len(b))
	for i, l := range a {
		ops = append(ops, lineOp{'-', l, i, 0})
	}
	for i, l := range b {
		ops = append(ops, lineOp{'+', l, len(a), i})
	}
	return ops
}
