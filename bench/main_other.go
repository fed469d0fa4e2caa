//go:build !linux

// Command bench measures mhrun; it reads /proc and uses Linux process
// calls, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: Linux only (it reads /proc)")
	os.Exit(1)
}
