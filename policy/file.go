package policy

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxFileSize is the most mhrun reads of an input file: 1 MiB, as
// procfile.MaxFileSize says why.
const maxFileSize = 1 << 20

// readFile reads an input file as mhrun reads every one: only a regular
// file (or a symbolic link to one), of at most maxFileSize bytes. A
// directory, a FIFO, a device or a socket is refused after a stat, before it
// is opened; the open itself is non-blocking, so a FIFO put in place after
// the stat is refused by the fstat that follows rather than waited on.
// Errors are *fs.PathError naming path: "open PATH: no such file or
// directory", "read PATH: is a directory, not a file", "read PATH: is
// larger than 1 MiB, the most mhrun reads from an input file".
//
// It is a copy of procfile.ReadFile, since the parsers import nothing of
// mhrun's; keep them alike.
func readFile(path string) ([]byte, error) {
	if fi, err := os.Stat(path); err == nil { // else the open reports it
		if err := regular(path, fi); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := regular(path, fi); err != nil {
		return nil, err
	}
	// Size from the reads, not the stat: /proc files say 0.
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		return nil, err
	case err != nil:
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	case len(data) > maxFileSize:
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("is larger than 1 MiB, the most mhrun reads from an input file")}
	}
	return data, nil
}

// regular returns nil for a regular file, else an error that says what
// path is.
func regular(path string, fi fs.FileInfo) error {
	var what string
	switch t := fi.Mode().Type(); {
	case t == 0:
		return nil
	case t&fs.ModeDir != 0:
		what = "is a directory, not a file"
	case t&fs.ModeNamedPipe != 0:
		what = "is a named pipe (FIFO), not a regular file"
	case t&fs.ModeSocket != 0:
		what = "is a socket, not a regular file"
	case t&fs.ModeDevice != 0:
		what = "is a device, not a regular file"
	default:
		what = "is not a regular file"
	}
	return &fs.PathError{Op: "read", Path: path, Err: errors.New(what)}
}
