package pm2

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badCases are files PM2 could not start, or that say what mhrun cannot
// write: each gives every problem, at its line where the format has one.
var badCases = []struct {
	file string
	node bool // read by node, or node tried on a .json file
	want []string
}{
	{"testdata/bad/syntax.json", false, []string{
		`testdata/bad/syntax.json:6: not valid JSON: invalid character '"' after object key:value pair (column 7)` + jsonHint,
	}},
	{"testdata/bad/unclosed.json", false, []string{
		`testdata/bad/unclosed.json:5: not valid JSON: the file ends inside a value (a { [ or " not closed)` + jsonHint,
	}},
	{"testdata/bad/types.json", false, []string{
		`testdata/bad/types.json:6: web: instances: want a whole number or "max", not "lots"`,
		`testdata/bad/types.json:7: web: max_memory_restart: "a lot": want a size like 300M or 1G`,
		`testdata/bad/types.json:8: web: autorestart: want true or false, not "yes"`,
		`testdata/bad/types.json:9: web: min_uptime: want milliseconds, or a duration like "30s", "5m" or "1h", not -5`,
		`testdata/bad/types.json:10: web: exec_mode: want "fork" or "cluster", not "threads"`,
		`testdata/bad/types.json:11: web: port: want a port number 1..65535, not 70000`,
		`testdata/bad/types.json:12: web: args: want a string or a list of strings, not an object`,
		`testdata/bad/types.json:13: web: cron_restart: "every night": expected 5 to 6 fields, found 2: [every night]`,
		`testdata/bad/types.json:14: web: max_restarts: want a whole number >= 0, not 2.5`,
		`testdata/bad/types.json:15: web: watch: want a string or a list of strings, not 3`,
		`testdata/bad/types.json:19: worker: script: want a string, not 42`,
		`testdata/bad/types.json:20: worker: env: want an object of variables, like {"NODE_ENV": "production"}, not "NODE_ENV=production"`,
		`testdata/bad/types.json:22: apps[2]: want an app: an object with a script, like {"name": "web", "script": "server.js"}, not "cli.js"`,
	}},
	{"testdata/bad/types.yml", false, []string{
		`testdata/bad/types.yml: web: instances: want a whole number or "max", not "lots"`,
	}},
	{"testdata/bad/syntax.yml", false, []string{
		`testdata/bad/syntax.yml:3: not valid YAML: did not find expected '-' indicator`,
	}},
	{"testdata/bad/empty-apps.json", false, []string{
		`testdata/bad/empty-apps.json:1: no apps: want at least one, like {"apps": [{"name": "web", "script": "server.js"}]}`,
	}},
	{"testdata/bad/empty-list.json", false, []string{
		`testdata/bad/empty-list.json:1: no apps: want at least one, like {"apps": [{"name": "web", "script": "server.js"}]}`,
	}},
	{"testdata/bad/empty.json", false, []string{
		`testdata/bad/empty.json: the file is empty; want {"apps": [{"name": "web", "script": "server.js"}]}`,
	}},
	{"testdata/bad/apps-string.json", false, []string{
		`testdata/bad/apps-string.json:1: want {"apps": [...]} or a list of apps, each an object with a script, not "web"`,
	}},
	{"testdata/bad/noscript.json", false, []string{
		`testdata/bad/noscript.json:4: worker: no script: want "script": the program to run, e.g. "server.js"`,
	}},
	{"testdata/bad/syntax.config.js", true, []string{
		`testdata/bad/syntax.config.js:4: node could not run it: SyntaxError: Unexpected token '{'`,
	}},
	{"testdata/bad/throws.config.js", true, []string{
		`testdata/bad/throws.config.js:2: node could not run it: Error: Cannot find module './no-such-settings.json'`,
	}},
	{"testdata/bad/noexport.config.js", true, []string{
		`testdata/bad/noexport.config.js: no apps: the file gives {}; want {"apps": [{"name": "web", "script": "server.js"}]} (a .js file sets module.exports)`,
	}},
}

// jsonHint ends the error of a .json file that is not strict JSON when
// node is missing.
const jsonHint = " (PM2 reads a .json file as JavaScript, comments and all; with node on PATH mhrun would too)"

func TestBadFiles(t *testing.T) {
	for _, tc := range badCases {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			o := Options{Node: "/nonexistent/node"} // the same without node
			if tc.node {
				needNode(t)
				o.Node = ""
			}
			res, err := importFile(t, tc.file, o)
			if err == nil {
				t.Fatalf("no error; got\n%s", render(res))
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T %v is no ErrorList", err, err)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestBadJSONWithNode checks that a file node cannot read as JavaScript
// either keeps its JSON error and line.
func TestBadJSONWithNode(t *testing.T) {
	needNode(t)
	_, err := importFile(t, "testdata/bad/syntax.json", Options{})
	if err == nil || err.Error() != `testdata/bad/syntax.json:6: not valid JSON: invalid character '"' after object key:value pair (column 7)` {
		t.Errorf("error %v", err)
	}
}

// TestUnknownKeys checks that a key PM2 does not know, one outside the
// apps, and an alias given beside its key, are each a warning, and that
// PM2's camelCase forms are known.
func TestUnknownKeys(t *testing.T) {
	res, err := importFile(t, "testdata/bad/unknown.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	accepted(t, res)
	want := []string{
		"testdata/bad/unknown.json:13: deploy: mhrun does not deploy: keep `pm2 deploy` or your CI for it",
		"testdata/bad/unknown.json:14: max_restarts: an app key outside the apps: PM2 ignores it there too",
		"testdata/bad/unknown.json:15: version: unknown top-level key: PM2 reads apps (and deploy), and ignores it too",
		`testdata/bad/unknown.json:6: web: instance: unknown key: PM2 ignores it too (did you mean "instances"?)`,
		"testdata/bad/unknown.json:8: web: memory_limit: unknown key: PM2 ignores it too",
		"testdata/bad/unknown.json:10: web: restartDelay: not used: restart_delay says the same, and PM2 takes restart_delay",
	}
	var got []string
	for _, w := range res.Warnings {
		got = append(got, w.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(res.Policy, "web: backoff=500ms..500ms max-restarts=4\n") {
		t.Errorf("maxRestarts (camelCase) or restart_delay not read:\n%s", res.Policy)
	}
}

// TestFileErrors checks what cannot be read at all: no file, a
// directory, an extension PM2 does not read, the environment nobody has.
func TestFileErrors(t *testing.T) {
	_, err := Import("testdata/nonexistent.json", Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "eco.json"), 0o755)
	if _, err := Import(filepath.Join(dir, "eco.json"), Options{}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	_, err = Import("testdata/bad/ecosystem.toml", Options{})
	if err == nil || err.Error() != "testdata/bad/ecosystem.toml: want a PM2 ecosystem file ending in .json, .yml, .yaml, .js, .cjs or .mjs" {
		t.Errorf("toml: %v", err)
	}
	_, err = Import("testdata/story/ecosystem.json", Options{Env: "prod"})
	if err == nil || err.Error() != `testdata/story/ecosystem.json: environment "prod": no app has env_prod (the file has env_production); did you mean "production"?` {
		t.Errorf("unknown environment: %v", err)
	}
}

// TestPortPastRange checks that instances on ports past 65535 are
// refused rather than written for mhrun check to refuse.
func TestPortPastRange(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "eco.json")
	os.WriteFile(file, []byte(`{"apps": [{"name": "web", "script": "web.js", "instances": 3, "env": {"PORT": 65534}}]}`), 0o644)
	_, err := importFile(t, file, Options{})
	if err == nil || !strings.Contains(err.Error(), ":1: web: PORT 65534 with 3 instances: instance 3 would get port 65536, past 65535") {
		t.Errorf("error %v", err)
	}
}
