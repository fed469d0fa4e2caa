package logfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// file is one log file, owned by the writer goroutine.
type file struct {
	sink *Sink
	path string // as given, for messages

	lj         *lumberjack.Logger // a regular file, rotated by size
	dev        *os.File           // anything else (/dev/null, a FIFO), written as it is
	est        int64              // bytes in the current file as far as we know; -1: not open, probe first
	lastRotate time.Time

	pend      []byte // whole lines not yet written, each ending in '\n'
	pendLines int
	partial   bool // pend starts with the rest of a line partly written
	dropped   int  // lines dropped while failing, marked once it works again

	failing  bool
	delay    time.Duration
	next     time.Time       // next retry while failing
	reported map[string]bool // failures reported in this failing episode
}

// add appends one formatted line. A healthy file is written once a chunk is full; a
// failing one keeps at most the queue's bound and counts what it drops.
func (f *file) add(line []byte) {
	lim := f.sink.lim
	if f.failing && (f.pendLines >= lim.lines || len(f.pend)+len(line) > lim.bytes) {
		f.dropped++
		return
	}
	f.pend = append(f.pend, line...)
	f.pendLines++
	if !f.failing && len(f.pend) >= chunkMax {
		f.sink.flush(f)
	}
}

// probe makes sure path can be written before lumberjack opens it: lumberjack would move
// an unopenable file aside, and its errors lose their cause. It returns the size of a
// regular file, or the open handle of anything else.
func probe(path string) (size int64, dev *os.File, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, nil, err
	}
	// O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of hanging the writer.
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		return 0, nil, err
	}
	info, err := fh.Stat()
	if err != nil {
		fh.Close()
		return 0, nil, err
	}
	if !info.Mode().IsRegular() {
		return 0, fh, nil
	}
	return info.Size(), nil, fh.Close()
}

func (f *file) setOpen(size int64, dev *os.File) {
	f.est = size
	f.dev = dev
	if dev == nil && f.lj == nil {
		s := f.sink
		f.lj = &lumberjack.Logger{
			Filename: f.path,
			MaxSize:  int(s.maxBytes / mib),
			// MaxBackups and Compress stay off: the sink's mill prunes and compresses
			// (mill.go), so that Close can wait for it.
			// LocalTime stays false: rotated files are named in UTC, so that their names
			// sort in time order, for the mill's pruning and for Tail alike.
		}
	}
}

// writePending writes the pending lines in chunks of whole lines, rotating between chunks
// itself so that lumberjack never has to rotate inside a Write.
func (f *file) writePending() error {
	i := 0
	defer func() {
		f.pend = f.pend[:copy(f.pend, f.pend[i:])]
	}()
	for i < len(f.pend) {
		if f.est < 0 {
			size, dev, err := probe(f.path)
			if err != nil {
				return err
			}
			f.setOpen(size, dev)
		}
		rest := f.pend[i:]
		first := bytes.IndexByte(rest, '\n') + 1
		var chunk []byte
		switch {
		case f.partial:
			chunk = rest[:first] // the rest of a line goes where its start went
		case f.dev != nil:
			chunk = wholeLines(rest, first, chunkMax)
		default:
			// Write only while the file stays under the size: lumberjack rotates when
			// size+len > max (and, opening, when size+len >= max), so it never does here.
			room := f.sink.maxBytes - 1 - f.est
			if int64(first) > room && f.est > 0 {
				if err := f.rotate(); err != nil {
					return err
				}
				continue
			}
			chunk = wholeLines(rest, first, int(min(room, chunkMax)))
		}
		n, err := f.write(chunk)
		i += n
		f.est += int64(n)
		f.pendLines -= bytes.Count(chunk[:n], []byte{'\n'})
		if err != nil {
			if n > 0 {
				f.partial = chunk[n-1] != '\n'
			}
			f.close() // reopened by the next try: the path may be fixed by then
			return err
		}
		f.partial = false
	}
	return nil
}

// wholeLines is the longest prefix of rest made of whole lines within limit bytes, and at
// least its first line (first bytes).
func wholeLines(rest []byte, first, limit int) []byte {
	limit = min(len(rest), max(first, limit))
	return rest[:bytes.LastIndexByte(rest[:limit], '\n')+1]
}

func (f *file) write(b []byte) (int, error) {
	if f.dev != nil {
		return f.dev.Write(b)
	}
	return f.lj.Write(b)
}

// rotate moves the current file aside. lumberjack names rotated files by the millisecond,
// so a second rotation within one millisecond would take the first one's name and the
// rename would replace it, losing a whole file: wait for the next millisecond first.
func (f *file) rotate() error {
	// Two rotations in one millisecond take a MiB written within it: the pause is rare and
	// short. Equality, not <=, so that a clock stepped back never means a long pause.
	if last := f.lastRotate.UnixMilli(); time.Now().UnixMilli() == last {
		time.Sleep(time.Until(time.UnixMilli(last + 1)))
	}
	err := f.lj.Rotate()
	f.lastRotate = time.Now()
	if err != nil {
		f.close()
		return err
	}
	f.est = 0
	f.sink.milling(f.path)
	return nil
}

func (f *file) close() error {
	var err error
	if f.dev != nil {
		err = f.dev.Close()
		f.dev = nil
	}
	if f.lj != nil {
		err = errors.Join(err, f.lj.Close())
	}
	f.est = -1
	return err
}
