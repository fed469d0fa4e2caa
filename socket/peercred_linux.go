//go:build linux

package socket

import "golang.org/x/sys/unix"

// sunPathMax is the longest socket path bind accepts (sizeof sun_path, less
// the terminating NUL).
const sunPathMax = 107

// fdUID reads SO_PEERCRED: the credentials the peer had when it connected.
func fdUID(fd int) (int, error) {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
