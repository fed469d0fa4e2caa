//go:build linux

package main

import (
	"fmt"
	"os/exec"
	"syscall"
)

// spinners are the CPU-spinning processes of -load: shells in an endless
// loop, each in a process group of its own, killed by pid.
type spinners []*exec.Cmd

// spin starts n CPU-spinning processes. On error the ones started are
// returned too, for stop.
func (b *bench) spin(n int) (spinners, error) {
	var s spinners
	for range n {
		cmd := b.command("/bin/sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			return s, fmt.Errorf("start a spinning shell: %w", err)
		}
		s = append(s, cmd)
	}
	if n > 0 {
		pids := make([]int, len(s))
		for i, c := range s {
			pids[i] = c.Process.Pid
		}
		fmt.Fprintf(b.log, "load: %d CPU-spinning processes beside the benchmarks, pids %v\n", n, pids)
	}
	return s, nil
}

// stop kills the spinning processes by pid and reaps them.
func (s spinners) stop() {
	for _, c := range s {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	for _, c := range s {
		c.Wait()
	}
}
