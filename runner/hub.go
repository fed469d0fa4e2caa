package runner

import (
	"os"
	"sync"
)

// hubRing is how much raw output of an instance is kept for clients that
// attach later (connect shows it first).
const hubRing = 64 << 10

// hubQueue bounds what one attached client may have waiting: a client that
// does not keep up loses output (and is told), and never slows the child.
const hubQueue = 256

// hub is an instance's terminal as clients see it across its runs: the
// recent raw output, the attached clients, and the current run's pty for
// their keys and resizes. The pty reader writes to it, the supervisor sets
// the pty at each start, client connections read and write through it.
type hub struct {
	mu     sync.Mutex
	ring   []byte // the last hubRing bytes, circular: pos is the next write
	pos    int
	full   bool
	pty    *os.File
	subs   map[*hubSub]bool
	closed bool
}

// hubSub is one attached client.
type hubSub struct {
	data    chan []byte
	notice  chan string
	dropped bool
}

func newHub() *hub { return &hub{subs: map[*hubSub]bool{}} }

// Write keeps p in the ring and passes it to every client; a client whose
// queue is full loses it.
func (h *hub) Write(p []byte) {
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
func (h *hub) keep(p []byte) {
	if h.ring == nil {
		h.ring = make([]byte, hubRing)
	}
	if len(p) >= hubRing {
		p = p[len(p)-hubRing:]
	}
	n := copy(h.ring[h.pos:], p)
	if n < len(p) {
		copy(h.ring, p[n:])
		h.full = true
	}
	h.pos = (h.pos + len(p)) % hubRing
	if h.pos == 0 && len(p) > 0 {
		h.full = true
	}
}

// recent is the ring's content, oldest first.
func (h *hub) recent() []byte {
	if !h.full {
		return append([]byte(nil), h.ring[:h.pos]...)
	}
	return append(append([]byte(nil), h.ring[h.pos:]...), h.ring[:h.pos]...)
}

// say queues a notice without blocking.
func (s *hubSub) say(msg string) {
	select {
	case s.notice <- msg:
	default:
	}
}

// attach subscribes a client: the recent output, then live chunks and notices
// until detach or close (the channels are closed then).
func (h *hub) attach() (recent []byte, s *hubSub, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false
	}
	s = &hubSub{data: make(chan []byte, hubQueue), notice: make(chan string, 16)}
	h.subs[s] = true
	return h.recent(), s, true
}

func (h *hub) detach(s *hubSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[s] {
		delete(h.subs, s)
		close(s.data)
		close(s.notice)
	}
}

// setPTY is the current run's pty, or nil between runs; clients are told
// when a new run starts.
func (h *hub) setPTY(f *os.File, notice string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pty = f
	if notice != "" {
		for s := range h.subs {
			s.say(notice)
		}
	}
}

// unsetPTY forgets f if it is the current pty (a replacement may have
// taken its place already).
func (h *hub) unsetPTY(f *os.File) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pty == f {
		h.pty = nil
	}
}

// input sends a client's keys to the current run; false between runs.
func (h *hub) input(p []byte) bool {
	h.mu.Lock()
	f := h.pty
	h.mu.Unlock()
	if f == nil {
		return false
	}
	_, err := f.Write(p)
	return err == nil
}

// resize sets the current run's terminal size (the last client to resize wins).
func (h *hub) resize(cols, rows int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pty != nil && cols > 0 && rows > 0 {
		setSize(h.pty, cols, rows)
	}
}

// close ends every attachment with a last notice.
func (h *hub) close(why string) {
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
