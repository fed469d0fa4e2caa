// Package output merges the output of a formation's instances into whole,
// prefixed lines on one writer, with the children's escape sequences filtered.
package output

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The merged output of a formation follows these rules:
//
//   - Every line is written as [TIME ]NAME | TEXT\n: TIME is "15:04:05 " (local
//     time when the line is written) with Timestamps, NAME is padded to
//     NameWidth, and with Color the name and bar are wrapped in one colour per
//     palette index, the runner's own events ("mhrun") in bold. A line of a
//     stream's Stderr twin has "!" for "|": [TIME ]NAME ! TEXT\n.
//   - Exactly one goroutine, the writer, writes to the destination, and only
//     whole lines, so lines of different instances never mix.
//   - Each line of a child is filtered (ansi.go): printable text only, a "\r"
//     keeps what follows it (the pty's "\r\n" leaves no "\r"), escape
//     sequences removed except, with Color, colours and text attributes (SGR).
//   - A partial line is held until its end arrives, and written as a line of
//     its own only when the child has stopped writing in the middle of it: a
//     child's one write(2) can reach the pty's reader in two pieces, the second
//     late when the machine is busy, and that must not split the line. So the
//     wait depends on what the line looks like: one that looks like a prompt
//     (its text, escape sequences removed, ends in ": ", "? ", "> ", "$ ",
//     "# ", "% ", "] ", ") " or the like, see looksLikePrompt) waits Pause, as
//     a program waiting for input shows its question at once; any other waits
//     Hold (5 s), since a line cut by a slow machine goes on within a time
//     slice or two, not seconds. On a cooperative stream (its reader calls
//     Stream.Reading before each blocking read) the wait counts from the later
//     of the line's last growth and the reader's going back to read, and not
//     at all while the reader has not gone back: a reader that is merely not
//     scheduled, with the rest of the line waiting in the kernel, never splits
//     it. On any other stream it counts from the line's last growth. When the
//     wait is over, a stream with a look-ahead (Stream.LookAhead: the pty
//     reader asks the kernel for bytes not yet read) that reports more input
//     waiting holds the line for another Pause, and again, up to Hold past
//     its due time. Flush writes it at once. A timer runs only while some
//     stream holds a partial line that is due.
//   - A partial line written on its own (by the timer, by Flush, or because it
//     is too long) stays open: the line end that arrives next, alone ("\n",
//     "\r\n", "\r" then "\n"), ends it silently instead of making an empty
//     line, so a prompt answered with echo off ("Password: ", then "\r\n") or
//     a line whose "\r\n" came late prints no empty line. Anything else that
//     follows starts a line of its own.
//   - Each stream queues at most BufferSize bytes of complete lines (one longer
//     line is still kept whole). When the queue is full, Stream.Write waits for
//     the writer to take it, as long as the writer makes progress. Once the
//     writer has been inside one write to the destination for Stall (a paused
//     terminal), or the output is closed, lines are dropped and counted instead
//     until the writer takes the queue, and a line
//     "[mhrun: N lines dropped, output too slow]" then takes their place. So a
//     child behind a stuck destination is held at most about Stall, and a slow
//     but working destination loses nothing. Events never wait: they are
//     bounded the same way on their own stream and dropped when it is full.
//   - A partial line longer than maxPartial (at least 16 MiB) is written in
//     pieces; shorter lines are never cut.
//   - Order: an instance's lines keep their order; everything written or
//     flushed before an Event is output before it, everything after it after.
//
// Throughput: Write appends whole lines to the stream's queue under a short
// lock and wakes the writer with a non-blocking send; the writer swaps whole
// queues out (two buffers per stream) and formats them into one large buffer
// written in big writes. A Write waiting for room waits on a channel the
// writer closes each time it takes the queues, and on a timer to the stall
// deadline; neither costs anything while nobody waits.

const (
	defaultBufferSize = 1 << 20
	defaultPause      = 100 * time.Millisecond
	defaultHold       = 5 * time.Second
	defaultStall      = 200 * time.Millisecond
	minMaxPartial     = 16 << 20
	writeChunk        = 128 << 10 // the writer writes once its buffer holds this much
	// quietKeep is the most a stream's queue and spare buffer keep once
	// the stream has been quiet for quietAfter (no line from it).
	quietKeep  = 16 << 10
	quietAfter = time.Second
)

// EventName is the name the runner's own events (Output.Event) are written
// under, as a process's lines are under its instance's name.
const EventName = "mhrun"

// palette holds the colours of the process prefixes (SGR parameters), in the
// order foreman uses them: cyan, yellow, green, magenta, red, blue, then
// bright cyan and bright yellow.
var palette = []string{"36", "33", "32", "35", "31", "34", "96", "93"}

const eventStyle = "1" // bold

// Options configure the merged output.
type Options struct {
	Color      bool          // colour prefixes and keep the children's SGR sequences; when false, prefixes are plain and every escape sequence is stripped
	Timestamps bool          // prefix "15:04:05 " (local time) before the name
	NameWidth  int           // width the names are padded to (the longest instance name, at least len("mhrun"))
	BufferSize int           // max bytes queued per stream before lines are dropped; 0 = default 1 MiB
	Pause      time.Duration // how long a partial line that looks like a prompt is held; 0 = default 100ms
	Hold       time.Duration // how long any other partial line is held; 0 = default 5s
	// Tap, if set, sees every line the writer emits: the stream's name,
	// whether it is a Stderr stream's, and the line without prefix,
	// filtered as plain text in both modes (no control characters, no
	// escape sequences). It runs on the writer goroutine and must not
	// block; line is only valid during the call.
	Tap   func(name string, stderr bool, line []byte)
	Stall time.Duration // time inside one write to the destination after which full queues drop lines instead of waiting; 0 = default 200ms
}

// Output merges the output of many streams into whole, prefixed lines on one
// writer. It is safe for concurrent use.
type Output struct {
	w          io.Writer
	opts       Options
	max        int // BufferSize
	maxPartial int
	pause      int64 // Pause in nanoseconds
	hold       int64 // Hold in nanoseconds
	stall      int64 // Stall in nanoseconds
	epoch      time.Time

	wake   chan struct{} // 1-buffered: work is waiting for the writer
	quit   chan struct{} // closed by Close
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	mu      sync.Mutex // held around stream lists and segments; before any Stream.mu
	streams []*Stream  // listed streams, the event stream first
	segs    []segment  // queues taken out of order by Event, then the events themselves

	events *Stream

	writing atomic.Int64 // clock when the writer entered w.Write; 0 outside it

	pmu      sync.Mutex    // guards progress; taken after any Stream.mu
	progress chan struct{} // closed when the writer takes the queues; nil while nobody waits

	// Owned by the writer goroutine.
	buf    []byte
	tapBuf []byte
	batch  []segment
	tsSec  int64
	ts     []byte
	err    error // first write error; read by Close after the writer exits
}

// segment is a run of complete lines of one stream.
type segment struct {
	s    *Stream
	data []byte
	cut  bool // its last line is a partial line written on its own (Pause or Hold): the child goes on with it
}

// Stream is the writer of one instance's output into an Output. Its methods
// are safe for concurrent use, and the runner needs that: one Stream serves
// every run of an instance, so a reload's old run and its replacement write
// to it at once, and the reader of an abandoned run (its pty held open by a
// process that escaped) may go on writing after the next run started.
// Concurrent writers lose nothing and no line is cut, but their partial
// lines are not kept apart (a partial line is ended by the next newline
// written, whoever writes it), and the rule of Reading holds for the
// stream, not for each reader.
type Stream struct {
	o      *Output
	prefix []byte // padded name, bar and colour; immutable
	name   string
	sgr    string // its colour, for its Stderr twin
	stderr bool   // a Stderr twin: its lines are marked "!"

	errOnce sync.Once
	errs    *Stream // the Stderr twin, once asked for

	mu        sync.Mutex
	queue     []byte // complete lines waiting for the writer
	partial   []byte // the line begun and not yet ended
	partialAt int64  // clock when partial last grew
	used      int    // bytes counted against BufferSize: queue plus segments
	big       bool   // a line longer than BufferSize is queued
	dropped   int    // lines dropped since the writer last took the queue
	eof       bool   // Flush was called and no Write since
	listed    bool   // in o.streams; changed with o.mu and mu held
	open      bool   // a partial line was written on its own and its line end has not come
	promptAt  int64  // partialAt when prompt was worked out; 0 = not yet
	prompt    bool   // the partial line looks like a prompt (looksLikePrompt)

	// Set by Reading without a lock.
	coop     atomic.Bool                 // Reading was ever called
	readAt   atomic.Int64                // clock of the last Reading call
	waitRead atomic.Bool                 // partial grew and Reading was not called since; set with mu held
	look     atomic.Pointer[func() bool] // LookAhead's function, or nil

	spare   []byte   // owned by the writer: the queue buffer to swap in next
	lastOut int64    // owned by the writer: when a cycle last took lines from it (o.clock)
	esc     escState // owned by the writer: a sequence a cut line left open (ansi.go)
}

// New starts the writer goroutine of a merged output to w. Close stops it.
func New(w io.Writer, opts Options) *Output {
	o := &Output{
		w:     w,
		opts:  opts,
		max:   opts.BufferSize,
		pause: int64(opts.Pause),
		hold:  int64(opts.Hold),
		stall: int64(opts.Stall),
		epoch: time.Now(),
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		tsSec: -1,
	}
	if o.max <= 0 {
		o.max = defaultBufferSize
	}
	if o.pause <= 0 {
		o.pause = int64(defaultPause)
	}
	if o.stall <= 0 {
		o.stall = int64(defaultStall)
	}
	if o.hold <= 0 {
		o.hold = int64(defaultHold)
	}
	o.maxPartial = max(minMaxPartial, o.max)
	o.events = o.newStream(EventName, eventStyle, false)
	o.events.listed = true
	o.streams = append(o.streams, o.events)
	o.wg.Add(1)
	go o.run()
	return o
}

// Stream returns the writer for one instance; color is a palette index (the
// process's index in the Procfile), the same for all instances of a process.
// Call Flush when a pty written to it reaches end of file: an idle stream
// after Flush costs the writer nothing, and a later Write lists it again.
func (o *Output) Stream(name string, color int) *Stream {
	n := len(palette)
	return o.list(o.newStream(name, palette[(color%n+n)%n], false))
}

func (o *Output) list(s *Stream) *Stream {
	o.mu.Lock()
	s.listed = true
	o.streams = append(o.streams, s)
	o.mu.Unlock()
	return s
}

// Stderr returns the stream's twin for a child's stderr, kept apart from
// its stdout (output=pipes): the same name and colour, its lines marked
// "!" instead of "|" (web.1 ! text), in the merged output as for Tap. It
// is one stream of its own, with its own partial line, Reading and Flush.
// Every call returns the same twin.
func (s *Stream) Stderr() *Stream {
	s.errOnce.Do(func() { s.errs = s.o.list(s.o.newStream(s.name, s.sgr, true)) })
	return s.errs
}

func (o *Output) newStream(name, sgr string, stderr bool) *Stream {
	p := make([]byte, 0, len(name)+o.opts.NameWidth+16)
	if o.opts.Color {
		p = append(p, "\x1b["...)
		p = append(p, sgr...)
		p = append(p, 'm')
	}
	p = append(p, name...)
	for i := len(name); i < o.opts.NameWidth; i++ {
		p = append(p, ' ')
	}
	if stderr {
		p = append(p, " !"...)
	} else {
		p = append(p, " |"...)
	}
	if o.opts.Color {
		p = append(p, "\x1b[0m"...)
	}
	p = append(p, ' ')
	return &Stream{o: o, prefix: p, name: name, sgr: sgr, stderr: stderr}
}

// clock returns the monotonic time since the output started in nanoseconds,
// plus one so that it is never zero.
func (o *Output) clock() int64 {
	return int64(time.Since(o.epoch)) + 1
}

// Write queues the complete lines of p and holds a trailing partial line.
// When the stream's queue is full it waits for the output's writer, unless the
// writer is stuck in one write to the destination for Stall: then whole lines
// are dropped and counted. It always returns len(p), nil.
func (s *Stream) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 || s.o.closed.Load() {
		return n, nil
	}
	s.mu.Lock()
	if s.eof {
		s.mu.Unlock()
		s.o.relist(s)
		s.mu.Lock()
	}
	if s.open {
		// A partial line was written on its own: its line end, when it
		// comes next, ends it silently.
		j := 0
		for j < len(p) && p[j] == '\r' {
			j++
		}
		switch {
		case j == len(p): // "\r" alone: the "\n" may follow
			s.mu.Unlock()
			return n, nil
		case p[j] == '\n':
			p = p[j+1:]
			s.open = false
			if len(p) == 0 {
				s.mu.Unlock()
				return n, nil
			}
		default:
			s.open = false
		}
	}
	wake := true
	i := bytes.LastIndexByte(p, '\n')
	if i < 0 {
		// The writer arms its timer for a new partial line; on a cooperative
		// stream it is armed once the reader calls Reading.
		wake = len(s.partial) == 0 && !s.coop.Load()
		s.partial = append(s.partial, p...)
		s.grew()
		if len(s.partial) >= s.o.maxPartial {
			s.flushPartial()
			wake = true
		}
	} else {
		lines, rest := p[:i+1], p[i+1:]
		if len(s.partial) > 0 {
			// Take the line out of s.partial first: enqueue may wait, and
			// the writer must not see a half-built partial meanwhile.
			j := bytes.IndexByte(lines, '\n') + 1
			line := append(s.partial, lines[:j]...)
			s.partial = nil
			s.enqueue(line)
			s.keepBuffer(line)
			lines = lines[j:]
		}
		if len(lines) > 0 {
			s.enqueue(lines)
		}
		if len(rest) > 0 {
			s.partial = append(s.partial, rest...)
			s.grew()
		}
	}
	s.mu.Unlock()
	if wake {
		s.o.signal()
	}
	return n, nil
}

// grew records that the partial line grew. s.mu is held.
func (s *Stream) grew() {
	s.partialAt = s.o.clock()
	s.waitRead.Store(true)
}

// Reading tells the output that the stream's reader is about to wait for
// more input; call it right before each blocking read of the pty. From the
// first call on, a partial line is written on its own only once the reader
// came back to read after the line last grew, and Pause or Hold has passed
// since (see the rules at the top of this file). Reading is cheap: it wakes
// the writer only when a partial line is waiting for it.
func (s *Stream) Reading() {
	if !s.coop.Load() {
		s.coop.Store(true)
	}
	s.readAt.Store(s.o.clock())
	if s.waitRead.Load() && s.waitRead.Swap(false) {
		s.o.signal() // the writer arms its timer for the partial line
	}
}

// LookAhead gives the stream a function that reports whether more input is
// already waiting to be read (the pty reader asks the kernel how many bytes
// its next read would get). Before a partial line is written on its own,
// the writer calls it, and holds the line a little longer while it reports
// true. f runs on the writer goroutine with the stream locked: it must be
// quick and must not block. The returned function takes f back, unless
// another reader has given its own since.
func (s *Stream) LookAhead(f func() bool) (undo func()) {
	p := &f
	s.look.Store(p)
	return func() { s.look.CompareAndSwap(p, nil) }
}

// Flush queues the held partial line at once, so that it is output before
// anything queued later (an Event in particular) and before Close returns.
// Call it when the instance's pty reached end of file.
func (s *Stream) Flush() {
	s.mu.Lock()
	had := len(s.partial) > 0
	if had {
		s.flushPartial()
	}
	// Only now: while flushPartial waits for room, the writer must not
	// take the stream for idle and unlist it.
	s.eof = true
	// No late line end comes after the end of file: the next run's first
	// line end (the stream outlives the run) is its own.
	s.open = false
	s.mu.Unlock()
	if had {
		s.o.signal()
	}
}

// flushPartial queues the partial line as a line. s.mu is held.
func (s *Stream) flushPartial() {
	s.open = true
	line := append(s.partial, '\n')
	s.partial = nil // enqueue may wait: the writer must not see the line twice
	s.enqueue(line)
	s.keepBuffer(line)
}

// keepBuffer makes line's buffer, queued by enqueue, the next partial
// line's, unless another writer of the stream began a partial line while
// enqueue waited with s.mu released: that one is kept. s.mu is held.
func (s *Stream) keepBuffer(line []byte) {
	if s.partial == nil {
		s.partial = reuse(line)
	}
}

// reuse returns b emptied, or nil for a long line's buffer, not to keep it.
func reuse(b []byte) []byte {
	if cap(b) > 64<<10 {
		return nil
	}
	return b[:0]
}

// enqueue appends complete lines to the queue. When they do not fit it waits
// for the writer to take the queue, or drops and counts them if the writer is
// stalled. Once a line is dropped, every line is until the writer takes the
// queue, so the marker stands where the lines were. s.mu is held; lines must
// not be s.partial, as s.mu is released while waiting.
func (s *Stream) enqueue(lines []byte) {
	for s.dropped == 0 && len(lines) > 0 {
		room := s.o.max - s.used
		if len(lines) <= room {
			s.queue = append(s.queue, lines...)
			s.used += len(lines)
			return
		}
		if room > 0 {
			if n := bytes.LastIndexByte(lines[:room], '\n') + 1; n > 0 {
				s.queue = append(s.queue, lines[:n]...)
				s.used += n
				lines = lines[n:]
				continue
			}
		}
		// The next line does not fit. One line longer than the whole buffer
		// is kept anyway, not counted, so that long lines are never lost
		// while the writer keeps up.
		n := bytes.IndexByte(lines, '\n') + 1
		if n > s.o.max && !s.big {
			s.queue = append(s.queue, lines[:n]...)
			s.big = true
			lines = lines[n:]
			continue
		}
		if !s.waitRoom() {
			break
		}
	}
	s.dropped += bytes.Count(lines, []byte{'\n'})
}

// waitRoom waits, with s.mu released, until the writer takes the queues or
// the stall deadline passes, and reports true: the caller looks for room
// again. It reports false at once, lines must be dropped, when the writer has
// been inside one write to the destination for Stall or the output is closed.
// It wakes by the stall deadline of a write the writer is in, or within
// Stall, to see a write begun meanwhile. s.mu is held.
func (s *Stream) waitRoom() bool {
	o := s.o
	if o.closed.Load() {
		return false
	}
	now := o.clock()
	deadline := now + o.stall
	if start := o.writing.Load(); start != 0 {
		if now-start >= o.stall {
			return false
		}
		deadline = start + o.stall
	}
	// Taken with s.mu held: the writer cannot take this queue, and so
	// close the channel, before the channel is ours.
	o.pmu.Lock()
	if o.progress == nil {
		o.progress = make(chan struct{})
	}
	progress := o.progress
	o.pmu.Unlock()
	s.mu.Unlock()
	o.signal() // what is queued has not been signalled yet
	t := time.NewTimer(time.Duration(deadline - now))
	select {
	case <-progress:
	case <-t.C:
	case <-o.quit:
	}
	t.Stop()
	s.mu.Lock()
	return true
}

// progressed wakes every Write waiting for room. The writer calls it after
// taking the queues.
func (o *Output) progressed() {
	o.pmu.Lock()
	if o.progress != nil {
		close(o.progress)
		o.progress = nil
	}
	o.pmu.Unlock()
}

// relist puts a stream idle since Flush back in the writer's list.
func (o *Output) relist(s *Stream) {
	o.mu.Lock()
	s.mu.Lock()
	s.eof = false
	if !s.listed {
		s.listed = true
		o.streams = append(o.streams, s)
	}
	s.mu.Unlock()
	o.mu.Unlock()
}

func (o *Output) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Event writes one line of mhrun's own under the name "mhrun", after
// everything the streams have queued so far. It never waits for the writer.
func (o *Output) Event(format string, args ...any) {
	if o.closed.Load() {
		return
	}
	line := fmt.Appendf(nil, format, args...)
	if len(line) == 0 || line[len(line)-1] != '\n' {
		line = append(line, '\n')
	}
	o.mu.Lock()
	// Take what the streams queued before this event out of order, so that
	// the writer outputs it first.
	for _, s := range o.streams {
		if s == o.events {
			continue
		}
		s.mu.Lock()
		if len(s.queue) > 0 || s.dropped > 0 {
			data := s.queue
			if s.dropped > 0 {
				data = appendDropped(data, s.dropped)
				s.dropped = 0
			}
			s.queue = nil // s.used still counts data until the writer takes it
			o.segs = append(o.segs, segment{s: s, data: data})
		}
		s.mu.Unlock()
	}
	e := o.events
	e.mu.Lock()
	if e.dropped == 0 && (e.used == 0 || e.used+len(line) <= o.max) {
		o.segs = append(o.segs, segment{s: e, data: line})
		e.used += len(line)
	} else {
		e.dropped += bytes.Count(line, []byte{'\n'})
	}
	e.mu.Unlock()
	o.mu.Unlock()
	o.signal()
}

func appendDropped(b []byte, n int) []byte {
	b = append(b, "[mhrun: "...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, " lines dropped, output too slow]\n"...)
}

// Close flushes every stream, partial lines included, waits until everything
// queued is written and stops the writer. It returns the first error of the
// destination. Writes after Close are discarded.
func (o *Output) Close() error {
	o.once.Do(func() {
		o.mu.Lock()
		o.closed.Store(true)
		for _, s := range o.streams {
			s.mu.Lock()
			if len(s.partial) > 0 {
				s.flushPartial()
			}
			s.mu.Unlock()
		}
		o.mu.Unlock()
		close(o.quit)
		o.wg.Wait()
	})
	return o.err
}

// run is the writer goroutine.
func (o *Output) run() {
	defer o.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		quit := false
		select {
		case <-o.wake:
		case <-timer.C:
			armed = false
		case <-o.quit:
			quit = true
		}
		next := o.cycle()
		if quit {
			timer.Stop()
			return
		}
		switch {
		case next != 0:
			timer.Reset(time.Duration(next - o.clock()))
			armed = true
		case armed:
			timer.Stop()
			armed = false
		}
	}
}

// cycle takes every queue, writes it and returns the clock when the earliest
// held partial line is due (zero if none is due).
func (o *Output) cycle() (next int64) {
	wall := time.Now()
	now := int64(wall.Sub(o.epoch)) + 1 // o.clock()
	o.mu.Lock()
	segs := o.segs
	o.segs = nil
	batch := o.batch[:0]
	kept := o.streams[:0]
	for _, s := range o.streams {
		s.mu.Lock()
		cut := false
		out := s.spare[:0]
		s.spare = nil
		if len(s.queue) > 0 {
			out, s.queue = s.queue, out
		}
		s.used, s.big = 0, false // the writer now holds every queued byte
		if s.dropped > 0 {
			out = appendDropped(out, s.dropped)
			s.dropped = 0
		}
		if len(s.partial) > 0 {
			due := s.partialDue(now)
			switch {
			case due == 0:
			case now >= due:
				s.open = true
				out = append(out, s.partial...)
				out = append(out, '\n')
				s.partial = reuse(s.partial)
				cut = true
			default:
				next = sooner(next, due)
			}
		}
		if len(out) > 0 {
			s.lastOut = now
			if cap(out) > quietKeep || cap(s.queue) > quietKeep {
				next = sooner(next, now+int64(quietAfter)) // to give the buffers back if it goes quiet
			}
			batch = append(batch, segment{s, out, cut})
		} else if s.eof && len(s.partial) == 0 && len(s.queue) == 0 {
			s.listed = false // idle since Flush: Write lists it again
			s.queue, s.partial = nil, nil
		} else {
			// Nothing from it this cycle: a stream quiet for quietAfter
			// keeps small buffers only, so that a burst's (up to twice
			// BufferSize, the queue and the spare) go back once it is
			// over. The cycle that wrote its last lines woke the writer
			// for this (below).
			if now-s.lastOut >= int64(quietAfter) {
				if cap(out) > quietKeep {
					out = nil
				}
				if len(s.queue) == 0 && cap(s.queue) > quietKeep {
					s.queue = nil
				}
			} else if cap(out) > quietKeep || cap(s.queue) > quietKeep {
				next = sooner(next, s.lastOut+int64(quietAfter))
			}
			s.spare = out
		}
		if s.listed {
			kept = append(kept, s)
		}
		s.mu.Unlock()
	}
	clear(o.streams[len(kept):])
	o.streams = kept
	o.mu.Unlock()
	o.progressed()

	if o.opts.Timestamps {
		if sec := wall.Unix(); sec != o.tsSec {
			o.tsSec = sec
			o.ts = wall.AppendFormat(o.ts[:0], "15:04:05 ")
		}
	}
	for _, g := range segs {
		o.format(g.s, g.data, false)
	}
	for _, g := range batch {
		o.format(g.s, g.data, g.cut)
		if cap(g.data) <= 2*o.max {
			g.s.spare = g.data[:0]
		}
	}
	o.write()
	clear(batch)
	o.batch = batch[:0]
	if cap(o.buf) > 4*writeChunk+o.max {
		o.buf = nil // do not keep a long line's buffer
	}
	return next
}

// sooner is the earlier of two clocks when the writer is to wake, where 0
// is never.
func sooner(next, at int64) int64 {
	if next == 0 || at < next {
		return at
	}
	return next
}

// partialDue returns the clock when the stream's partial line is to be
// written on its own, zero while the reader has not come back to read (see
// the rules at the top of this file). s.mu is held; it runs on the writer.
func (s *Stream) partialDue(now int64) int64 {
	o := s.o
	coop := s.coop.Load()
	if coop && s.waitRead.Load() {
		return 0 // the reader has not come back; Reading wakes us
	}
	if s.promptAt != s.partialAt {
		s.promptAt = s.partialAt
		s.prompt = looksLikePrompt(s.partial)
	}
	wait := o.hold
	if s.prompt {
		wait = o.pause
	}
	due := s.partialAt + wait
	if coop {
		due = max(due, s.readAt.Load()+wait)
	}
	if now >= due && now < due+o.hold {
		// Late look: the rest may be in the kernel already, with the
		// reader not yet scheduled to read it.
		if f := s.look.Load(); f != nil && (*f)() {
			due = now + o.pause
		}
	}
	return due
}

// format appends the lines of data, prefixed and filtered, to the writer's
// buffer and writes the buffer whenever it is full. cut says that the last
// line is a partial line the child goes on with.
func (o *Output) format(s *Stream, data []byte, cut bool) {
	if o.buf == nil {
		o.buf = make([]byte, 0, writeChunk+writeChunk/4)
	}
	color := o.opts.Color
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		// The pty's "\r\n": trimmed here, so that a line without anything
		// else to filter takes filterLine's fast path.
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		b := append(o.buf, o.ts...)
		b = append(b, s.prefix...)
		start := len(b)
		var st escState
		b, st = filterLine(b, line, color, s.esc)
		s.esc = ground
		if cut && len(data) == 0 {
			s.esc = st
		}
		if tap := o.opts.Tap; tap != nil {
			text := b[start:]
			if color && bytes.IndexByte(text, esc) >= 0 {
				o.tapBuf = removeSGR(o.tapBuf[:0], text)
				text = o.tapBuf
			}
			tap(s.name, s.stderr, text)
		}
		o.buf = append(b, '\n')
		if len(o.buf) >= writeChunk {
			o.write()
		}
	}
}

// write writes the writer's buffer to the destination; after an error, it
// discards it.
func (o *Output) write() {
	if len(o.buf) == 0 {
		return
	}
	if o.err == nil {
		o.writing.Store(o.clock())
		n, err := o.w.Write(o.buf)
		o.writing.Store(0)
		if err == nil && n < len(o.buf) {
			err = io.ErrShortWrite
		}
		if err != nil {
			o.err = fmt.Errorf("write output: %w", err)
		}
	}
	o.buf = o.buf[:0]
}
