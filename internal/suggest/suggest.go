// Package suggest finds the name a mistyped one was meant to be, so that an
// error about an unknown field or column can say "did you mean …?".
package suggest

import "strings"

// Nearest returns the known name that name is most likely a typo of, or ""
// when none is close. Case is ignored, and the number of edits allowed grows
// with the length of the known name (at most 3), so that a short name such
// as "id" is not offered for any unrelated short word.
func Nearest(name string, known []string) string {
	lower := strings.ToLower(name)
	best, bestDist := "", -1
	for _, k := range known {
		limit := min(3, len(k)/3)
		if len(lower) > len(k)+limit || len(lower) < len(k)-limit {
			continue
		}
		if d := editDistance(lower, k); d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
