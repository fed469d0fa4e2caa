package policy

// The grammar of Procfile.policy, which has the line shape of a Procfile:
//
//	# comment
//	NAME: ITEM ITEM ...   # a comment may also follow the items
//
// NAME is `*` (defaults for every process) or letters, digits, `_` and `-`.
// Blank lines and lines starting with `#` are skipped; CRLF line ends, a
// last line without a newline and a leading byte order mark are fine. A
// carriage return anywhere but at a line's end is an error: CR-only (old
// Mac) line ends are refused, not read as one line or guessed at.
// Items are separated by spaces or tabs; an item is `key=value` or a bare
// `flag`. A value may be double-quoted (`schedule="0 3 * * *"`); inside the
// quotes `\"` is a quote and `\\` a backslash, any other backslash is kept
// as written (`ready="log:\d+ ready"`). Outside quotes nothing is escaped.
// Several lines for one NAME merge; a key set twice for one NAME is an
// error. Every error is reported, each as FILE:LINE: MESSAGE, and says
// what was given and what would be right.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// File is a parsed, not yet resolved, policy file.
type File struct {
	name    string
	entries []*entry // in order of first appearance
	byName  map[string]*entry
}

// entry is every key set for one name.
type entry struct {
	name string
	line int // first line naming it
	set  map[string]setting
}

// setting is one key set for a name.
type setting struct {
	line  int
	apply func(*Policy)
}

// Parse parses a policy file read from r; file names it in errors. It
// checks the syntax and every value, and returns an ErrorList of every
// error found (and no File), sorted by line.
func Parse(r io.Reader, file string) (*File, error) {
	data, err := io.ReadAll(r)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, err // it names the file already
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	f := &File{name: file, byName: map[string]*entry{}}
	var errs ErrorList
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		fail := func(format string, args ...any) {
			errs = append(errs, newError(file, n, fmt.Sprintf(format, args...)))
		}
		line = strings.TrimRight(line, "\r")
		if i == 0 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if strings.Contains(line, "\r") {
			fail("carriage return (\\r) inside a line: %s (save the file with LF or CRLF line ends; CR alone does not end a line)", shortQuote(line))
			continue
		}
		line = strings.TrimLeft(line, " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		name, body, ok := strings.Cut(line, ":")
		if !ok {
			fail("want NAME: key=value ..., e.g. web: scale=2, not %q", line)
			continue
		}
		name = strings.TrimRight(name, " \t")
		var e *entry
		switch {
		case name == "":
			fail("missing process name before %q", ":"+body)
		case name != "*" && !validName(name) && unquoted(line) != "":
			fail("policy line in quotes: %s (remove the quotes: want %s)", shortQuote(line), shortQuote(unquoted(line)))
			continue // its items are the quoted text's: one message says it
		case name != "*" && !validName(name):
			fail("bad process name %s: use letters, digits, _ and -, or * for every process", shortQuote(name))
		case len(name) > maxNameLen:
			fail("process name %s is %d characters long; a Procfile name has at most %d", shortQuote(name), len(name), maxNameLen)
		default:
			e = f.byName[name]
			if e == nil {
				e = &entry{name: name, line: n, set: map[string]setting{}}
				f.byName[name] = e
				f.entries = append(f.entries, e)
			}
		}
		items, msg := splitItems(body)
		for _, it := range items {
			if m := f.parseItem(e, n, it); m != "" {
				fail("%s", m)
			}
		}
		if msg != "" {
			fail("%s", msg)
		}
	}
	if len(errs) > 0 {
		errs.sort()
		return nil, errs
	}
	return f, nil
}

// shortQuote quotes s for a message, cut to about 60 characters.
func shortQuote(s string) string {
	const max = 60
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// item is one `key=value` or `flag` of a line.
type item struct {
	key      string
	value    string
	hasValue bool
	// start and end are the item's bytes in the body it was split
	// from, quotes included, for SetScales to edit in place.
	start, end int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

// splitItems splits the body of a line into items. On a syntax error it
// returns the items before it and a message.
func splitItems(s string) ([]item, string) {
	var items []item
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) || s[i] == '#' {
			return items, ""
		}
		start := i
		for i < len(s) && !isSpace(s[i]) && s[i] != '=' && s[i] != '"' {
			i++
		}
		it := item{key: s[start:i], start: start}
		if i < len(s) && s[i] == '"' {
			end := i
			for end < len(s) && !isSpace(s[end]) {
				end++
			}
			return items, fmt.Sprintf("unexpected quote in %q: only values may be quoted, e.g. schedule=\"0 3 * * *\"", s[start:end])
		}
		if it.key == "" {
			end := i
			for end < len(s) && !isSpace(s[end]) {
				end++
			}
			return items, fmt.Sprintf("missing key before %q", s[i:end])
		}
		if i < len(s) && s[i] == '=' {
			i++
			it.hasValue = true
			if i < len(s) && s[i] == '"' {
				i++
				var b strings.Builder
				closed := false
				for i < len(s) {
					c := s[i]
					if c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
						b.WriteByte(s[i+1])
						i += 2
						continue
					}
					i++
					if c == '"' {
						closed = true
						break
					}
					b.WriteByte(c)
				}
				if !closed {
					return items, fmt.Sprintf("%s: unterminated quote; end the value with \"", it.key)
				}
				if i < len(s) && !isSpace(s[i]) {
					return items, fmt.Sprintf("%s=%q: want a space after the closing quote", it.key, b.String())
				}
				it.value = b.String()
			} else {
				start := i
				for i < len(s) && !isSpace(s[i]) {
					if s[i] == '"' {
						return items, fmt.Sprintf("%s: a quote may only open a value: write %s=\"...\" with \\\" for a quote inside", it.key, it.key)
					}
					i++
				}
				it.value = s[start:i]
			}
		}
		it.end = i
		items = append(items, it)
	}
}

// parseItem checks one item and records it in e (nil after a bad name).
// It returns an error message, or "".
func (f *File) parseItem(e *entry, line int, it item) string {
	if msg, ok := f.parseEnvItem(e, line, it); ok {
		return msg
	}
	k, ok := keyIndex[it.key]
	if !ok {
		if s := Suggest(it.key, keyNames); s != "" {
			return fmt.Sprintf("unknown key %q (did you mean %q?)", it.key, s)
		}
		return fmt.Sprintf("unknown key %q", it.key)
	}
	var dup string
	if e != nil {
		if prev, ok := e.set[it.key]; ok && prev.line == line {
			dup = fmt.Sprintf("%s is set twice for %s on this line", it.key, e.name)
		} else if ok {
			dup = fmt.Sprintf("%s is set twice for %s, on lines %d and %d", it.key, e.name, prev.line, line)
		}
	}
	var apply func(*Policy)
	var msg string
	switch {
	case k.kind == flagKey && it.hasValue:
		msg = fmt.Sprintf("%s is a flag: write just %s", it.key, it.key)
	case k.kind == valueKey && !it.hasValue:
		msg = fmt.Sprintf("%s needs a value, e.g. %s", it.key, k.example)
	default:
		var m string
		apply, m = k.parse(it.value, it.hasValue)
		if m != "" {
			msg = fmt.Sprintf("%s=%s: %s", it.key, shortQuote(it.value), m)
		}
	}
	switch {
	case dup != "" && msg != "":
		return dup + "; and " + msg
	case dup != "":
		return dup
	case msg != "":
		return msg
	}
	if e != nil {
		e.set[it.key] = setting{line: line, apply: apply}
	}
	return ""
}

// keyKind says whether a key takes a value.
type keyKind int

const (
	valueKey       keyKind = iota // key=value
	flagKey                       // bare flag
	flagOrValueKey                // flag, or key=value (singleton)
)

// key is one key of the policy table.
type key struct {
	name    string
	kind    keyKind
	example string
	// parse checks value (hasValue is false for a bare flag) and returns
	// what it sets, or an error message that follows `key="value": `.
	parse func(value string, hasValue bool) (func(*Policy), string)
	// format returns the key's value in p for Fields.
	format func(p Policy) string
}

// keys is the policy table of DESIGN.md, in its order.
var keys = []key{
	{"scale", valueKey, "scale=2", parseScaleKey, func(p Policy) string { return formatScale(p.Scale) }},
	{"restart", valueKey, "restart=always", parseRestart, func(p Policy) string { return string(p.Restart) }},
	{"backoff", valueKey, "backoff=1s..1m", parseBackoff, func(p Policy) string {
		return formatDuration(p.BackoffMin) + ".." + formatDuration(p.BackoffMax)
	}},
	{"stable", valueKey, "stable=10s", durationKey("10s", false, func(p *Policy) *time.Duration { return &p.Stable }),
		func(p Policy) string { return formatDuration(p.Stable) }},
	{"max-restarts", valueKey, "max-restarts=10", parseMaxRestarts, func(p Policy) string { return strconv.Itoa(p.MaxRestarts) }},
	{"memory", valueKey, "memory=1G", parseMemory, func(p Policy) string { return formatSize(p.Memory) }},
	{"singleton", flagOrValueKey, "singleton", parseSingleton, func(p Policy) string {
		if p.Singleton && p.SingletonPath != "" {
			return p.SingletonPath
		}
		return formatFlag(p.Singleton)
	}},
	{"schedule", valueKey, `schedule="0 3 * * *"`, cronKey(func(p *Policy) *string { return &p.Schedule }),
		func(p Policy) string { return p.Schedule }},
	{"cron-restart", valueKey, `cron-restart="0 4 * * *"`, cronKey(func(p *Policy) *string { return &p.CronRestart }),
		func(p Policy) string { return p.CronRestart }},
	{"ready", valueKey, "ready=http:/healthz", parseReadyKey, func(p Policy) string { return p.Ready.String() }},
	{"ready-timeout", valueKey, "ready-timeout=30s", durationKey("30s", true, func(p *Policy) *time.Duration { return &p.ReadyTimeout }),
		func(p Policy) string { return formatDuration(p.ReadyTimeout) }},
	{"after", valueKey, "after=web,db", parseAfter, func(p Policy) string { return strings.Join(p.After, ",") }},
	{"stop-signal", valueKey, "stop-signal=INT", parseStopSignal, func(p Policy) string { return p.StopSignal }},
	{"grace", valueKey, "grace=5s", durationKey("5s", false, func(p *Policy) *time.Duration { return &p.Grace }),
		func(p Policy) string { return formatDuration(p.Grace) }},
	{"optional", flagKey, "optional", flagSetter(func(p *Policy) { p.Optional = true }), func(p Policy) string { return formatFlag(p.Optional) }},
	{"port", valueKey, "port=5000", portKey(func(p *Policy) *int { return &p.Port }), func(p Policy) string { return formatPort(p.Port) }},
	{"balance", valueKey, "balance=4321", portKey(func(p *Policy) *int { return &p.Balance }), func(p Policy) string { return formatPort(p.Balance) }},
	{"sticky", flagOrValueKey, "sticky", parseSticky, func(p Policy) string {
		if p.Sticky && p.StickyKey != "" {
			return p.StickyKey
		}
		return formatFlag(p.Sticky)
	}},
	{"socket", valueKey, "socket=4321", parseSocket, formatSocket},
	{"watch", valueKey, `watch="src/*.go"`, parseWatch, func(p Policy) string { return strings.Join(p.Watch, ",") }},
	{"log", valueKey, "log=log/web.log", parseLog, func(p Policy) string { return p.Log }},
	{"output", valueKey, "output=pipes", parseOutput, func(p Policy) string {
		if p.Pipes {
			return "pipes"
		}
		return "" // pty, the default, as other keys leave their default unsaid
	}},
}

var (
	keyIndex = map[string]*key{}
	keyNames []string
)

func init() {
	for i := range keys {
		keyIndex[keys[i].name] = &keys[i]
		keyNames = append(keyNames, keys[i].name)
	}
}

func flagSetter(set func(*Policy)) func(string, bool) (func(*Policy), string) {
	return func(string, bool) (func(*Policy), string) { return set, "" }
}

func parseScaleKey(v string, _ bool) (func(*Policy), string) {
	n, msg := parseScale(v)
	if msg != "" {
		return nil, msg
	}
	return func(p *Policy) { p.Scale = n }, ""
}

// ParseScale parses "N" or "max" as scale= does (as in -m web=2); "max"
// gives ScaleMax.
func ParseScale(s string) (int, error) {
	n, msg := parseScale(s)
	if msg != "" {
		return 0, fmt.Errorf("scale %q: %s", s, msg)
	}
	return n, nil
}

func parseScale(s string) (int, string) {
	if s == "max" {
		return ScaleMax, ""
	}
	n, ok := parseUint(s)
	if !ok && !isDigits(s) {
		msg := "want a whole number >= 0, or max for one per CPU"
		if Suggest(s, []string{"max"}) == "max" {
			msg += ` (did you mean "max"?)`
		}
		return 0, msg
	}
	if !ok || n > MaxScale {
		return 0, tooMany
	}
	return n, ""
}

// MaxScale is the most instances of one process: 1000. Each instance holds
// a pty, and Linux has 4096 in all by default (kernel.pty.max), shared by
// every terminal of the host; foreman's ports give a process 100 before
// they run into the next one's; and no host has the cores to make more
// than a few hundred instances of one program useful. scale=max, one per
// CPU, is capped at it too.
const MaxScale = 1000

// tooMany is the message for a scale past MaxScale.
var tooMany = "want at most " + strconv.Itoa(MaxScale) + " instances (each has its own pty and process tree), or max for one per CPU"

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// parseUint parses plain decimal digits into an int.
func parseUint(s string) (int, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func parseRestart(v string, _ bool) (func(*Policy), string) {
	switch r := Restart(v); r {
	case RestartAlways, RestartOnFailure, RestartNever:
		return func(p *Policy) { p.Restart = r }, ""
	}
	return nil, "want always, on-failure or never" + didYouMean(v, []string{"always", "on-failure", "never"})
}

func didYouMean(word string, options []string) string {
	if s := Suggest(word, options); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// parseDuration parses a Go duration with a unit. It returns an error
// message that uses example.
func parseDuration(v, example string) (time.Duration, string) {
	if _, err := strconv.ParseFloat(v, 64); err == nil && strings.Trim(v, "0123456789.+-") == "" {
		return 0, fmt.Sprintf("missing unit, e.g. %ss", v)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, "want a duration like " + example + ", 500ms or 1m30s"
	}
	return d, ""
}

func durationKey(example string, positive bool, field func(*Policy) *time.Duration) func(string, bool) (func(*Policy), string) {
	return func(v string, _ bool) (func(*Policy), string) {
		d, msg := parseDuration(v, example)
		switch {
		case msg != "":
			return nil, msg
		case positive && d <= 0:
			return nil, "want a duration > 0, like " + example
		case d < 0:
			return nil, "want a duration >= 0, like " + example
		}
		return func(p *Policy) { *field(p) = d }, ""
	}
}

func parseBackoff(v string, _ bool) (func(*Policy), string) {
	lo, hi, ranged := strings.Cut(v, "..")
	if !ranged {
		hi = lo
	}
	const want = "want MIN..MAX like 1s..1m, or one duration like 2s"
	minD, msg := parseDuration(lo, "1s")
	if msg == "" {
		var m2 string
		var maxD time.Duration
		maxD, m2 = parseDuration(hi, "1m")
		switch {
		case m2 != "" && strings.HasPrefix(m2, "missing unit"):
			msg = m2
		case m2 != "":
			msg = want
		case minD < 0:
			msg = "MIN must not be negative, e.g. 1s..1m (0s restarts at once)"
		case minD > maxD:
			msg = "MIN must not be more than MAX, e.g. 1s..1m"
		default:
			return func(p *Policy) { p.BackoffMin, p.BackoffMax = minD, maxD }, ""
		}
		return nil, msg
	}
	if strings.HasPrefix(msg, "missing unit") {
		return nil, msg
	}
	return nil, want
}

func parseMaxRestarts(v string, _ bool) (func(*Policy), string) {
	n, ok := parseUint(v)
	if !ok {
		return nil, "want a whole number >= 0, e.g. 10"
	}
	return func(p *Policy) { p.MaxRestarts = n }, ""
}

func parseMemory(v string, _ bool) (func(*Policy), string) {
	n, msg := parseSize(v)
	if msg != "" {
		return nil, msg
	}
	return func(p *Policy) { p.Memory = n }, ""
}

// ParseSize reads a size as memory= does (300M, 1G, 512MiB, 1.5G, bytes;
// binary units), for flags that take one.
func ParseSize(s string) (int64, error) {
	n, msg := parseSize(s)
	if msg != "" {
		return 0, errors.New(msg)
	}
	return n, nil
}

// parseSize parses a memory size: digits with an optional fraction and an
// optional unit K, M, G or T, which may be followed by B or iB, in any
// case ("300M", "1.5G", "512MiB", "300mb"). Every unit is binary
// (1M = 1024·1024 bytes), as in PM2; a bare number, or one with just B,
// is bytes. A fraction of a byte is dropped.
func parseSize(v string) (int64, string) {
	const want = "want a size like 300M or 1G"
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, want
	}
	digits, frac := v[:i], ""
	if i < len(v) && v[i] == '.' {
		j := i + 1
		for j < len(v) && v[j] >= '0' && v[j] <= '9' {
			j++
		}
		if j == i+1 {
			return 0, want
		}
		frac, i = v[i+1:j], j
	}
	var mult int64
	switch strings.ToLower(v[i:]) {
	case "", "b":
		mult = 1
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	case "t", "tb", "tib":
		mult = 1 << 40
	default:
		return 0, want
	}
	n, _ := new(big.Int).SetString(digits+frac, 10)
	n.Mul(n, big.NewInt(mult))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	switch {
	case !n.IsInt64():
		return 0, "too large; want a size like 300M or 1G"
	case n.Sign() == 0:
		return 0, "want a size > 0, like 300M or 1G"
	}
	return n.Int64(), ""
}

func parseSingleton(v string, hasValue bool) (func(*Policy), string) {
	if !hasValue {
		return func(p *Policy) { p.Singleton, p.SingletonPath = true, "" }, ""
	}
	if strings.TrimSpace(v) == "" {
		return nil, "want a lock file path, or just singleton"
	}
	return func(p *Policy) { p.Singleton, p.SingletonPath = true, v }, ""
}

// parseSticky reads sticky (the client address), sticky=header:NAME or
// sticky=cookie:NAME.
func parseSticky(v string, hasValue bool) (func(*Policy), string) {
	if !hasValue {
		return func(p *Policy) { p.Sticky, p.StickyKey = true, "" }, ""
	}
	const want = "want header:NAME or cookie:NAME (e.g. sticky=header:X-Forwarded-For), or just sticky for the client address"
	kind, name, ok := strings.Cut(v, ":")
	switch {
	case !ok && slices.Contains([]string{"yes", "true", "on", "1", "ip", "addr", "address"}, strings.ToLower(v)):
		return nil, "write just sticky for the client address (or sticky=header:NAME, sticky=cookie:NAME)"
	case !ok && isToken(v) && strings.Contains(v, "-"):
		return nil, fmt.Sprintf("%s (did you mean %q?)", want, "header:"+v)
	case !ok:
		return nil, want
	case kind != "header" && kind != "cookie":
		if s := Suggest(kind, []string{"header", "cookie"}); s != "" {
			return nil, fmt.Sprintf("%s (did you mean %q?)", want, s+":"+name)
		}
		return nil, want
	case !isToken(name):
		return nil, fmt.Sprintf("want a %s name after %q: letters, digits and !#$%%&'*+-.^_`|~", kind, kind+":")
	}
	return func(p *Policy) { p.Sticky, p.StickyKey = true, v }, ""
}

// isToken reports whether s is an HTTP token (RFC 9110): what may name a
// header or a cookie.
func isToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// ParseSchedule parses a cron spec as schedule= and cron-restart= do: five
// fields with an optional leading seconds field, descriptors like
// "@daily" and "@every 5m", and a "CRON_TZ=Europe/Berlin " or "TZ=..."
// prefix (robfig/cron/v3 with SecondOptional and Descriptor).
//
// It refuses what the cron library would accept and then never run as
// written: a spec with no next time (a day no month it names has, like
// February 30: its Next is the zero time, which would fire at once and
// forever), and an @every interval under one second or not whole seconds
// (the library silently rounds those down, to at least 1s). A rare date,
// like February 29, is fine.
func ParseSchedule(spec string) (cron.Schedule, error) {
	return parseSchedule(spec, time.Now())
}

// scheduleError is a ParseSchedule error that already says what would be
// right, so the policy parser adds no generic hint to it.
type scheduleError string

func (e scheduleError) Error() string { return string(e) }

// parseSchedule is ParseSchedule with the time the next tick is looked
// for from: a spec must have one after now.
func parseSchedule(spec string, now time.Time) (s cron.Schedule, err error) {
	if (strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=")) && !strings.Contains(spec, " ") {
		return nil, errors.New("time zone without a schedule after it, e.g. CRON_TZ=UTC 0 3 * * *")
	}
	s, err = parseCron(spec)
	if err != nil {
		return nil, err
	}
	if every, ok := everyOf(spec); ok {
		d, _ := time.ParseDuration(every) // the cron parser has read it
		switch {
		case d < time.Second:
			return nil, scheduleError(fmt.Sprintf("@every %s: want an interval of at least 1s, e.g. \"@every 30s\"", every))
		case d%time.Second != 0:
			return nil, scheduleError(fmt.Sprintf("@every %s: want whole seconds, e.g. \"@every %s\"", every, (d + time.Second - 1).Truncate(time.Second)))
		}
	}
	if s.Next(now).IsZero() {
		return nil, scheduleError("never fires: no month it names has that day (like February 30); want a date that exists, e.g. \"0 0 28 2 *\"")
	}
	return s, nil
}

// parseCron is the cron library's parser, which has panicked on odd specs
// before: a spec that makes it panic is a bad spec, not a crash.
func parseCron(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("cannot parse %q", spec)
		}
	}()
	return cronParser.Parse(spec)
}

// everyOf returns the interval of an "@every D" spec, after any time zone
// prefix, as the cron parser reads it.
func everyOf(spec string) (string, bool) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		_, spec, _ = strings.Cut(spec, " ")
		spec = strings.TrimSpace(spec)
	}
	return strings.CutPrefix(spec, "@every ")
}

var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func cronKey(field func(*Policy) *string) func(string, bool) (func(*Policy), string) {
	return func(v string, _ bool) (func(*Policy), string) {
		spec := strings.TrimSpace(v)
		if _, err := ParseSchedule(spec); err != nil {
			var whole scheduleError
			if errors.As(err, &whole) {
				return nil, err.Error()
			}
			hint := `want a cron spec like "0 3 * * *" or "@every 5m"`
			if spec != "" && !strings.ContainsAny(spec, " \t@=") {
				if _, err := ParseSchedule("@" + spec); err == nil {
					hint = fmt.Sprintf("did you mean %q?", "@"+spec)
				}
			}
			return nil, fmt.Sprintf("%v; %s", err, hint)
		}
		return func(p *Policy) { *field(p) = spec }, ""
	}
}

func parseReadyKey(v string, _ bool) (func(*Policy), string) {
	r, msg := parseReady(v)
	if msg != "" {
		return nil, msg
	}
	return func(p *Policy) { p.Ready = r }, ""
}

const readyForms = "want tcp, tcp:PORT, http:/PATH, log:REGEX, notify or exec:CMD"

func parseReady(v string) (Ready, string) {
	kind, arg, hasArg := strings.Cut(v, ":")
	switch ReadyKind(kind) {
	case ReadyTCP:
		if !hasArg {
			return Ready{Kind: ReadyTCP}, ""
		}
		n, ok := parseUint(arg)
		if !ok || n < 1 || n > 65535 {
			return Ready{}, "want tcp for the instance's $PORT, or tcp:PORT with a port 1..65535"
		}
		return Ready{Kind: ReadyTCP, Port: n}, ""
	case ReadyHTTP:
		if strings.HasPrefix(arg, "//") {
			return Ready{}, "want a path on the instance's $PORT, not a URL, e.g. http:/healthz"
		}
		if !strings.HasPrefix(arg, "/") {
			return Ready{}, "want http:/PATH, e.g. http:/healthz"
		}
		return Ready{Kind: ReadyHTTP, Path: arg}, ""
	case ReadyLog:
		if arg == "" {
			return Ready{}, `want log:REGEX, e.g. ready="log:listening on"`
		}
		re, err := regexp.Compile(arg)
		if err != nil {
			return Ready{}, "bad regular expression: " + strings.TrimPrefix(err.Error(), "error parsing regexp: ")
		}
		return Ready{Kind: ReadyLog, Pattern: re}, ""
	case ReadyNotify:
		if hasArg {
			return Ready{}, "notify takes nothing after it: write ready=notify"
		}
		return Ready{Kind: ReadyNotify}, ""
	case ReadyExec:
		cmd := strings.TrimSpace(arg)
		if cmd == "" {
			return Ready{}, `want exec:CMD, e.g. ready="exec:curl -fs localhost:4321"`
		}
		if len(cmd) > maxArgLen {
			return Ready{}, fmt.Sprintf("the command is %d bytes, more than exec takes in one argument (128 KiB): move it into a script and run that", len(cmd))
		}
		return Ready{Kind: ReadyExec, Command: cmd}, ""
	}
	return Ready{}, readyForms + didYouMean(kind, []string{"tcp", "http", "log", "notify", "exec"})
}

// splitList splits a comma-separated value and trims spaces around each
// element; it returns "" and the bad element's message for an empty one.
func splitList(v string) ([]string, string) {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if parts[i] == "" {
			return nil, "empty element"
		}
	}
	return parts, ""
}

func parseAfter(v string, _ bool) (func(*Policy), string) {
	names, msg := splitList(v)
	if msg != "" {
		return nil, "want process names separated by commas, e.g. after=web,db"
	}
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case !validName(n):
			return nil, fmt.Sprintf("%q is not a process name; want names separated by commas, e.g. after=web,db", n)
		case seen[n]:
			return nil, fmt.Sprintf("%s is listed twice", n)
		}
		seen[n] = true
	}
	return func(p *Policy) { p.After = slices.Clone(names) }, ""
}

// maxArgLen is the longest string exec takes as one argument on Linux
// (MAX_ARG_STRLEN less its NUL), as procfile.MaxArgLen.
const maxArgLen = 32*4096 - 1

func parseStopSignal(v string, _ bool) (func(*Policy), string) {
	s := strings.TrimPrefix(strings.ToUpper(v), "SIG")
	for _, sig := range stopSignals {
		if s == sig {
			return func(p *Policy) { p.StopSignal = sig }, ""
		}
	}
	return nil, "want one of " + strings.Join(stopSignals, ", ") + didYouMean(s, stopSignals)
}

func portKey(field func(*Policy) *int) func(string, bool) (func(*Policy), string) {
	return func(v string, _ bool) (func(*Policy), string) {
		n, ok := parseUint(v)
		if !ok || n < 1 || n > 65535 {
			return nil, "want a port number 1..65535"
		}
		return func(p *Policy) { *field(p) = n }, ""
	}
}

// parseSocket reads socket=PORT or socket=HOST:PORT, HOST an IP address
// ([::1]:PORT for IPv6) or localhost.
func parseSocket(v string, _ bool) (func(*Policy), string) {
	const want = "want a port number 1..65535 (socket=4321), or an address and a port (socket=0.0.0.0:4321, socket=[::1]:4321)"
	host, port := "", v
	if strings.ContainsAny(v, ":[]") {
		h, p, err := net.SplitHostPort(v)
		if err != nil || (h != "localhost" && net.ParseIP(h) == nil) || strings.Contains(h, "%") {
			return nil, want
		}
		host, port = h, p
		if ip := net.ParseIP(h); ip != nil {
			host = ip.String() // one spelling, so that a round trip gives it back
		}
	}
	n, ok := parseUint(port)
	if !ok || n < 1 || n > 65535 {
		return nil, want
	}
	return func(p *Policy) { p.Socket, p.SocketHost = n, host }, ""
}

func parseWatch(v string, _ bool) (func(*Policy), string) {
	globs, msg := splitList(v)
	if msg != "" {
		return nil, `want globs separated by commas, e.g. watch="src/*.go,templates/*"`
	}
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return nil, fmt.Sprintf("bad glob %q: check its [ ], and that a \\ escapes a character", g)
		}
	}
	return func(p *Policy) { p.Watch = slices.Clone(globs) }, ""
}

func parseLog(v string, _ bool) (func(*Policy), string) {
	if strings.TrimSpace(v) == "" {
		return nil, "want a file path, e.g. log=log/web.log"
	}
	return func(p *Policy) { p.Log = v }, ""
}

// parseOutput is output=pty (the default: one terminal for stdout and
// stderr) or output=pipes (two pipes, stderr lines marked apart).
func parseOutput(v string, _ bool) (func(*Policy), string) {
	switch v {
	case "pty":
		return func(p *Policy) { p.Pipes = false }, ""
	case "pipes":
		return func(p *Policy) { p.Pipes = true }, ""
	}
	return nil, "want pty (one terminal, the default) or pipes (stdout and stderr apart, no terminal)" +
		didYouMean(v, []string{"pty", "pipes"})
}

// maxNameLen is the longest process name, as procfile.MaxNameLen.
const maxNameLen = 63

// validName reports whether s is a Procfile process name.
func validName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// unquoted is a line that starts with a quote without its quotes, when
// that reads as a policy line with a valid name: the line wrapped in them
// ("web: scale=2", as an echo "..." > file keeps them), the name alone in
// them ("web": scale=2, as YAML writes it), or an opening quote alone.
// It returns "" for any other line.
func unquoted(line string) string {
	q := line[0]
	if q != '"' && q != '\'' {
		return ""
	}
	var fixed string
	name, body, _ := strings.Cut(line[1:], ":")
	switch {
	case len(line) > 1 && line[len(line)-1] == q:
		fixed = line[1 : len(line)-1]
	case strings.HasSuffix(name, string(q)):
		fixed = name[:len(name)-1] + ":" + body
	default:
		fixed = line[1:]
	}
	fixed = strings.TrimSpace(fixed)
	n, _, ok := strings.Cut(fixed, ":")
	if n = strings.TrimRight(n, " \t"); !ok || (n != "*" && !validName(n)) {
		return ""
	}
	return fixed
}
