package runner

import (
	"fmt"
	"os"
	"path/filepath"
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
	f, err := socket.TryLock(path)
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
