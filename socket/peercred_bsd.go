//go:build darwin || freebsd

package socket

import "golang.org/x/sys/unix"

// sunPathMax is the longest socket path bind accepts (sizeof sun_path, less
// the terminating NUL).
const sunPathMax = 103

// fdUID reads LOCAL_PEERCRED (what getpeereid reads): the peer's effective
// uid when it connected.
func fdUID(fd int) (int, error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
