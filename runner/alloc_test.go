package runner

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"

	"mhrun/proctree"
)

// Helper children for the memory tests: the test binary run again with
// MHRUN_TEST_HELPER set (proctree's tests have the same two).
//
//	alloc        allocate and touch MHRUN_TEST_ALLOC_MB MiB, print "allocated PID", wait for stdin to close
//	spawn-alloc  start an alloc grandchild on the same stdin and stdout, wait for it
func init() {
	switch os.Getenv("MHRUN_TEST_HELPER") {
	case "alloc":
		mb, _ := strconv.Atoi(os.Getenv("MHRUN_TEST_ALLOC_MB"))
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += os.Getpagesize() {
			b[i] = 1
		}
		fmt.Printf("allocated %d\n", os.Getpid())
		io.Copy(io.Discard, os.Stdin)
		runtime.KeepAlive(b)
		os.Exit(0)
	case "spawn-alloc":
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "MHRUN_TEST_HELPER=alloc")
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := c.Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func needProc(t testing.TB) {
	if !proctree.MemorySupported() {
		t.Skip("no /proc to sample")
	}
}
