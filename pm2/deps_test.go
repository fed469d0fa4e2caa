package pm2

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports fails when the importer depends on the runner, the CLI or
// anything else of mhrun's than the file parsers, formation (which reads
// input files as every mhrun reader does) and watch's glob matching: it
// turns one file into three, and starts nothing but node.
func TestImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "mhrun/pm2").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "mhrun/pm2", dep == "mhrun/policy", dep == "mhrun/procfile", dep == "mhrun/formation", dep == "mhrun/watch":
		case strings.HasPrefix(dep, "mhrun/"):
			t.Errorf("pm2 depends on %s; it may use only the parsers (policy, procfile), formation and watch", dep)
		}
	}
}
