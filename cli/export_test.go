package cli

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
	_, stderr, code = runMhrun(t, dir, "export", "nomad", out)
	if code != 2 || !strings.Contains(stderr, "nomad") {
		t.Errorf("unknown engine: exit %d %q", code, stderr)
	}
}

// mhrun export kubernetes writes one manifest per object and warns about
// what Kubernetes has no field for; a bad namespace is one line.
func TestExportKubernetes(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: ./web\nreport: ./report\n",
		"Procfile.policy": "web: scale=2 balance=4321 watch=\"*.go\"\nreport: schedule=\"0 3 * * *\"\n",
		".env":            "GREETING=hello\n",
	})
	out := filepath.Join(t.TempDir(), "k8s")
	stdout, stderr, code := runMhrun(t, dir, "export", "kubernetes", out, "--app", "shop", "--image", "shop:1.4", "--namespace", "prod", "--workdir", "/app")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"shop-env.configmap.yaml", "shop-web.deployment.yaml", "shop-web.service.yaml", "shop-report.cronjob.yaml"} {
		body, err := os.ReadFile(filepath.Join(out, f))
		if err != nil || !strings.Contains(stdout, f) || !strings.Contains(string(body), "namespace: prod\n") {
			t.Errorf("%s not written, not listed or without the namespace: %v\n%s", f, err, stdout)
		}
	}
	if web, _ := os.ReadFile(filepath.Join(out, "shop-web.deployment.yaml")); !strings.Contains(string(web), "workingDir: /app\n") {
		t.Errorf("--workdir is not the containers' workingDir:\n%s", web)
	}
	if !strings.Contains(stderr, "mhrun: warning: web: watch=*.go not exported") {
		t.Errorf("no warning about watch: %q", stderr)
	}
	_, stderr, code = runMhrun(t, dir, "export", "k8s", out, "--app", "shop", "--namespace", "Prod")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, `namespace "Prod" is not a DNS label`) {
		t.Errorf("bad namespace: exit %d %q", code, stderr)
	}
}
