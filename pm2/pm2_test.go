package pm2

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mhrun/formation"
	"mhrun/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files of the import")

// needNode skips a test of a JavaScript file when node is missing.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not on PATH: a .js ecosystem file can only be read by running it")
	}
}

// testLookPath stands for exec.LookPath: a host with python3 and no
// python, as Debian and Ubuntu are by default.
func testLookPath(name string) (string, error) {
	switch name {
	case "python3", "node":
		return "/usr/bin/" + name, nil
	}
	return "", exec.ErrNotFound
}

// importFile imports file with the test's PATH lookup.
func importFile(t *testing.T, file string, o Options) (*Result, error) {
	t.Helper()
	o.lookPath = testLookPath
	return Import(file, o)
}

// accepted loads what Import wrote as `mhrun check` does and returns the
// formation; a file mhrun refuses fails the test.
func accepted(t *testing.T, res *Result) *formation.Formation {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Procfile", res.Procfile)
	write("Procfile.policy", res.Policy)
	if res.DotEnv != "" {
		write(".env", res.DotEnv)
	}
	f, err := formation.Load(formation.Options{Dir: dir, Environ: []string{}, CPUs: 4})
	if err != nil {
		t.Fatalf("mhrun check refuses what Import wrote:\n%v\n--- Procfile\n%s--- Procfile.policy\n%s--- .env\n%s", err, res.Procfile, res.Policy, res.DotEnv)
	}
	if len(f.Processes) != len(res.Apps) {
		t.Fatalf("%d processes for %d apps", len(f.Processes), len(res.Apps))
	}
	for i, a := range res.Apps {
		if f.Processes[i].Name != a.Name {
			t.Errorf("process %d is %s, want %s", i, f.Processes[i].Name, a.Name)
		}
	}
	return f
}

// render is the golden form of a result.
func render(res *Result) string {
	var b strings.Builder
	b.WriteString("== Procfile\n" + res.Procfile)
	b.WriteString("== Procfile.policy\n" + res.Policy)
	b.WriteString("== .env\n" + res.DotEnv)
	b.WriteString("== warnings\n")
	for _, w := range res.Warnings {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test ./pm2 -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("import differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", file, got, want)
	}
}

// goldenCases are real ecosystem files: the design's story and PM2's own
// documented examples, each with the result it must give.
var goldenCases = []struct {
	name   string
	file   string
	opts   Options
	golden string
}{
	{"story js", "testdata/story/ecosystem.config.js", Options{Env: "production"}, "testdata/story/config.js.golden"},
	{"story json", "testdata/story/ecosystem.json", Options{Env: "production"}, "testdata/story/json.golden"},
	{"story json development", "testdata/story/ecosystem.json", Options{}, "testdata/story/json-development.golden"},
	{"story env in policy", "testdata/story/ecosystem.json", Options{Env: "production", EnvInPolicy: true}, "testdata/story/env-in-policy.golden"},
	{"declaration js", "testdata/docs/application-declaration.config.js", Options{}, "testdata/docs/application-declaration.config.js.golden"},
	{"declaration json", "testdata/docs/application-declaration.json", Options{}, "testdata/docs/application-declaration.json.golden"},
	{"declaration yaml", "testdata/docs/application-declaration.yml", Options{Env: "production"}, "testdata/docs/application-declaration.yml.golden"},
	{"pm2 init", "testdata/docs/pm2-init.config.js", Options{}, "testdata/docs/pm2-init.config.js.golden"},
	{"restart strategies", "testdata/docs/restart-strategies.config.js", Options{}, "testdata/docs/restart-strategies.config.js.golden"},
	{"esm", "testdata/docs/esm.config.mjs", Options{}, "testdata/docs/esm.config.mjs.golden"},
	{"commented json", "testdata/docs/commented.json", Options{}, "testdata/docs/commented.json.golden"},
	{"every attribute", "testdata/docs/attributes.json", Options{Env: "staging"}, "testdata/docs/attributes.json.golden"},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			if ext := filepath.Ext(tc.file); ext != ".json" && ext != ".yml" || strings.Contains(tc.name, "commented") {
				needNode(t)
			}
			res, err := importFile(t, tc.file, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			accepted(t, res)
			golden(t, tc.golden, render(res))
		})
	}
}

// TestStory checks what the design's story needs, through mhrun's own
// reading of the files: the clustered web server balanced on 4321, the
// agents restarted as PM2 restarted them, the nightly job a schedule.
func TestStory(t *testing.T) {
	res, err := importFile(t, "testdata/story/ecosystem.json", Options{Env: "production"})
	if err != nil {
		t.Fatal(err)
	}
	f := accepted(t, res)
	p := func(name string) policy.Policy {
		t.Helper()
		proc := f.Process(name)
		if proc == nil {
			t.Fatalf("no process %s in %v", name, f.Names())
		}
		return proc.Policy
	}
	web := p("web")
	if web.Scale != policy.ScaleMax || web.Balance != 4321 || web.Ready.Kind != policy.ReadyTCP || web.Memory != 1<<30 || web.Log != "logs/web.out.log" {
		t.Errorf("web: %+v", web)
	}
	if web.Env["HOST"] != "127.0.0.1" || web.Env["PORT"] != "" {
		t.Errorf("web env: %v", web.Env)
	}
	if f.FileEnv["NODE_ENV"] != "production" || f.FileEnv["METAHUMAN_PROFILE"] != "default" {
		t.Errorf(".env: %v", f.FileEnv)
	}
	if s := p("scheduler-service"); s.Restart != policy.RestartAlways || s.StopSignal != "INT" || s.MaxRestarts != 5 || s.BackoffMin != s.BackoffMax {
		t.Errorf("scheduler-service: %+v", s)
	}
	if d := p("digest"); d.Schedule != "0 3 * * *" || d.Restart != policy.RestartNever {
		t.Errorf("digest: %+v", d)
	}
	if o := p("organizer"); o.CronRestart != "0 4 * * *" {
		t.Errorf("organizer: %+v", o)
	}
	if tun := p("tunnel"); tun.Restart != policy.RestartOnFailure {
		t.Errorf("tunnel: %+v", tun)
	}
	if cmd := f.Process("web").Command; cmd != "cd apps/site && exec node dist/server/entry.mjs" {
		t.Errorf("web command %q", cmd)
	}
}

// TestStoryJSAndJSONAgree checks that node's reading of the .js file and
// the JSON one give the same files.
func TestStoryJSAndJSONAgree(t *testing.T) {
	needNode(t)
	js, err := importFile(t, "testdata/story/ecosystem.config.js", Options{Env: "production"})
	if err != nil {
		t.Fatal(err)
	}
	json, err := importFile(t, "testdata/story/ecosystem.json", Options{Env: "production"})
	if err != nil {
		t.Fatal(err)
	}
	same := func(s string) string { return strings.ReplaceAll(s, "ecosystem.config.js", "ecosystem.json") }
	if same(js.Procfile) != json.Procfile || same(js.Policy) != json.Policy || same(js.DotEnv) != json.DotEnv {
		t.Errorf("the .js and .json story differ:\n%s\n%s", render(js), render(json))
	}
	if len(js.Warnings) != len(json.Warnings) {
		t.Errorf("%d warnings from the .js file, %d from the .json one", len(js.Warnings), len(json.Warnings))
	}
}

// TestNodeMissing checks the one-line error for a .js file without node,
// and the hint on a .json file that is not strict JSON.
func TestNodeMissing(t *testing.T) {
	_, err := Import("testdata/story/ecosystem.config.js", Options{Node: "/nonexistent/node"})
	if err == nil || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "node is not on PATH") || !strings.Contains(err.Error(), "convert the file to JSON") {
		t.Errorf("error %v", err)
	}
	_, err = Import("testdata/docs/commented.json", Options{Node: "/nonexistent/node"})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Line != 2 ||
		!strings.Contains(err.Error(), "PM2 reads a .json file as JavaScript") {
		t.Errorf("error %v", err)
	}
}

// TestNodeStdout checks that what a .js file prints does not get in the
// way of what it exports.
func TestNodeStdout(t *testing.T) {
	needNode(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "ecosystem.config.js")
	os.WriteFile(file, []byte(`console.log("loading {apps:[]}"); process.stdout.write("]]");
module.exports = { apps: [{ name: "web", script: "server.js", env_production: { ARGV: process.argv.slice(2).join(" ") } }] };`), 0o644)
	res, err := importFile(t, file, Options{Env: "production"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.DotEnv, "ARGV='--env production'") {
		t.Errorf("the file did not see --env production in process.argv:\n%s", res.DotEnv)
	}
}
