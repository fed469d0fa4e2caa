package pm2

import "strings"

// splitArgs splits an args string into words as PM2 does (lib/tools/
// Config.js: String.split on /([\w\-]+\="[^"]*")|([\w\-]+\='[^']*')|"([^"]*)"|'([^']*)'|\s/,
// empty pieces dropped): words are separated by white space; "..." and
// '...' are one word without their quotes; a word=quoted value (--name="a
// b") is one word with its quotes kept. Nothing else is special: no
// escapes, no variables.
func splitArgs(s string) []string {
	var out []string
	var piece strings.Builder
	flush := func() {
		if strings.TrimSpace(piece.String()) != "" {
			out = append(out, piece.String())
		}
		piece.Reset()
	}
	keep := func(w string) {
		if strings.TrimSpace(w) != "" {
			out = append(out, w)
		}
	}
	from := 0 // where the regular expression's search starts again
	for i := 0; i < len(s); {
		c := s[i]
		if wordByte(c) && (i == from || !wordByte(s[i-1])) {
			j := i
			for j < len(s) && wordByte(s[j]) {
				j++
			}
			if j+1 < len(s) && s[j] == '=' && (s[j+1] == '"' || s[j+1] == '\'') {
				if k := strings.IndexByte(s[j+2:], s[j+1]); k >= 0 {
					end := j + 2 + k + 1
					flush()
					keep(s[i:end])
					i, from = end, end
					continue
				}
			}
		}
		if c == '"' || c == '\'' {
			if k := strings.IndexByte(s[i+1:], c); k >= 0 {
				flush()
				keep(s[i+1 : i+1+k])
				i += k + 2
				from = i
				continue
			}
		}
		if jsSpace(c) {
			flush()
			i++
			from = i
			continue
		}
		piece.WriteByte(c)
		i++
	}
	flush()
	return out
}

// wordByte is what \w and - match.
func wordByte(c byte) bool {
	return c == '_' || c == '-' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// jsSpace is the ASCII part of what JavaScript's \s matches.
func jsSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// shellQuote returns w as one /bin/sh word: as it is when it holds only
// letters, digits and _@%+=:,./-, else in single quotes.
func shellQuote(w string) string {
	if w == "" {
		return "''"
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !(wordByte(c) || strings.IndexByte("@%+=:,./", c) >= 0) {
			return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return w
}

// shellCommand joins words into a command line; the first word, the
// program, is quoted too when it holds "=", which sh would take for an
// assignment.
func shellCommand(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
		if i == 0 && q[i] == w && strings.Contains(w, "=") {
			q[i] = "'" + w + "'"
		}
	}
	return strings.Join(q, " ")
}
