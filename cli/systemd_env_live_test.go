package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 14: the policy's env.NAME variables reach the program of an
// exported systemd unit as written ($, %, quotes, backslash), over the
// env file's value of the same name, as under mhrun; and each instance
// keeps the PORT mhrun gives it though the env file sets PORT (the base
// port of foreman and mhrun).
func TestSystemdLiveExportEnv(t *testing.T) {
	m := startUserManager(t)
	out := t.TempDir()
	greeting := `hi $(name) $$ 100% "sure" \o/`
	dir := writeFiles(t, map[string]string{
		"Procfile":        `web: printf '%s\n' "$HOST" "$GREETING" "$FROM_FILE" "$PORT" > "$OUT/$PS.tmp" && mv "$OUT/$PS.tmp" "$OUT/$PS.env" && exec sleep 600` + "\n",
		"Procfile.policy": "web: scale=2 env.HOST=127.0.0.1 env.GREETING=\"hi $(name) $$ 100% \\\"sure\\\" \\\\o/\"\n",
		".env":            "HOST=0.0.0.0\nFROM_FILE=yes\nOUT=" + out + "\nPORT=6000\n",
	})
	if _, stderr, code := runMhrun(t, dir, "export", "systemd", m.unitDir, "--app", "envlive"); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	m.must("daemon-reload")
	m.must("start", "envlive.target")
	for n := 1; n <= 2; n++ {
		ps := "web." + strconv.Itoa(n)
		path := filepath.Join(out, ps+".env")
		deadline := time.After(30 * time.Second)
		var b []byte
		for {
			var err error
			if b, err = os.ReadFile(path); err == nil {
				break
			}
			select {
			case <-deadline:
				t.Fatalf("%s was not written within 30s", path)
			case <-time.After(50 * time.Millisecond):
			}
		}
		got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		want := []string{"127.0.0.1", greeting, "yes", strconv.Itoa(6000 + n - 1)}
		if !slices.Equal(got, want) {
			t.Errorf("%s saw HOST, GREETING, FROM_FILE, PORT = %q, want %q", ps, got, want)
		}
	}
	m.must("stop", "envlive.target")
}
