package logfile

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
)

// The rotated files are pruned and compressed here, in a goroutine the sink owns, rather
// than by lumberjack (its Compress and MaxBackups stay off). lumberjack does the same work
// in a goroutine of its own that nothing can wait for: Close could only poll the directory
// until a deadline, and under load a slow gzip outlived it, so what a caller found after
// Close was not final. Owning the goroutine lets Close wait for its last pass, and lets its
// failures be reported on Errors() instead of being discarded.

// millRun is the mill goroutine, started and stopped by the writer goroutine: after each
// wake it settles the logs rotated since its last pass; once millStop is closed it makes
// one last pass and closes millDone.
func (s *Sink) millRun() {
	defer close(s.millDone)
	for {
		stopping := false
		select {
		case <-s.millWake:
		case <-s.millStop:
			stopping = true
		}
		s.millOnce()
		if stopping {
			return
		}
	}
}

// milling asks the mill to settle the rotated files of the log at path. The writer
// goroutine calls it after each rotation; it never blocks.
func (s *Sink) milling(path string) {
	if s.keep == 0 && !s.compress {
		return // nothing to prune, nothing to compress
	}
	s.millMu.Lock()
	s.millPending[path] = true
	s.millMu.Unlock()
	select {
	case s.millWake <- struct{}{}:
	default:
	}
}

// millOnce settles every log rotated since the last pass: the oldest rotated files beyond
// Keep are removed, the others gzipped (with Compress).
func (s *Sink) millOnce() {
	s.millMu.Lock()
	paths := make([]string, 0, len(s.millPending))
	for p := range s.millPending {
		paths = append(paths, p)
	}
	clear(s.millPending)
	s.millMu.Unlock()
	slices.Sort(paths)
	for _, path := range paths {
		bs, err := backups(path)
		if err != nil {
			s.report(fmt.Sprintf("log file %s: list rotated files: %s", path, describe(err, path)))
			continue
		}
		if s.keep > 0 && len(bs) > s.keep {
			for _, b := range bs[:len(bs)-s.keep] {
				if err := removeBackup(b); err != nil {
					s.report(fmt.Sprintf("log file %s: %s", path, err))
				}
			}
			bs = bs[len(bs)-s.keep:]
		}
		if !s.compress {
			continue
		}
		for _, b := range bs {
			if b.gz {
				continue
			}
			if s.beforeCompress != nil {
				s.beforeCompress(b.path)
			}
			if err := compress(b.path); err != nil {
				s.report(fmt.Sprintf("log file %s: compress rotated file: %s", path, err))
			}
		}
	}
}

// removeBackup removes a rotated file, and the gzipped copy of a plain one, which may be
// left by a compression that was cut short.
func removeBackup(b backup) error {
	err := os.Remove(b.path)
	if !b.gz {
		if e := os.Remove(b.path + ".gz"); e != nil && !errors.Is(e, fs.ErrNotExist) && err == nil {
			err = e
		}
	}
	return err
}

// compress gzips src to src.gz, then removes src. Until src is removed, the plain file is
// the one that counts (backups lists it, Tail reads it); a partial src.gz is removed on
// failure, or overwritten by the next try.
func compress(src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	dst := src + ".gz"
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fi.Mode().Perm())
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(dst)
		}
	}()
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Remove(src)
}
