package runner

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"mhrun/formation"
)

// State is where an instance is in its life.
type State string

// The states of an instance.
const (
	StateWaiting   State = "waiting"   // for the processes it starts after
	StateStandby   State = "standby"   // for its singleton lock, held elsewhere
	StateScheduled State = "scheduled" // a job between runs
	StateStarting  State = "starting"  // started, not yet ready
	StateRunning   State = "running"   // ready
	StateBackoff   State = "backoff"   // waiting to be restarted
	StateExited    State = "exited"    // a finished one-shot (exit 0)
	StateErrored   State = "errored"   // gave up
	StateStopping  State = "stopping"  // stop signal sent, waiting for the exit
	StateStopped   State = "stopped"
)

// drainTimeout bounds how long an exit report waits for the pty to reach
// its end after the process itself is gone: a descendant that keeps the
// pty open must not hold the report back for ever.
const drainTimeout = 500 * time.Millisecond

// instance is one slot of a process (web.2) across its runs; only the
// supervisor goroutine touches it.
type instance struct {
	proc   *formation.Process
	n      int
	name   string
	color  int
	stream *Stream
	hub    *hub // the terminal clients attach to, across runs

	state    State
	run      *run      // the current or last run; nil before the first
	deadline time.Time // SIGKILL time while stopping
	killed   bool      // SIGKILL already sent
	restart  string    // while stopping: why it starts again after the exit
	inRow    int       // failed runs in a row, for backoff and max-restarts
	restarts int       // restarts so far, for status
	gen      int       // bumped to cancel a pending restart timer
	lastExit string    // how the last run ended ("exited with code 1")
	reason   string    // why the state is what it is
	rss      int64     // the tree's RSS at the last sample
	ready    bool      // the current run passed its ready= check
	failed   bool      // while stopping: the run failed its start (not ready in time)
	lock     *os.File  // the singleton lock, held while the instance lives
	next     time.Time // a job's next tick
	held     bool      // stopped on request: stays stopped, and keeps the runner up
	fresh    bool      // a reload's replacement: runs on a free port beside the old one
	shared   bool      // its stream and hub live on in another instance (a reload)
	removed  bool      // scaled away: forgotten once its process is gone

	sampledAt  time.Time // the last status sample, for CPU%
	sampledCPU time.Duration
	sampledPID int
}

// run is one run of an instance: a process under its own pty. The reader
// and the waiter goroutines use only this, never the instance.
type run struct {
	cmd      *exec.Cmd
	id       string        // unique per run: web.2#7, its name in a balancer's pool
	port     int           // its $PORT
	pooled   bool          // in its balancer's pool
	matcher  *logMatcher   // sees the raw output too (ready=log), or nil
	notify   *notifySocket // ready=notify, or nil
	cancel   func()        // ends the ready check, if any
	closing  sync.Once
	pid      int
	pty      *os.File
	started  time.Time
	drained  chan struct{} // closed when the reader reached the pty's end
	lastRead atomic.Int64  // unix nanoseconds of the reader's last read
}

// exit is what a run's waiter reports to the supervisor.
type exit struct {
	inst  *instance
	run   *run
	state *os.ProcessState
}

// startRun starts cmd under a new pty; register wraps the start so that
// the orphan reaper never sees the pid before it is known. The waiter
// reports on exits once the pty is drained.
func startRun(in *instance, r *run, size *pty.Winsize, exits chan<- exit, done <-chan struct{}, register func(func() (int, error)) error) error {
	cmd := r.cmd
	var ptmx *os.File
	err := register(func() (int, error) {
		var err error
		ptmx, err = pty.StartWithAttrs(cmd, size, procAttr())
		if err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", in.name, err)
	}
	r.pid, r.pty, r.started, r.drained = cmd.Process.Pid, ptmx, time.Now(), make(chan struct{})
	r.lastRead.Store(time.Now().UnixNano())
	go r.read(in.stream, in.hub)
	go func() {
		cmd.Wait()
		r.waitDrained()
		select { // the supervisor outlives every run; done only guards that
		case exits <- exit{inst: in, run: r, state: cmd.ProcessState}:
		case <-done:
		}
	}()
	return nil
}

// setSize sets a pty's window size. The pty master stays in blocking
// mode, as creack/pty leaves it: a read in its own thread is woken by the
// kernel directly, which under CPU contention keeps a line's halves
// together far better than Go's poller did (measured: 9 lines split in
// 2.4M with the poller, none without).
func setSize(f *os.File, cols, rows int) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	ws := &unix.Winsize{Col: uint16(cols), Row: uint16(rows)}
	var ierr error
	if err := sc.Control(func(fd uintptr) { ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	return ierr
}

// read copies the pty to the stream until the pty's end (EIO on Linux once
// every holder of the terminal is gone, or the pty closed).
func (r *run) read(s *Stream, h *hub) {
	defer close(r.drained)
	buf := make([]byte, 64*1024)
	for {
		s.Reading()
		n, err := r.pty.Read(buf)
		r.lastRead.Store(time.Now().UnixNano())
		if n > 0 {
			s.Write(buf[:n]) // may wait while a slow stdout still moves
			r.lastRead.Store(time.Now().UnixNano())
			if r.matcher != nil {
				r.matcher.Write(buf[:n])
			}
			if h != nil {
				h.Write(buf[:n])
			}
		}
		if err != nil {
			s.Flush()
			return
		}
	}
}

// waitDrained waits for the reader to reach the pty's end, for as long as
// output keeps coming; it gives up after drainTimeout without any, which
// means a descendant holds the pty open without writing.
func (r *run) waitDrained() bool {
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	for {
		select {
		case <-r.drained:
			return true
		case <-t.C:
			idle := time.Since(time.Unix(0, r.lastRead.Load()))
			if idle >= drainTimeout {
				return false
			}
			t.Reset(drainTimeout - idle)
		}
	}
}

// close ends the ready check, waits for the pty's end while output keeps
// coming, then closes the pty.
func (r *run) close() { r.closing.Do(r.doClose) }

func (r *run) doClose() {
	if r.cancel != nil {
		r.cancel()
	}
	if r.notify != nil {
		r.notify.Close()
	}
	if r.pty == nil {
		return
	}
	r.waitDrained()
	r.pty.Close()
	// A blocking read is not interrupted by Close: if a process that
	// escaped every stop still holds the terminal open, its reader ends
	// only with it, and nobody waits for that.
	select {
	case <-r.drained:
	case <-time.After(drainTimeout):
	}
}

// signal sends sig to the run's process group (its session).
func (r *run) signal(sig syscall.Signal) {
	if r != nil && r.pid > 0 {
		syscall.Kill(-r.pid, sig)
	}
}

// alive reports whether the instance has, or will soon have, a process.
func (in *instance) alive() bool {
	switch in.state {
	case StateStarting, StateRunning, StateStopping, StateBackoff, StateWaiting, StateStandby, StateScheduled:
		return true
	}
	return in.state == StateStopped && in.held
}

// hasProcess reports whether the instance has a process now.
func (in *instance) hasProcess() bool {
	return in.state == StateStarting || in.state == StateRunning || in.state == StateStopping
}

// describe says how a process ended, whether that is a failure, and the
// exit code mhrun would take from it (128+N for signal N, as shells do).
func describe(st *os.ProcessState) (what string, code int) {
	if st == nil {
		return "ended", 1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %s", signalName(ws.Signal())), 128 + int(ws.Signal())
	}
	return fmt.Sprintf("exited with code %d", st.ExitCode()), st.ExitCode()
}
