package policy

import (
	"reflect"
	"strings"
	"testing"
)

// envValidCases set env.NAME items of worker and give its Env.
var envValidCases = []struct {
	in   string
	want map[string]string
}{
	{"env.HOST=127.0.0.1", map[string]string{"HOST": "127.0.0.1"}},
	{`env.HOST=127.0.0.1 env.NODE_ENV=production scale=2`, map[string]string{"HOST": "127.0.0.1", "NODE_ENV": "production"}},
	{`env.GREETING="hello world"`, map[string]string{"GREETING": "hello world"}},
	{`env.EMPTY=""`, map[string]string{"EMPTY": ""}},
	{`env.EMPTY=`, map[string]string{"EMPTY": ""}},
	{`env.OPTS=a=b,c=d`, map[string]string{"OPTS": "a=b,c=d"}},
	{`env.Q="say \"hi\" \\o/"`, map[string]string{"Q": `say "hi" \o/`}},
	{`env.RAW=$HOME/bin:${PATH}`, map[string]string{"RAW": "$HOME/bin:${PATH}"}},
	{`env.lower_case1=x env._U=y`, map[string]string{"lower_case1": "x", "_U": "y"}},
	{`env.HASH=#x env.TAB="a	b"`, map[string]string{"HASH": "#x", "TAB": "a\tb"}},
	{`env.PORTAL=1 env.PSX=2 env.MHRUNX=3`, map[string]string{"PORTAL": "1", "PSX": "2", "MHRUNX": "3"}},
}

func TestParseEnv(t *testing.T) {
	for _, c := range envValidCases {
		t.Run(c.in, func(t *testing.T) {
			got := resolve(t, "worker: "+c.in+"\n", testNames...)["worker"]
			if !reflect.DeepEqual(got.Env, c.want) {
				t.Errorf("Env = %q, want %q", got.Env, c.want)
			}
			checkRoundTrip(t, "worker", got)
		})
	}
	if env := resolve(t, "worker: scale=2\n", testNames...)["worker"].Env; env != nil {
		t.Errorf("no env.NAME: Env = %q, want nil", env)
	}
}

// envErrorCases are wrong env.NAME items, with the whole error.
var envErrorCases = []struct {
	in, want string
}{
	{`web: env=HOST=127.0.0.1`, `Procfile.policy:1: env: set one variable per item: write env.HOST=127.0.0.1 (and env.NAME=value for each other one)`},
	{`web: env="HOST=127.0.0.1 NODE_ENV=production"`, `Procfile.policy:1: env: set one variable per item: write env.HOST=127.0.0.1 (and env.NAME=value for each other one)`},
	{`web: env`, `Procfile.policy:1: env: set one variable per item: write env.NAME=value, e.g. env.HOST=127.0.0.1`},
	{`web: environment=x`, `Procfile.policy:1: environment: set one variable per item: write env.NAME=value, e.g. env.HOST=127.0.0.1`},
	{`web: env.=1`, `Procfile.policy:1: env. needs a variable name: write env.NAME=value, e.g. env.HOST=127.0.0.1`},
	{`web: env.1X=1`, `Procfile.policy:1: env.1X: "1X" is not a variable name: want letters, digits and _, not starting with a digit, e.g. env.HOST=127.0.0.1`},
	{`web: env.A-B=1`, `Procfile.policy:1: env.A-B: "A-B" is not a variable name: want letters, digits and _, not starting with a digit, e.g. env.HOST=127.0.0.1`},
	{`web: env.a.b=1`, `Procfile.policy:1: env.a.b: "a.b" is not a variable name: want letters, digits and _, not starting with a digit, e.g. env.HOST=127.0.0.1`},
	{`web: env.PORT=80`, `Procfile.policy:1: env.PORT: PORT is mhrun's: each instance gets its own; set port= for this process's first port`},
	{`web: env.PS=web`, `Procfile.policy:1: env.PS: PS is mhrun's: the instance's name, like web.2`},
	{`*: env.MHRUN_SOCKET=/tmp/s`, `Procfile.policy:1: env.MHRUN_SOCKET: names starting with MHRUN_ are mhrun's`},
	{`web: env.HOST`, `Procfile.policy:1: env.HOST needs a value, e.g. env.HOST=VALUE (env.HOST="" for an empty one)`},
	{`web: env.HOST=a env.HOST=b`, `Procfile.policy:1: env.HOST is set twice for web on this line`},
	{"web: env.HOST=a\n\nweb: scale=2 env.HOST=b", `Procfile.policy:3: env.HOST is set twice for web, on lines 1 and 3`},
	{`web: ENV.HOST=1`, `Procfile.policy:1: unknown key "ENV.HOST" (did you mean "env.HOST"?)`},
	{`web: evn.HOST=1`, `Procfile.policy:1: unknown key "evn.HOST" (did you mean "env.HOST"?)`},
	{`web: environ.HOST=1`, `Procfile.policy:1: unknown key "environ.HOST" (did you mean "env.HOST"?)`},
	{`web: a.b=1`, `Procfile.policy:1: unknown key "a.b"`},
	{`web: env.HOST="open`, `Procfile.policy:1: env.HOST: unterminated quote; end the value with "`},
	{`bad name: env.HOST=1 env.9=2`, `Procfile.policy:1: bad process name "bad name": use letters, digits, _ and -, or * for every process
Procfile.policy:1: env.9: "9" is not a variable name: want letters, digits and _, not starting with a digit, e.g. env.HOST=127.0.0.1`},
}

func TestParseEnvErrors(t *testing.T) {
	for _, c := range envErrorCases {
		t.Run(c.in, func(t *testing.T) {
			_, err := Parse(strings.NewReader(c.in), "Procfile.policy")
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// `*:` variables are every process's; a process's own env.NAME replaces
// one name by name, and adds to the rest. Each process has its own map.
func TestEnvDefaultsMergeByName(t *testing.T) {
	in := "*:      env.NODE_ENV=production env.TZ=UTC\n" +
		"web:    env.NODE_ENV=development\n" +
		"web:    env.HOST=127.0.0.1\n"
	f := parseString(t, in)
	m, err := f.Resolve(testNames)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"web":    {"NODE_ENV": "development", "TZ": "UTC", "HOST": "127.0.0.1"},
		"worker": {"NODE_ENV": "production", "TZ": "UTC"},
		"db":     {"NODE_ENV": "production", "TZ": "UTC"},
	}
	for name, w := range want {
		if !reflect.DeepEqual(m[name].Env, w) {
			t.Errorf("%s: Env = %q, want %q", name, m[name].Env, w)
		}
		checkRoundTrip(t, name, m[name])
	}
	m["worker"].Env["TZ"] = "changed"
	if m["db"].Env["TZ"] != "UTC" {
		t.Error("processes share one Env map")
	}
	if got, want := m["web"].Format(), "env.HOST=127.0.0.1 env.NODE_ENV=development env.TZ=UTC"; got != want {
		t.Errorf("web.Format() = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		name, key string
		line      int
	}{{"web", "env.NODE_ENV", 2}, {"web", "env.HOST", 3}, {"web", "env.TZ", 1}, {"worker", "env.NODE_ENV", 1}, {"worker", "env.HOST", 0}} {
		if got := f.KeyLine(tt.name, tt.key); got != tt.line {
			t.Errorf("KeyLine(%s, %s) = %d, want %d", tt.name, tt.key, got, tt.line)
		}
	}
	if got := m["web"].EnvVars(); !reflect.DeepEqual(got, []KeyValue{{"HOST", "127.0.0.1"}, {"NODE_ENV", "development"}, {"TZ", "UTC"}}) {
		t.Errorf("EnvVars() = %q", got)
	}
}

// The variables mhrun sets itself cannot be set per process.
func TestReservedEnv(t *testing.T) {
	for name, reserved := range map[string]bool{"PORT": true, "PS": true, "MHRUN_SOCKET": true, "MHRUN_RUN": true, "MHRUN_": true,
		"HOST": false, "PORT2": false, "port": false, "NOTIFY_SOCKET": false, "PATH": false} {
		if got := ReservedEnv(name) != ""; got != reserved {
			t.Errorf("ReservedEnv(%q) reserved = %v, want %v", name, got, reserved)
		}
	}
}
