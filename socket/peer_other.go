//go:build !linux

package socket

import "time"

// peerOf knows no peer pid here: `mhrun quit` then waits for the runner's
// connection to end only.
func peerOf(any) *Peer { return nil }

func (p *Peer) wait(time.Duration) bool { return false }

func (p *Peer) close() {}
