//go:build !linux

package runner

import "os"

// unread is the late look's question, answered only on Linux (TIOCINQ):
// elsewhere a partial line waits its Pause or Hold alone.
func unread(pty *os.File) bool { return false }
