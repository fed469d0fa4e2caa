package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyFile copies src into dir and returns the copy's path.
func copyFile(t *testing.T, src, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestImportPM2(t *testing.T) {
	dir := t.TempDir()
	eco := copyFile(t, "../pm2/testdata/story/ecosystem.json", dir)

	out, stderr, code := runMhrun(t, dir, "import", "pm2", "--print", eco)
	if code != 0 || !strings.Contains(out, "==> "+filepath.Join(dir, "Procfile")+" <==\n") || !strings.Contains(stderr, "mhrun: warning: ") {
		t.Fatalf("--print: exit %d\n%s\n%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "Procfile")); err == nil {
		t.Fatalf("--print wrote a Procfile")
	}

	out, stderr, code = runMhrun(t, dir, "import", "pm2", eco)
	if code != 0 || !strings.HasPrefix(out, "wrote Procfile, Procfile.policy, .env in "+dir) {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, stderr)
	}
	if n := strings.Count(stderr, "mhrun: warning: "); n == 0 || n != strings.Count(stderr, "\n") {
		t.Errorf("want one warning a line, got:\n%s", stderr)
	}
	// what it writes is a formation mhrun runs (the design's dirs need not exist for check)
	if out, stderr, code := runMhrun(t, dir, "check"); code != 0 {
		t.Fatalf("check of the imported files: exit %d\n%s\n%s", code, out, stderr)
	}

	before, _ := os.ReadFile(filepath.Join(dir, "Procfile.policy"))
	os.WriteFile(filepath.Join(dir, "Procfile.policy"), append(before, "# mine\n"...), 0o644)
	_, stderr, code = runMhrun(t, dir, "import", "pm2", eco)
	if code != 1 || stderr == "" || !strings.Contains(stderr, "Procfile, Procfile.policy, .env already in "+dir+": pass --force") {
		t.Errorf("second import: exit %d %q", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Procfile.policy")); !strings.HasSuffix(string(b), "# mine\n") {
		t.Errorf("a refused import changed the policy")
	}
	if _, stderr, code = runMhrun(t, dir, "import", "pm2", "--force", eco); code != 0 {
		t.Fatalf("--force: %s", stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "Procfile.policy")); string(b) != string(before) {
		t.Errorf("--force did not rewrite the policy")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.import-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestImportPM2BadInput(t *testing.T) {
	dir := t.TempDir()
	bad := copyFile(t, "../pm2/testdata/bad/syntax.json", dir)
	_, stderr, code := runMhrun(t, dir, "import", "pm2", bad)
	if code != 1 || !strings.HasPrefix(stderr, "mhrun: "+bad+":") {
		t.Errorf("bad JSON: exit %d %q", code, stderr)
	}
	_, stderr, code = runMhrun(t, dir, "import", "pm2", filepath.Join(dir, "nope.json"))
	if code != 1 || !strings.Contains(stderr, "no such file") {
		t.Errorf("missing file: exit %d %q", code, stderr)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("a failed import wrote files: %v", names)
	}
	good := copyFile(t, "../pm2/testdata/story/ecosystem.json", dir)
	_, stderr, code = runMhrun(t, dir, "import", "pm2", "-d", filepath.Join(dir, "missing"), good)
	if code != 1 || !strings.Contains(stderr, "nothing was written") {
		t.Errorf("a dir that does not exist: exit %d %q", code, stderr)
	}
	if os.Geteuid() == 0 {
		t.Skip("root writes into a read-only dir: that refusal is not testable here")
	}
	os.Chmod(dir, 0o555)
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	_, stderr, code = runMhrun(t, dir, "import", "pm2", good)
	if code != 1 || !strings.Contains(stderr, "nothing was written") {
		t.Errorf("read-only dir: exit %d %q", code, stderr)
	}
}
