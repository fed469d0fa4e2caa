// Package procfile parses the foreman/Heroku Procfile format.
package procfile

// The format is foreman's: a process line matches
//
//	^([A-Za-z0-9_-]+):[ \t]*(\S.*)$
//
// so the space after the colon is optional and everything after it is the
// command, handed untouched to /bin/sh -c (shell syntax, quotes, "#" and
// UTF-8 included). Lines whose first non-blank character is "#" and blank
// lines are skipped. CRLF line endings, a UTF-8 byte order mark at the start
// of the file, a last line without a newline and lines of any length are
// accepted. Trailing blanks and "\r" are trimmed from commands. A "\r"
// anywhere else in a line is an error: CR-only (old Mac) line ends are not
// read as line breaks, since foreman would read the file as one line.
//
// Where foreman silently ignores a line it cannot read, this parser reports
// it, because a Procfile line that runs nothing is always a mistake:
//
//   - a line that is not "name: command" (a missing colon, a space before the
//     colon, a missing name, a name with characters other than letters,
//     digits, "_" and "-", a name with no command);
//   - a name longer than MaxNameLen (63) characters;
//   - a process line that holds a NUL byte or is not valid UTF-8;
//   - a command longer than exec takes in one argument (MaxArgLen);
//   - a name defined twice;
//   - a file that defines no process at all.
//
// Every error names FILE:LINE, quotes the offending line (shortened to about
// 60 characters) and says what would be right. Parse reports every problem
// in the file, not only the first.
//
// One leniency differs from foreman: a process line indented with spaces or
// tabs is accepted as if it were not indented. foreman's anchored regexp
// drops such a line without a word; running it is the harmless reading.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Entry is one process line of a Procfile.
type Entry struct {
	Name    string // [A-Za-z0-9_-]+
	Command string // passed untouched to /bin/sh -c (UTF-8 kept as is, trailing spaces/\r trimmed)
	Line    int    // 1-based line number
}

// SyntaxError is one problem at one line. Error() is "FILE:LINE: MSG".
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

// Error returns "FILE:LINE: MSG".
func (e *SyntaxError) Error() string {
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// ErrorList is every problem found in one file, in line order; Error() joins
// them with "\n".
type ErrorList []*SyntaxError

// Error returns every error of the list, one a line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors of the list, so errors.As finds a *SyntaxError.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// MaxNameLen is the longest process name: 63 characters, a DNS label's
// limit (RFC 1123), which Kubernetes sets for container names and which
// mhrun export kubernetes uses the name as; a systemd unit name, which
// export systemd builds from it, allows 255.
const MaxNameLen = 63

// MaxArgLen is the longest string Linux's exec takes as one argument or one
// NAME=value of the environment: MAX_ARG_STRLEN, 32 pages of 4 KiB (131072
// bytes), less the NUL that ends it. A longer command, as /bin/sh -c gets
// it, could never start, so the parser refuses it.
const MaxArgLen = 32*4096 - 1

// example is the process line that error messages show as a model.
const example = `"web: ./server"`

// blank is what counts as blank around a line and a command: what foreman's
// \s matches, minus the newline that ends the line.
const blank = " \t\r\v\f"

// Parse reads a Procfile; file is the name used in messages. It returns every
// entry in file order, or an ErrorList with every error found (not only the
// first). It reads foreman's format, with one leniency: an indented process
// line counts (foreman drops it unread). The rules are at the top of this
// file. An error reading r is returned wrapped with file, not as an ErrorList.
func Parse(r io.Reader, file string) ([]Entry, error) {
	var (
		entries []Entry
		errs    ErrorList
		first   = map[string]int{} // name → line that defined it
		br      = bufio.NewReader(r)
	)
	fail := func(line int, format string, args ...any) {
		errs = append(errs, &SyntaxError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	for n := 1; ; n++ {
		raw, err := br.ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, readError(file, err)
		}
		if raw == "" && err == io.EOF {
			break
		}
		line := strings.TrimSuffix(raw, "\n")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		line = strings.TrimRight(line, blank)
		if strings.IndexByte(line, '\r') >= 0 {
			fail(n, "%s", bareCR(line))
			if err == io.EOF {
				break
			}
			continue
		}
		line = strings.TrimLeft(line, blank)
		if line != "" && line[0] != '#' {
			if e, msg := parseLine(line, n); msg != "" {
				fail(n, "%s", msg)
			} else if at, dup := first[e.Name]; dup {
				fail(n, "duplicate process %q (first defined at line %d)", e.Name, at)
			} else {
				first[e.Name] = n
				entries = append(entries, e)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(entries) == 0 {
		return nil, ErrorList{{File: file, Line: 1, Msg: "no processes defined (add a line like " + example + ")"}}
	}
	return entries, nil
}

// parseLine reads one line that is neither blank nor a comment, already
// trimmed of blanks at both ends. It returns the entry, or a message that
// quotes the line and says what would be right.
func parseLine(line string, n int) (Entry, string) {
	q := quote(line)
	if strings.IndexByte(line, 0) >= 0 {
		return Entry{}, "line contains a NUL byte: " + q + " (remove it; a command cannot hold one)"
	}
	if !utf8.ValidString(line) {
		return Entry{}, "line is not valid UTF-8: " + q + " (save the file as UTF-8)"
	}
	if msg := quoted(line, n); msg != "" {
		return Entry{}, msg
	}
	name, cmd, found := strings.Cut(line, ":")
	cmd = strings.Trim(cmd, blank)
	want := "want \"name: command\""
	switch {
	case !found || strings.ContainsAny(strings.TrimRight(name, blank), blank):
		// No colon, or words before the first colon, as in
		// "web bundle exec rake jobs:work": the colon is missing.
		return Entry{}, "not a process line: " + q + " (" + want + ")"
	case name == "":
		return Entry{}, "missing process name: " + q + " (" + want + ")"
	case strings.TrimRight(name, blank) != name:
		name = strings.TrimRight(name, blank)
		if validName(name) {
			return Entry{}, `space before ":": ` + q + " (want " + quote(name+": "+orCommand(cmd)) + ")"
		}
		return Entry{}, "not a process line: " + q + " (" + want + ")"
	case !validName(name):
		msg := "invalid process name " + strconv.Quote(name) + ": " + q +
			` (a name may only contain letters, digits, "_" and "-"`
		if s := suggestName(name); s != "" {
			msg += ", like " + strconv.Quote(s)
		}
		return Entry{}, msg + ")"
	case len(name) > MaxNameLen:
		return Entry{}, fmt.Sprintf("process name is %d characters long: %s (want at most %d: mhrun export makes it a Kubernetes container name and part of systemd unit names)", len(name), q, MaxNameLen)
	case cmd == "":
		return Entry{}, name + " has no command: " + q + " (want " + quote(name+": command") + ")"
	case len(ShellCommand(cmd)) > MaxArgLen:
		return Entry{}, fmt.Sprintf("the command of %s is %d bytes, more than exec takes in one argument (128 KiB): move it into a script and run that", name, len(cmd))
	}
	return Entry{Name: name, Command: cmd, Line: n}, ""
}

// quoted is the message for a line that starts with a quote, which no
// process line does, when the line reads as one without its quotes: a
// name in quotes ("web": ./server, as YAML or JSON write it), a line
// wrapped in them (an echo "..." > Procfile that kept them, a copy from a
// document), or an opening quote alone. It returns "" for any other line,
// which the other messages then describe.
func quoted(line string, n int) string {
	q := line[0]
	if q != '"' && q != '\'' {
		return ""
	}
	fix := func(what, fixed, them string) string {
		fixed = strings.Trim(fixed, blank)
		if fixed == "" {
			return ""
		}
		if _, msg := parseLine(fixed, n); msg != "" {
			return ""
		}
		return what + ": " + quote(line) + " (remove " + them + ": want " + quote(fixed) + ")"
	}
	if name, cmd, ok := strings.Cut(line[1:], ":"); ok && strings.HasSuffix(name, string(q)) {
		if msg := fix("process name in quotes", name[:len(name)-1]+":"+cmd, "the quotes"); msg != "" {
			return msg
		}
	}
	if len(line) > 1 && line[len(line)-1] == q {
		if msg := fix("line is wrapped in quotes", line[1:len(line)-1], "the quotes"); msg != "" {
			return msg
		}
	}
	return fix("line starts with a quote", line[1:], "it")
}

// bareCR is the message for a line that holds a carriage return not at its
// end: a file saved with old Mac line ends (CR alone), which would read as
// one long line, or a stray ^M. foreman would run it as one command and
// godotenv splits it; neither is what was meant, so it is refused.
func bareCR(line string) string {
	return "carriage return (\\r) inside a line: " + quote(line) +
		" (save the file with LF or CRLF line ends; CR alone does not end a line)"
}

// orCommand returns cmd, or a placeholder when it is empty.
func orCommand(cmd string) string {
	if cmd == "" {
		return "command"
	}
	return cmd
}

// validName reports whether s matches [A-Za-z0-9_-]+.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// suggestName turns an invalid name into a valid one by replacing each run
// of other characters with "-", as in "my.web" → "my-web". It returns "" when
// nothing of the name is left.
func suggestName(name string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(name); i++ {
		if nameByte(name[i]) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteByte(name[i])
		} else {
			dash = true
		}
	}
	return b.String()
}

// maxQuote is how many characters of a line a message quotes.
const maxQuote = 60

// quote returns s in Go quotes, shortened to about maxQuote characters so
// that one message stays one readable line whatever the file holds.
func quote(s string) string {
	if utf8.RuneCountInString(s) <= maxQuote {
		return strconv.Quote(s)
	}
	// Keep maxQuote-3 characters, an invalid byte counting as one.
	i := 0
	for range maxQuote - 3 {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return strconv.Quote(s[:i]) + "..."
}

// readError wraps an error reading the Procfile, unless it already names it.
func readError(file string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("read %s: %w", file, err)
}
