//go:build !linux && !darwin && !freebsd

package socket

import (
	"fmt"
	"net"
	"runtime"
)

// sunPathMax is the smallest sun_path among the systems Go supports, less
// the terminating NUL.
const sunPathMax = 103

// peerUID fails closed where mhrun does not know how to read the peer's
// credentials: every connection is refused with this error.
func peerUID(*net.UnixConn) (int, error) {
	return -1, fmt.Errorf("cannot check the peer's uid on %s", runtime.GOOS)
}
