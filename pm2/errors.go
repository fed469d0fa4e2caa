package pm2

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in an ecosystem file. Line is 0 where the format
// gives none (a YAML file's values, what node printed of a .js file).
type Error struct {
	File string
	Line int
	Msg  string
}

// Error returns "FILE:LINE: MSG", or "FILE: MSG" without a line.
func (e *Error) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// ErrorList is every problem found in an ecosystem file, in line order.
type ErrorList []*Error

// Error returns the errors one a line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, for errors.As.
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

// Warning is a PM2 key, or a value of one, that mhrun cannot carry over
// as it is, and why: nothing of the file is dropped without one.
type Warning struct {
	File string
	Line int    // 0 where the format gives none
	App  string // the process it concerns (its Procfile name), "" for the whole file
	Key  string // the PM2 key, "" for none
	Msg  string
}

// String returns "FILE:LINE: APP: KEY: MSG", leaving out what is empty.
func (w Warning) String() string {
	var b strings.Builder
	b.WriteString(w.File)
	if w.Line > 0 {
		b.WriteString(":" + strconv.Itoa(w.Line))
	}
	b.WriteString(": ")
	if w.App != "" {
		b.WriteString(w.App + ": ")
	}
	if w.Key != "" {
		b.WriteString(w.Key + ": ")
	}
	b.WriteString(w.Msg)
	return b.String()
}
