package socket

import "time"

// Peer is the process at the other end of a connection: for a client, the
// runner that listens. `mhrun quit` waits for it to exit. A nil *Peer (the
// system does not say who the peer is) has PID 0 and never reports an exit.
type Peer struct {
	PID int
	fd  int // a pidfd (Linux), so that a reused pid is never taken for it; -1 if none
}

// Peer returns the process at the other end of c, as the kernel recorded
// it when the connection was made, or nil where it cannot say (not a unix
// socket, a system without SO_PEERCRED, a peer in another pid namespace).
// Take it while the peer surely lives, before asking it to exit.
func (c *Conn) Peer() *Peer {
	return peerOf(c.rw)
}

// Exited waits up to d for the peer to exit, and reports whether it has.
// A zombie (exited, not yet reaped by its parent) has exited.
func (p *Peer) Exited(d time.Duration) bool {
	if p == nil {
		return false
	}
	return p.wait(d)
}

// Close releases what Peer holds.
func (p *Peer) Close() {
	if p != nil {
		p.close()
	}
}
