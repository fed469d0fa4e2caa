package policy

import "strings"

// Suggest returns the closest of options to word, for "did you mean":
// the one with the smallest edit distance (case-insensitive, a swap of two
// neighbours counts as one edit) if that is at most 2 and less than the
// length of word, else the only option that word is a case-insensitive
// prefix of, else "". A word longer than 64 bytes is no typo: "".
func Suggest(word string, options []string) string {
	if word == "" || len(word) > maxSuggest {
		return ""
	}
	w := []rune(strings.ToLower(word))
	best, bestD := "", min(3, len(w))
	for _, o := range options {
		if d := distance(w, []rune(strings.ToLower(o)), bestD); d < bestD {
			best, bestD = o, d
		}
	}
	if best != "" {
		return best
	}
	lw := string(w)
	for _, o := range options {
		if strings.HasPrefix(strings.ToLower(o), lw) {
			if best != "" {
				return ""
			}
			best = o
		}
	}
	return best
}

// maxSuggest bounds the work of Suggest on a long word.
const maxSuggest = 64

// distance is the optimal string alignment distance of a and b, or limit
// when it is surely limit or more.
func distance(a, b []rune, limit int) int {
	if len(a)-len(b) >= limit || len(b)-len(a) >= limit {
		return limit
	}
	prev2 := make([]int, len(b)+1)
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
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
