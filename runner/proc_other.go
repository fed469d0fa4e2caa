//go:build !linux

package runner

import "syscall"

// setSubreaper is Linux only; elsewhere orphans go to init as usual.
func setSubreaper() error { return nil }

// procAttr gives a child its own session and the pty as controlling terminal.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Setctty: true}
}

func hasProc() bool { return false }

func isSubreaper() bool { return false }

func reapOrphans(done <-chan struct{}, known func(pid int) bool) { <-done }

func reapZombies(self int, known func(pid int) bool) {}
