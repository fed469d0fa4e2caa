package procfile

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStdlibOnly keeps the parser pure: it may depend on the standard
// library only, never on another mhrun package or a third-party module.
func TestImportsStdlibOnly(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	const self = "mhrun/procfile"
	out, err := exec.Command(goTool, "list", "-deps", self).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -deps %s: %v\n%s", self, err, ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v", self, err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list -deps %s listed only %q", self, deps)
	}
	for _, dep := range deps {
		first, _, _ := strings.Cut(dep, "/")
		if dep != self && (strings.Contains(first, ".") || strings.HasPrefix(dep, "mhrun")) {
			t.Errorf("%s depends on %s; it may import the standard library only", self, dep)
		}
	}
}
