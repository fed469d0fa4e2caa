// Command writer prints the throughput benchmark's numbered lines, one
// write(2) per line whatever its stdout is (no bufio, so a pty, a pipe and
// a file see the same writes), or, with -sleep, stands for a trivial idle
// Go program.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"mhrun/bench/internal/lines"
)

// noPreempt turns off the runtime's asynchronous preemption.
const noPreempt = "asyncpreemptoff=1"

func main() {
	os.Exit(run())
}

func run() int {
	id := flag.String("id", "w1", "writer id, the first word of every line")
	n := flag.Int("lines", 200000, "lines to write")
	size := flag.Int("size", 100, "bytes per line, the \"\\n\" included")
	sleep := flag.Duration("sleep", 0, "write nothing and sleep this long (an idle Go program)")
	flag.Parse()
	if *sleep > 0 {
		time.Sleep(*sleep)
		return 0
	}
	if *size < len(*id)+12 {
		fmt.Fprintf(os.Stderr, "writer: -size %d is too small for id %q\n", *size, *id)
		return 2
	}
	if !strings.Contains(os.Getenv("GODEBUG"), noPreempt) {
		// The Go runtime's preemption signal (SIGURG) ends a write(2) that
		// is blocked on a full pty early, with a short count, so a line
		// would take two writes. Run again without it.
		env := []string{"GODEBUG=" + strings.TrimPrefix(os.Getenv("GODEBUG")+","+noPreempt, ",")}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GODEBUG=") {
				env = append(env, kv)
			}
		}
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, os.Args, env)
		}
		fmt.Fprintf(os.Stderr, "writer: re-exec with GODEBUG=%s: %v\n", noPreempt, err)
		return 1
	}
	buf := make([]byte, 0, *size)
	short := 0
	for seq := 0; seq < *n; seq++ {
		buf = append(lines.Append(buf[:0], *id, seq, *size), '\n')
		s, err := writeAll(buf)
		short += s
		if err != nil {
			fmt.Fprintf(os.Stderr, "writer %s: line %d: %v\n", *id, seq, err)
			return 1
		}
	}
	if short > 0 {
		fmt.Fprintf(os.Stderr, "writer %s: %d short writes\n", *id, short)
	}
	return 0
}

// writeAll writes p to fd 1 with raw write(2) calls: one when all goes well,
// more after a short write (counted, since it may split the line).
func writeAll(p []byte) (short int, err error) {
	for len(p) > 0 {
		n, err := syscall.Write(1, p)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			time.Sleep(100 * time.Microsecond)
			continue
		case err != nil:
			return short, err
		}
		p = p[n:]
		if len(p) > 0 {
			short++
		}
	}
	return short, nil
}
