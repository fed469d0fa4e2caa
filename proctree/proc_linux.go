//go:build linux

package proctree

import (
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetSubreaper makes mhrun the reaper of every orphan in its tree, so a
// daemon that double-forks out of an instance stays where stop can find it.
func SetSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// IsSubreaper reports whether mhrun is the reaper of the orphans in its
// tree (SetSubreaper succeeded).
func IsSubreaper() bool {
	var v int32
	err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0)
	return err == nil && v != 0
}

// SysProcAttr gives a child its own session, the pty as controlling terminal,
// and SIGKILL when mhrun dies, even by SIGKILL.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Setctty: true, Pdeathsig: syscall.SIGKILL}
}

// HasProc reports whether /proc is there to read process trees from.
func HasProc() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// ReapOrphans calls reap whenever SIGCHLD arrives, until done closes:
// reap waits for the adopted orphans that died (they are not ours to Wait
// for through exec.Cmd), see ReapZombies.
func ReapOrphans(done <-chan struct{}, reap func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	for {
		select {
		case <-done:
			return
		case <-ch:
		}
		reap()
	}
}

// ReapZombies waits for every child of self that died and is not in
// known: adopted orphans, which only mhrun can reap while it lives. Left
// to init once mhrun exits, they would stay zombies where init reaps
// nothing (a container's init may not).
func ReapZombies(self int, known func(pid int) bool) {
	for _, pid := range childrenOf(self) {
		if known(pid) || !isZombie(pid) {
			continue
		}
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// isZombie reads the state field of /proc/PID/stat.
func isZombie(pid int) bool {
	st, ok := State(pid)
	return ok && st == 'Z'
}
