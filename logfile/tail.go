package logfile

import (
	"bufio"
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

// backupLayout is the time in lumberjack's names of rotated files.
const backupLayout = "2006-01-02T15-04-05.000"

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

// Tail returns the last n lines of the combined log in dir, across its rotated files
// (gzipped ones included), oldest first, as written but without their "\n". It is meant
// for `mhrun logs -n 10000` beyond the in-memory ring. Reading while a runner rotates may
// miss the lines of a file rotated in between. With no log file in dir, the error wraps
// fs.ErrNotExist.
func Tail(dir string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	cur := filepath.Join(dir, CombinedName+".log")
	bs, err := backups(cur)
	if err != nil {
		return nil, fmt.Errorf("read log dir: %w", err)
	}
	paths := make([]string, 0, len(bs)+1)
	for _, b := range bs {
		paths = append(paths, b.path)
	}
	if _, err := os.Stat(cur); err == nil {
		paths = append(paths, cur)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no log file in %s: %w", dir, fs.ErrNotExist)
	}
	var parts [][]string
	need := n
	for i := len(paths) - 1; i >= 0 && need > 0; i-- {
		lines, err := lastLines(paths[i], need)
		if errors.Is(err, fs.ErrNotExist) && !strings.HasSuffix(paths[i], ".gz") {
			lines, err = lastLines(paths[i]+".gz", need) // compressed since listed
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since listed
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, lines)
		need -= len(lines)
	}
	out := make([]string, 0, n-need)
	for i := len(parts) - 1; i >= 0; i-- {
		out = append(out, parts[i]...)
	}
	return out, nil
}

// lastLines returns the last k lines of one file, gunzipping a .gz one.
func lastLines(path string, k int) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(fh)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	br := bufio.NewReaderSize(r, 64<<10)
	ring := make([]string, 0, min(k, 4096))
	next := 0 // where the next line goes once the ring is full
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimSuffix(line, "\n")
			if len(ring) < k {
				ring = append(ring, line)
			} else {
				ring[next] = line
				next = (next + 1) % k
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	return slices.Concat(ring[next:], ring[:next]), nil
}
