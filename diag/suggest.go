package diag

// Suggest returns the candidate closest to name by edit distance
// (Levenshtein, on runes), or "" when none is close enough to be a likely
// typo: the distance must be at most a third of name's length (at least 1)
// and less than name's length. Ties go to the lexically smallest candidate,
// so the answer does not depend on the order of candidates.
func Suggest(name string, candidates []string) string {
	n := []rune(name)
	limit := max(1, (len(n)+2)/3)
	if limit >= len(n) {
		limit = len(n) - 1
	}
	best, bestDist := "", limit+1
	var row []int
	for _, c := range candidates {
		if c == name {
			continue
		}
		var d int
		d, row = levenshtein(n, []rune(c), row)
		if d < bestDist || (d == bestDist && best != "" && c < best) {
			best, bestDist = c, d
		}
	}
	return best
}

// levenshtein returns the edit distance of a and b, reusing row as scratch.
func levenshtein(a, b []rune, row []int) (int, []int) {
	if cap(row) < len(b)+1 {
		row = make([]int, len(b)+1)
	}
	row = row[:len(b)+1]
	for j := range row {
		row[j] = j
	}
	for i := 1; i <= len(a); i++ {
		prev := row[0]
		row[0] = i
		for j := 1; j <= len(b); j++ {
			cur := row[j]
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			row[j] = min(row[j]+1, row[j-1]+1, prev+cost)
			prev = cur
		}
	}
	return row[len(b)], row
}
