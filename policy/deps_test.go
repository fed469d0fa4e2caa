package policy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports fails when the package depends on anything but the standard
// library and robfig/cron: a parser must stay pure.
func TestImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "mhrun/policy").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "mhrun/policy", "github.com/robfig/cron/v3":
		default:
			t.Errorf("policy depends on %s; it may import only the standard library and github.com/robfig/cron/v3", dep)
		}
	}
}
