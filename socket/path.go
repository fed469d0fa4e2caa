package socket

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// MaxPath is the longest unix socket path that works everywhere
// (sun_path is 108 bytes on Linux, 104 on macOS, including the NUL).
const MaxPath = 100

// Path is the control socket of the project in dir: dir/.mhrun.sock,
// or, when that path is too long for a unix socket, a name hashed from dir
// under the runtime dir ($XDG_RUNTIME_DIR, else the temp dir).
func Path(dir string) string {
	p := filepath.Join(dir, ".mhrun.sock")
	if len(p) <= MaxPath {
		return p
	}
	return filepath.Join(RuntimeDir(), "mhrun-"+ProjectHash(dir)+".sock")
}

// OtherPaths are where a runner of the project in dir may listen
// when its runtime dir was not this process's: a hashed socket lives in
// $XDG_RUNTIME_DIR, which a login shell has and a system service does not,
// so a client looks in the other place too. None for an unhashed socket.
func OtherPaths(dir string) []string {
	if len(filepath.Join(dir, ".mhrun.sock")) <= MaxPath {
		return nil
	}
	name := "mhrun-" + ProjectHash(dir) + ".sock"
	here := RuntimeDir()
	var other []string
	for _, d := range []string{
		filepath.Join(os.TempDir(), "mhrun-"+strconv.Itoa(os.Getuid())), // without XDG_RUNTIME_DIR
		filepath.Join("/run/user", strconv.Itoa(os.Getuid())),           // a login's XDG_RUNTIME_DIR
	} {
		if d != here {
			other = append(other, filepath.Join(d, name))
		}
	}
	return other
}

// RuntimeDir is where mhrun keeps per-user runtime files (hashed sockets,
// singleton locks, notify sockets): $XDG_RUNTIME_DIR, else a private dir
// in the temp dir.
func RuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "mhrun-"+strconv.Itoa(os.Getuid()))
}

// ProjectHash names a project dir in the runtime dir: a hashed control
// socket, and the runner's singleton locks, are named after it.
func ProjectHash(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:8])
}

// Lock is the lock one runner holds on its project, beside the socket.
type Lock struct {
	f      *os.File
	path   string
	socket string
}

// AcquireLock takes the runner lock of the formation whose control socket
// is sock. While another runner holds it, it says so and who; the lock is
// an flock, so a runner that was killed leaves none behind, and its stale
// socket is removed here (stale reports whether there was one). Anything
// at the socket path that is not a dead socket is an error, never removed.
// Only the runtime dir, where hashed socket paths live, is created.
func AcquireLock(sock string) (l *Lock, stale bool, err error) {
	dir := filepath.Dir(sock)
	if dir == RuntimeDir() {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("create the runtime dir for the control socket: %w", err)
		}
	} else if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, false, fmt.Errorf("control socket %s: its directory %s does not exist: create it, or choose another path with --socket or MHRUN_SOCKET", sock, dir)
	}
	path := sock + ".lock"
	f, err := TryLock(path)
	if err != nil {
		return nil, false, fmt.Errorf("runner lock %s: %w", path, err)
	}
	if f == nil {
		who := "another mhrun"
		if b, _ := os.ReadFile(path); len(strings.TrimSpace(string(b))) > 0 {
			who += " (pid " + strings.TrimSpace(string(b)) + ")"
		}
		return nil, false, fmt.Errorf("%s is already running this formation (lock %s): stop it first, or use -d for another project", who, path)
	}
	stale, err = RemoveStale(sock)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, err
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f, path: path, socket: sock}, stale, nil
}

// Release removes the lock file and frees the lock.
func (l *Lock) Release() {
	os.Remove(l.path)
	l.f.Close()
}

// TryLock takes an exclusive flock on path without waiting: the file, or
// nil when another holder has it. The lock lives as long as the file stays
// open, and dies with the process however it ends. The runner lock
// (AcquireLock) and the runner's singleton locks are taken with it;
// callers name the lock in errors.
func TryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, err
	}
	return f, nil
}
