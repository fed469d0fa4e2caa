package pm2

// Reading: each app object's keys are checked and read, through the key
// table, into a spec of typed values. A value of the wrong type is an
// error at its line; a key with no equivalent is a warning. Building the
// process from a spec (build.go) comes after, since keys depend on each
// other (exec_mode on port, watch on cwd).

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mhrun/policy"
)

// duration is a time value of a key, when set.
type duration struct {
	d    time.Duration
	set  bool
	line int
}

// logPath is a log file key: a path, or off (/dev/null, false).
type logPath struct {
	path string
	set  bool
	off  bool
	def  bool // true: PM2's default path
	line int
	key  string
}

// envVar is one variable of an env object, in file order.
type envVar struct {
	name, value string
	line        int
}

// spec is what one app object says, typed.
type spec struct {
	index int
	line  int
	label string // for messages: the PM2 name, or apps[N]

	name         string
	nameSet      bool
	nameLine     int
	script       string
	scriptLine   int
	args         []string
	argsSet      bool
	argsLine     int
	interpreter  string
	interpSet    bool
	interpLine   int
	nodeArgs     []string
	nodeArgsLine int
	cwd          string
	cwdLine      int
	instanceVar  string
	incrementVar string
	incrLine     int

	instances      int
	instancesMax   bool
	instancesSet   bool
	instancesLine  int
	cluster        bool
	clusterLine    int
	executeCommand bool
	port           int
	portLine       int
	autostart      bool
	autostartLine  int

	env             []envVar
	envs            map[string][]envVar // env_NAME → its variables
	appendEnvToName bool
	appendLine      int

	autorestart    bool
	autorestartSet bool
	stopExitCodes  []int
	stopCodesLine  int
	maxRestarts    int
	maxRestartsSet bool
	minUptime      duration
	restartDelay   duration
	expBackoff     duration
	killTimeout    duration
	listenTimeout  duration
	memory         int64
	cron           string
	cronLine       int
	killSignal     string
	waitReady      bool
	waitReadyLine  int

	watchAll    bool
	watch       []string
	watchLine   int
	ignoreWatch []string
	ignoreLine  int
	watchWarns  []pending // keys that matter only when watching

	logFile, outFile, errFile logPath
	mergeLogs                 *bool
	mergeLogsLine             int
}

// pending is a warning about an app whose Procfile name is not known yet.
type pending struct {
	Warning
	app int // index of the app, -1 for the file
}

// reader collects the errors and warnings of one file.
type reader struct {
	file  string
	errs  ErrorList
	warns []pending
	app   int // index of the app being read, -1 for the file
	label string
}

// oneLine keeps a message on one line whatever the file holds.
var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// fail records an error at line about the current app.
func (r *reader) fail(line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.label != "" {
		msg = r.label + ": " + msg
	}
	r.errs = append(r.errs, &Error{File: r.file, Line: line, Msg: oneLine.Replace(msg)})
}

// warn records a warning about the current app's key.
func (r *reader) warn(line int, key, msg string) {
	r.warns = append(r.warns, pending{Warning{File: r.file, Line: line, Key: oneLine.Replace(key), Msg: oneLine.Replace(msg)}, r.app})
}

// wrongType is the error for a value of the wrong type.
func (r *reader) wrongType(m *member, want string) {
	r.fail(m.val.line, "%s: want %s, not %s", m.key, want, m.val.show())
}

func (r *reader) str(m *member) (string, bool) {
	if m.val.kind != kString {
		r.wrongType(m, "a string")
		return "", false
	}
	return m.val.s, true
}

func (r *reader) boolean(m *member) (bool, bool) {
	if m.val.kind != kBool {
		r.wrongType(m, "true or false")
		return false, false
	}
	return m.val.b, true
}

// number reads a number, or a string that is one, as PM2 does for its
// number keys.
func (r *reader) number(m *member, want string) (float64, bool) {
	v := m.val
	if v.kind == kNumber || v.kind == kString {
		s := strings.TrimSpace(v.s)
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && s != "" {
			return f, true
		}
	}
	r.wrongType(m, want)
	return 0, false
}

// whole reads a whole number.
func (r *reader) whole(m *member, want string) (int, bool) {
	f, ok := r.number(m, want)
	if !ok {
		return 0, false
	}
	if f != math.Trunc(f) || math.Abs(f) > 1e9 {
		r.wrongType(m, want)
		return 0, false
	}
	return int(f), true
}

// words reads a list of arguments: a list of strings (numbers and
// booleans as JavaScript writes them), or a string split as PM2 splits it.
func (r *reader) words(m *member) ([]string, bool) {
	switch m.val.kind {
	case kString:
		return splitArgs(m.val.s), true
	case kArray:
		var out []string
		for _, e := range m.val.arr {
			switch e.kind {
			case kString:
				out = append(out, e.s)
			case kNumber:
				out = append(out, jsNumber(e.s))
			case kBool:
				out = append(out, strconv.FormatBool(e.b))
			default:
				r.fail(e.line, "%s: want a list of strings, not one holding %s", m.key, e.show())
				return nil, false
			}
		}
		return out, true
	}
	r.wrongType(m, "a string or a list of strings")
	return nil, false
}

// strings reads a string or a list of strings.
func (r *reader) strings(m *member) ([]string, bool) {
	switch m.val.kind {
	case kString:
		return []string{m.val.s}, true
	case kArray:
		var out []string
		for _, e := range m.val.arr {
			if e.kind != kString {
				r.fail(e.line, "%s: want a list of strings, not one holding %s", m.key, e.show())
				return nil, false
			}
			out = append(out, e.s)
		}
		return out, true
	}
	r.wrongType(m, "a string or a list of strings")
	return nil, false
}

var durationRE = regexp.MustCompile(`^(\d+(?:\.\d+)?)(ms|s|m|h)?$`)

// maxDuration keeps a duration far from overflowing: a year.
const maxDuration = 365 * 24 * time.Hour

// readDuration reads milliseconds, or a number with a unit (ms, s, m, h).
func (r *reader) readDuration(m *member) (time.Duration, bool) {
	const want = `milliseconds, or a duration like "30s", "5m" or "1h"`
	var s string
	switch m.val.kind {
	case kNumber, kString:
		s = strings.TrimSpace(m.val.s)
	default:
		r.wrongType(m, want)
		return 0, false
	}
	sm := durationRE.FindStringSubmatch(s)
	if sm == nil {
		r.wrongType(m, want)
		return 0, false
	}
	f, err := strconv.ParseFloat(sm[1], 64)
	unit := map[string]time.Duration{"": time.Millisecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[sm[2]]
	if err != nil || f*float64(unit) > float64(maxDuration) {
		r.fail(m.val.line, "%s: %s is more than a year; want %s", m.key, m.val.show(), want)
		return 0, false
	}
	return time.Duration(f * float64(unit)).Round(time.Millisecond), true
}

func readDurationKey(field func(*spec) *duration) func(*reader, *spec, *member) {
	return func(r *reader, s *spec, m *member) {
		if d, ok := r.readDuration(m); ok {
			*field(s) = duration{d: d, set: true, line: m.val.line}
		}
	}
}

func readScript(r *reader, s *spec, m *member) {
	v, ok := r.str(m)
	if !ok {
		return
	}
	if strings.TrimSpace(v) == "" {
		r.fail(m.val.line, "%s is empty; want the program to run, e.g. \"server.js\"", m.key)
		return
	}
	s.script, s.scriptLine = v, m.val.line
}

func readName(r *reader, s *spec, m *member) {
	if v, ok := r.str(m); ok {
		s.name, s.nameSet, s.nameLine = v, true, m.val.line
	}
}

func readArgs(r *reader, s *spec, m *member) {
	if v, ok := r.words(m); ok {
		s.args, s.argsSet, s.argsLine = v, true, m.val.line
	}
}

func readInterpreter(r *reader, s *spec, m *member) {
	if v, ok := r.str(m); ok {
		s.interpreter, s.interpSet, s.interpLine = strings.TrimSpace(v), true, m.val.line
	}
}

func readNodeArgs(r *reader, s *spec, m *member) {
	if v, ok := r.words(m); ok {
		s.nodeArgs, s.nodeArgsLine = v, m.val.line
	}
}

func readCwd(r *reader, s *spec, m *member) {
	if v, ok := r.str(m); ok {
		s.cwd, s.cwdLine = v, m.val.line
	}
}

// readVarName reads the name of an environment variable.
func (r *reader) readVarName(m *member) (string, bool) {
	v, ok := r.str(m)
	if !ok {
		return "", false
	}
	if !isVarName(v) {
		r.fail(m.val.line, "%s: want a variable name (letters, digits and _), not %s", m.key, m.val.show())
		return "", false
	}
	return v, true
}

func readInstanceVar(r *reader, s *spec, m *member) {
	if v, ok := r.readVarName(m); ok {
		if reason := policy.ReservedEnv(v); reason != "" {
			r.warn(m.val.line, m.key, "not set: "+reason)
			return
		}
		s.instanceVar = v
	}
}

func readIncrementVar(r *reader, s *spec, m *member) {
	if v, ok := r.readVarName(m); ok {
		s.incrementVar, s.incrLine = v, m.val.line
	}
}

func readInstances(r *reader, s *spec, m *member) {
	const want = `a whole number or "max"`
	s.instancesLine = m.val.line
	if m.val.kind == kString && strings.TrimSpace(m.val.s) == "max" {
		s.instancesMax, s.instancesSet = true, true
		return
	}
	n, ok := r.whole(m, want)
	if !ok {
		return
	}
	switch {
	case n == 0:
		s.instancesMax = true
	case n > policy.MaxScale:
		r.fail(m.val.line, "%s: %d is more than mhrun runs of one process (%d); want at most %d, or \"max\" for one per CPU", m.key, n, policy.MaxScale, policy.MaxScale)
		return
	}
	s.instances, s.instancesSet = n, true
}

var execModeRE = regexp.MustCompile(`^(cluster|fork)(_mode)?$`)

func readExecMode(r *reader, s *spec, m *member) {
	v, ok := r.str(m)
	if !ok {
		return
	}
	sm := execModeRE.FindStringSubmatch(v)
	if sm == nil {
		r.fail(m.val.line, "%s: want \"fork\" or \"cluster\", not %s", m.key, m.val.show())
		return
	}
	s.cluster, s.clusterLine = sm[1] == "cluster", m.val.line
}

// readPortValue reads a port number.
func (r *reader) readPortValue(m *member) (int, bool) {
	n, ok := r.whole(m, "a port number 1..65535")
	if ok && (n < 1 || n > 65535) {
		r.wrongType(m, "a port number 1..65535")
		return 0, false
	}
	return n, ok
}

func readPort(r *reader, s *spec, m *member) {
	if n, ok := r.readPortValue(m); ok {
		s.port, s.portLine = n, m.val.line
	}
}

func readExecuteCommand(r *reader, s *spec, m *member) {
	if b, ok := r.boolean(m); ok {
		s.executeCommand = b
	}
}

func readAutostart(r *reader, s *spec, m *member) {
	if b, ok := r.boolean(m); ok {
		s.autostart, s.autostartLine = b, m.val.line
	}
}

// readEnvObject reads an env or env_NAME object.
func (r *reader) readEnvObject(m *member) ([]envVar, bool) {
	if m.val.kind != kObject {
		r.wrongType(m, "an object of variables, like {\"NODE_ENV\": \"production\"}")
		return nil, false
	}
	var out []envVar
	for _, e := range m.val.obj {
		var val string
		switch e.val.kind {
		case kString:
			val = e.val.s
		case kNumber:
			val = jsNumber(e.val.s)
		case kBool:
			val = strconv.FormatBool(e.val.b)
		default: // PM2 passes JSON.stringify of an object (and of null)
			val = e.val.json()
		}
		out = append(out, envVar{name: e.key, value: val, line: e.line})
	}
	return out, true
}

func readEnv(r *reader, s *spec, m *member) {
	if v, ok := r.readEnvObject(m); ok {
		s.env = v
	}
}

func readAppendEnvToName(r *reader, s *spec, m *member) {
	if b, ok := r.boolean(m); ok {
		s.appendEnvToName, s.appendLine = b, m.val.line
	}
}

func readAutorestart(r *reader, s *spec, m *member) {
	if b, ok := r.boolean(m); ok {
		s.autorestart, s.autorestartSet = b, true
	}
}

func readStopExitCodes(r *reader, s *spec, m *member) {
	const want = "an exit code or a list of them, like [0]"
	vals := []*value{m.val}
	if m.val.kind == kArray {
		vals = m.val.arr
	}
	var codes []int
	for _, v := range vals {
		n, ok := r.whole(&member{key: m.key, line: m.line, val: v}, want)
		if !ok {
			return
		}
		codes = append(codes, n)
	}
	s.stopExitCodes, s.stopCodesLine = codes, m.val.line
}

func readMaxRestarts(r *reader, s *spec, m *member) {
	n, ok := r.whole(m, "a whole number >= 0")
	if ok && n < 0 {
		r.wrongType(m, "a whole number >= 0")
		return
	}
	if ok {
		s.maxRestarts, s.maxRestartsSet = n, true
	}
}

func readMemory(r *reader, s *spec, m *member) {
	const want = `a size like "300M" or "1G", or bytes`
	var n int64
	switch m.val.kind {
	case kNumber:
		f, ok := r.number(m, want)
		if !ok {
			return
		}
		if f < 1 || f > 1<<50 {
			r.fail(m.val.line, "%s: want a size > 0 and at most a petabyte, not %s", m.key, m.val.show())
			return
		}
		n = int64(f)
	case kString:
		size, err := policy.ParseSize(strings.TrimSpace(m.val.s))
		if err != nil {
			r.fail(m.val.line, "%s: %s: %v", m.key, m.val.show(), err)
			return
		}
		n = size
	default:
		r.wrongType(m, want)
		return
	}
	s.memory = n
}

func readCronRestart(r *reader, s *spec, m *member) {
	var spec string
	switch m.val.kind {
	case kNumber, kString:
		spec = strings.TrimSpace(m.val.s)
	default:
		r.wrongType(m, `a cron spec like "0 3 * * *"`)
		return
	}
	if spec == "" || spec == "0" { // PM2: none
		return
	}
	if strings.ContainsAny(spec, "\n\r\x00") {
		r.fail(m.val.line, "%s: a cron spec holds no line break", m.key)
		return
	}
	if _, err := policy.ParseSchedule(spec); err != nil {
		r.fail(m.val.line, "%s: %s: %v", m.key, m.val.show(), err)
		return
	}
	s.cron, s.cronLine = spec, m.val.line
}

func readKillSignal(r *reader, s *spec, m *member) {
	v, ok := r.str(m)
	if !ok {
		return
	}
	sig := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(v)), "SIG")
	if !slices.Contains([]string{"TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL"}, sig) {
		r.warn(m.val.line, m.key, fmt.Sprintf("mhrun stops with TERM, INT, QUIT, HUP, USR1, USR2 or KILL, not %s: SIGINT kept", m.val.show()))
		return
	}
	s.killSignal = sig
}

func readWaitReady(r *reader, s *spec, m *member) {
	if b, ok := r.boolean(m); ok {
		s.waitReady, s.waitReadyLine = b, m.val.line
	}
}

func readWatch(r *reader, s *spec, m *member) {
	s.watchLine = m.val.line
	if m.val.kind == kBool {
		s.watchAll = m.val.b
		return
	}
	if v, ok := r.strings(m); ok {
		s.watch = v
	}
}

func readIgnoreWatch(r *reader, s *spec, m *member) {
	if v, ok := r.strings(m); ok {
		s.ignoreWatch, s.ignoreLine = v, m.val.line
	}
}

func readLogPath(field func(*spec) *logPath) func(*reader, *spec, *member) {
	return func(r *reader, s *spec, m *member) {
		lp := logPath{set: true, line: m.val.line, key: m.key}
		switch m.val.kind {
		case kBool:
			lp.off, lp.def = !m.val.b, m.val.b
		case kString:
			p := m.val.s
			switch {
			case p == "/dev/null" || p == "NULL":
				lp.off = true
			case strings.TrimSpace(p) == "":
				r.fail(m.val.line, "%s is empty; want a file path", m.key)
				return
			case strings.ContainsAny(p, "\n\r\x00"):
				r.fail(m.val.line, "%s: a file path holds no line break", m.key)
				return
			default:
				lp.path = p
			}
		default:
			r.wrongType(m, "a file path")
			return
		}
		*field(s) = lp
	}
}

func readMergeLogs(r *reader, s *spec, m *member) {
	if b, ok := r.boolean(m); ok {
		s.mergeLogs, s.mergeLogsLine = &b, m.val.line
	}
}

// warnAlways warns whatever the value.
func warnAlways(msg string) func(*reader, *spec, *member) {
	return func(r *reader, _ *spec, m *member) { r.warn(m.line, m.key, msg) }
}

// warnUnlessFalse warns unless the value is false (or another falsy one):
// a feature turned off that mhrun does not have is no difference.
func warnUnlessFalse(msg string) func(*reader, *spec, *member) {
	return func(r *reader, _ *spec, m *member) {
		if m.val.truthy() {
			r.warn(m.line, m.key, msg)
		}
	}
}

// warnUnlessTrue warns unless the value is true: what mhrun does anyway.
func warnUnlessTrue(msg string) func(*reader, *spec, *member) {
	return func(r *reader, _ *spec, m *member) {
		if m.val.kind != kBool || !m.val.b {
			r.warn(m.line, m.key, msg)
		}
	}
}

// warnUnlessValue warns unless the value is the string same.
func warnUnlessValue(same, msg string) func(*reader, *spec, *member) {
	return func(r *reader, _ *spec, m *member) {
		if m.val.kind != kString || m.val.s != same {
			r.warn(m.line, m.key, msg)
		}
	}
}

// warnWithWatch warns when the app watches files: without watch the key
// does nothing in PM2 either.
func warnWithWatch(msg string) func(*reader, *spec, *member) {
	return func(r *reader, s *spec, m *member) {
		s.watchWarns = append(s.watchWarns, pending{Warning{File: r.file, Line: m.line, Key: oneLine.Replace(m.key), Msg: msg}, r.app})
	}
}

// jsNumber writes a JSON number as JavaScript's String() does for the
// common cases: 3000, 0.5, 1e+21.
func jsNumber(lit string) string {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return lit
	}
	if f == 0 {
		return "0"
	}
	if a := math.Abs(f); a >= 1e21 || a < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[:1]
		exp = strings.TrimLeft(exp[1:], "0")
		return mant + "e" + sign + exp
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// json writes v as compact JSON, as JSON.stringify does.
func (v *value) json() string {
	var b strings.Builder
	var w func(v *value)
	w = func(v *value) {
		switch v.kind {
		case kNull:
			b.WriteString("null")
		case kBool:
			b.WriteString(strconv.FormatBool(v.b))
		case kNumber:
			b.WriteString(jsNumber(v.s))
		case kString:
			b.WriteString(jsonString(v.s))
		case kArray:
			b.WriteByte('[')
			for i, e := range v.arr {
				if i > 0 {
					b.WriteByte(',')
				}
				w(e)
			}
			b.WriteByte(']')
		case kObject:
			b.WriteByte('{')
			seen := map[string]bool{}
			first := true
			for i := range v.obj {
				e := v.obj[i]
				if seen[e.key] {
					continue
				}
				seen[e.key] = true
				if !first {
					b.WriteByte(',')
				}
				first = false
				b.WriteString(jsonString(e.key) + ":")
				w(v.get(e.key).val)
			}
			b.WriteByte('}')
		}
	}
	w(v)
	return b.String()
}

// jsonString quotes s as JSON.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// isVarName reports whether s is a shell variable name.
func isVarName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}
