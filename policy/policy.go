// Package policy parses and validates Procfile.policy, which says how each Procfile process is run.
package policy

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Restart says when an exited instance is started again.
type Restart string

// The restart= values.
const (
	RestartAlways    Restart = "always"
	RestartOnFailure Restart = "on-failure"
	RestartNever     Restart = "never"
)

// ReadyKind is the kind of readiness check of a process.
type ReadyKind string

// The ready= kinds; ReadyNone means the instance is ready once started.
const (
	ReadyNone   ReadyKind = ""
	ReadyTCP    ReadyKind = "tcp"
	ReadyHTTP   ReadyKind = "http"
	ReadyLog    ReadyKind = "log"
	ReadyNotify ReadyKind = "notify"
	ReadyExec   ReadyKind = "exec"
)

// Ready says when an instance counts as ready.
type Ready struct {
	Kind    ReadyKind
	Port    int            // tcp:PORT; 0 means the instance's $PORT
	Path    string         // http:/path (starts with "/")
	Pattern *regexp.Regexp // log:REGEX
	Command string         // exec:CMD
}

// String returns r in policy syntax ("tcp:8080", "http:/healthz"), or "" for none.
func (r Ready) String() string {
	switch r.Kind {
	case ReadyNone:
		return ""
	case ReadyTCP:
		if r.Port != 0 {
			return "tcp:" + strconv.Itoa(r.Port)
		}
		return "tcp"
	case ReadyHTTP:
		return "http:" + r.Path
	case ReadyLog:
		if r.Pattern == nil {
			return "log:"
		}
		return "log:" + r.Pattern.String()
	case ReadyNotify:
		return "notify"
	case ReadyExec:
		return "exec:" + r.Command
	}
	return string(r.Kind)
}

// ScaleMax as Policy.Scale means one instance per CPU.
const ScaleMax = -1

// Policy is the effective policy of one process, defaults applied.
type Policy struct {
	Scale       int // 0..MaxScale, or ScaleMax
	Restart     Restart
	BackoffMin  time.Duration
	BackoffMax  time.Duration
	Stable      time.Duration
	MaxRestarts int
	// Memory is the RSS cap in bytes, 0 = no cap. memory= takes digits
	// with an optional fraction and an optional unit K, M, G or T, which
	// may be followed by B or iB, in any case: 300M, 1.5G, 512MiB, 300MB.
	// Every unit is binary, as in PM2: 1M = 1MB = 1MiB = 1024·1024 bytes.
	// A bare number is bytes.
	Memory    int64
	Singleton bool
	// SingletonPath is the lock file of a singleton: "" means the default
	// per-project lock; a relative path is relative to the project
	// directory (where the Procfile is).
	SingletonPath string
	Schedule      string // validated cron spec, "" = not a job
	CronRestart   string // validated cron spec, "" = none
	Ready         Ready
	ReadyTimeout  time.Duration
	After         []string
	StopSignal    string // canonical: "TERM","INT","QUIT","HUP","USR1","USR2","KILL"
	Grace         time.Duration
	Optional      bool
	Port          int // 0 = assigned
	Balance       int // 0 = none
	Sticky        bool
	StickyKey     string // "" = the client address; "header:NAME" or "cookie:NAME"
	// Socket is the port of a shared socket (socket=PORT), 0 = none: mhrun
	// listens on it and hands the listening socket to every instance as
	// fd 3, by systemd's socket-activation protocol, and the kernel spreads
	// connections over the instances that accept. SocketHost is the
	// address of socket=HOST:PORT; "" binds where balance= binds
	// (--balance-host, 127.0.0.1 by default).
	Socket     int
	SocketHost string
	Watch      []string
	Log        string
	// Pipes is output=pipes: stdout and stderr are two pipes instead of
	// one pty, stderr's lines are marked apart ("web.1 ! text"), and
	// there is no terminal to connect to.
	Pipes bool
	// Env is the process's own environment, from env.NAME=value (nil
	// for none): applied over the env files and the real environment,
	// under PORT, PS and MHRUN_*, which it cannot set. `*:` variables
	// are merged in name by name.
	Env map[string]string
}

// Default returns the policy of a process without a policy line: scale 1,
// restart on-failure, backoff 1s..1m, stable 10s, max-restarts 10,
// ready-timeout 30s, stop-signal TERM and grace 5s.
func Default() Policy {
	return Policy{
		Scale:        1,
		Restart:      RestartOnFailure,
		BackoffMin:   time.Second,
		BackoffMax:   time.Minute,
		Stable:       10 * time.Second,
		MaxRestarts:  10,
		ReadyTimeout: 30 * time.Second,
		StopSignal:   "TERM",
		Grace:        5 * time.Second,
	}
}

// Instances returns how many instances p asks for on a host with cpus
// CPUs: Scale, or cpus (at least 1, at most MaxScale) for ScaleMax.
func (p Policy) Instances(cpus int) int {
	switch {
	case p.Scale == ScaleMax:
		return min(max(cpus, 1), MaxScale)
	case p.Scale < 0:
		return 0
	}
	return p.Scale
}

// KeyValue is one key of a policy in policy syntax. Value is "" for a key
// that is not set (memory without a cap, no schedule, port assigned) and
// for a flag that is off; a flag that is on has the Value "yes", and
// singleton with a lock path has the path.
type KeyValue struct {
	Key, Value string
}

// Fields returns every key of the policy table, in the table's order,
// with its value in policy syntax: durations like "5s" and "1m", sizes
// like "1G", backoff as "1s..1m", lists comma-joined.
func (p Policy) Fields() []KeyValue {
	kv := make([]KeyValue, len(keys))
	for i, k := range keys {
		kv[i] = KeyValue{k.name, k.format(p)}
	}
	return kv
}

// Format returns the keys of p that differ from Default as the body of a
// policy line, in the table's order, then its env.NAME items by name:
// `scale=2 restart=always memory=1G sticky env.HOST=127.0.0.1`. Values
// with spaces are quoted. Parsing "name: "+p.Format() gives p back.
func (p Policy) Format() string {
	def := Default().Fields()
	var b strings.Builder
	for i, kv := range p.Fields() {
		if kv.Value == def[i].Value {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		k := keys[i]
		switch {
		case k.kind == flagKey && kv.Value == flagOn:
			b.WriteString(kv.Key)
		case k.kind == flagOrValueKey && kv.Value == flagOn && (k.name != "singleton" || p.SingletonPath == ""):
			b.WriteString(kv.Key)
		default:
			b.WriteString(kv.Key + "=" + quote(kv.Value))
		}
	}
	for _, item := range formatEnv(p) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(item)
	}
	return b.String()
}

// flagOn is the Fields value of a flag that is set.
const flagOn = "yes"

// quote returns v as a policy value: as it is, or in double quotes with
// `"` and `\` escaped when it is empty or has spaces, control characters
// or quotes.
func quote(v string) string {
	if v != "" && !strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

// formatDuration is time.Duration.String without zero tails: "1m", not "1m0s".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// formatSize writes n bytes with the largest binary unit that divides it.
func formatSize(n int64) string {
	if n == 0 {
		return ""
	}
	for _, u := range sizeUnits {
		if n%u.bytes == 0 {
			return strconv.FormatInt(n/u.bytes, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// FormatBytes prints a size for people as the policy writes sizes, with
// one decimal where it helps: 1.2G, 300M, 512K (binary units, as memory=
// reads them); for the runner's events, status and top alike. Unlike the
// policy's own writing of memory=, it rounds.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, u := float64(n)/unit, "K"
	for _, next := range []string{"M", "G", "T"} {
		if v < unit {
			break
		}
		v, u = v/unit, next
	}
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0") + u
}

var sizeUnits = []struct {
	name  string
	bytes int64
}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}

func formatScale(n int) string {
	if n == ScaleMax {
		return "max"
	}
	return strconv.Itoa(n)
}

func formatFlag(on bool) string {
	if on {
		return flagOn
	}
	return ""
}

// formatSocket writes socket= as it was given: PORT, or HOST:PORT.
func formatSocket(p Policy) string {
	if p.Socket == 0 {
		return ""
	}
	if p.SocketHost == "" {
		return strconv.Itoa(p.Socket)
	}
	return net.JoinHostPort(p.SocketHost, strconv.Itoa(p.Socket))
}

func formatPort(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}
