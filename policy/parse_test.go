package policy

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testNames are the Procfile processes the parser tests resolve against.
var testNames = []string{"worker", "web", "db"}

// validCases set one key (or a few) of worker and give the Policy expected
// after Resolve.
var validCases = []struct {
	in   string
	want func(*Policy)
}{
	{"", func(p *Policy) {}},
	{"scale=0", func(p *Policy) { p.Scale = 0 }},
	{"scale=3", func(p *Policy) { p.Scale = 3 }},
	{"scale=1000", func(p *Policy) { p.Scale = 1000 }},
	{"scale=max", func(p *Policy) { p.Scale = ScaleMax }},
	{"restart=always", func(p *Policy) { p.Restart = RestartAlways }},
	{"restart=on-failure", func(p *Policy) { p.Restart = RestartOnFailure }},
	{"restart=never", func(p *Policy) { p.Restart = RestartNever }},
	{"backoff=500ms..30s", func(p *Policy) { p.BackoffMin, p.BackoffMax = 500*time.Millisecond, 30*time.Second }},
	{"backoff=2s", func(p *Policy) { p.BackoffMin, p.BackoffMax = 2*time.Second, 2*time.Second }},
	{"backoff=1m..1m", func(p *Policy) { p.BackoffMin, p.BackoffMax = time.Minute, time.Minute }},
	{"backoff=1s..1h30m", func(p *Policy) { p.BackoffMin, p.BackoffMax = time.Second, 90*time.Minute }},
	{"backoff=0s..0s", func(p *Policy) { p.BackoffMin, p.BackoffMax = 0, 0 }},
	{"stable=0s", func(p *Policy) { p.Stable = 0 }},
	{"stable=1m30s", func(p *Policy) { p.Stable = 90 * time.Second }},
	{"max-restarts=0", func(p *Policy) { p.MaxRestarts = 0 }},
	{"max-restarts=25", func(p *Policy) { p.MaxRestarts = 25 }},
	{"memory=300M", func(p *Policy) { p.Memory = 300 << 20 }},
	{"memory=1G", func(p *Policy) { p.Memory = 1 << 30 }},
	{"memory=512MiB", func(p *Policy) { p.Memory = 512 << 20 }},
	{"memory=1.5G", func(p *Policy) { p.Memory = 1536 << 20 }},
	{"memory=300MB", func(p *Policy) { p.Memory = 300 << 20 }},
	{"memory=300mb", func(p *Policy) { p.Memory = 300 << 20 }},
	{"memory=64k", func(p *Policy) { p.Memory = 64 << 10 }},
	{"memory=2TB", func(p *Policy) { p.Memory = 2 << 40 }},
	{"memory=4096", func(p *Policy) { p.Memory = 4096 }},
	{"memory=100B", func(p *Policy) { p.Memory = 100 }},
	{"memory=0.5K", func(p *Policy) { p.Memory = 512 }},
	{"singleton", func(p *Policy) { p.Singleton = true }},
	{"singleton=/run/metahuman/organizer.lock", func(p *Policy) { p.Singleton, p.SingletonPath = true, "/run/metahuman/organizer.lock" }},
	{"singleton=locks/worker.lock", func(p *Policy) { p.Singleton, p.SingletonPath = true, "locks/worker.lock" }},
	{"singleton scale=1", func(p *Policy) { p.Singleton = true }},
	{"singleton scale=0", func(p *Policy) { p.Singleton, p.Scale = true, 0 }},
	{`schedule="0 3 * * *"`, func(p *Policy) { p.Schedule = "0 3 * * *" }},
	{`schedule="*/10 * * * * *"`, func(p *Policy) { p.Schedule = "*/10 * * * * *" }},
	{`schedule="@every 5m"`, func(p *Policy) { p.Schedule = "@every 5m" }},
	{`schedule=@daily`, func(p *Policy) { p.Schedule = "@daily" }},
	{`schedule="CRON_TZ=UTC 30 4 * * mon-fri"`, func(p *Policy) { p.Schedule = "CRON_TZ=UTC 30 4 * * mon-fri" }},
	{`schedule="TZ=UTC @hourly"`, func(p *Policy) { p.Schedule = "TZ=UTC @hourly" }},
	{`cron-restart="0 4 * * *"`, func(p *Policy) { p.CronRestart = "0 4 * * *" }},
	{`cron-restart=@weekly`, func(p *Policy) { p.CronRestart = "@weekly" }},
	{"grace=2s\r\r", func(p *Policy) { p.Grace = 2 * time.Second }}, // CR CR LF: still a line end
	{`schedule="0 0 29 2 *"`, func(p *Policy) { p.Schedule = "0 0 29 2 *" }},
	{`schedule="0 0 30 2 mon"`, func(p *Policy) { p.Schedule = "0 0 30 2 mon" }},
	{`schedule="0 0 31 */2 *"`, func(p *Policy) { p.Schedule = "0 0 31 */2 *" }},
	{`schedule="@every 1s"`, func(p *Policy) { p.Schedule = "@every 1s" }},
	{`cron-restart="CRON_TZ=UTC @every 1h30m"`, func(p *Policy) { p.CronRestart = "CRON_TZ=UTC @every 1h30m" }},
	{"ready=tcp", func(p *Policy) { p.Ready = Ready{Kind: ReadyTCP} }},
	{"ready=tcp:8080", func(p *Policy) { p.Ready = Ready{Kind: ReadyTCP, Port: 8080} }},
	{"ready=http:/healthz", func(p *Policy) { p.Ready = Ready{Kind: ReadyHTTP, Path: "/healthz"} }},
	{"ready=http:/", func(p *Policy) { p.Ready = Ready{Kind: ReadyHTTP, Path: "/"} }},
	{`ready="log:listening on \d+"`, func(p *Policy) {
		p.Ready = Ready{Kind: ReadyLog, Pattern: regexp.MustCompile(`listening on \d+`)}
	}},
	{`ready=log:^ready$`, func(p *Policy) { p.Ready = Ready{Kind: ReadyLog, Pattern: regexp.MustCompile(`^ready$`)} }},
	{`ready="log:say \"hi\" \\."`, func(p *Policy) { p.Ready = Ready{Kind: ReadyLog, Pattern: regexp.MustCompile(`say "hi" \.`)} }},
	{"ready=notify", func(p *Policy) { p.Ready = Ready{Kind: ReadyNotify} }},
	{`ready="exec:curl -fs localhost:4321"`, func(p *Policy) { p.Ready = Ready{Kind: ReadyExec, Command: "curl -fs localhost:4321"} }},
	{"ready=exec:true", func(p *Policy) { p.Ready = Ready{Kind: ReadyExec, Command: "true"} }},
	{"ready-timeout=1m", func(p *Policy) { p.ReadyTimeout = time.Minute }},
	{"ready-timeout=500ms", func(p *Policy) { p.ReadyTimeout = 500 * time.Millisecond }},
	{"after=web", func(p *Policy) { p.After = []string{"web"} }},
	{"after=web,db", func(p *Policy) { p.After = []string{"web", "db"} }},
	{`after="web, db"`, func(p *Policy) { p.After = []string{"web", "db"} }},
	{"stop-signal=INT", func(p *Policy) { p.StopSignal = "INT" }},
	{"stop-signal=sigint", func(p *Policy) { p.StopSignal = "INT" }},
	{"stop-signal=SIGQUIT", func(p *Policy) { p.StopSignal = "QUIT" }},
	{"stop-signal=hup", func(p *Policy) { p.StopSignal = "HUP" }},
	{"stop-signal=usr1", func(p *Policy) { p.StopSignal = "USR1" }},
	{"stop-signal=SigUsr2", func(p *Policy) { p.StopSignal = "USR2" }},
	{"stop-signal=KILL", func(p *Policy) { p.StopSignal = "KILL" }},
	{"stop-signal=TERM", func(p *Policy) {}},
	{"grace=0s", func(p *Policy) { p.Grace = 0 }},
	{"grace=10s", func(p *Policy) { p.Grace = 10 * time.Second }},
	{"grace=1h", func(p *Policy) { p.Grace = time.Hour }},
	{"optional", func(p *Policy) { p.Optional = true }},
	{"port=5000", func(p *Policy) { p.Port = 5000 }},
	{"port=65535", func(p *Policy) { p.Port = 65535 }},
	{"balance=4321", func(p *Policy) { p.Balance = 4321 }},
	{"socket=4321", func(p *Policy) { p.Socket = 4321 }},
	{"socket=0.0.0.0:8080", func(p *Policy) { p.Socket, p.SocketHost = 8080, "0.0.0.0" }},
	{"socket=[::1]:8080", func(p *Policy) { p.Socket, p.SocketHost = 8080, "::1" }},
	{"socket=localhost:65535 scale=4", func(p *Policy) { p.Socket, p.SocketHost, p.Scale = 65535, "localhost", 4 }},
	{"balance=4321 sticky", func(p *Policy) { p.Balance, p.Sticky = 4321, true }},
	{"balance=4321 sticky=header:X-Forwarded-For", func(p *Policy) { p.Balance, p.Sticky, p.StickyKey = 4321, true, "header:X-Forwarded-For" }},
	{"balance=4321 sticky=header:cf-connecting-ip", func(p *Policy) { p.Balance, p.Sticky, p.StickyKey = 4321, true, "header:cf-connecting-ip" }},
	{`balance=4321 sticky="cookie:connect.sid"`, func(p *Policy) { p.Balance, p.Sticky, p.StickyKey = 4321, true, "cookie:connect.sid" }},
	{`watch=*.go`, func(p *Policy) { p.Watch = []string{"*.go"} }},
	{`watch="src/*.go, templates/*"`, func(p *Policy) { p.Watch = []string{"src/*.go", "templates/*"} }},
	{`watch=src/[a-c]?.go`, func(p *Policy) { p.Watch = []string{"src/[a-c]?.go"} }},
	{"log=log/worker.log", func(p *Policy) { p.Log = "log/worker.log" }},
	{`log="my logs/worker.log"`, func(p *Policy) { p.Log = "my logs/worker.log" }},
	{"scale=2 restart=always sticky memory=1G balance=80 # and a comment", func(p *Policy) {
		p.Scale, p.Restart, p.Sticky, p.Memory, p.Balance = 2, RestartAlways, true, 1<<30, 80
	}},
	{"\tscale=2\t\tgrace=1s  ", func(p *Policy) { p.Scale, p.Grace = 2, time.Second }},
}

func parseString(t *testing.T, in string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(in), "Procfile.policy")
	if err != nil {
		t.Fatalf("Parse(%q): %v", in, err)
	}
	return f
}

func resolve(t *testing.T, in string, names ...string) map[string]Policy {
	t.Helper()
	m, err := parseString(t, in).Resolve(names)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", in, err)
	}
	return m
}

// samePolicy compares policies, their regexps by source.
func samePolicy(a, b Policy) bool {
	if a.Ready.String() != b.Ready.String() {
		return false
	}
	a.Ready.Pattern, b.Ready.Pattern = nil, nil
	return reflect.DeepEqual(a, b)
}

// checkRoundTrip fails unless parsing "name: "+p.Format() gives p back.
func checkRoundTrip(t *testing.T, name string, p Policy) {
	t.Helper()
	line := name + ": " + p.Format()
	f, err := Parse(strings.NewReader(line), "roundtrip")
	if err != nil {
		t.Fatalf("Format of %+v gives %q, which does not parse: %v", p, line, err)
	}
	m, err := f.Resolve(append([]string{name}, p.After...))
	if err != nil {
		t.Fatalf("Format of %+v gives %q, which does not resolve: %v", p, line, err)
	}
	if !samePolicy(m[name], p) {
		t.Fatalf("round trip through %q:\n got %+v\nwant %+v", line, m[name], p)
	}
}

func TestParseValid(t *testing.T) {
	for _, c := range validCases {
		t.Run(c.in, func(t *testing.T) {
			want := Default()
			c.want(&want)
			got := resolve(t, "worker: "+c.in+"\n", testNames...)["worker"]
			if !samePolicy(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			checkRoundTrip(t, "worker", got)
		})
	}
}

// errorCases are wrong files as a new user would write them, with the
// whole error Parse returns.
var errorCases = []struct {
	in, want string
}{
	// Line shape.
	{"scale=2", `Procfile.policy:1: want NAME: key=value ..., e.g. web: scale=2, not "scale=2"`},
	{": scale=2", `Procfile.policy:1: missing process name before ": scale=2"`},
	{"web.1: scale=2", `Procfile.policy:1: bad process name "web.1": use letters, digits, _ and -, or * for every process`},
	{strings.Repeat("w", 64) + ": scale=2", `Procfile.policy:1: process name "` + strings.Repeat("w", 57) + `"... is 64 characters long; a Procfile name has at most 63`},
	{strings.Repeat("w", 100000) + ".x: scale=2", `Procfile.policy:1: bad process name "` + strings.Repeat("w", 57) + `"...: use letters, digits, _ and -, or * for every process`},
	{`"web: scale=2"`, `Procfile.policy:1: policy line in quotes: "\"web: scale=2\"" (remove the quotes: want "web: scale=2")`},
	{`"web": scale=2`, `Procfile.policy:1: policy line in quotes: "\"web\": scale=2" (remove the quotes: want "web: scale=2")`},
	{`'*: grace=1s`, `Procfile.policy:1: policy line in quotes: "'*: grace=1s" (remove the quotes: want "*: grace=1s")`},
	{`"we b": scale=2`, `Procfile.policy:1: bad process name "\"we b\"": use letters, digits, _ and -, or * for every process`},
	{"web worker: scale=2", `Procfile.policy:1: bad process name "web worker": use letters, digits, _ and -, or * for every process`},
	{`web: schedule="0 3 * * *`, `Procfile.policy:1: schedule: unterminated quote; end the value with "`},
	{`web: schedule="0 3 * * *\"`, `Procfile.policy:1: schedule: unterminated quote; end the value with "`},
	{`web: schedule="0 3"x`, `Procfile.policy:1: schedule="0 3": want a space after the closing quote`},
	{`web: log=a"b"`, `Procfile.policy:1: log: a quote may only open a value: write log="..." with \" for a quote inside`},
	{`web: "scale"=2`, `Procfile.policy:1: unexpected quote in "\"scale\"=2": only values may be quoted, e.g. schedule="0 3 * * *"`},
	{"web: =2", `Procfile.policy:1: missing key before "=2"`},
	{"web: memroy=1G", `Procfile.policy:1: unknown key "memroy" (did you mean "memory"?)`},
	{"web: Scale=2", `Procfile.policy:1: unknown key "Scale" (did you mean "scale"?)`},
	{"web: instances=2", `Procfile.policy:1: unknown key "instances"`},
	{"web: colour=red", `Procfile.policy:1: unknown key "colour"`},
	{"web: scale=2 scale=3", `Procfile.policy:1: scale is set twice for web on this line`},
	{"web: scale=2\nweb: grace=1s scale=3", `Procfile.policy:2: scale is set twice for web, on lines 1 and 2`},
	{"*: grace=1s\n*: grace=2", `Procfile.policy:2: grace is set twice for *, on lines 1 and 2; and grace="2": missing unit, e.g. 2s`},
	// scale
	{"web: scale=two", `Procfile.policy:1: scale="two": want a whole number >= 0, or max for one per CPU`},
	{"web: scale=-1", `Procfile.policy:1: scale="-1": want a whole number >= 0, or max for one per CPU`},
	{"web: scale=MAX", `Procfile.policy:1: scale="MAX": want a whole number >= 0, or max for one per CPU (did you mean "max"?)`},
	{"web: scale=", `Procfile.policy:1: scale="": want a whole number >= 0, or max for one per CPU`},
	{"web: scale=60000", `Procfile.policy:1: scale="60000": want at most 1000 instances (each has its own pty and process tree), or max for one per CPU`},
	{"web: scale=1001", `Procfile.policy:1: scale="1001": want at most 1000 instances (each has its own pty and process tree), or max for one per CPU`},
	{"web: scale=99999999999999999999", `Procfile.policy:1: scale="99999999999999999999": want at most 1000 instances (each has its own pty and process tree), or max for one per CPU`},
	{"web: scale", `Procfile.policy:1: scale needs a value, e.g. scale=2`},
	// restart
	{"web: restart=onfailure", `Procfile.policy:1: restart="onfailure": want always, on-failure or never (did you mean "on-failure"?)`},
	{"web: restart=on_failure", `Procfile.policy:1: restart="on_failure": want always, on-failure or never (did you mean "on-failure"?)`},
	{"web: restart=Always", `Procfile.policy:1: restart="Always": want always, on-failure or never (did you mean "always"?)`},
	{"web: restart=sometimes", `Procfile.policy:1: restart="sometimes": want always, on-failure or never`},
	{"web: restart", `Procfile.policy:1: restart needs a value, e.g. restart=always`},
	// backoff
	{"web: backoff=1..60", `Procfile.policy:1: backoff="1..60": missing unit, e.g. 1s`},
	{"web: backoff=1s..60", `Procfile.policy:1: backoff="1s..60": missing unit, e.g. 60s`},
	{"web: backoff=1m..1s", `Procfile.policy:1: backoff="1m..1s": MIN must not be more than MAX, e.g. 1s..1m`},
	{"web: backoff=-1s..1m", `Procfile.policy:1: backoff="-1s..1m": MIN must not be negative, e.g. 1s..1m (0s restarts at once)`},
	{"web: backoff=1s-1m", `Procfile.policy:1: backoff="1s-1m": want MIN..MAX like 1s..1m, or one duration like 2s`},
	{"web: backoff=1s..", `Procfile.policy:1: backoff="1s..": want MIN..MAX like 1s..1m, or one duration like 2s`},
	{"web: backoff=exponential", `Procfile.policy:1: backoff="exponential": want MIN..MAX like 1s..1m, or one duration like 2s`},
	// stable
	{"web: stable=10", `Procfile.policy:1: stable="10": missing unit, e.g. 10s`},
	{"web: stable=-1s", `Procfile.policy:1: stable="-1s": want a duration >= 0, like 10s`},
	{"web: stable=1d", `Procfile.policy:1: stable="1d": want a duration like 10s, 500ms or 1m30s`},
	// max-restarts
	{"web: max-restarts=-1", `Procfile.policy:1: max-restarts="-1": want a whole number >= 0, e.g. 10`},
	{"web: max-restarts=unlimited", `Procfile.policy:1: max-restarts="unlimited": want a whole number >= 0, e.g. 10`},
	{"web: max-restarts", `Procfile.policy:1: max-restarts needs a value, e.g. max-restarts=10`},
	// memory
	{`web: memory="lots"`, `Procfile.policy:1: memory="lots": want a size like 300M or 1G`},
	{"web: memory=0", `Procfile.policy:1: memory="0": want a size > 0, like 300M or 1G`},
	{"web: memory=0.1", `Procfile.policy:1: memory="0.1": want a size > 0, like 300M or 1G`},
	{"web: memory=1PB", `Procfile.policy:1: memory="1PB": want a size like 300M or 1G`},
	{"web: memory=99999999T", `Procfile.policy:1: memory="99999999T": too large; want a size like 300M or 1G`},
	{"web: memory=-1G", `Procfile.policy:1: memory="-1G": want a size like 300M or 1G`},
	{`web: memory="1 G"`, `Procfile.policy:1: memory="1 G": want a size like 300M or 1G`},
	{"web: memory=1.G", `Procfile.policy:1: memory="1.G": want a size like 300M or 1G`},
	{"web: memory", `Procfile.policy:1: memory needs a value, e.g. memory=1G`},
	// singleton
	{"web: singleton=", `Procfile.policy:1: singleton="": want a lock file path, or just singleton`},
	{`web: singleton=" "`, `Procfile.policy:1: singleton=" ": want a lock file path, or just singleton`},
	// schedule, cron-restart
	{`web: schedule="0 3 * *"`, `Procfile.policy:1: schedule="0 3 * *": expected 5 to 6 fields, found 4: [0 3 * *]; want a cron spec like "0 3 * * *" or "@every 5m"`},
	{"web: schedule=daily", `Procfile.policy:1: schedule="daily": expected 5 to 6 fields, found 1: [daily]; did you mean "@daily"?`},
	{"web: schedule=@every", `Procfile.policy:1: schedule="@every": unrecognized descriptor: @every; want a cron spec like "0 3 * * *" or "@every 5m"`},
	{"web: schedule=@reboot", `Procfile.policy:1: schedule="@reboot": unrecognized descriptor: @reboot; want a cron spec like "0 3 * * *" or "@every 5m"`},
	{`web: schedule="CRON_TZ=Mars/Base 0 3 * * *"`, `Procfile.policy:1: schedule="CRON_TZ=Mars/Base 0 3 * * *": provided bad location Mars/Base: unknown time zone Mars/Base; want a cron spec like "0 3 * * *" or "@every 5m"`},
	{"web: schedule=TZ=UTC", `Procfile.policy:1: schedule="TZ=UTC": time zone without a schedule after it, e.g. CRON_TZ=UTC 0 3 * * *; want a cron spec like "0 3 * * *" or "@every 5m"`},
	{"web: schedule=", `Procfile.policy:1: schedule="": empty spec string; want a cron spec like "0 3 * * *" or "@every 5m"`},
	{"web: schedule=0 3 * * *", `Procfile.policy:1: schedule="0": expected 5 to 6 fields, found 1: [0]; want a cron spec like "0 3 * * *" or "@every 5m"
Procfile.policy:1: unknown key "3"
Procfile.policy:1: unknown key "*"
Procfile.policy:1: unknown key "*"
Procfile.policy:1: unknown key "*"`},
	{`web: cron-restart="61 * * * *"`, `Procfile.policy:1: cron-restart="61 * * * *": end of range (61) above maximum (59): 61; want a cron spec like "0 3 * * *" or "@every 5m"`},
	{`web: cron-restart="*/0 * * * *"`, `Procfile.policy:1: cron-restart="*/0 * * * *": step of range should be a positive number: */0; want a cron spec like "0 3 * * *" or "@every 5m"`},
	// a spec the cron library accepts but never runs as written
	{`web: schedule="0 0 30 2 *"`, `Procfile.policy:1: schedule="0 0 30 2 *": never fires: no month it names has that day (like February 30); want a date that exists, e.g. "0 0 28 2 *"`},
	{`web: cron-restart="CRON_TZ=UTC 0 0 31 4,6,9,11 *"`, `Procfile.policy:1: cron-restart="CRON_TZ=UTC 0 0 31 4,6,9,11 *": never fires: no month it names has that day (like February 30); want a date that exists, e.g. "0 0 28 2 *"`},
	{`web: schedule="@every 0s"`, `Procfile.policy:1: schedule="@every 0s": @every 0s: want an interval of at least 1s, e.g. "@every 30s"`},
	{`web: schedule="@every -1s"`, `Procfile.policy:1: schedule="@every -1s": @every -1s: want an interval of at least 1s, e.g. "@every 30s"`},
	{`web: schedule="@every 1ns"`, `Procfile.policy:1: schedule="@every 1ns": @every 1ns: want an interval of at least 1s, e.g. "@every 30s"`},
	{`web: cron-restart="TZ=UTC @every 999ms"`, `Procfile.policy:1: cron-restart="TZ=UTC @every 999ms": @every 999ms: want an interval of at least 1s, e.g. "@every 30s"`},
	{`web: schedule="@every 1500ms"`, `Procfile.policy:1: schedule="@every 1500ms": @every 1500ms: want whole seconds, e.g. "@every 2s"`},
	// ready
	{"web: ready=tcp:0", `Procfile.policy:1: ready="tcp:0": want tcp for the instance's $PORT, or tcp:PORT with a port 1..65535`},
	{"web: ready=tcp:http", `Procfile.policy:1: ready="tcp:http": want tcp for the instance's $PORT, or tcp:PORT with a port 1..65535`},
	{"web: ready=http:healthz", `Procfile.policy:1: ready="http:healthz": want http:/PATH, e.g. http:/healthz`},
	{"web: ready=http", `Procfile.policy:1: ready="http": want http:/PATH, e.g. http:/healthz`},
	{"web: ready=http://localhost:4321/healthz", `Procfile.policy:1: ready="http://localhost:4321/healthz": want a path on the instance's $PORT, not a URL, e.g. http:/healthz`},
	{"web: ready=log:([", "Procfile.policy:1: ready=\"log:([\": bad regular expression: missing closing ]: `[`"},
	{"web: ready=log:", `Procfile.policy:1: ready="log:": want log:REGEX, e.g. ready="log:listening on"`},
	{"web: ready=notify:1", `Procfile.policy:1: ready="notify:1": notify takes nothing after it: write ready=notify`},
	{"web: ready=exec:", `Procfile.policy:1: ready="exec:": want exec:CMD, e.g. ready="exec:curl -fs localhost:4321"`},
	{"web: ready=htp:/x", `Procfile.policy:1: ready="htp:/x": want tcp, tcp:PORT, http:/PATH, log:REGEX, notify or exec:CMD (did you mean "http"?)`},
	{"web: ready=yes", `Procfile.policy:1: ready="yes": want tcp, tcp:PORT, http:/PATH, log:REGEX, notify or exec:CMD`},
	{"web: ready", `Procfile.policy:1: ready needs a value, e.g. ready=http:/healthz`},
	{"web: ready=exec:" + strings.Repeat("x", 131072), `Procfile.policy:1: ready="exec:` + strings.Repeat("x", 52) + `"...: the command is 131072 bytes, more than exec takes in one argument (128 KiB): move it into a script and run that`},
	// ready-timeout
	{"web: ready-timeout=0s", `Procfile.policy:1: ready-timeout="0s": want a duration > 0, like 30s`},
	{"web: ready-timeout=30", `Procfile.policy:1: ready-timeout="30": missing unit, e.g. 30s`},
	{"web: ready-timeout=-1s", `Procfile.policy:1: ready-timeout="-1s": want a duration > 0, like 30s`},
	// after
	{"web: after=web,,db", `Procfile.policy:1: after="web,,db": want process names separated by commas, e.g. after=web,db`},
	{"web: after=db,", `Procfile.policy:1: after="db,": want process names separated by commas, e.g. after=web,db`},
	{`web: after="db worker"`, `Procfile.policy:1: after="db worker": "db worker" is not a process name; want names separated by commas, e.g. after=web,db`},
	{"web: after=db,db", `Procfile.policy:1: after="db,db": db is listed twice`},
	{"web: after=*", `Procfile.policy:1: after="*": "*" is not a process name; want names separated by commas, e.g. after=web,db`},
	{"web: after=", `Procfile.policy:1: after="": want process names separated by commas, e.g. after=web,db`},
	// stop-signal
	{"web: stop-signal=STOP", `Procfile.policy:1: stop-signal="STOP": want one of TERM, INT, QUIT, HUP, USR1, USR2, KILL`},
	{"web: stop-signal=15", `Procfile.policy:1: stop-signal="15": want one of TERM, INT, QUIT, HUP, USR1, USR2, KILL`},
	{"web: stop-signal=TREM", `Procfile.policy:1: stop-signal="TREM": want one of TERM, INT, QUIT, HUP, USR1, USR2, KILL (did you mean "TERM"?)`},
	{"web: stop-signal=sigkil", `Procfile.policy:1: stop-signal="sigkil": want one of TERM, INT, QUIT, HUP, USR1, USR2, KILL (did you mean "KILL"?)`},
	// grace
	{"web: grace=5", `Procfile.policy:1: grace="5": missing unit, e.g. 5s`},
	{"web: grace=-5s", `Procfile.policy:1: grace="-5s": want a duration >= 0, like 5s`},
	{"web: grace=forever", `Procfile.policy:1: grace="forever": want a duration like 5s, 500ms or 1m30s`},
	{"web: grace=5 s", "Procfile.policy:1: grace=\"5\": missing unit, e.g. 5s\nProcfile.policy:1: unknown key \"s\""},
	// flags
	{"web: optional=true", `Procfile.policy:1: optional is a flag: write just optional`},
	{"web: optional=", `Procfile.policy:1: optional is a flag: write just optional`},
	{"web: sticky=yes", `Procfile.policy:1: sticky="yes": write just sticky for the client address (or sticky=header:NAME, sticky=cookie:NAME)`},
	{"web: sticky=X-Forwarded-For", `Procfile.policy:1: sticky="X-Forwarded-For": want header:NAME or cookie:NAME (e.g. sticky=header:X-Forwarded-For), or just sticky for the client address (did you mean "header:X-Forwarded-For"?)`},
	{"web: sticky=haeder:CF-Connecting-IP", `Procfile.policy:1: sticky="haeder:CF-Connecting-IP": want header:NAME or cookie:NAME (e.g. sticky=header:X-Forwarded-For), or just sticky for the client address (did you mean "header:CF-Connecting-IP"?)`},
	{"web: sticky=cookie:", `Procfile.policy:1: sticky="cookie:": want a cookie name after "cookie:": letters, digits and !#$%&'*+-.^_` + "`" + `|~`},
	{`web: sticky="header:X Real IP"`, `Procfile.policy:1: sticky="header:X Real IP": want a header name after "header:": letters, digits and !#$%&'*+-.^_` + "`" + `|~`},
	{"web: sticky=", `Procfile.policy:1: sticky="": want header:NAME or cookie:NAME (e.g. sticky=header:X-Forwarded-For), or just sticky for the client address`},
	// port, balance
	{"web: port=0", `Procfile.policy:1: port="0": want a port number 1..65535`},
	{"web: port=80000", `Procfile.policy:1: port="80000": want a port number 1..65535`},
	{"web: port=http", `Procfile.policy:1: port="http": want a port number 1..65535`},
	{"web: balance=-1", `Procfile.policy:1: balance="-1": want a port number 1..65535`},
	{"web: balance", `Procfile.policy:1: balance needs a value, e.g. balance=4321`},
	{"web: socket", `Procfile.policy:1: socket needs a value, e.g. socket=4321`},
	{"web: socket=0", `Procfile.policy:1: socket="0": want a port number 1..65535 (socket=4321), or an address and a port (socket=0.0.0.0:4321, socket=[::1]:4321)`},
	{"web: socket=example.com:80", `Procfile.policy:1: socket="example.com:80": want a port number 1..65535 (socket=4321), or an address and a port (socket=0.0.0.0:4321, socket=[::1]:4321)`},
	{"web: socket=::1:80", `Procfile.policy:1: socket="::1:80": want a port number 1..65535 (socket=4321), or an address and a port (socket=0.0.0.0:4321, socket=[::1]:4321)`},
	{"web: socket=127.0.0.1:", `Procfile.policy:1: socket="127.0.0.1:": want a port number 1..65535 (socket=4321), or an address and a port (socket=0.0.0.0:4321, socket=[::1]:4321)`},
	// watch
	{`web: watch="[a"`, `Procfile.policy:1: watch="[a": bad glob "[a": check its [ ], and that a \ escapes a character`},
	{"web: watch=src/*.go,,x", `Procfile.policy:1: watch="src/*.go,,x": want globs separated by commas, e.g. watch="src/*.go,templates/*"`},
	{"web: watch=", `Procfile.policy:1: watch="": want globs separated by commas, e.g. watch="src/*.go,templates/*"`},
	// log
	{"web: log=", `Procfile.policy:1: log="": want a file path, e.g. log=log/web.log`},
	{`web: log=" "`, `Procfile.policy:1: log=" ": want a file path, e.g. log=log/web.log`},
	// Carriage returns: only as a line's end (CRLF).
	{"web: scale=2\rworker: optional\r", `Procfile.policy:1: carriage return (\r) inside a line: "web: scale=2\rworker: optional" (save the file with LF or CRLF line ends; CR alone does not end a line)`},
	{"# defaults\r*: grace=1s\r", `Procfile.policy:1: carriage return (\r) inside a line: "# defaults\r*: grace=1s" (save the file with LF or CRLF line ends; CR alone does not end a line)`},
	{"web: scale=2\nworker: log=\"a\rb\"\r\n", `Procfile.policy:2: carriage return (\r) inside a line: "worker: log=\"a\rb\"" (save the file with LF or CRLF line ends; CR alone does not end a line)`},
	// Every error of a file, in line order.
	{"*: scale=2 bogus\nweb: memory=lots\n\n# comment\nweb: grace=5 restart=no\n: x\nworker scale=2\nweb: scale=3 scale=4\r\n", `Procfile.policy:1: unknown key "bogus"
Procfile.policy:2: memory="lots": want a size like 300M or 1G
Procfile.policy:5: grace="5": missing unit, e.g. 5s
Procfile.policy:5: restart="no": want always, on-failure or never
Procfile.policy:6: missing process name before ": x"
Procfile.policy:6: unknown key "x"
Procfile.policy:7: want NAME: key=value ..., e.g. web: scale=2, not "worker scale=2"
Procfile.policy:8: scale is set twice for web on this line`},
	{"web: sticky=1 schedule=\"x\r\ndigest: memory=1Gb ready=http:x\n", `Procfile.policy:1: sticky="1": write just sticky for the client address (or sticky=header:NAME, sticky=cookie:NAME)
Procfile.policy:1: schedule: unterminated quote; end the value with "
Procfile.policy:2: ready="http:x": want http:/PATH, e.g. http:/healthz`},
}

func TestParseErrors(t *testing.T) {
	for _, c := range errorCases {
		t.Run(c.in, func(t *testing.T) {
			f, err := Parse(strings.NewReader(c.in), "Procfile.policy")
			if err == nil {
				t.Fatalf("no error; parsed %+v", f)
			}
			if f != nil {
				t.Errorf("got a File with an error")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, not ErrorList", err)
			}
			var se *SyntaxError
			if !errors.As(err, &se) || se.File != "Procfile.policy" || se.Line != list[0].Line {
				t.Errorf("errors.As(*SyntaxError) = %v", se)
			}
		})
	}
}

func TestParseLines(t *testing.T) {
	in := "\ufeff# the policy\r\n" +
		"\r\n" +
		"*:\tgrace=10s backoff=2s..30s\r\n" +
		"   # indented comment\n" +
		"web : scale=2\n" +
		"worker: restart=always\n" +
		"web: memory=1G grace=1s\n" +
		"db:\n" +
		"worker: optional"
	f := parseString(t, in)
	m, err := f.Resolve([]string{"worker", "web", "db", "clock"})
	if err != nil {
		t.Fatal(err)
	}
	star := Default()
	star.Grace, star.BackoffMin, star.BackoffMax = 10*time.Second, 2*time.Second, 30*time.Second
	web := star
	web.Scale, web.Memory, web.Grace = 2, 1<<30, time.Second
	worker := star
	worker.Restart, worker.Optional = RestartAlways, true
	want := map[string]Policy{"web": web, "worker": worker, "db": star, "clock": star}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("got  %+v\nwant %+v", m, want)
	}
}

func TestStarOverride(t *testing.T) {
	m := resolve(t, "*: singleton=/tmp/a.lock optional\nweb: singleton\n", "web", "db")
	if p := m["web"]; !p.Singleton || p.SingletonPath != "" || !p.Optional {
		t.Errorf("web = %+v, want singleton with the default lock, optional", p)
	}
	if p := m["db"]; !p.Singleton || p.SingletonPath != "/tmp/a.lock" {
		t.Errorf("db = %+v, want singleton=/tmp/a.lock", p)
	}
}

func TestFieldsDefault(t *testing.T) {
	want := []KeyValue{
		{"scale", "1"}, {"restart", "on-failure"}, {"backoff", "1s..1m"}, {"stable", "10s"},
		{"max-restarts", "10"}, {"memory", ""}, {"singleton", ""}, {"schedule", ""},
		{"cron-restart", ""}, {"ready", ""}, {"ready-timeout", "30s"}, {"after", ""},
		{"stop-signal", "TERM"}, {"grace", "5s"}, {"optional", ""}, {"port", ""},
		{"balance", ""}, {"sticky", ""}, {"socket", ""}, {"watch", ""}, {"log", ""}, {"output", ""},
	}
	if got := Default().Fields(); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if got := Default().Format(); got != "" {
		t.Errorf("Default().Format() = %q, want empty", got)
	}
}

func TestFieldsSet(t *testing.T) {
	p := resolve(t, `web: scale=0 memory=1.5G singleton=/run/x.lock ready="log:up \d" after=db,worker `+
		`watch="a/*,b" optional sticky balance=80 port=5000 grace=90s backoff=1s..1h30m log="a b.log"`,
		"web", "db", "worker")["web"]
	got := map[string]string{}
	for _, kv := range p.Fields() {
		got[kv.Key] = kv.Value
	}
	want := map[string]string{
		"scale": "0", "memory": "1536M", "singleton": "/run/x.lock", "ready": `log:up \d`,
		"after": "db,worker", "watch": "a/*,b", "optional": "yes", "sticky": "yes", "balance": "80",
		"port": "5000", "grace": "1m30s", "backoff": "1s..1h30m", "log": "a b.log",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	wantFormat := `scale=0 backoff=1s..1h30m memory=1536M singleton=/run/x.lock ready="log:up \\d" ` +
		`after=db,worker grace=1m30s optional port=5000 balance=80 sticky watch=a/*,b log="a b.log"`
	if got := p.Format(); got != wantFormat {
		t.Errorf("Format() = %s\n        want %s", got, wantFormat)
	}
	checkRoundTrip(t, "web", p)
}

func TestFormatValues(t *testing.T) {
	durations := map[time.Duration]string{
		0: "0s", 500 * time.Millisecond: "500ms", 5 * time.Second: "5s", time.Minute: "1m",
		90 * time.Second: "1m30s", time.Hour: "1h", 90 * time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s",
		1500 * time.Millisecond: "1.5s", 10 * time.Minute: "10m",
	}
	for d, want := range durations {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	sizes := map[int64]string{0: "", 1: "1", 1023: "1023", 1024: "1K", 300 << 20: "300M", 1 << 30: "1G", 1536 << 20: "1536M", 3 << 40: "3T", 1<<30 + 1: "1073741825"}
	for n, want := range sizes {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
	quotes := map[string]string{"a": "a", "": `""`, "a b": `"a b"`, `a"b`: `"a\"b"`, `a\b`: `a\b`, `a\ b`: `"a\\ b"`, "a\tb": "\"a\tb\""}
	for v, want := range quotes {
		if got := quote(v); got != want {
			t.Errorf("quote(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestFormatOddValues(t *testing.T) {
	// Values only quotes can carry must come back the same.
	for _, p := range []Policy{
		func() Policy { p := Default(); p.Log = `C:\logs\"x" y`; return p }(),
		func() Policy { p := Default(); p.Log = "a\vb\x01"; return p }(), // not "\r": the parser refuses one inside a line
		func() Policy { p := Default(); p.Log = "#x"; return p }(),
		func() Policy { p := Default(); p.Singleton, p.SingletonPath = true, "yes"; return p }(),
		func() Policy {
			p := Default()
			p.Singleton, p.SingletonPath, p.Balance, p.Sticky, p.StickyKey = true, "yes", 80, true, "cookie:sid"
			return p
		}(),
		func() Policy {
			p := Default()
			p.Singleton, p.SingletonPath, p.Balance, p.Sticky = true, "yes", 80, true
			return p
		}(),
		func() Policy {
			p := Default()
			p.Ready = Ready{Kind: ReadyLog, Pattern: regexp.MustCompile(` "\\ `)}
			return p
		}(),
	} {
		checkRoundTrip(t, "web", p)
	}
}

func TestReadyString(t *testing.T) {
	for r, want := range map[*Ready]string{
		{}:                                 "",
		{Kind: ReadyTCP}:                   "tcp",
		{Kind: ReadyTCP, Port: 80}:         "tcp:80",
		{Kind: ReadyHTTP, Path: "/x"}:      "http:/x",
		{Kind: ReadyLog}:                   "log:",
		{Kind: ReadyNotify}:                "notify",
		{Kind: ReadyExec, Command: "true"}: "exec:true",
	} {
		if got := r.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", *r, got, want)
		}
	}
}

func TestInstances(t *testing.T) {
	for _, c := range []struct{ scale, cpus, want int }{{1, 8, 1}, {0, 8, 0}, {3, 1, 3}, {ScaleMax, 8, 8}, {ScaleMax, 0, 1}, {-5, 8, 0}, {ScaleMax, 5000, MaxScale}, {1000, 1, 1000}} {
		if got := (Policy{Scale: c.scale}).Instances(c.cpus); got != c.want {
			t.Errorf("scale %d on %d CPUs: %d instances, want %d", c.scale, c.cpus, got, c.want)
		}
	}
}

func TestParseScale(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "2": 2, "max": ScaleMax, "010": 10} {
		if got, err := ParseScale(s); err != nil || got != want {
			t.Errorf("ParseScale(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for s, want := range map[string]string{
		"-1":    `scale "-1": want a whole number >= 0, or max for one per CPU`,
		"Max":   `scale "Max": want a whole number >= 0, or max for one per CPU (did you mean "max"?)`,
		"":      `scale "": want a whole number >= 0, or max for one per CPU`,
		"60000": `scale "60000": want at most 1000 instances (each has its own pty and process tree), or max for one per CPU`,
	} {
		if _, err := ParseScale(s); err == nil || err.Error() != want {
			t.Errorf("ParseScale(%q) = %v, want %s", s, err, want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	s, err := ParseSchedule("CRON_TZ=UTC 0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	if got, want := s.Next(from), time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("next = %v, want %v", got, want)
	}
	s, err = ParseSchedule("@every 5m")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Next(from); !got.Equal(from.Add(5 * time.Minute)) {
		t.Errorf("@every 5m: next = %v", got)
	}
	s, err = ParseSchedule("TZ=UTC */30 * * * * *")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Next(from); !got.Equal(from.Add(30 * time.Second)) {
		t.Errorf("seconds field: next = %v", got)
	}
	for _, bad := range []string{"", "TZ=UTC", "CRON_TZ=UTC\t0 3 * * *", "* * * *", "@every",
		"@every 0s", "@every -5m", "@every 500ms", "@every 1.5s", "0 0 30 2 *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) succeeded", bad)
		}
	}
}

// Regression: a spec with no next time (February 30) was accepted, and the
// runner then fired it at once and forever; a leap day, rare but real,
// must stay valid from any year.
func TestScheduleNextTime(t *testing.T) {
	for _, c := range []struct {
		spec string
		ok   bool
	}{
		{"0 0 29 2 *", true},
		{"CRON_TZ=Asia/Tokyo 0 0 29 2 *", true},
		{"59 59 23 29 2 *", true},
		{"0 0 30 2 1", true}, // day of month OR day of week: Mondays in February
		{"0 0 30 2 *", false},
		{"0 0 30,31 2 *", false},
		{"0 0 31 4 *", false},
		{"0 0 31 2,4,6,9,11 *", false},
		{"TZ=UTC 0 0 31 11 *", false},
	} {
		for _, year := range []int{2024, 2025, 2026, 2027, 2028, 2095} {
			for _, at := range []time.Time{
				time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC),
				time.Date(year, 2, 29, 0, 0, 1, 0, time.UTC), // after a leap day's tick (or March 1)
				time.Date(year, 12, 31, 23, 59, 59, 0, time.UTC),
			} {
				_, err := parseSchedule(c.spec, at)
				if (err == nil) != c.ok {
					t.Errorf("parseSchedule(%q) from %s: %v, want ok=%v", c.spec, at.Format(time.DateTime), err, c.ok)
				}
			}
		}
	}
}

func TestSuggest(t *testing.T) {
	for _, c := range []struct {
		word    string
		options []string
		want    string
	}{
		{"memroy", keyNames, "memory"},
		{"sacle", keyNames, "scale"},
		{"grce", keyNames, "grace"},
		{"STABLE", keyNames, "stable"},
		{"max", keyNames, "max-restarts"},
		{"ready_timeout", keyNames, "ready-timeout"},
		{"s", keyNames, ""},
		{"st", keyNames, ""},
		{"colour", keyNames, ""},
		{"", keyNames, ""},
		{"wbe", []string{"web", "worker"}, "web"},
		{"x", []string{"db"}, ""},
		{"xy", []string{"db"}, ""},
		{"on", []string{"always", "on-failure", "never"}, "on-failure"},
		{"anything", nil, ""},
	} {
		if got := Suggest(c.word, c.options); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}

func TestCheckScale(t *testing.T) {
	single := Default()
	single.Singleton = true
	for _, c := range []struct {
		p    Policy
		n    int
		want string
	}{
		{Default(), 0, ""},
		{Default(), 8, ""},
		{Default(), ScaleMax, ""},
		{single, 0, ""},
		{single, 1, ""},
		{single, 2, "organizer is a singleton: scale it to 0 or 1, not 2"},
		{single, ScaleMax, "organizer is a singleton: scale it to 0 or 1, not max"},
		{Default(), -3, "organizer: scale -3: want a whole number >= 0, or max"},
		{Default(), 1000, ""},
		{Default(), 60000, "organizer: scale 60000: want at most 1000 instances (each has its own pty and process tree), or max for one per CPU"},
	} {
		err := CheckScale("organizer", c.p, c.n)
		if got := errString(err); got != c.want {
			t.Errorf("CheckScale(singleton=%v, %d) = %q, want %q", c.p.Singleton, c.n, got, c.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestSuggestLongWord(t *testing.T) {
	long := strings.Repeat("a", 100000)
	start := time.Now()
	if got := Suggest(long, []string{long + "b", "web"}); got != "" {
		t.Errorf("Suggest(long) = %q", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Suggest(long) took %v", d)
	}
}

func TestSignalTable(t *testing.T) {
	if got := SignalName(syscall.SIGHUP); got != "HUP" {
		t.Errorf("SignalName(SIGHUP) = %q", got)
	}
	if got := SignalName(syscall.Signal(42)); got != "42" {
		t.Errorf("SignalName(42) = %q, want the number", got)
	}
	for _, v := range []string{"hup", "SIGHUP", "sighup"} {
		if sig, name, err := ParseSendSignal(v); err != nil || sig != syscall.SIGHUP || name != "HUP" {
			t.Errorf("ParseSendSignal(%q) = %v %q %v", v, sig, name, err)
		}
	}
	if _, _, err := ParseSendSignal("SEGV"); err == nil || !strings.Contains(err.Error(), "want one of TERM, INT") {
		t.Errorf("SEGV is only a name for exits, not sendable: %v", err)
	}
	if got := (Policy{}).StopSignalOf(); got != syscall.SIGTERM {
		t.Errorf("zero policy stops with %v", got)
	}
	if got := (Policy{StopSignal: "INT"}).StopSignalOf(); got != syscall.SIGINT {
		t.Errorf("stop-signal=INT stops with %v", got)
	}
}
