package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mhrun export systemd writes the units, lists them and warns about what
// has no systemd equivalent; a bad target dir is one line.
func TestExportSystemd(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: ./web\nreport: ./report\n",
		"Procfile.policy": "web: scale=2 balance=4321\nreport: schedule=\"0 3 * * *\"\n",
	})
	out := filepath.Join(t.TempDir(), "units")
	stdout, stderr, code := runMhrun(t, dir, "export", "systemd", out, "--app", "shop")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"shop.target", "shop-web@.service", "shop-report.timer"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil || !strings.Contains(stdout, f) {
			t.Errorf("%s not written or not listed: %v\n%s", f, err, stdout)
		}
	}
	if !strings.Contains(stderr, "mhrun: warning: ") || !strings.Contains(stderr, "balance") {
		t.Errorf("no warning about balance: %q", stderr)
	}
	_, stderr, code = runMhrun(t, dir, "export", "systemd", "/proc/no/such")
	if code != 1 || strings.Count(stderr, "\n") != 1 {
		t.Errorf("bad dir: exit %d %q", code, stderr)
	}
	_, stderr, code = runMhrun(t, dir, "export", "kubernetes", out)
	if code != 2 {
		t.Errorf("kubernetes: exit %d %q", code, stderr)
	}
}
