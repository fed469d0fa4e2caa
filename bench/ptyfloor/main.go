// Command ptyfloor is the throughput benchmark's pty floor: the least a
// runner that gives every child a pty of its own can do. It starts each
// command under its own pty (github.com/creack/pty, pty.Start) and copies
// each pty's bytes, as read, to its own stdout: a 64 KiB read buffer per
// pty, a mutex around the write, nothing else — no line handling, no
// prefixes, no queue. It exits once every pty has reached its end and
// every command has been waited for, 0 if all of them exited 0.
//
// Usage: ptyfloor CMD [ARG...] [";" CMD [ARG...]]...
//
// The commands are run directly, not through a shell. The pty turns each
// "\n" into "\r\n", and the chunks of different ptys interleave in the
// output anywhere, mid-line included, so the output holds every byte but
// not whole lines; the benchmark counts its "\n" and its bytes.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/creack/pty"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var cmds [][]string
	for len(args) > 0 {
		i := 0
		for i < len(args) && args[i] != ";" {
			i++
		}
		if i == 0 {
			fmt.Fprintln(os.Stderr, "usage: ptyfloor CMD [ARG...] [\";\" CMD [ARG...]]...")
			return 2
		}
		cmds = append(cmds, args[:i])
		args = args[min(i+1, len(args)):]
	}
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "usage: ptyfloor CMD [ARG...] [\";\" CMD [ARG...]]...")
		return 2
	}

	out := os.Stdout
	var (
		mu     sync.Mutex // around every write to out, and failed
		failed bool
		wg     sync.WaitGroup
	)
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		failed = true
		fmt.Fprintf(os.Stderr, "ptyfloor: "+format+"\n", a...)
	}
	for _, argv := range cmds {
		cmd := exec.Command(argv[0], argv[1:]...)
		f, err := pty.Start(cmd)
		if err != nil {
			fail("start %s: %v", argv[0], err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			buf := make([]byte, 64<<10)
			broken := false // after a failed write: read on, so the command can finish
			for {
				n, err := f.Read(buf)
				if n > 0 && !broken {
					mu.Lock()
					_, werr := out.Write(buf[:n])
					mu.Unlock()
					if werr != nil {
						fail("write: %v", werr)
						broken = true
					}
				}
				if err != nil {
					// EIO is how Linux says every slave side is closed.
					if err != io.EOF && !errors.Is(err, syscall.EIO) {
						fail("read pty of %s: %v", argv[0], err)
					}
					break
				}
			}
			if err := cmd.Wait(); err != nil {
				fail("%s: %v", argv[0], err)
			}
		}()
	}
	wg.Wait()
	if failed {
		return 1
	}
	return 0
}
