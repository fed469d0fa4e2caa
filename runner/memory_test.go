package runner

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// A tree over its cap is restarted with the reason shown; the memory is a
// grandchild's (the instance's own process stays near 20M, under the cap,
// even with -race), and the restart
// does not count as a failure (max-restarts=0 would give up otherwise).
func TestMemoryCapRestartsTree(t *testing.T) {
	needProc(t)
	r, _ := runFormation(t, map[string]string{
		"Procfile":        fmt.Sprintf("mem: echo started; MHRUN_TEST_HELPER=spawn-alloc MHRUN_TEST_ALLOC_MB=96 exec %s\n", os.Args[0]),
		"Procfile.policy": "mem: memory=60M max-restarts=0 grace=2s\n",
	})
	r.out.waitFor(t, "over memory cap", func(o string) bool {
		return strings.Contains(o, "mem.1 over memory cap: ")
	})
	r.out.waitFor(t, "the restarted run", func(o string) bool { return strings.Count(o, "mem.1 | started") >= 2 })
	line := ""
	for _, l := range strings.Split(r.out.String(), "\n") {
		if strings.Contains(l, "over memory cap") {
			line = l
			break
		}
	}
	if !strings.HasSuffix(line, " > 60M, restarting") {
		t.Errorf("event %q", line)
	}
	r.cancel()
	if code := r.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d: a memory restart must not count as a failure\n%s", code, r.out.String())
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{
		512: "512B", 1024: "1K", 300 << 20: "300M", 1 << 30: "1G",
		1288490188: "1.2G", 1536 << 20: "1.5G", 3 << 40: "3T",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
