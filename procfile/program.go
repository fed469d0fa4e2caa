package procfile

import "strings"

// Program returns the program a Procfile command starts, as /bin/sh -c
// would look it up, when the text alone makes that clear; else "".
//
// It reads the command's first simple command the way sh splits words:
// leading NAME=value assignments are skipped (quotes, \ escapes and
// ${...} in their values included), then an `exec` or a `command` in
// front of the program, and the next word, unquoted, is the program:
// "node" in `HOST=127.0.0.1 exec node server.js`, "./bin/web" in
// `./bin/web | tee log`, "my prog" in `"my prog" -v`. Only the first
// simple command counts: in `a && b` it is a, in `a | b` it is a.
//
// It returns "" when the shell, not a file, decides what runs: a builtin
// or reserved word (cd, echo, if, trap, {, !, ...), a subshell, a
// redirection before the program, a function definition, or a word that
// holds an expansion ($VAR, $(...), `...`, ~, a glob); and when an
// assignment sets PATH, which changes where sh would look.
func Program(cmd string) string {
	i := 0
	for {
		w, next, ok := shellWord(cmd, i)
		switch {
		case !ok:
			return ""
		case w.assign != "":
			if w.assign == "PATH" {
				return ""
			}
			i = next
			continue
		}
		if w.plain && (w.text == "exec" || w.text == "command") {
			// `exec prog` runs prog in place of the shell; `command
			// prog` skips functions. Options (bash's exec -a, command
			// -v) make it something else.
			w2, next2, ok := shellWord(cmd, next)
			if !ok || strings.HasPrefix(w2.text, "-") || w2.assign != "" {
				return ""
			}
			w, next = w2, next2
		}
		// A quoted builtin is still the builtin: quotes go before lookup.
		if !w.plain && !w.quoted || w.text == "" || notExec[w.text] || w.text[0] == '-' || w.plain && w.text[0] == '#' {
			return ""
		}
		// NAME() { ...; }: a function definition, not a program.
		rest := strings.TrimLeft(cmd[next:], " \t")
		if strings.HasPrefix(rest, "(") {
			return ""
		}
		return w.text
	}
}

// word is one shell word at the start of a command.
type word struct {
	text   string // its value with quotes and escapes removed
	plain  bool   // written without quotes, escapes or expansions
	quoted bool   // quotes or escapes, but no expansion
	assign string // NAME when the word is an assignment NAME=value
}

// shellWord reads the word of cmd that starts at or after i (after
// blanks) and returns it and the index after it. ok is false at the end
// of the command, at an operator (; & | ( ) < >), or for a word this
// small reader cannot follow: an unterminated quote, $( or a backquote.
func shellWord(cmd string, i int) (w word, next int, ok bool) {
	for i < len(cmd) && (cmd[i] == ' ' || cmd[i] == '\t') {
		i++
	}
	start := i
	var b strings.Builder
	expands, escapes := false, false
scan:
	for i < len(cmd) {
		c := cmd[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || strings.IndexByte(";&|()<>", c) >= 0:
			break scan
		case c == '\\':
			if i+1 >= len(cmd) {
				return word{}, 0, false
			}
			escapes = true
			b.WriteByte(cmd[i+1])
			i += 2
		case c == '\'':
			j := strings.IndexByte(cmd[i+1:], '\'')
			if j < 0 {
				return word{}, 0, false
			}
			escapes = true
			b.WriteString(cmd[i+1 : i+1+j])
			i += j + 2
		case c == '"':
			escapes = true
			i++
			for {
				if i >= len(cmd) {
					return word{}, 0, false
				}
				d := cmd[i]
				if d == '"' {
					i++
					break
				}
				if d == '`' || d == '$' && i+1 < len(cmd) && cmd[i+1] == '(' {
					return word{}, 0, false
				}
				if d == '$' {
					expands = true
				}
				if d == '\\' && i+1 < len(cmd) && strings.IndexByte("\"\\$`\n", cmd[i+1]) >= 0 {
					i++
					d = cmd[i]
				}
				b.WriteByte(d)
				i++
			}
		case c == '`' || c == '$' && i+1 < len(cmd) && cmd[i+1] == '(':
			return word{}, 0, false
		case c == '$' && i+1 < len(cmd) && cmd[i+1] == '{':
			end := closingBrace(cmd, i+2)
			if end < 0 {
				return word{}, 0, false
			}
			expands = true
			b.WriteString(cmd[i : end+1])
			i = end + 1
		default:
			if c == '$' || c == '*' || c == '?' || c == '[' || c == '~' && i == start {
				expands = true
			}
			b.WriteByte(c)
			i++
		}
	}
	if i == start {
		return word{}, 0, false
	}
	w = word{text: b.String(), plain: !expands && !escapes, quoted: escapes && !expands}
	if name, _, found := strings.Cut(cmd[start:i], "="); found && isVarName(name) {
		w.assign = name
	}
	return w, i, true
}

// closingBrace returns the index of the } that closes a ${ whose body
// starts at i, or -1; quotes inside are skipped over.
func closingBrace(s string, i int) int {
	depth := 1
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return -1
			}
			i += j + 1
		case '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return -1
			}
			i = j
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// isVarName reports whether s is a shell variable name: a letter or _,
// then letters, digits and _.
func isVarName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}
