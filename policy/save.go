package policy

// How SetScales edits a policy file, so that a saved scale reads like a
// hand edit in `git diff`:
//
//   - Only scale= is touched, only for the processes given, and only where
//     the file does not already give that scale: by the process's own line,
//     by `*:` or by the default (1). Nothing is ever removed: a process
//     whose live scale equals what `*:` or the default gives keeps the file
//     as it is, and one whose own scale= differs gets that value replaced,
//     not the key dropped.
//   - A scale= the process already has is rewritten in place. A process
//     with lines but no scale= gets it at the end of the items of its first
//     line, before any trailing comment. A process with no line gets one,
//     `NAME: scale=N`, after the last line of the nearest process before it
//     in the Procfile that has one, else above the first line (and the
//     comments right above it) of the nearest after it, else after the last
//     line of the file that is not blank.
//   - Every other byte is kept: comments, blank lines, order, `*:` lines,
//     quoting, line ends (CRLF stays CRLF, and a new line takes the file's
//     style), a byte order mark. Alignment too: when an edited item gets
//     longer or shorter, the spaces that pad the column after it give or
//     take the difference (one space at least stays), and a new line pads
//     its name to the column of its neighbours when they line their items
//     up (with spaces, or with tabs when they use tabs).
//   - The value written is "max" for ScaleMax, else the number.
//
// The result is parsed and resolved again before it is returned: every
// process must have exactly its old policy, save the scales given.

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// SetScales returns the policy file data with the process scales in set
// (a name to N, or to ScaleMax for one per CPU) written in by the
// smallest edit, as the rules at the top of this file say; file names
// the file in errors, names are the Procfile's processes in their order.
// It returns data itself when the file already gives every process its
// scale. Errors: the file does not parse or does not fit the Procfile
// (the parser's ErrorList), a name in set is not a process of names, or
// a scale is out of range (a singleton above 1, past MaxScale).
func SetScales(data []byte, file string, names []string, set map[string]int) ([]byte, error) {
	f, err := Parse(bytes.NewReader(data), file)
	if err != nil {
		return nil, err
	}
	pols, err := f.Resolve(names)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(set) {
		p, ok := pols[name]
		if !ok {
			if s := Suggest(name, names); s != "" {
				return nil, fmt.Errorf("unknown process %q (did you mean %q?)", name, s)
			}
			return nil, fmt.Errorf("unknown process %q (the Procfile has %s)", name, strings.Join(names, ", "))
		}
		if err := CheckScale(name, p, set[name]); err != nil {
			return nil, err
		}
	}

	doc := splitDoc(data)
	var adds []addition
	for _, name := range names {
		n, ok := set[name]
		if !ok || pols[name].Scale == n {
			continue
		}
		item := "scale=" + formatScale(n)
		e := f.byName[name]
		switch {
		case e != nil && e.set["scale"].line > 0:
			doc.replaceScale(e.set["scale"].line-1, item)
		case e != nil:
			doc.appendItem(e.line-1, item)
		default:
			adds = append(adds, addition{at: doc.newLineAt(f, names, name), name: name, item: item})
		}
	}
	out := doc.render(adds)
	if bytes.Equal(out, data) {
		return data, nil
	}
	if err := checkSaved(out, file, names, pols, set); err != nil {
		return nil, err
	}
	return out, nil
}

// checkSaved makes sure that out gives every process its old policy but
// for the scales in set: a failure is a bug of SetScales, never written.
func checkSaved(out []byte, file string, names []string, old map[string]Policy, set map[string]int) error {
	f, err := Parse(bytes.NewReader(out), file)
	if err == nil {
		var pols map[string]Policy
		pols, err = f.Resolve(names)
		for name, p := range pols {
			want := old[name]
			if n, ok := set[name]; ok {
				want.Scale = n
			}
			if !slices.Equal(p.Fields(), want.Fields()) || !slices.Equal(p.EnvVars(), want.EnvVars()) {
				err = fmt.Errorf("%s would change beyond its scale", name)
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%s: the edit went wrong, nothing written (a bug of mhrun): %s", file, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// doc is a policy file as lines, for editing.
type doc struct {
	bom   string
	eol   string // the file's line end, for new lines: "\n" or "\r\n"
	lines []docLine
}

// docLine is one line: text + cr + end, where end is "\n" or "" (the
// last line) and cr the carriage returns before it, which the parser
// ignores.
type docLine struct {
	text, cr, end string
	// For a policy line (not blank, not a comment), as the parser reads it.
	policy  bool
	indent  string
	name    string
	body    int    // where the items start: after the colon
	items   []item // start and end relative to body
	comment int    // where a trailing comment starts, or -1
}

func splitDoc(data []byte) *doc {
	s := string(data)
	d := &doc{eol: "\n"}
	if rest, ok := strings.CutPrefix(s, "\ufeff"); ok {
		d.bom, s = "\ufeff", rest
	}
	texts := strings.Split(s, "\n")
	for i, text := range texts {
		trimmed := strings.TrimRight(text, "\r")
		l := docLine{text: trimmed, cr: text[len(trimmed):], end: "\n", comment: -1}
		if i == len(texts)-1 {
			l.end = ""
		}
		if i == 0 && l.cr != "" && l.end != "" {
			d.eol = "\r\n" // the first line's end is the file's
		}
		l.parse()
		d.lines = append(d.lines, l)
	}
	return d
}

// parse reads a line that Parse accepted.
func (l *docLine) parse() {
	rest := strings.TrimLeft(l.text, " \t")
	if rest == "" || rest[0] == '#' {
		return
	}
	name, _, ok := strings.Cut(rest, ":")
	if !ok {
		return
	}
	l.policy = true
	l.indent = l.text[:len(l.text)-len(rest)]
	l.name = strings.TrimRight(name, " \t")
	l.body = len(l.indent) + len(name) + 1
	body := l.text[l.body:]
	l.items, _ = splitItems(body)
	i := 0
	if n := len(l.items); n > 0 {
		i = l.items[n-1].end
	}
	for i < len(body) && isSpace(body[i]) {
		i++
	}
	if i < len(body) && body[i] == '#' {
		l.comment = l.body + i
	}
}

// replaceScale rewrites the scale= item of line i as item.
func (d *doc) replaceScale(i int, item string) {
	l := &d.lines[i]
	for _, it := range l.items {
		if it.key == "scale" {
			d.splice(i, l.body+it.start, l.body+it.end, item)
			return
		}
	}
}

// appendItem adds item after the last item of line i, before any
// trailing comment.
func (d *doc) appendItem(i int, item string) {
	l := &d.lines[i]
	if n := len(l.items); n > 0 {
		at := l.body + l.items[n-1].end
		d.splice(i, at, at, " "+item)
		return
	}
	// No items yet: the item goes where its neighbours' items start, or
	// after the whitespace already there before a comment.
	ws := l.text[l.body:]
	if l.comment >= 0 {
		ws = l.text[l.body:l.comment]
	}
	sep := ws
	if ws == "" || l.comment < 0 {
		sep = d.align(i-1, i+1, width(l.text[:l.body]))
	}
	rest := ""
	if l.comment >= 0 {
		rest = " " + l.text[l.comment:]
	}
	l.text = l.text[:l.body] + sep + item + rest
}

// splice replaces the bytes from..to of line i with s, then lets the
// spaces after them, when they pad a column (two or more before more
// text), absorb the change of length.
func (d *doc) splice(i, from, to int, s string) {
	l := &d.lines[i]
	before, after := l.text[:from], l.text[to:]
	run := len(after) - len(strings.TrimLeft(after, " "))
	grow := len(s) - (to - from)
	if run >= 2 && run < len(after) && !strings.ContainsRune(after[:run], '\t') {
		switch {
		case grow > 0:
			after = after[min(grow, run-1):]
		case grow < 0:
			after = strings.Repeat(" ", -grow) + after
		}
	}
	l.text = before + s + after
}

// newLineAt returns where a new line for name goes: before line at (or
// at the end, len(lines)).
func (d *doc) newLineAt(f *File, names []string, name string) int {
	k := slices.Index(names, name)
	for j := k - 1; j >= 0; j-- { // after the nearest process before it
		if f.byName[names[j]] != nil {
			return d.lastLineOf(names[j]) + 1
		}
	}
	for j := k + 1; j < len(names); j++ { // above the nearest after it
		if e := f.byName[names[j]]; e != nil {
			at := e.line - 1
			for at > 0 && isComment(d.lines[at-1].text) {
				at--
			}
			return at
		}
	}
	at := len(d.lines) // after the last line that is not blank
	for at > 0 && strings.TrimSpace(d.lines[at-1].text) == "" {
		at--
	}
	return at
}

func isComment(text string) bool {
	return strings.HasPrefix(strings.TrimLeft(text, " \t"), "#")
}

func (d *doc) lastLineOf(name string) int {
	last := -1
	for i, l := range d.lines {
		if l.policy && l.name == name {
			last = i
		}
	}
	return last
}

// addition is a new line for a process: before line at.
type addition struct {
	at         int
	name, item string
}

// render writes the document with the new lines in; adds are in
// Procfile order, which they keep among those at one place.
func (d *doc) render(adds []addition) []byte {
	slices.SortStableFunc(adds, func(a, b addition) int { return a.at - b.at })
	var b strings.Builder
	b.WriteString(d.bom)
	next := 0
	for i := 0; i <= len(d.lines); i++ {
		for ; next < len(adds) && adds[next].at == i; next++ {
			a := adds[next]
			indent, sep := d.newLineStyle(i, a.name)
			b.WriteString(indent + a.name + ":" + sep + a.item + d.eol)
		}
		if i == len(d.lines) {
			break
		}
		l := d.lines[i]
		if l.end == "" && next < len(adds) {
			l.end = d.eol // a last line without one gets a line end before a new line
			if l.cr != "" {
				l.end = "\n"
			}
		}
		b.WriteString(l.text + l.cr + l.end)
	}
	return []byte(b.String())
}

// newLineStyle is the indent and the separator after the colon of a new
// line for name placed before line at.
func (d *doc) newLineStyle(at int, name string) (indent, sep string) {
	above, below := d.neighbour(at-1, -1), d.neighbour(at, 1)
	switch {
	case above >= 0 && below >= 0 && d.lines[above].indent == d.lines[below].indent:
		indent = d.lines[above].indent
	case above >= 0 && below < 0:
		indent = d.lines[above].indent
	case below >= 0 && above < 0:
		indent = d.lines[below].indent
	}
	return indent, d.align(at-1, at, width(indent+name+":"))
}

// neighbour returns the nearest policy line with items from line i on,
// going by step, or -1.
func (d *doc) neighbour(i, step int) int {
	for ; i >= 0 && i < len(d.lines); i += step {
		if l := d.lines[i]; l.policy && len(l.items) > 0 {
			return i
		}
	}
	return -1
}

// align returns the separator after the colon of a line whose text up
// to the colon is prefix columns wide, placed between the lines from
// above up and from below down: padding to the column where the
// neighbours' items start when they line them up (at least one of them
// padded, and both at one column), else one space.
func (d *doc) align(above, below, prefix int) string {
	var seps []string
	col := -1
	for _, i := range []int{d.neighbour(above, -1), d.neighbour(below, 1)} {
		if i < 0 {
			continue
		}
		l := d.lines[i]
		start := l.body + l.items[0].start
		c := width(l.text[:start])
		if col >= 0 && c != col {
			return " "
		}
		col = c
		seps = append(seps, l.text[l.body:start])
	}
	padded := slices.ContainsFunc(seps, func(s string) bool { return s != " " })
	if col < 0 || !padded || prefix >= col {
		return " "
	}
	if slices.ContainsFunc(seps, func(s string) bool { return strings.Contains(s, "\t") }) {
		sep, w := "", prefix
		for w < col {
			sep += "\t"
			w = (w/tabWidth + 1) * tabWidth
		}
		if w != col {
			return "\t"
		}
		return sep
	}
	return strings.Repeat(" ", col-prefix)
}

// tabWidth is how wide a tab is for alignment: every 8 columns.
const tabWidth = 8

// width is the columns s takes, tabs stopping every tabWidth.
func width(s string) int {
	w := 0
	for _, r := range s {
		if r == '\t' {
			w = (w/tabWidth + 1) * tabWidth
		} else {
			w++
		}
	}
	return w
}
