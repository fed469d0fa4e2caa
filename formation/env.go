package formation

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"

	"github.com/joho/godotenv"

	"mhrun/procfile"
)

// EnvError is a problem in an env file at one line. Error() is "FILE:LINE: MSG".
type EnvError struct {
	File string
	Line int
	Msg  string
}

func (e *EnvError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// envName is what godotenv accepts as a variable name, less its oddities.
var envName = regexp.MustCompile(`^(export[ \t]+)?[A-Za-z_][A-Za-z0-9_.]*[ \t]*[=:]`)

// ReadEnvFiles reads env files in order, later files winning, with godotenv's
// syntax (KEY=value, export, quotes, ${VAR} expansion, # comments). Each is
// read as every input file is (ReadFile: a regular file of at
// most 1 MiB, never a FIFO or a device).
// A file in optional that does not exist is skipped (the default .env);
// any other file must exist. Every problem found is returned, each as an
// *EnvError naming file:line.
func ReadEnvFiles(optional []string, required []string) (map[string]string, error) {
	vars := map[string]string{}
	var errs []error
	read := func(path string, mustExist bool) {
		data, err := ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && !mustExist {
			return
		}
		if err != nil {
			hint := "pass an existing, readable file to -e"
			if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
				hint = "want a regular file of KEY=value lines"
			}
			errs = append(errs, &EnvError{File: path, Msg: fmt.Sprintf("cannot read env file: %v (%s)", unwrapPath(err), hint)})
			return
		}
		if isUTF16(data) {
			errs = append(errs, &EnvError{File: path, Msg: utf16Msg})
			return
		}
		m, err := parseEnv(data, path)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for k, v := range m {
			vars[k] = v
		}
	}
	for _, p := range optional {
		read(p, false)
	}
	for _, p := range required {
		read(p, true)
	}
	return vars, errors.Join(errs...)
}

// unwrapPath drops the "open PATH:" part of a *fs.PathError, since the
// message already names the file.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseEnv checks the line shape itself, so that mistakes get a line number
// (godotenv's own errors have none, and it silently joins a line without "="
// to the next), then lets godotenv read the values.
func parseEnv(data []byte, file string) (map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // an editor's byte-order mark
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), len(data)+1)
	line := 0
	keyLine := map[string]int{} // variable → the line that last set it
	quote := byte(0)            // inside a multi-line quoted value
	quoteLine := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.Contains(text, "\r") {
			// godotenv would end the line there, and count lines otherwise.
			errs = append(errs, &EnvError{File: file, Line: line, Msg: fmt.Sprintf("carriage return (\\r) inside a line: %q (save the file with LF or CRLF line ends; CR alone does not end a line)", shorten(text))})
			if quote == 0 {
				continue
			}
		}
		if quote != 0 {
			if closesQuote(text, quote) {
				quote = 0
			}
			continue
		}
		trimmed := strings.TrimSpace(text)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		m := envName.FindString(trimmed)
		if m == "" {
			errs = append(errs, &EnvError{File: file, Line: line, Msg: fmt.Sprintf("not a variable line: %q (want KEY=value)", shorten(trimmed))})
			continue
		}
		keyLine[envKey(m)] = line
		value := strings.TrimLeft(trimmed[len(m):], " \t")
		if value != "" && (value[0] == '"' || value[0] == '\'') {
			if !closesQuote(value[1:], value[0]) {
				quote, quoteLine = value[0], line
			}
		}
	}
	if quote != 0 {
		errs = append(errs, &EnvError{File: file, Line: quoteLine, Msg: fmt.Sprintf("unterminated %c-quoted value (close it with %c)", quote, quote)})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		return nil, &EnvError{File: file, Msg: err.Error()}
	}
	if err := checkValues(m, keyLine, file); err != nil {
		return nil, err
	}
	return m, nil
}

// checkValues refuses, at the line that sets it, a variable no exec can
// pass: one whose value (after ${VAR} expansion) holds a NUL byte, which
// would end the string early (Go's exec refuses it, so every start would
// fail), or whose NAME=value is longer than exec takes in one string
// (procfile.MaxArgLen, 128 KiB with its NUL: E2BIG).
func checkValues(m map[string]string, keyLine map[string]int, file string) error {
	var errs []*EnvError
	for k, v := range m {
		if msg := valueProblem(k, v, k); msg != "" {
			errs = append(errs, &EnvError{File: file, Line: keyLine[k], Msg: msg})
		}
	}
	slices.SortFunc(errs, func(a, b *EnvError) int { return cmp.Or(a.Line-b.Line, strings.Compare(a.Msg, b.Msg)) })
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// valueProblem says why no exec can pass the variable k=v (see
// checkValues), naming it as what, or returns "".
func valueProblem(k, v, what string) string {
	switch {
	case strings.IndexByte(v, 0) >= 0:
		return fmt.Sprintf("%s holds a NUL byte, which no environment variable can carry (remove it)", what)
	case len(k)+1+len(v) > procfile.MaxArgLen:
		return fmt.Sprintf("%s=... is %d bytes, more than exec takes for one variable (128 KiB): put the data in a file and pass its path", what, len(k)+1+len(v))
	}
	return ""
}

// envKey is the variable name of a line's start as envName matched it
// ("export KEY =" gives KEY).
func envKey(m string) string {
	m = strings.TrimRight(m[:len(m)-1], " \t") // the = or :
	if rest, ok := strings.CutPrefix(m, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		m = strings.TrimLeft(rest, " \t")
	}
	return m
}

// closesQuote reports whether s holds an unescaped closing quote q.
func closesQuote(s string, q byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && q == '"' {
			i++
			continue
		}
		if s[i] == q {
			return true
		}
	}
	return false
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
