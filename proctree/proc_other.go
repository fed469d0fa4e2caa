//go:build !linux

package proctree

import "syscall"

// SetSubreaper is Linux only; elsewhere orphans go to init as usual.
func SetSubreaper() error { return nil }

// SysProcAttr gives a child its own session and the pty as controlling terminal.
func SysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Setctty: true}
}

// HasProc is false: there is no /proc here.
func HasProc() bool { return false }

// IsSubreaper is false: SetSubreaper does nothing here.
func IsSubreaper() bool { return false }

// ReapOrphans only waits for done: orphans are init's here.
func ReapOrphans(done <-chan struct{}, reap func()) { <-done }

// ReapZombies does nothing: orphans are init's here.
func ReapZombies(self int, known func(pid int) bool) {}
