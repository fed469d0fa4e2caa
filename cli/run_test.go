package cli

import (
	"strings"
	"testing"
)

// mhrun run passes the formation's environment and the exit code.
func TestRunEnvAndExitCode(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "web: ./web\nworker: ./worker\n",
		".env":     "GREETING=hi\nPORT=6000\n",
	})
	out, stderr, code := runMhrun(t, dir, "run", "sh", "-c", `echo "$GREETING $PORT ${PS:-none}"; exit 3`)
	if code != 3 || out != "hi 6000 none\n" {
		t.Errorf("exit %d, out %q, stderr %q", code, out, stderr)
	}
	out, _, code = runMhrun(t, dir, "run", "-p", "7000", "sh", "-c", `echo $PORT`)
	if code != 0 || out != "7000\n" {
		t.Errorf("-p: exit %d, out %q", code, out)
	}
	_, stderr, code = runMhrun(t, dir, "run", "no-such-program-here")
	if code != 127 || !strings.Contains(stderr, "no-such-program-here: command not found") {
		t.Errorf("missing program: exit %d, %q", code, stderr)
	}
	_, stderr, code = runMhrun(t, dir, "run", "sh", "-c", "kill -TERM $$")
	if code != 143 {
		t.Errorf("killed by TERM: exit %d, %q", code, stderr)
	}
}
