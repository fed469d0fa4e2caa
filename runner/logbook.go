package runner

import (
	"slices"
	"sync"
	"time"
)

// The logbook keeps the formation's recent output in memory for
// `mhrun logs`: the last logLines lines (at most logBytes of text), and
// the clients that follow it.
const (
	logLines = 10000
	logBytes = 8 << 20
	logQueue = 4096 // lines a follower may have waiting before it loses some
)

// LogLine is one line of the merged output, as plain text.
type LogLine struct {
	Time   time.Time
	Name   string // web.2, or mhrun for the runner's own events
	Stderr bool   // written to the instance's stderr (output=pipes)
	Text   []byte // shares a block of the logbook: read-only
}

// logBlock is how the logbook stores text: lines are copied into shared
// blocks, so that keeping a line costs no allocation of its own on the
// output's hot path; a block is freed once no kept line points into it.
const logBlock = 64 << 10

type logbook struct {
	mu    sync.Mutex
	lines []LogLine // a ring: start is the oldest
	start int
	bytes int
	block []byte // the current block, filled up to len
	subs  map[*logSub]bool
}

// logSub is a follower: lines, and a count of those it lost.
type logSub struct {
	c       chan LogLine
	dropped int
}

func newLogbook() *logbook { return &logbook{subs: map[*logSub]bool{}} }

// add is the Output's tap: it runs on the writer goroutine.
func (b *logbook) add(name string, stderr bool, now time.Time, line []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cap(b.block)-len(b.block) < len(line) {
		b.block = make([]byte, 0, max(logBlock, len(line)))
	}
	start := len(b.block)
	b.block = append(b.block, line...)
	l := LogLine{Time: now, Name: name, Stderr: stderr, Text: b.block[start:len(b.block):len(b.block)]}
	if len(b.lines) < logLines {
		b.lines = append(b.lines, l)
	} else {
		b.bytes -= len(b.lines[b.start].Text)
		b.lines[b.start] = l
		b.start = (b.start + 1) % logLines
	}
	b.bytes += len(l.Text)
	for b.bytes > logBytes && b.len() > 1 {
		b.bytes -= len(b.lines[b.start].Text)
		b.lines[b.start].Text = nil
		b.dropOldest()
	}
	for s := range b.subs {
		select {
		case s.c <- l:
		default:
			s.dropped++
		}
	}
}

func (b *logbook) len() int { return len(b.lines) }

// dropOldest forgets the oldest line by rotating the ring into a slice.
func (b *logbook) dropOldest() {
	b.lines = append(b.lines[b.start+1:], b.lines[:b.start]...)
	b.start = 0
}

// held is what recent found in the logbook.
type held struct {
	lines []LogLine // the last n lines shown, oldest first
	// What the logbook holds, whatever the names: the log files have the
	// lines before oldest (at a millisecond's precision, so sameMilli says
	// how many held lines share oldest's millisecond).
	count     int
	oldest    time.Time
	sameMilli int
}

// recent returns the last n lines that show accepts, oldest first; with
// follow, it also subscribes to the lines after them.
func (b *logbook) recent(n int, show func(name string, text []byte) bool, follow bool) (held, *logSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var h held
	at := func(i int) LogLine { return b.lines[(b.start+i)%len(b.lines)] }
	for i := len(b.lines) - 1; i >= 0 && len(h.lines) < n; i-- {
		if l := at(i); show(l.Name, l.Text) {
			h.lines = append(h.lines, l)
		}
	}
	slices.Reverse(h.lines)
	if h.count = len(b.lines); h.count > 0 {
		h.oldest = at(0).Time.Truncate(time.Millisecond)
		for h.sameMilli < h.count && at(h.sameMilli).Time.Truncate(time.Millisecond).Equal(h.oldest) {
			h.sameMilli++
		}
	}
	if !follow {
		return h, nil
	}
	s := &logSub{c: make(chan LogLine, logQueue)}
	b.subs[s] = true
	return h, s
}

// unfollow ends a follower; its channel is closed.
func (b *logbook) unfollow(s *logSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[s] {
		delete(b.subs, s)
		close(s.c)
	}
}

// takeDropped reports and resets how many lines a follower lost.
func (b *logbook) takeDropped(s *logSub) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := s.dropped
	s.dropped = 0
	return n
}

// close ends every follower.
func (b *logbook) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		delete(b.subs, s)
		close(s.c)
	}
}
