package export

import (
	"strings"
	"testing"

	"mhrun/policy"
)

// Every row of the table names a policy key, and a warning names the key
// as a policy line spells it.
func TestUnsupportedKeys(t *testing.T) {
	known := map[string]bool{}
	for _, kv := range policy.Default().Fields() {
		known[kv.Key] = true
	}
	f := testFormation(t)
	for _, g := range unsupported {
		if !known[g.key] {
			t.Errorf("unsupported names %q, which is not a policy key", g.key)
		}
		for _, p := range f.Processes {
			if s := setting(p.Policy, g.key); s != g.key && !strings.HasPrefix(s, g.key+"=") {
				t.Errorf("%s: the setting of %s is written %q", p.Name, g.key, s)
			}
		}
	}
}
