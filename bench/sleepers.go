//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// sleepers is a runner of n "sleep 1000" processes: mhrun with a Procfile
// "s: exec sleep 1000" scaled to n, or a shell running n "sleep 1000 &"
// then "wait".
type sleepers struct {
	b       *bench
	what    string // "mhrun" or "shell"
	n       int
	dir     string // its files; mhrun's project dir
	cmd     *exec.Cmd
	pid     int
	w       *watcher
	t0      time.Time
	exited  chan struct{} // closed once the runner exited (not yet reaped)
	exitAt  time.Time     // set before exited closes
	waited  bool
	sleeps  []int
	errPath string
	outPath string
	first   time.Duration // when the first sleep was seen
	half    time.Duration // when half of them were
}

// startSleepers starts the runner with cfg.procs sleeps; tag names its dir
// under the temp dir.
func (b *bench) startSleepers(mhrun bool, tag string) (*sleepers, error) {
	return b.startSleepersN(mhrun, tag, b.cfg.procs, "")
}

// startSleepersN starts the runner with n sleeps; for mhrun, a non-empty
// policy is written to a Procfile.policy beside the Procfile.
func (b *bench) startSleepersN(mhrun bool, tag string, n int, policy string) (*sleepers, error) {
	if mhrun {
		return b.startFormation(tag, n, "s: exec sleep 1000\n", policy, "-m", fmt.Sprintf("s=%d", n))
	}
	dir, err := b.runDir(tag)
	if err != nil {
		return nil, err
	}
	return b.launch("shell", dir, n, b.command("/bin/sh", "-c", strings.Repeat("sleep 1000 &\n", n)+"wait\n"))
}

// startFormation starts "mhrun start" on procfile, with policy (if not
// empty) as its Procfile.policy and args after the usual ones, in tag's
// dir under the temp dir, which is also its project dir (its control
// socket is DIR/.mhrun.sock); n is the sleeps waitAll waits for.
func (b *bench) startFormation(tag string, n int, procfile, policy string, args ...string) (*sleepers, error) {
	dir, err := b.runDir(tag)
	if err != nil {
		return nil, err
	}
	pf := filepath.Join(dir, "Procfile")
	if err := os.WriteFile(pf, []byte(procfile), 0o644); err != nil {
		return nil, err
	}
	pol := filepath.Join(dir, "Procfile.policy")
	os.Remove(pol) // a previous run's
	if policy != "" {
		if err := os.WriteFile(pol, []byte(policy), 0o644); err != nil {
			return nil, err
		}
	}
	return b.launch("mhrun", dir, n, b.command(b.mhrun, append([]string{"start", "-f", pf, "-d", dir}, args...)...))
}

// runDir makes tag's dir under the temp dir.
func (b *bench) runDir(tag string) (string, error) {
	dir := filepath.Join(b.tmp, tag)
	return dir, os.MkdirAll(dir, 0o755)
}

// launch starts cmd, a runner of n sleeps, with stdout and stderr to files
// in dir.
func (b *bench) launch(what, dir string, n int, cmd *exec.Cmd) (*sleepers, error) {
	s := &sleepers{b: b, what: what, n: n, cmd: cmd, dir: dir, exited: make(chan struct{}), errPath: filepath.Join(dir, "stderr"), outPath: filepath.Join(dir, "stdout")}
	out, err := os.Create(s.outPath)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	errf, err := os.Create(s.errPath)
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	s.cmd.Stdout, s.cmd.Stderr = out, errf
	s.w = newWatcher()
	s.t0 = time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.what, err)
	}
	s.pid = s.cmd.Process.Pid
	go func() {
		waitExited(s.pid)
		s.exitAt = time.Now()
		close(s.exited)
	}()
	return s, nil
}

// waitAll polls /proc, a millisecond between scans, until the n sleeps
// exist, and returns the time from exec.
func (s *sleepers) waitAll() (time.Duration, error) {
	tick := time.NewTimer(time.Millisecond)
	defer tick.Stop()
	deadline := s.t0.Add(10 * time.Second)
	for {
		sl := s.w.sleeps(s.pid)
		d := time.Since(s.t0)
		if s.first == 0 && len(sl) > 0 {
			s.first = d
		}
		if s.half == 0 && 2*len(sl) >= s.n {
			s.half = d
		}
		if len(sl) >= s.n {
			s.sleeps = sl
			return d, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s: only %d of %d sleeps after 10s", s.what, len(sl), s.n)
		}
		select {
		case <-s.exited:
			return 0, fmt.Errorf("%s exited before its %d sleeps were up; its stderr: %s", s.what, s.n, tail(s.errPath))
		case <-s.b.ctx.Done():
			return 0, s.b.ctx.Err()
		case <-tick.C:
			tick.Reset(time.Millisecond)
		}
	}
}

// stop sends SIGTERM (mhrun: to mhrun; shell: to its process group) and
// polls, a millisecond between scans, until the runner exited and every
// sleep is gone (or a zombie); it returns the time from the signal.
func (s *sleepers) stop() (time.Duration, error) {
	ts := time.Now()
	target := s.pid
	if s.what == "shell" {
		target = -s.pid
	}
	if err := syscall.Kill(target, syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("signal %s: %w", s.what, err)
	}
	tick := time.NewTimer(time.Millisecond)
	defer tick.Stop()
	var goneAt time.Time
	done := false
	for !done || goneAt.IsZero() {
		if goneAt.IsZero() && allGone(s.sleeps) {
			goneAt = time.Now()
		}
		select {
		case <-s.exited:
			done = true
		default:
		}
		if done && !goneAt.IsZero() {
			break
		}
		if time.Since(ts) > 15*time.Second {
			return 0, fmt.Errorf("%s: not stopped 15s after SIGTERM (runner exited: %v)", s.what, done)
		}
		select {
		case <-s.b.ctx.Done():
			return 0, s.b.ctx.Err()
		case <-tick.C:
			tick.Reset(time.Millisecond)
		}
	}
	end := goneAt
	if s.exitAt.After(end) {
		end = s.exitAt
	}
	d := end.Sub(ts)
	err := s.wait()
	switch {
	case s.what == "mhrun" && err != nil:
		return d, fmt.Errorf("mhrun after SIGTERM: %v (want exit 0); its stderr: %s", err, tail(s.errPath))
	case s.what == "shell" && s.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM:
		return d, fmt.Errorf("shell after SIGTERM: %v", s.cmd.ProcessState)
	}
	return d, nil
}

func allGone(pids []int) bool {
	for _, pid := range pids {
		if !gone(pid) {
			return false
		}
	}
	return true
}

// wait reaps the runner once.
func (s *sleepers) wait() error {
	if s.waited {
		return nil
	}
	s.waited = true
	return s.cmd.Wait()
}

// kill ends whatever is left (runner by its group id, sleeps by pid) and
// reaps it; it is safe after stop.
func (s *sleepers) kill() {
	select {
	case <-s.exited:
	default:
		syscall.Kill(-s.pid, syscall.SIGKILL)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
		}
	}
	s.wait()
	reap(s.sleeps)
}
