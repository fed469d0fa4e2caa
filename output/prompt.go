package output

import (
	"bytes"
	"unicode/utf8"
)

// promptTail is how much of a partial line's end looksLikePrompt reads.
const promptTail = 256

// promptEnds are the characters a prompt ends in before its space: "Name: ",
// "Continue? ", ">>> ", "$ ", "postgres=# ", "% ", "[y/N] ", "(Pdb) ", and
// the arrows of themed shells ("❯ ", "» ", "› ", "➜ ", "λ ").
const promptEnds = ":?>$#%])❯»›➜λ"

// looksLikePrompt reports whether a partial line looks like a program's
// prompt, waiting for input rather than cut by a slow machine: its text, as
// the output would show it (escape sequences removed, what a "\r" overwrote
// dropped), ends in one of promptEnds followed by one space or more. It
// reads only the line's last promptTail bytes.
func looksLikePrompt(partial []byte) bool {
	b := partial
	if len(b) > promptTail {
		b = b[len(b)-promptTail:]
	}
	text := StripANSI(nil, b) // b itself, not copied, when it is plain text
	trimmed := bytes.TrimRight(text, " ")
	if len(trimmed) == len(text) || len(trimmed) == 0 {
		return false
	}
	r, _ := utf8.DecodeLastRune(trimmed)
	return r != utf8.RuneError && bytes.ContainsRune([]byte(promptEnds), r)
}
