package logfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Reading the files back, for `mhrun logs -n` beyond what the runner holds in memory:
//
//   - Backward walks the combined log newest line first, across its rotated files, and
//     stops when its caller has enough: a filter (one process, its events) reads only as
//     far back as it needs, however chatty the other processes were since.
//   - A plain file is read in chunks from its end; a gzipped one is inflated once into an
//     unlinked temporary file in the log dir and read the same way, so memory stays bounded
//     by a chunk and a line, whatever the rotation size.
//   - The current file is opened before the rotated ones are listed: a rotation in between
//     turns it into the newest rotated file, which is then skipped as already read. A last
//     line without its "\n" is being written and is skipped.

// backupLayout is the time in lumberjack's names of rotated files.
const backupLayout = "2006-01-02T15-04-05.000"

// readChunk is how much of a file one read takes, walking backwards.
const readChunk = 64 << 10

// backup is one rotated file of a log.
type backup struct {
	path string
	t    time.Time
	gz   bool
}

// backups lists the rotated files of the log at path, oldest first. A file found both
// plain and gzipped is being compressed: the plain one is complete, so it is the one listed.
func backups(path string) ([]backup, error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "-"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	found := map[string]*backup{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		plain, gz := strings.CutSuffix(e.Name(), ".gz")
		if len(plain) < len(prefix)+len(ext) || !strings.HasPrefix(plain, prefix) || !strings.HasSuffix(plain, ext) {
			continue
		}
		t, err := time.Parse(backupLayout, plain[len(prefix):len(plain)-len(ext)])
		if err != nil {
			continue // web-1.log is not a rotated web.log
		}
		if b := found[plain]; b != nil {
			if !gz {
				b.path, b.gz = filepath.Join(dir, plain), false
			}
			continue
		}
		found[plain] = &backup{path: filepath.Join(dir, e.Name()), t: t, gz: gz}
	}
	out := make([]backup, 0, len(found))
	for _, b := range found {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b backup) int { return a.t.Compare(b.t) })
	return out, nil
}

// Line is one line of a log file, "2026-11-25T20:31:07.123+01:00 web.2 | text", in parts.
type Line struct {
	Time   time.Time
	Name   string // web.2, or mhrun for the runner's events
	Stderr bool   // marked " ! ": the instance wrote it to its stderr (output=pipes)
	Text   string
}

// ParseLine splits a line of a log file (without its "\n") into its time, name, mark
// and text. ok is false for a line that is not in the files' format. A name has no
// space (instance names are letters, digits, '_', '-' and '.'), so the mark is the
// first " | " or " ! " of the line after the time; files written before the mark
// existed have " | " only and read as they always did.
func ParseLine(s string) (l Line, ok bool) {
	ts, rest, ok := strings.Cut(s, " ")
	if !ok {
		return Line{}, false
	}
	i := strings.Index(rest, " ")
	if i <= 0 || len(rest) < i+3 || rest[i+2] != ' ' || (rest[i+1] != '|' && rest[i+1] != '!') {
		return Line{}, false
	}
	t, err := time.Parse(timeLayout, ts)
	if err != nil {
		return Line{}, false
	}
	return Line{Time: t, Name: rest[:i], Stderr: rest[i+1] == '!', Text: rest[i+3:]}, true
}

// AppendLine appends a line in the files' format, without its "\n": the time in loc
// (RFC 3339 with milliseconds), the name, " | " (" ! " for a stderr line), the text.
// `mhrun logs` prints every line this way, whether it comes from memory or the files.
func AppendLine(b []byte, t time.Time, loc *time.Location, name string, stderr bool, text []byte) []byte {
	b = t.In(loc).AppendFormat(b, timeLayout)
	b = append(b, ' ')
	b = append(b, name...)
	if stderr {
		b = append(b, " ! "...)
	} else {
		b = append(b, " | "...)
	}
	return append(b, text...)
}

// Backward calls fn with each line of the combined log in dir, newest first, across its
// rotated files (gzipped ones included), as written but without its "\n", until fn returns
// false or the oldest file's first line has been given. Reading while a runner rotates may
// miss the lines of a file rotated in between, never give one twice. With no log file in
// dir, the error wraps fs.ErrNotExist.
func Backward(dir string, fn func(line string) bool) error {
	cur := filepath.Join(dir, CombinedName+".log")
	fh, err := os.Open(cur)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", cur, err)
	}
	var curInfo fs.FileInfo
	if fh != nil {
		defer fh.Close()
		if curInfo, err = fh.Stat(); err != nil {
			return fmt.Errorf("read %s: %w", cur, err)
		}
	}
	bs, err := backups(cur)
	if err != nil {
		return fmt.Errorf("read log dir: %w", err)
	}
	if fh == nil && len(bs) == 0 {
		return fmt.Errorf("no log file in %s: %w", dir, fs.ErrNotExist)
	}
	if fh != nil {
		more, err := backward(fh, curInfo.Size(), fn)
		if err != nil || !more {
			return err
		}
	}
	for i := len(bs) - 1; i >= 0; i-- {
		more, err := backwardFile(bs[i].path, curInfo, fn)
		if errors.Is(err, fs.ErrNotExist) && !bs[i].gz {
			more, err = backwardFile(bs[i].path+".gz", curInfo, fn) // compressed since listed
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since listed
		}
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// backwardFile gives the lines of one rotated file to fn, newest first, inflating a .gz
// one; it gives none of the file already read as the current one (skip). more is false
// once fn has had enough.
func backwardFile(path string, skip fs.FileInfo, fn func(string) bool) (more bool, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if skip != nil && os.SameFile(info, skip) {
		return true, nil // the current file, rotated since it was opened
	}
	if !strings.HasSuffix(path, ".gz") {
		return backward(fh, info.Size(), fn)
	}
	zr, err := gzip.NewReader(fh)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer zr.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mhrun-tail-*")
	if err != nil {
		return false, fmt.Errorf("inflate %s: %w", path, err)
	}
	os.Remove(tmp.Name()) // unlinked: gone with the last close, whatever happens
	defer tmp.Close()
	n, err := io.Copy(tmp, zr)
	if err != nil {
		return false, fmt.Errorf("inflate %s: %w", path, err)
	}
	return backward(tmp, n, fn)
}

// backward gives the lines of the first size bytes of r to fn, newest first, reading
// readChunk bytes at a time from the end. Bytes after the last "\n" (a line being
// written) are skipped.
func backward(r io.ReaderAt, size int64, fn func(string) bool) (more bool, err error) {
	pos := size
	var rest []byte // the end of a line whose start lies before pos
	partial := true // still looking for the end of the last whole line
	for pos > 0 {
		n := min(int64(readChunk), pos)
		pos -= n
		b := make([]byte, n, n+int64(len(rest)))
		if _, err := r.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return false, fmt.Errorf("read log file: %w", err)
		}
		b = append(b, rest...)
		if partial {
			i := bytes.LastIndexByte(b, '\n')
			if i < 0 {
				rest = b
				continue
			}
			b, partial = b[:i+1], false
		}
		// b ends with the "\n" of a whole line (or is empty)
		for len(b) > 0 {
			i := bytes.LastIndexByte(b[:len(b)-1], '\n')
			if i < 0 {
				break // its start lies before pos
			}
			if !fn(string(b[i+1 : len(b)-1])) {
				return false, nil
			}
			b = b[:i+1]
		}
		rest = b
	}
	if !partial && len(rest) > 0 {
		return fn(string(rest[:len(rest)-1])), nil
	}
	return true, nil
}

// Tail returns the last n lines of the combined log in dir, across its rotated files
// (gzipped ones included), oldest first, as written but without their "\n". With no log
// file in dir, the error wraps fs.ErrNotExist.
func Tail(dir string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []string
	err := Backward(dir, func(l string) bool {
		out = append(out, l)
		return len(out) < n
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}
