package runner

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mhrun/proctree"
)

// The guard ends what a runner leaves when it dies without stopping its
// formation (SIGKILL, the OOM killer). It is a small process of its own,
// in a session of its own, started by the runner with the read end of a
// pipe as stdin; the runner writes each leader's pid to the pipe, and
// "-PID" once that run has ended (its pid, and a session or group named by
// it, may then be reused by a stranger), and never closes it. When the
// runner dies the kernel closes its end, the guard
// reads EOF, and it stops every process that carries the formation's
// identity (MHRUN_RUN=TOKEN.*, see members.go) or lives in the session or
// process group of a leader it was told of: SIGTERM and SIGCONT, then
// SIGKILL for what is left after guardGrace, and again for what forks
// meanwhile, until nothing is found or guardGiveUp has passed. A runner
// that stops normally writes "done" first: its formation is stopped
// already, and the guard only checks that.
//
// What can still escape: a process that rewrote its environment and left
// every session mhrun knew of (a daemon that clears its environment after
// setsid), and the processes of another user.

// guardEnv carries the token to the guard; its presence makes mhrun the
// guard (see main).
const guardEnv = "MHRUN_GUARD"

const (
	guardGrace  = time.Second     // SIGTERM to SIGKILL
	guardGiveUp = 3 * time.Second // then the guard gives up on what will not die
	guardPoll   = 20 * time.Millisecond
)

// GuardToken reports whether this process was started as a guard, and the
// token of the formation it guards.
func GuardToken() (string, bool) {
	tok := os.Getenv(guardEnv)
	return tok, tok != ""
}

// GuardMain is the guard process's main: it ignores the signals that stop
// a process (only the pipe's EOF ends the guard's wait) and runs Guard.
func GuardMain(in io.Reader, tok string, stderr io.Writer) int {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGPIPE)
	return Guard(in, tok, stderr)
}

// Guard reads leader pids from in until EOF, then stops what is left of
// the formation whose token is tok. It returns the process's exit code: 0,
// or 1 when something could not be killed.
func Guard(in io.Reader, tok string, stderr io.Writer) int {
	leaders := map[int]bool{}
	clean := false
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		if line == "done" {
			clean = true
			continue
		}
		if gone, ok := strings.CutPrefix(line, "-"); ok {
			if pid, err := strconv.Atoi(gone); err == nil {
				delete(leaders, pid) // its run ended: the pid may be reused
			}
			continue
		}
		if pid, err := strconv.Atoi(line); err == nil && pid > 1 {
			leaders[pid] = true
		}
	}
	start := time.Now()
	termed := map[int]bool{}
	for announced := false; ; announced = true {
		left := guarded(tok, leaders)
		if len(left) == 0 {
			return 0
		}
		if !announced {
			why := "the runner died"
			if clean {
				why = "the runner stopped and left them"
			}
			fmt.Fprintf(stderr, "mhrun guard: %s: stopping %d process(es) of its formation %v\n", why, len(left), left)
		}
		elapsed := time.Since(start)
		for _, pid := range left {
			switch {
			case elapsed >= guardGrace:
				syscall.Kill(pid, syscall.SIGKILL)
			case !termed[pid]:
				termed[pid] = true
				syscall.Kill(pid, syscall.SIGTERM)
				syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		if elapsed >= guardGiveUp {
			fmt.Fprintf(stderr, "mhrun guard: %d process(es) of the formation would not die: %v\n", len(left), left)
			return 1
		}
		time.Sleep(guardPoll) // the guard has no child to wait on: it polls
	}
}

// guarded lists the live processes of the formation whose token is tok:
// those whose environment holds MHRUN_RUN=TOKEN.*, and those in the
// session or group of a known leader; never the guard itself.
func guarded(tok string, leaders map[int]bool) []int {
	t, err := proctree.Read()
	if err != nil {
		return nil
	}
	defer t.Release()
	if !t.FromProc() {
		return nil
	}
	self := os.Getpid()
	prefix := tok + "."
	var out []int
	procs := t.Procs()
	for i := range procs {
		p := &procs[i]
		if p.PID == self || p.State == 'Z' || p.State == 'X' {
			continue
		}
		if leaders[p.PID] || leaders[p.SID] || leaders[p.Pgrp] || strings.HasPrefix(proctree.EnvValue(p.PID, identityEnv), prefix) {
			out = append(out, p.PID)
		}
	}
	return out
}

// guard is the runner's side: the guard process and the write end of the
// pipe to it. Writes never wait (the pipe is non-blocking and a write that
// would block is dropped), so a guard that does not read can never block
// the supervisor: a pid it misses is still found by the identity.
type guard struct {
	cmd  *exec.Cmd
	w    *os.File // the pipe's write end; nil once finished
	raw  syscall.RawConn
	mu   sync.Mutex
	done chan struct{}
}

// startGuard starts exe as the guard of the formation whose token is tok.
func startGuard(exe, tok string) (*guard, error) {
	pr, pw, err := os.Pipe() // both close on exec: no instance holds the pipe
	if err != nil {
		return nil, fmt.Errorf("start the guard: %w", err)
	}
	defer pr.Close()
	raw, err := pw.SyscallConn()
	if err != nil {
		pw.Close()
		return nil, fmt.Errorf("start the guard: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Stdin = pr
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), guardEnv+"="+tok)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("start the guard %s: %w", exe, err)
	}
	g := &guard{cmd: cmd, w: pw, raw: raw, done: make(chan struct{})}
	go func() { cmd.Wait(); close(g.done) }()
	return g, nil
}

// pid is the guard's pid, 0 without one.
func (g *guard) pid() int {
	if g == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// write writes b to the guard if the pipe takes it now; never waits.
func (g *guard) write(b []byte) {
	if g.w == nil {
		return
	}
	g.raw.Write(func(fd uintptr) bool {
		unix.Write(int(fd), b) // EAGAIN: dropped
		return true
	})
}

// forget tells the guard that the run of the leader pid has ended, so
// that a process given that pid later, or a session or group it leads, is
// never taken for the formation's.
func (g *guard) forget(pid int) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.write(append(append([]byte{'-'}, strconv.AppendInt(nil, int64(pid), 10)...), '\n'))
}

// tell gives the guard a leader's pid.
func (g *guard) tell(pid int) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.write(append(strconv.AppendInt(nil, int64(pid), 10), '\n'))
}

// finish tells the guard the formation stopped, closes the pipe, and waits
// for the guard to have checked, at most d.
func (g *guard) finish(d time.Duration) {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.write([]byte("done\n"))
	g.w.Close()
	g.w = nil
	g.mu.Unlock()
	select {
	case <-g.done:
	case <-time.After(d):
	}
}
