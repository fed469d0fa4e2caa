package policy

import (
	"sort"
	"strconv"
	"strings"
)

// SyntaxError is one error in a policy file, at a line.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

// Error returns "FILE:LINE: MSG".
func (e *SyntaxError) Error() string {
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

// newError makes a SyntaxError whose message stays on one line.
func newError(file string, line int, msg string) *SyntaxError {
	return &SyntaxError{File: file, Line: line, Msg: strings.ReplaceAll(msg, "\n", `\n`)}
}

// ErrorList is every error found in a policy file, sorted by line.
type ErrorList []*SyntaxError

// Error returns the errors one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, for errors.As and errors.Is.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

func (l ErrorList) sort() {
	sort.SliceStable(l, func(i, j int) bool { return l[i].Line < l[j].Line })
}
