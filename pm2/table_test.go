package pm2

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// schemaKeys are the keys of PM2's lib/API/schema.json (PM2 6), with
// their aliases: the importer must know each one.
var schemaKeys = map[string][]string{
	"script": {"exec"}, "name": nil, "name_prefix": nil, "filter_env": nil, "namespace": nil,
	"install_url": nil, "cwd": nil, "args": nil, "exec_interpreter": {"interpreter"},
	"node_args": {"interpreterArgs", "interpreter_args"}, "out_file": {"out", "output", "out_log"},
	"error_file": {"error", "err", "err_file", "err_log"}, "log_file": {"log"}, "disable_logs": nil,
	"log_type": nil, "log_date_format": nil, "time": nil, "env": nil, "max_memory_restart": nil,
	"pid_file": {"pid"}, "restart_delay": nil, "exp_backoff_restart_delay": nil, "source_map_support": nil,
	"disable_source_map_support": nil, "wait_ready": nil, "instances": nil, "kill_timeout": nil,
	"shutdown_with_message": nil, "listen_timeout": nil, "cron_restart": {"cron"}, "merge_logs": {"combine_logs"},
	"vizion": nil, "autostart": nil, "autorestart": nil, "stop_exit_codes": nil, "watch_delay": nil, "watch": nil,
	"ignore_watch": nil, "watch_options": nil, "min_uptime": nil, "max_restarts": nil, "execute_command": nil,
	"exec_mode": nil, "force": nil, "append_env_to_name": nil, "post_update": nil, "trace": nil, "disable_trace": nil,
	"v8": nil, "event_loop_inspector": nil, "deep_monitoring": nil, "increment_var": nil, "instance_var": nil,
	"pmx": nil, "automation": nil, "treekill": nil, "port": nil, "username": nil, "uid": {"user"}, "gid": nil,
	"windowsHide": nil, "kill_retry_time": nil, "write": nil, "io": nil,
	"cmd": nil, "command": nil, // verifyConfs' aliases of script
}

func TestTableCoversSchema(t *testing.T) {
	for k, aliases := range schemaKeys {
		for _, n := range append([]string{k, camel(k)}, aliases...) {
			if keyIndex[n] == nil {
				t.Errorf("PM2 key %s (as %s) is not in the table", k, n)
			}
		}
	}
	for _, m := range Table() {
		if m.Mhrun == "" || m.Note == "" {
			t.Errorf("%s: no mhrun column or note", m.PM2)
		}
		if strings.Contains(m.Note, "|") {
			t.Errorf("%s: a | in the note breaks the Markdown table", m.PM2)
		}
	}
}

// TestEveryKeyInTestdata checks that some testdata file uses each key.
func TestEveryKeyInTestdata(t *testing.T) {
	data, err := os.ReadFile("testdata/docs/attributes.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range Table() {
		if m.PM2 == "env_*" {
			continue
		}
		names := append([]string{m.PM2}, m.Aliases...)
		if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(string(data), `"`+n+`":`) }) {
			t.Errorf("testdata/docs/attributes.json uses no %s", m.PM2)
		}
	}
}

// TestReadmeTable checks that this package's README.md and mhrun's own
// hold the table as MarkdownTable writes it (go test -update rewrites them).
func TestReadmeTable(t *testing.T) {
	const begin, end = "<!-- pm2 table begin -->\n", "<!-- pm2 table end -->"
	for _, name := range []string{"README.md", "../README.md"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		i, j := strings.Index(s, begin), strings.Index(s, end)
		if i < 0 || j < i {
			t.Fatalf("%s has no %q ... %q", name, begin, end)
		}
		want := s[:i+len(begin)] + MarkdownTable() + s[j:]
		if *update {
			if err := os.WriteFile(name, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if s != want {
			t.Errorf("%s's table is not MarkdownTable's (go test ./pm2 -run ReadmeTable -update rewrites it)", name)
		}
	}
}

// TestReadmeStory checks that the README shows what the story imports to.
func TestReadmeStory(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile("testdata/story/config.js.golden")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(string(g), "== ", 5)
	for _, p := range parts[1:3] { // Procfile, Procfile.policy
		body := p[strings.IndexByte(p, '\n')+1:]
		if !strings.Contains(string(data), body) {
			t.Errorf("README.md does not show the story's import as testdata/story/config.js.golden has it:\n%s", body)
		}
	}
}
