// Package logfile writes a formation's output to size-rotated files that never fill the disk.
//
// The rules of the files:
//
//   - DIR/mhrun.log holds every line, the runner's own events (name "mhrun") included;
//     DIR/PROC.log holds the lines of every instance of one process; an Extra file holds
//     the lines of its process. A line under the name "mhrun" goes to the combined file
//     only (and to an Extra file configured for "mhrun").
//   - Every line, in every file, is "2026-11-25T20:31:07.123+01:00 web.2 | text\n":
//     RFC 3339 with milliseconds in Options.Location, the instance name, " | ", the text.
//     A line a child wrote to its stderr, kept apart by output=pipes (WriteErr), has " ! "
//     for " | ": "2026-11-25T20:31:07.123+01:00 web.2 ! text\n". Files of older versions,
//     every line with " | ", read the same (ParseLine).
//     A text with embedded newlines becomes several such lines; a text too long for a
//     file is cut (at a rune boundary) and ends in "… [truncated by mhrun]". The text is
//     otherwise written as given: the runner hands over its output's lines already
//     filtered to printable text (output/ansi.go: no control character, no escape sequence).
//   - Files rotate by size through lumberjack: web.log becomes web-2026-11-25T19-31-07.123.log
//     (the time of the rotation, always UTC, so that names sort in time order across
//     daylight saving changes), gzipped to .log.gz with Compress, Keep of them kept. The
//     pruning and the gzip run in a goroutine of the sink's, and Close waits for them.
//     Lines are whole: each file is written in chunks of whole lines, and a rotation
//     happens only between chunks, so a line lies entirely in one file.
//   - Write only queues. One goroutine formats and writes; past the queue's bound
//     (64k lines or 16 MiB) lines are dropped and counted, and a line
//     "[mhrun: N lines not written to the log files]" marks the gap in each file that lost lines.
//   - A file that fails (disk full, permission) keeps its unwritten lines (the same bound,
//     per file) and is retried with a backoff from 100ms doubling to 5s; the other files go
//     on. Each distinct failure is reported once on Errors(), and the recovery once.
//   - A path that is not a regular file (/dev/null, a terminal, a FIFO) is written as it is
//     and never rotated: rotating renames, and renaming /dev/null is not ours to do.
package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Options of the files.
type Options struct {
	Dir string // e.g. PROJECT/.mhrun/logs; created (0755) if missing
	// MaxSize is the size in bytes past which a file rotates; 0 means 10 MiB.
	// lumberjack counts in whole MiB, so the size is rounded up to a whole MiB, at least 1 MiB.
	MaxSize int64
	// Keep is the number of rotated files kept per log; 0 means 5, negative keeps every one.
	Keep     int
	Compress bool              // gzip rotated files
	Extra    map[string]string // process name → an extra file path (policy log=PATH; resolved by the caller)
	Location *time.Location    // time zone of the timestamps; nil = Local
}

const (
	// CombinedName is the base name of the combined file, DIR/mhrun.log, and the name
	// under which the runner's own events are written.
	CombinedName = "mhrun"

	mib            = 1 << 20
	defaultMaxSize = 10 * mib
	defaultKeep    = 5

	queueLines   = 64 << 10
	queueBytes   = 16 << 20
	lineOverhead = 64 // bytes counted per queued line besides its text, for the memory bound

	chunkMax    = 64 << 10 // bytes of whole lines given to one Write call
	retryMin    = 100 * time.Millisecond
	retryMax    = 5 * time.Second
	closeBudget = 2 * time.Second
	maxName     = 256

	timeLayout = "2006-01-02T15:04:05.000Z07:00"
	truncMark  = "… [truncated by mhrun]"
)

// limits bound the queue, and the unwritten lines kept for each failing file.
type limits struct{ lines, bytes int }

var defaultLimits = limits{lines: queueLines, bytes: queueBytes}

// entry is one queued line.
type entry struct {
	name   string
	stderr bool
	t      time.Time
	line   []byte
}

// Sink writes one file per process (DIR/web.log: all its instances, each line prefixed by
// the instance), one combined file (DIR/mhrun.log: every line, mhrun's events included),
// and the Extra files. Every line is "2026-11-25T20:31:07.123+01:00 web.2 | text\n"
// (RFC 3339 with milliseconds) in the combined file and the process files alike. Lines are
// written whole, never split across a rotation.
type Sink struct {
	dir      string
	loc      *time.Location
	maxBytes int64 // file size past which a file rotates, a whole number of MiB
	keep     int   // lumberjack's MaxBackups: 0 keeps all
	compress bool
	extra    map[string]string // process → path, cleaned
	lim      limits
	budget   time.Duration // Close's time to write what is queued: closeBudget; tests shorten it

	mu       sync.Mutex
	q        []entry
	qBytes   int
	dropped  map[string]int // process → lines dropped by Write since the last marker
	seen     map[string]bool
	closed   bool
	deadline time.Time // set by Close before it closes stop

	wake    chan struct{}
	stop    chan struct{}
	written chan struct{} // closed by the writer once the files are closed
	done    chan struct{} // closed by the writer once the mill has stopped too
	errs    chan string

	// The mill (mill.go) prunes and compresses rotated files.
	millMu      sync.Mutex
	millPending map[string]bool // logs rotated since the mill's last pass
	millWake    chan struct{}
	millStop    chan struct{} // closed by the writer after closing the files
	millDone    chan struct{}

	closeOnce sync.Once
	closeErr  error // Close's result
	finishErr error // the writer's result, read after done

	// Owned by the writer goroutine.
	combined *file
	procs    map[string]*file // process → its file
	extras   map[string]*file // process → its Extra file
	byPath   map[string]*file // absolute path → file, so one path has one writer
	files    []*file
	scratch  []byte
	tbuf     [3]*file

	beforeCompress func(path string) // a test's hook into the mill; nil
}

// Open creates Dir and the combined file, and starts the writer goroutine.
// It fails if Dir cannot be created or written to.
func Open(o Options) (*Sink, error) {
	s, err := openSink(o, defaultLimits)
	if err != nil {
		return nil, err
	}
	go s.run()
	return s, nil
}

// openSink prepares a sink without starting its writer, so that tests can fill the queue.

func openSink(o Options, lim limits) (*Sink, error) {
	if o.Dir == "" {
		return nil, errors.New("log dir not set (pass --log-dir)")
	}
	s := &Sink{
		dir:      o.Dir,
		loc:      o.Location,
		maxBytes: roundSize(o.MaxSize),
		keep:     o.Keep,
		compress: o.Compress,
		extra:    map[string]string{},
		lim:      lim,
		budget:   closeBudget,
		dropped:  map[string]int{},
		seen:     map[string]bool{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		written:  make(chan struct{}),
		done:     make(chan struct{}),
		errs:     make(chan string, 32),
		procs:    map[string]*file{},
		extras:   map[string]*file{},
		byPath:   map[string]*file{},

		millPending: map[string]bool{},
		millWake:    make(chan struct{}, 1),
		millStop:    make(chan struct{}),
		millDone:    make(chan struct{}),
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	switch {
	case s.keep == 0:
		s.keep = defaultKeep
	case s.keep < 0:
		s.keep = 0
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, dirError(o.Dir, err)
	}
	s.combined = s.fileFor(filepath.Join(o.Dir, CombinedName+".log"))
	size, dev, err := probe(s.combined.path)
	if err != nil {
		return nil, dirError(o.Dir, err)
	}
	s.combined.setOpen(size, dev)
	for proc, p := range o.Extra {
		p = filepath.Clean(p)
		s.extra[proc] = p
		s.extras[proc] = s.fileFor(p)
	}
	return s, nil
}

// roundSize turns Options.MaxSize into the size lumberjack will use: whole MiB, at least one.
func roundSize(n int64) int64 {
	if n <= 0 {
		n = defaultMaxSize
	}
	return max(1, (n+mib-1)/mib) * mib
}

func dirError(dir string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("log dir %s: %s %s: %w (pass a writable --log-dir)", dir, pe.Op, filepath.Base(pe.Path), pe.Err)
	}
	return fmt.Errorf("log dir %s: %w (pass a writable --log-dir)", dir, err)
}

// process is the process part of an instance name: "web" of "web.2".
func process(name string) string {
	proc, _, _ := strings.Cut(name, ".")
	return proc
}

// procPath is the file of one process. Procfile names are letters, digits, '_' and '-';
// anything else is replaced so that a name can never leave the directory.
func (s *Sink) procPath(proc string) string {
	b := []byte(proc)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		b = []byte{'_'}
	}
	return filepath.Join(s.dir, string(b)+".log")
}

// Write queues one line of the instance name (or "mhrun"). It copies line, never blocks
// on I/O, and drops the line (counted, and marked in the files later) when the queue is full.
// A trailing "\n" is ignored. Writes after Close are dropped.
func (s *Sink) Write(name string, t time.Time, line []byte) { s.write(name, false, t, line) }

// WriteErr is Write for a line the instance wrote to its stderr (output=pipes): it is
// marked " ! " instead of " | " in the files.
func (s *Sink) WriteErr(name string, t time.Time, line []byte) { s.write(name, true, t, line) }

func (s *Sink) write(name string, stderr bool, t time.Time, line []byte) {
	proc := process(name)
	size := len(line) + len(name) + lineOverhead
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.q) >= s.lim.lines || s.qBytes+size > s.lim.bytes {
		s.dropped[proc]++
		s.mu.Unlock()
		return
	}
	s.seen[proc] = true
	wasEmpty := len(s.q) == 0
	s.q = append(s.q, entry{name: name, stderr: stderr, t: t, line: append([]byte(nil), line...)})
	s.qBytes += size
	s.mu.Unlock()
	// The writer takes the whole queue at once, so only the first line of a batch wakes it.
	if wasEmpty {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Errors reports write errors for the runner to show in its output, one line each:
// "log file .mhrun/logs/web.log: write: no space left on device; retrying, the children keep running"
// once per distinct failure of a file, and "log file .mhrun/logs/web.log: writable again" once
// when it recovers. Messages are dropped, not waited for, if nobody reads. The channel is
// closed by Close.
func (s *Sink) Errors() <-chan string { return s.errs }

// Files lists the paths written so far: the combined file first, then the file of each
// process that wrote a line, then the Extra files of those processes.
func (s *Sink) Files() []string {
	s.mu.Lock()
	procs := make([]string, 0, len(s.seen))
	for p := range s.seen {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	slices.Sort(procs)
	out := []string{s.combined.path}
	for _, p := range procs {
		if p != CombinedName {
			out = append(out, s.procPath(p))
		}
	}
	for _, p := range procs {
		if x, ok := s.extra[p]; ok {
			out = append(out, x)
		}
	}
	// One path may serve twice (an Extra file that is also a process file).
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(p string) bool {
		k := absPath(p)
		if seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
}

// Close flushes what it can within 2s, stops the writer goroutine and closes the files.
// Then it waits for the last pruning and compression of rotated files, however long the
// gzip takes (the files rotated since the mill's last pass, each under MaxSize: the disk's
// speed bounds it, not a deadline), so that what a caller finds after Close is final and no
// half-written .gz is left behind by a process that exits next; and it closes the Errors
// channel. Lines that could not be written are reported in the error. If the writer is
// still stuck in a write 2.5s after Close began, Close returns at once with an error.
// lumberjack's Close does not stop the goroutine it starts per file (natefinch/lumberjack#56):
// one parked goroutine per rotated log stays, so open one Sink per run, not one per event.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.deadline = time.Now().Add(s.budget)
		s.mu.Unlock()
		close(s.stop)
		t := time.NewTimer(s.budget + 500*time.Millisecond)
		defer t.Stop()
		select {
		case <-s.written:
			<-s.done
			s.closeErr = s.finishErr
		case <-t.C:
			s.closeErr = fmt.Errorf("log files: writer still busy after %s; lines still queued are lost", s.budget)
		}
	})
	return s.closeErr
}

// run is the writer goroutine: it takes the queue as a whole, writes it, and retries the
// failing files when their backoff is due.
func (s *Sink) run() {
	defer close(s.done)
	go s.millRun()
	var spare []entry
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		stopping := false
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.stop:
			stopping = true
		}
		spare = s.drain(spare)
		if stopping {
			s.finish()
			return
		}
		now := time.Now()
		var next time.Time
		for _, f := range s.files {
			if f.failing && now.Before(f.next) {
				if len(f.pend) > 0 && (next.IsZero() || f.next.Before(next)) {
					next = f.next
				}
				continue
			}
			s.flush(f)
			if f.failing && len(f.pend) > 0 && (next.IsZero() || f.next.Before(next)) {
				next = f.next
			}
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
	}
}

// drain takes the queue and the drop counts, and routes them to the files.
func (s *Sink) drain(spare []entry) []entry {
	s.mu.Lock()
	batch := s.q
	s.q = spare[:0]
	s.qBytes = 0
	drops := s.dropped
	if len(drops) > 0 {
		s.dropped = map[string]int{}
	}
	s.mu.Unlock()
	for i := range batch {
		s.route(batch[i].name, batch[i].stderr, batch[i].t, batch[i].line)
	}
	if len(drops) > 0 {
		s.routeDrops(drops)
	}
	clear(batch) // let the lines go
	return batch[:0]
}

// targets are the files of one process's lines, without repeats.
func (s *Sink) targets(proc string) []*file {
	out := append(s.tbuf[:0], s.combined)
	if proc != CombinedName {
		f := s.procs[proc]
		if f == nil {
			f = s.fileFor(s.procPath(proc))
			s.procs[proc] = f
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if f := s.extras[proc]; f != nil && !slices.Contains(out, f) {
		out = append(out, f)
	}
	return out
}

// fileFor returns the one file of a path, creating its state (not the file) on first use.
func (s *Sink) fileFor(path string) *file {
	k := absPath(path)
	if f := s.byPath[k]; f != nil {
		return f
	}
	f := &file{path: path, est: -1, sink: s}
	s.byPath[k] = f
	s.files = append(s.files, f)
	return f
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

func (s *Sink) route(name string, stderr bool, t time.Time, line []byte) {
	if len(name) > maxName {
		name = name[:maxName]
	}
	targets := s.targets(process(name))
	line = trimNewline(line)
	for {
		seg, rest, more := cutByte(line, '\n')
		s.scratch = s.format(s.scratch[:0], name, stderr, t, seg)
		for _, f := range targets {
			f.add(s.scratch)
		}
		if !more {
			return
		}
		line = rest
	}
}

// routeDrops writes the markers of lines Write dropped: the total to the combined file,
// each process's count to its own files.
func (s *Sink) routeDrops(drops map[string]int) {
	now := time.Now()
	total := 0
	perFile := map[*file]int{}
	for proc, n := range drops {
		total += n
		for _, f := range s.targets(proc)[1:] {
			perFile[f] += n
		}
	}
	perFile[s.combined] = total
	for _, f := range s.files { // s.files: a stable order
		if n := perFile[f]; n > 0 {
			s.scratch = s.format(s.scratch[:0], CombinedName, false, now, markerText(n))
			f.add(s.scratch)
		}
	}
}

func markerText(n int) []byte {
	return fmt.Appendf(nil, "[mhrun: %d lines not written to the log files]", n)
}

// format appends one file line. The line never reaches the rotation size: a longer text
// is cut, so that every line fits an empty file whole.
func (s *Sink) format(b []byte, name string, stderr bool, t time.Time, text []byte) []byte {
	b = AppendLine(b, t, s.loc, name, stderr, nil)
	if room := int(s.maxBytes) - 2 - len(b); len(text) > room {
		cut := max(0, room-len(truncMark))
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		b = append(b, text[:cut]...)
		b = append(b, truncMark...)
	} else {
		b = append(b, text...)
	}
	return append(b, '\n')
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

func cutByte(b []byte, c byte) (before, after []byte, found bool) {
	for i, x := range b {
		if x == c {
			return b[:i], b[i+1:], true
		}
	}
	return b, nil, false
}

// flush writes a file's pending lines, and its drop marker once they are out.
func (s *Sink) flush(f *file) {
	if len(f.pend) == 0 {
		return
	}
	if err := f.writePending(); err != nil {
		s.fail(f, err)
		return
	}
	if f.dropped > 0 {
		n := f.dropped
		f.dropped = 0
		f.pend = s.format(f.pend, CombinedName, false, time.Now(), markerText(n))
		f.pendLines++
		if err := f.writePending(); err != nil {
			s.fail(f, err)
			return
		}
	}
	if f.failing {
		f.failing = false
		f.reported = nil
		s.report(fmt.Sprintf("log file %s: writable again", f.path))
	}
}

// fail records a failed write: the lines stay pending, the retry backs off, and a failure
// not yet reported in this episode is reported.
func (s *Sink) fail(f *file, err error) {
	if !f.failing {
		f.failing = true
		f.delay = retryMin
		f.reported = map[string]bool{}
	} else {
		f.delay = min(2*f.delay, retryMax)
	}
	f.next = time.Now().Add(f.delay)
	msg := describe(err, f.path)
	if !f.reported[msg] {
		f.reported[msg] = true
		s.report(fmt.Sprintf("log file %s: %s; retrying, the children keep running", f.path, msg))
	}
}

func (s *Sink) report(msg string) {
	select {
	case s.errs <- msg:
	default:
	}
}

// describe is an error without the file path the message already starts with.
func describe(err error, path string) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		if pe.Path != path {
			return pe.Op + " " + pe.Path + ": " + pe.Err.Error() // mkdir of its directory
		}
		return pe.Op + ": " + pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Op + ": " + le.Err.Error()
	}
	return err.Error() // lumberjack's own errors, flattened with %s
}

// finish runs at Close: one last try for every file, failing ones included, within the
// deadline; then the files are closed and the mill makes its last pass.
func (s *Sink) finish() {
	s.mu.Lock()
	deadline := s.deadline
	s.mu.Unlock()
	var errs []error
	for _, f := range s.files {
		if time.Now().Before(deadline) {
			s.flush(f)
		}
		if n := f.pendLines + f.dropped; n > 0 {
			errs = append(errs, fmt.Errorf("log file %s: %d lines not written", f.path, n))
		}
		if err := f.close(); err != nil {
			errs = append(errs, fmt.Errorf("log file %s: %w", f.path, err))
		}
	}
	s.finishErr = errors.Join(errs...)
	close(s.written)
	close(s.millStop)
	<-s.millDone
	close(s.errs) // after the mill, which reports on it
}
