// Package attach is an instance's terminal as `mhrun connect` clients see
// it: the recent raw output, the attached clients, and the current run's pty
// for their keys and resizes.
package attach

import (
	"os"
	"sync"
)

// ringSize is how much raw output of an instance is kept for clients that
// attach later (connect shows it first).
const ringSize = 64 << 10

// clientQueue bounds what one attached client may have waiting: a client that
// does not keep up loses output (and is told), and never slows the child.
const clientQueue = 256

// Hub is an instance's terminal as clients see it across its runs: the
// recent raw output, the attached clients, and the current run's pty for
// their keys and resizes. The pty reader writes to it, the supervisor sets
// the pty at each start, client connections read and write through it. It
// is safe for concurrent use.
type Hub struct {
	mu     sync.Mutex
	ring   []byte // the last ringSize bytes, circular: pos is the next write
	pos    int
	full   bool
	pty    *os.File
	subs   map[*Client]bool
	closed bool
}

// Client is one attached client: what it is sent until Detach or Close.
type Client struct {
	data    chan []byte
	notice  chan string
	dropped bool
}

// New returns a Hub with no output and no client.
func New() *Hub { return &Hub{subs: map[*Client]bool{}} }

// Data delivers the instance's raw output as it arrives; it is closed when
// the client is detached or the hub closed.
func (s *Client) Data() <-chan []byte { return s.data }

// Notices delivers what the client is told besides the output: a new run,
// output it lost, and last why it was let go. It is closed with Data.
func (s *Client) Notices() <-chan string { return s.notice }

// Write keeps p in the ring and passes it to every client; a client whose
// queue is full loses it.
func (h *Hub) Write(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keep(p)
	if len(h.subs) == 0 {
		return
	}
	c := append([]byte(nil), p...)
	for s := range h.subs {
		select {
		case s.data <- c:
		default:
			if !s.dropped {
				s.dropped = true
				s.say("output dropped: this client did not keep up")
			}
		}
	}
}

// keep writes p into the circular ring.
//
// The ring grows by need: until ringSize bytes came it is a plain slice,
// as long as what came, so a quiet instance keeps a few bytes, not 64 KiB.
func (h *Hub) keep(p []byte) {
	if len(p) >= ringSize {
		p = p[len(p)-ringSize:]
	}
	if !h.full && h.pos+len(p) < ringSize { // still growing: ring is ring[:pos]
		h.ring = append(h.ring, p...)
		h.pos = len(h.ring)
		return
	}
	if len(h.ring) < ringSize { // the first wrap: the ring takes its full size
		h.ring = append(h.ring, make([]byte, ringSize-len(h.ring))...)
	}
	n := copy(h.ring[h.pos:], p)
	if n < len(p) {
		copy(h.ring, p[n:])
		h.full = true
	}
	h.pos = (h.pos + len(p)) % ringSize
	if h.pos == 0 && len(p) > 0 {
		h.full = true
	}
}

// recent is the ring's content, oldest first.
func (h *Hub) recent() []byte {
	if !h.full {
		return append([]byte(nil), h.ring[:h.pos]...)
	}
	return append(append([]byte(nil), h.ring[h.pos:]...), h.ring[:h.pos]...)
}

// say queues a notice without blocking.
func (s *Client) say(msg string) {
	select {
	case s.notice <- msg:
	default:
	}
}

// Attach subscribes a client: the recent output, then live chunks and
// notices until Detach or Close (the channels are closed then); ok is false
// once the hub is closed.
func (h *Hub) Attach() (recent []byte, s *Client, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false
	}
	s = &Client{data: make(chan []byte, clientQueue), notice: make(chan string, 16)}
	h.subs[s] = true
	return h.recent(), s, true
}

// Detach unsubscribes a client and closes its channels, unless Close did.
func (h *Hub) Detach(s *Client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[s] {
		delete(h.subs, s)
		close(s.data)
		close(s.notice)
	}
}

// SetPTY sets the current run's pty, or nil between runs; clients are told
// notice when a new run starts.
func (h *Hub) SetPTY(f *os.File, notice string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pty = f
	if notice != "" {
		for s := range h.subs {
			s.say(notice)
		}
	}
}

// UnsetPTY forgets f if it is the current pty (a replacement may have
// taken its place already).
func (h *Hub) UnsetPTY(f *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pty == f {
		h.pty = nil
	}
}

// Input sends a client's keys to the current run; false between runs.
func (h *Hub) Input(p []byte) bool {
	h.mu.Lock()
	f := h.pty
	h.mu.Unlock()
	if f == nil {
		return false
	}
	_, err := f.Write(p)
	return err == nil
}

// Resize sets the current run's terminal size (the last client to resize wins).
func (h *Hub) Resize(cols, rows int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pty != nil && cols > 0 && rows > 0 {
		SetSize(h.pty, cols, rows)
	}
}

// Close ends every attachment with a last notice, why; Attach fails from
// then on.
func (h *Hub) Close(why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.pty = nil
	for s := range h.subs {
		s.say(why)
		delete(h.subs, s)
		close(s.data)
		close(s.notice)
	}
}
