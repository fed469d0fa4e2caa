package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"mhrun/formation"
	"mhrun/socket"
)

// standbyPoll is how often an instance in standby tries the singleton lock.
const standbyPoll = 100 * time.Millisecond

// singletonPath is the lock file of a singleton process: the policy's
// path (relative to the project dir), or one per project and process in
// the runtime dir, which every mhrun of this user and project agrees on.
func singletonPath(f *formation.Formation, p *formation.Process) string {
	if path := p.Policy.SingletonPath; path != "" {
		if filepath.IsAbs(path) {
			return path
		}
		return filepath.Join(f.Dir, path)
	}
	return filepath.Join(socket.RuntimeDir(), "mhrun-"+socket.ProjectHash(f.Dir)+"-"+p.Name+".lock")
}

// tryLock takes an exclusive flock on path without waiting: the file, or
// nil when another holder has it. The lock lives as long as the file stays
// open in mhrun, and dies with mhrun however it ends. The singleton locks
// take theirs here (the runner lock, socket.AcquireLock, the same way);
// callers name the lock in errors.
func tryLock(path string) (*os.File, error) {
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

// acquire takes the instance's singleton lock if it needs one; false means
// another holder has it and the instance waits in standby.
func (r *Runner) acquire(in *instance) (bool, error) {
	if !in.proc.Policy.Singleton || in.lock != nil {
		return true, nil
	}
	path := singletonPath(r.f, in.proc)
	if in.proc.Policy.SingletonPath == "" { // the default lives in the runtime dir
		if err := os.MkdirAll(socket.RuntimeDir(), 0o700); err != nil {
			return false, fmt.Errorf("singleton lock %s: %w", path, err)
		}
	}
	f, err := tryLock(path)
	if err != nil {
		return false, fmt.Errorf("singleton lock %s: %w", path, err)
	}
	if f == nil {
		return false, nil
	}
	in.lock = f
	return true, nil
}

// release frees the singleton lock of an instance that will not run again.
func (in *instance) release() {
	if in.lock != nil {
		in.lock.Close()
		in.lock = nil
	}
}
