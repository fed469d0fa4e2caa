// Package lines is the line format of the throughput benchmark, shared by
// the writer that prints the lines and the harness that checks them.
//
// Line seq of writer id is "ID SEQ FILLER" where SEQ has nine digits and
// FILLER is a run of letters and digits starting at an offset that depends
// on seq, so a line glued from pieces of two lines never passes as intact.
// Without its "\n" a line is size-1 bytes.
package lines

import "strconv"

const filler = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// Append appends line seq of writer id, without its "\n", to b.
func Append(b []byte, id string, seq, size int) []byte {
	start := len(b)
	b = append(b, id...)
	b = append(b, ' ')
	var digits [9]byte
	s := strconv.AppendInt(digits[:0], int64(seq), 10)
	for i := len(s); i < 9; i++ {
		b = append(b, '0')
	}
	b = append(b, s...)
	b = append(b, ' ')
	for i := seq % len(filler); len(b)-start < size-1; i = (i + 1) % len(filler) {
		b = append(b, filler[i])
	}
	return b[:start+size-1]
}

// Header reads the "ID SEQ " at the start of a line or of its first piece.
func Header(text []byte) (id string, seq int, ok bool) {
	sp := -1
	for i, c := range text {
		if c == ' ' {
			sp = i
			break
		}
	}
	if sp <= 0 || len(text) < sp+1+9 {
		return "", 0, false
	}
	n := 0
	for _, c := range text[sp+1 : sp+10] {
		if c < '0' || c > '9' {
			return "", 0, false
		}
		n = n*10 + int(c-'0')
	}
	return string(text[:sp]), n, true
}
