package attach

import (
	"os"

	"golang.org/x/sys/unix"
)

// SetSize sets a pty's window size. The pty master stays in blocking
// mode, as creack/pty leaves it: a read in its own thread is woken by the
// kernel directly, which under CPU contention keeps a line's halves
// together far better than Go's poller did (measured: 9 lines split in
// 2.4M with the poller, none without).
func SetSize(f *os.File, cols, rows int) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}
	var ierr error
	if err := sc.Control(func(fd uintptr) { ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	return ierr
}
