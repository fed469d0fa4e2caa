package formation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"mhrun/policy"
	"mhrun/procfile"
)

// MaxFileSize is the most mhrun reads of an input file (a Procfile, a
// policy, an env file): 1 MiB. Real ones are a few kilobytes, and the
// largest environment exec takes by default is 2 MiB in all; past the cap
// the file is the wrong one (a log, a device, a dump), and reading on would
// only grow memory.
const MaxFileSize = 1 << 20

// ReadFile reads an input file as mhrun reads every one: only a regular
// file (or a symbolic link to one), of at most MaxFileSize bytes. A
// directory, a FIFO, a device or a socket is refused after a stat, before it
// is opened; the open itself is non-blocking, so a FIFO put in place after
// the stat is refused by the fstat that follows rather than waited on.
// Errors are *fs.PathError naming path: "open PATH: no such file or
// directory", "read PATH: is a directory, not a file", "read PATH: is
// larger than 1 MiB, the most mhrun reads from an input file".
//
// Every input goes through it: the parsers (procfile, policy) are given
// the bytes, and import nothing of mhrun's.
func ReadFile(path string) ([]byte, error) {
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
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	var pe *fs.PathError
	switch {
	case errors.As(err, &pe):
		return nil, err
	case err != nil:
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	case len(data) > MaxFileSize:
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

// notUTF16 refuses a file in UTF-16 as a whole, in one line naming it,
// rather than the parsers' error about a NUL byte on every line: it is
// what Windows PowerShell's ">" (and Out-File, and Notepad's "Unicode")
// write, and an easy file to end up with. A UTF-8 byte order mark, which
// editors write too, is fine: the parsers skip it.
func notUTF16(path string, data []byte) error {
	if !isUTF16(data) {
		return nil
	}
	return fmt.Errorf("%s: %s", path, utf16Msg)
}

// utf16Msg is what notUTF16 says of a file.
const utf16Msg = "is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"

// isUTF16 reports whether data starts with a UTF-16 byte order mark, or,
// without one, with two ASCII characters spelled in UTF-16 (each with a
// NUL byte beside it, which no text file mhrun reads can start with).
func isUTF16(data []byte) bool {
	if len(data) >= 2 && (data[0] == 0xFF && data[1] == 0xFE || data[0] == 0xFE && data[1] == 0xFF) {
		return true
	}
	if len(data) < 4 {
		return false
	}
	ascii := func(c byte) bool { return c != 0 && c < 0x80 }
	le := ascii(data[0]) && data[1] == 0 && ascii(data[2]) && data[3] == 0
	be := data[0] == 0 && ascii(data[1]) && data[2] == 0 && ascii(data[3])
	return le || be
}

// example is the Procfile line that messages show as a model.
const example = `"web: ./server"`

// readProcfile reads the Procfile at path with ReadFile and parses it. A
// missing file, or one that is not a Procfile at all, gives a one-line
// error that says what would be right.
func readProcfile(path string) ([]procfile.Entry, error) {
	data, err := ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf(`%w (create one with lines like %s, or pass -f FILE)`, err, example)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (want a Procfile with lines like %s, or pass -f FILE)", err, example)
	}
	if err := notUTF16(path, data); err != nil {
		return nil, err
	}
	return procfile.Parse(bytes.NewReader(data), path)
}

// readPolicy reads the policy file at path with ReadFile and parses it. A
// missing file is an empty policy, every process getting the defaults;
// found says whether there was a file, data is what it held.
func readPolicy(path string) (pf *policy.File, data []byte, found bool, err error) {
	data, err = ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		pf, err = policy.Parse(bytes.NewReader(nil), path)
		return pf, nil, false, err
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("%w (want a policy file with lines like \"web: scale=2\", or pass --policy FILE)", err)
	}
	if err := notUTF16(path, data); err != nil {
		return nil, data, true, err
	}
	pf, err = policy.Parse(bytes.NewReader(data), path)
	return pf, data, true, err
}

// PolicySum identifies the contents of a policy file: the hex SHA-256 of
// its bytes. The runner keeps the sum of the file it read, and mhrun save
// compares it with the file on disk.
func PolicySum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
