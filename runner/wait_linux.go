package runner

import (
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// waitExit waits for cmd's process to exit, then reaps it with cmd.Wait.
// The wait parks in Go's poller on a pidfd (pidfd_open, Linux 5.3; a
// pidfd is readable once its process has exited), so that a runner of 300
// idle instances does not hold 300 threads in wait4. Where it cannot
// (pidfd_open missing, ENOSYS, or without PIDFD_NONBLOCK before Linux
// 5.10, EINVAL; a seccomp filter) it falls back to cmd.Wait alone, which
// holds a thread until the exit.
func waitExit(cmd *exec.Cmd) {
	if fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK); err == nil {
		// non-blocking: os.NewFile gives it to the poller
		f := os.NewFile(uintptr(fd), "pidfd")
		if rc, err := f.SyscallConn(); err == nil {
			rc.Read(func(fd uintptr) bool { return exited(int(fd)) })
		}
		f.Close()
	}
	cmd.Wait()
}

// exited reports whether the pidfd is readable: its process has exited. An
// error says true, and cmd.Wait then waits as it always did.
func exited(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(p, 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0
	}
}

// pollable returns the pty master f as a file of Go's poller, so that a
// reader waiting for output parks its goroutine instead of holding a
// thread in read(2). creack/pty hands its master back in blocking mode
// (its ioctls go through File.Fd, which sets blocking mode): pollable
// duplicates the descriptor, makes the duplicate non-blocking (os.NewFile
// then registers it with the poller) and closes f. If any step fails it
// returns f as it was: a blocking reader works, it only holds a thread.
func pollable(f *os.File) *os.File {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return f
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return f
	}
	nf := os.NewFile(uintptr(fd), f.Name())
	f.Close()
	return nf
}
