package runner

import (
	"os"

	"golang.org/x/sys/unix"
)

// unread reports whether the pty holds bytes its reader has not read yet
// (TIOCINQ): the output's late look before it writes a partial line on its
// own. It never blocks; a closed pty holds nothing.
func unread(pty *os.File) bool {
	rc, err := pty.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }) != nil {
		return false
	}
	return n > 0
}
