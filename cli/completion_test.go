package cli

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// completeLine runs mhrun as a shell's completer does (COMP_LINE set) in dir
// and returns the words it offers.
func completeLine(t *testing.T, dir, line string) []string {
	t.Helper()
	cmd := mhrunCmd(t, dir)
	cmd.Env = append(cmd.Env, "COMP_LINE="+line)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("complete %q: %v", line, err)
	}
	words := strings.Fields(string(out))
	slices.Sort(words)
	return words
}

func TestCompletion(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: exec sleep 1000\nworker: exec sleep 1000\n",
		"Procfile.policy": "web: scale=2\n",
	})
	for _, tt := range []struct{ line, want string }{
		{"mhrun sta", "start startup status"},
		{"mhrun start ", "web worker"},
		{"mhrun scale w", "web= worker="},
		{"mhrun start --time", "--timestamps"},
		{"mhrun connect w", "web worker"}, // no formation runs: names only, at once
		{"mhrun completion ", "bash fish zsh"},
	} {
		if got := strings.Join(completeLine(t, dir, tt.line), " "); got != tt.want {
			t.Errorf("%q completes to %q, want %q", tt.line, got, tt.want)
		}
	}
	other := writeFiles(t, map[string]string{"Procfile": "db: exec sleep 1000\n"})
	if got := strings.Join(completeLine(t, dir, "mhrun stop -d "+other+" "), " "); got != "db" {
		t.Errorf("-d names the project: %q", got)
	}

	detachedPid(t, dir)
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	if got := strings.Join(completeLine(t, dir, "mhrun connect w"), " "); got != "web web.1 web.2 worker worker.1" {
		t.Errorf("with the formation running: %q", got)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out, stderr, code := runMhrun(t, t.TempDir(), "completion", sh)
		if code != 0 || stderr != "" || !strings.Contains(out, "mhrun") {
			t.Fatalf("completion %s: exit %d %q %q", sh, code, out, stderr)
		}
		if _, err := exec.LookPath(sh); err != nil {
			t.Logf("%s is not installed: its script's syntax is not checked", sh)
			continue
		}
		check := exec.Command(sh, "-n")
		check.Stdin = strings.NewReader(out)
		if b, err := check.CombinedOutput(); err != nil {
			t.Errorf("%s -n on the script: %v\n%s\n%s", sh, err, b, out)
		}
	}
	_, stderr, code := runMhrun(t, t.TempDir(), "completion", "tcsh")
	if code != 2 || !strings.Contains(stderr, `must be one of "bash","zsh","fish"`) {
		t.Errorf("completion tcsh: exit %d %q", code, stderr)
	}
}
