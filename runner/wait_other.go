//go:build !linux

package runner

import (
	"os"
	"os/exec"
)

// waitExit waits for cmd's process with cmd.Wait: without pidfds the wait
// holds a thread until the exit.
func waitExit(cmd *exec.Cmd) { cmd.Wait() }

// pollable returns f: the pty master is read in blocking mode here.
func pollable(f *os.File) *os.File { return f }
