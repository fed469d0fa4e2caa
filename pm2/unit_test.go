package pm2

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"mhrun/formation"
	"mhrun/policy"
)

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"-a 13 -b 12", []string{"-a", "13", "-b", "12"}},
		{"  run   start  ", []string{"run", "start"}},
		{`--model "models/en US.onnx" --port 9002`, []string{"--model", "models/en US.onnx", "--port", "9002"}},
		{`'single quoted' x`, []string{"single quoted", "x"}},
		{`--name="a b" --x='c d'`, []string{`--name="a b"`, `--x='c d'`}},
		{`a"b c"d`, []string{"a", "b c", "d"}},
		{`"" x`, []string{"x"}},
		{`unclosed "quote here`, []string{"unclosed", `"quote`, "here"}},
		{"tab\tand\nnewline", []string{"tab", "and", "newline"}},
		{"", nil},
	} {
		if got := splitArgs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestShellCommandRoundTrip runs the command lines /bin/sh gets and
// checks it sees the very words.
func TestShellCommandRoundTrip(t *testing.T) {
	words := []string{"printf", "%s|", "plain", "two words", "it's", `"dq"`, "$HOME", "`x`", "a\\b", "*", "~", "#hash", "", "x=y", "tab\there", "ünï"}
	out, err := exec.Command("/bin/sh", "-c", shellCommand(words)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(words[2:], "|") + "|"; string(out) != want {
		t.Errorf("sh saw %q, want %q", out, want)
	}
	if got := shellCommand([]string{"a=b.js", "x=1"}); got != "'a=b.js' x=1" {
		t.Errorf("a program with = is taken for an assignment: %s", got)
	}
}

// TestDotenvValueRoundTrip writes values the way .env gets them and reads
// them back with mhrun's env file reader.
func TestDotenvValueRoundTrip(t *testing.T) {
	values := []string{"", "plain", "with space", " lead", "trail ", "s3cr$t", "it's", `say "hi"`, "a#b", "a #b", "back\\slash",
		"line one\nline two", "cr\rlf", "${HOME}", `\$HOME`, "tab\there", "ünï code", `both ' and $`, "ends with \\n", `x\`}
	for _, v := range values {
		dotenvRoundTrip(t, v)
	}
	if w, ok := dotenvValue(`x"`); !ok || w != `'x"'` {
		t.Errorf(`x" written as %s, %v: want it in single quotes`, w, ok)
	}
	if _, ok := dotenvValue("it's \"x\""); ok {
		t.Error(`a value ending in " that needs double quotes cannot be written`)
	}
}

func dotenvRoundTrip(t *testing.T, v string) {
	t.Helper()
	w, ok := dotenvValue(v)
	if !ok {
		return
	}
	file := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(file, []byte("V="+w+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := formation.ReadEnvFiles(nil, []string{file})
	if err != nil {
		t.Fatalf("%q written as %s: %v", v, w, err)
	}
	if got["V"] != v {
		t.Errorf("%q written as %s reads back as %q", v, w, got["V"])
	}
}

// TestQuoteRoundTrip checks policy values through the policy parser.
func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{"plain", "two words", `say "hi"`, `back\slash`, `\"`, "", "tab\there", "#x", "a=b"} {
		f, err := policy.Parse(strings.NewReader("web: env.V="+quote(v)+"\n"), "p")
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		pols, err := f.Resolve([]string{"web"})
		if err != nil {
			t.Fatal(err)
		}
		if got := pols["web"].Env["V"]; got != v {
			t.Errorf("%q quoted as %s reads back as %q", v, quote(v), got)
		}
	}
}

func TestProcName(t *testing.T) {
	for in, want := range map[string]string{
		"web":                   "web",
		"Business News Watcher": "Business-News-Watcher",
		"voice.stt":             "voice-stt",
		"  ..":                  "app",
		"api:production":        "api-production",
		"ünïcode":               "n-code",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := procName(in); got != want {
			t.Errorf("procName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJSNumber(t *testing.T) {
	for in, want := range map[string]string{"3000": "3000", "1e3": "1000", "0.5": "0.5", "-0": "0", "1e21": "1e+21", "1e-7": "1e-7", "10.0": "10"} {
		if got := jsNumber(in); got != want {
			t.Errorf("jsNumber(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	r := &reader{file: "f"}
	for in, want := range map[string]time.Duration{`1600`: 1600 * time.Millisecond, `"30s"`: 30 * time.Second, `"5m"`: 5 * time.Minute, `"1h"`: time.Hour, `"250"`: 250 * time.Millisecond, `"1.5s"`: 1500 * time.Millisecond, `"100ms"`: 100 * time.Millisecond} {
		v, err := decodeJSON([]byte(in), "f", true)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := r.readDuration(&member{key: "min_uptime", val: v})
		if !ok || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{`-5`, `"5 s"`, `"5d"`, `true`, `"1e400"`, `99999999999999`} {
		v, _ := decodeJSON([]byte(in), "f", true)
		if _, ok := r.readDuration(&member{key: "min_uptime", val: v}); ok {
			t.Errorf("%s read as a duration", in)
		}
	}
}

// importJSON imports the JSON text in dir as eco.json, without node.
func importJSON(t *testing.T, dir, text string, o Options) (*Result, error) {
	t.Helper()
	file := filepath.Join(dir, "eco.json")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Node = "/nonexistent/node"
	return importFile(t, file, o)
}

// TestInterpreter checks the program chosen for a script, as PM2
// chooses it.
func TestInterpreter(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server"), []byte("#!/usr/bin/env node\nconsole.log(1)\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "prog"), []byte("\x7fELF\x02\x01\x01\x00\x00"), 0o755)
	for script, want := range map[string]string{
		`"script": "app.py"`:                             "python3 app.py",
		`"script": "run.sh", "args": ["a b"]`:            "bash run.sh 'a b'",
		`"script": "job.ts"`:                             "bun job.ts",
		`"script": "app.cjs"`:                            "node app.cjs",
		`"script": "server"`:                             "node server",
		`"script": "prog", "args": "-v"`:                 "./prog -v",
		`"script": "npm", "args": "run start"`:           "npm run start",
		`"script": "node", "interpreter": "node"`:        "node",
		`"script": "app.js", "interpreter": "node@18.0"`: "node app.js",
		`"script": "app.js", "interpreter": "none"`:      "app.js",
		`"script": "./bin/missing"`:                      "./bin/missing",
		`"script": "app.rb", "interpreter": "/opt/ruby/bin/ruby", "interpreter_args": "-W0"`: "/opt/ruby/bin/ruby -W0 app.rb",
		`"script": "npm run build && npm start"`:                                             "npm run build && npm start",
		`"script": "app.js", "cwd": "sub dir"`:                                               "cd 'sub dir' && exec node app.js",
		`"script": "a; b", "cwd": "x"`:                                                       "cd x && exec sh -c 'a; b'",
		`"script": "app.js", "instance_var": "NODE_APP_INSTANCE"`:                            "NODE_APP_INSTANCE=$((${PS##*.}-1)) exec node app.js",
		`"script": "app.js", "cwd": "` + dir + `/x"`:                                         "cd x && exec node app.js",
		`"script": "app.js", "cwd": "` + dir + `"`:                                           "node app.js",
		`"script": "app.js", "cwd": "/srv/app"`:                                              "cd /srv/app && exec node app.js",
	} {
		res, err := importJSON(t, dir, `{"name": "x", `+script+`}`, Options{})
		if err != nil {
			t.Errorf("%s: %v", script, err)
			continue
		}
		if got := strings.TrimPrefix(strings.Split(res.Procfile, "\n")[1], "x: "); got != want {
			t.Errorf("%s: command %q, want %q", script, got, want)
		}
	}
}

// TestInstanceVarInShell runs the assignments the command starts with.
func TestInstanceVarInShell(t *testing.T) {
	dir := t.TempDir()
	res, err := importJSON(t, dir, `{"name": "w", "script": "env", "interpreter": "none", "instances": 3, "instance_var": "NODE_APP_INSTANCE", "increment_var": "SLOT", "env": {"SLOT": 100}}`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := strings.TrimPrefix(strings.Split(res.Procfile, "\n")[1], "w: ")
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Env = []string{"PS=w.3", "PATH=" + os.Getenv("PATH")}
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if !bytes.Contains(out, []byte("NODE_APP_INSTANCE=2\n")) || !bytes.Contains(out, []byte("SLOT=102\n")) {
		t.Errorf("%s gave:\n%s", cmd, out)
	}
}

// TestPortAndCluster checks where the port of an app goes.
func TestPortAndCluster(t *testing.T) {
	dir := t.TempDir()
	for app, want := range map[string]string{
		`"env": {"PORT": "3000"}`:                                                      "port=3000",
		`"port": 3001, "env": {"PORT": 3000}`:                                          "port=3001",
		`"exec_mode": "cluster", "instances": 2, "port": 8080`:                         "scale=2 ready=tcp balance=8080",
		`"exec_mode": "cluster_mode", "env": {"PORT": 8080}, "listen_timeout": 3000`:   "ready=tcp ready-timeout=3s balance=8080",
		`"wait_ready": true, "env": {"PORT": 8080}`:                                    "ready=tcp port=8080",
		`"exec_mode": "cluster", "port": 8080, "cron_restart": "@daily"`:               "cron-restart=@daily ready=tcp balance=8080",
		`"exec_mode": "cluster", "port": 8080, "autorestart": false, "cron": "@daily"`: `restart=never schedule=@daily`,
		`"env": {"PORT": "nope"}`:                                                      "",
	} {
		res, err := importJSON(t, dir, `[{"name": "x", "script": "x.js", `+app+`}]`, Options{})
		if err != nil {
			t.Errorf("%s: %v", app, err)
			continue
		}
		accepted(t, res)
		lines := strings.Split(strings.TrimSpace(res.Policy), "\n")
		got := ""
		if l := lines[len(lines)-1]; strings.HasPrefix(l, "x:") {
			got = strings.TrimSpace(strings.TrimPrefix(l, "x:"))
		}
		if got != want {
			t.Errorf("%s: policy %q, want %q", app, got, want)
		}
	}
}

// TestEnvSplit checks which variables go to .env and which stay on the
// apps' lines.
func TestEnvSplit(t *testing.T) {
	dir := t.TempDir()
	text := `{"apps": [
		{"name": "a", "script": "a.js", "env": {"SHARED": "1", "ONLY_A": "x", "DIFF": "a", "NL": "l1\nl2", "ENDQ": "it's \"q\""}},
		{"name": "b", "script": "b.js", "env": {"SHARED": 1, "DIFF": "b", "NL": "l1\nl2", "ENDQ": "it's \"q\""}}
	]}`
	res, err := importJSON(t, dir, text, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := accepted(t, res)
	if !reflect.DeepEqual(f.FileEnv, map[string]string{"SHARED": "1", "NL": "l1\nl2"}) {
		t.Errorf(".env: %q", f.FileEnv)
	}
	if env := f.Process("a").Policy.Env; !reflect.DeepEqual(env, map[string]string{"ONLY_A": "x", "DIFF": "a", "ENDQ": `it's "q"`}) {
		t.Errorf("a: %q", env)
	}
	res, err = importJSON(t, dir, text, Options{EnvInPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	f = accepted(t, res)
	if res.DotEnv != "" || len(f.FileEnv) != 0 {
		t.Errorf(".env with EnvInPolicy: %q", res.DotEnv)
	}
	if env := f.Process("b").Policy.Env; !reflect.DeepEqual(env, map[string]string{"SHARED": "1", "DIFF": "b", "ENDQ": `it's "q"`}) {
		t.Errorf("b: %q", env)
	}
	var nl int
	for _, w := range res.Warnings {
		if w.Key == "env" && strings.HasPrefix(w.Msg, "NL left out") {
			nl++
		}
	}
	if nl != 1 {
		t.Errorf("NL, with a line break, left out %d times with a warning: %v", nl, res.Warnings)
	}
}

// TestNamesUnique checks that apps named alike get distinct names.
func TestNamesUnique(t *testing.T) {
	res, err := importJSON(t, t.TempDir(), `[{"name": "web", "script": "a.js"}, {"name": "web", "script": "b.js"}, {"name": "w.e.b", "script": "c.js"}, {"script": "lib/web.js"}, {"name": "web-2", "script": "d.js"}]`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range res.Apps {
		names = append(names, a.Name)
	}
	if want := []string{"web", "web-3", "w-e-b", "web-4", "web-2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	accepted(t, res)
}

// TestWatch checks the globs made of watch paths.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	for app, want := range map[string]string{
		`"watch": true`:                             "watch=*",
		`"watch": true, "cwd": "api"`:               "watch=api/**",
		`"watch": ["src", "./views/", "*.json"]`:    "watch=src/**,views/**,*.json",
		`"watch": "server", "cwd": "api"`:           "watch=api/server/**",
		`"watch": ["a,b", "` + dir + `/lib"]`:       "watch=lib/**",
		`"watch": ["/elsewhere"]`:                   "",
		`"watch": false, "ignore_watch": ["logs"]`:  "",
		`"watch": ["src"], "cwd": "/srv/elsewhere"`: "",
		`"watch": true, "out_file": "app.log"`:      "watch=*",
	} {
		res, err := importJSON(t, dir, `[{"name": "x", "script": "x.js", `+app+`}]`, Options{})
		if err != nil {
			t.Errorf("%s: %v", app, err)
			continue
		}
		got := ""
		for _, item := range strings.Fields(res.Policy) {
			if strings.HasPrefix(item, "watch=") {
				got = item
			}
		}
		if got != want {
			t.Errorf("%s: %q, want %q", app, got, want)
		}
	}
}

// TestFormats checks that YAML and CommonJS files say the same as JSON,
// autostart: false included (their values carry no line).
func TestFormats(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"eco.yaml": "apps:\n  - name: job\n    script: job.js\n    autostart: false\n    max_memory_restart: 300M\n",
		"eco.cjs":  "module.exports = {apps: [{name: 'job', script: 'job.js', autostart: false, max_memory_restart: '300M'}]};\n",
		"eco.json": `{"apps": [{"name": "job", "script": "job.js", "autostart": false, "max_memory_restart": "300M"}]}`,
	}
	for name, text := range files {
		t.Run(name, func(t *testing.T) {
			if strings.HasSuffix(name, ".cjs") {
				needNode(t)
			}
			file := filepath.Join(dir, name)
			os.WriteFile(file, []byte(text), 0o644)
			res, err := importFile(t, file, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Policy, "job: scale=0 memory=300M\n") {
				t.Errorf("policy:\n%s", res.Policy)
			}
			accepted(t, res)
		})
	}
}

// PM2's error_file asks for stderr apart: a path of its own, or the only
// log file, becomes output=pipes (stderr's lines marked "!"); the same path
// as out_file is one stream, which a pty already gives.
func TestErrorFileIsPipes(t *testing.T) {
	for _, tc := range []struct {
		apps  string
		pipes bool
	}{
		{`{"name": "a", "script": "x", "out_file": "o.log", "error_file": "e.log"}`, true},
		{`{"name": "a", "script": "x", "error_file": "e.log"}`, true},
		{`{"name": "a", "script": "x", "out_file": "o.log", "error_file": "o.log"}`, false},
		{`{"name": "a", "script": "x", "out_file": "o.log"}`, false},
		{`{"name": "a", "script": "x", "out_file": "o.log", "error_file": "/dev/null"}`, false},
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "ecosystem.json")
		if err := os.WriteFile(file, []byte(`{"apps": [`+tc.apps+`]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := importFile(t, file, Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.apps, err)
		}
		f := accepted(t, res)
		if got := f.Processes[0].Policy.Pipes; got != tc.pipes {
			t.Errorf("%s: output=pipes is %v, want %v\n%s", tc.apps, got, tc.pipes, res.Policy)
		}
	}
}
