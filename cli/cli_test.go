package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runIn(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestVersionAndHelp(t *testing.T) {
	out, _, code := runIn(t, "version")
	if code != 0 || !strings.HasPrefix(out, "mhrun ") {
		t.Errorf("version: %d %q", code, out)
	}
	out, _, code = runIn(t, "--help")
	if code != 0 || !strings.Contains(out, "check") || !strings.Contains(out, "start") {
		t.Errorf("help: %d %q", code, out)
	}
}

func TestBadCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"check", "--nope"},
		{"start", "--color=sometimes"},
		{"check", "-p", "http"},
	} {
		_, stderr, code := runIn(t, args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "mhrun: ") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line", args, code, stderr)
		}
	}
}

// mhrun check on real-world Procfiles prints the names and commands that
// foreman would run (the goldens of procfile/testdata hold foreman's view).
func TestCheckRealProcfiles(t *testing.T) {
	goldens, _ := filepath.Glob("../procfile/testdata/*.golden")
	if len(goldens) < 3 {
		t.Fatalf("real-world Procfiles missing: %v", goldens)
	}
	for _, g := range goldens {
		pf := strings.TrimSuffix(g, ".golden") + ".Procfile"
		t.Run(filepath.Base(pf), func(t *testing.T) {
			want, err := os.ReadFile(g)
			if err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(pf)
			if err != nil {
				t.Fatal(err)
			}
			dir := writeFiles(t, map[string]string{"Procfile": string(body)})
			out, stderr, code := runIn(t, "check", "--json", "-d", dir)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var v checkView
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			for _, p := range v.Processes {
				got.WriteString(p.Name + "\t" + p.Command + "\n")
			}
			if got.String() != string(want) {
				t.Errorf("check lists\n%s\nforeman would run\n%s", got.String(), want)
			}
			// the table shows each name and command too
			out, _, _ = runIn(t, "check", "-d", dir)
			for _, p := range v.Processes {
				if !strings.Contains(out, p.Name) || !strings.Contains(out, p.Command) {
					t.Errorf("table lacks %s: %s\n%s", p.Name, p.Command, out)
				}
			}
		})
	}
}

func TestCheckTableAndJSON(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: ./web\nworker: ./worker\n",
		"Procfile.policy": "*: grace=2s\nweb: scale=3 balance=4321 sticky\n",
		".env":            "PORT=3000\n",
	})
	out, stderr, code := runIn(t, "check", "-d", dir, "-m", "all=3,worker=2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"web      web.1..web.3        3000-3002  ./web\n",
		"worker   worker.1..worker.2  3100-3101  ./worker\n",
		"web:    scale=3 restart=on-failure backoff=1s..1m stable=10s max-restarts=10 ready-timeout=30s stop-signal=TERM grace=2s balance=4321 sticky\n",
		"worker: scale=2 restart=on-failure",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	// As foreman's -m, -m is the whole formation: web is not run.
	out, _, _ = runIn(t, "check", "-d", dir, "-m", "worker=2")
	for _, want := range []string{
		"web      none (scale 0)      -          ./web\n",
		"worker   worker.1..worker.2  3100-3101  ./worker\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-m worker=2: no %q in:\n%s", want, out)
		}
	}
	out, _, code = runIn(t, "check", "-d", dir, "--json")
	var v checkView
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("json: %v (exit %d)\n%s", err, code, out)
	}
	web := v.Processes[0]
	if web.Scale != 3 || len(web.Instances) != 3 || web.Instances[2].Port != 3002 || web.Policy["balance"] != "4321" || web.Policy["grace"] != "2s" {
		t.Errorf("json web: %+v", web)
	}
}

// Every bad input gives one line per problem, file:line where there is one,
// exit 1, and never a panic.
func TestCheckBadInput(t *testing.T) {
	tests := []struct {
		files map[string]string
		args  []string
		want  []string
	}{
		{map[string]string{}, nil, []string{"open Procfile: no such file or directory"}},
		{map[string]string{"Procfile": ""}, nil, []string{"Procfile:1: no processes defined"}},
		{map[string]string{"Procfile": "web: x\n", "Procfile.policy": "wbe: scale=2\n"}, nil,
			[]string{`Procfile.policy:1: wbe is not a process in the Procfile (did you mean "web"?)`}},
		{map[string]string{"Procfile": "web: x\n", ".env": "A=1\nB\n"}, nil, []string{".env:2: not a variable line"}},
		{map[string]string{"Procfile": "web: x\n"}, []string{"-e", "nope.env"}, []string{"nope.env: cannot read env file"}},
		{map[string]string{"Procfile": "web: x\n"}, []string{"-m", "wbe=2"}, []string{`scale: unknown process "wbe" (did you mean "web"?)`}},
		{map[string]string{"Procfile": "web: x\n", "Procfile.policy": "web: singleton\n"}, []string{"-m", "web=2"}, []string{"web"}},
		{map[string]string{"Procfile": "web: x\n"}, []string{"-f", "Nope"}, []string{"open Nope: no such file or directory"}},
		{map[string]string{"Procfile": "web: x\nweb: y\n", "Procfile.policy": "web: memory=lots\n", ".env": "X\n"}, nil,
			[]string{"Procfile:2: duplicate", "Procfile.policy:1: memory=", ".env:1: not a variable line"}},
	}
	for _, tt := range tests {
		dir := writeFiles(t, tt.files)
		wd, _ := os.Getwd()
		if err := os.Chdir(dir); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runIn(t, append([]string{"check"}, tt.args...)...)
		os.Chdir(wd)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != 1 || len(lines) != len(tt.want) {
			t.Errorf("%v %v: exit %d, stderr:\n%s", tt.files, tt.args, code, stderr)
			continue
		}
		for i, w := range tt.want {
			if !strings.HasPrefix(lines[i], "mhrun: ") || !strings.Contains(lines[i], w) {
				t.Errorf("%v %v: line %q, want %q", tt.files, tt.args, lines[i], w)
			}
		}
	}
}
