//go:build linux || darwin || freebsd

package socket

import "net"

// peerUID is the uid of the process at the other end of c, as the kernel
// recorded it when the peer connected (fdUID reads it per system).
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid := -1
	var serr error
	if err := raw.Control(func(fd uintptr) { uid, serr = fdUID(int(fd)) }); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, serr
	}
	return uid, nil
}
