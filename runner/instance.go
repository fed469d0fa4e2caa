package runner

import (
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"

	"mhrun/formation"
)

// State is where an instance is in its life.
type State string

// The states of an instance.
const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateExited   State = "exited"   // a finished one-shot (exit 0)
	StateErrored  State = "errored"  // gave up
	StateStopping State = "stopping" // stop signal sent, waiting for the exit
	StateStopped  State = "stopped"
)

// drainTimeout bounds how long an exit report waits for the pty to reach
// its end after the process itself is gone: a descendant that keeps the
// pty open must not hold the report back for ever.
const drainTimeout = 500 * time.Millisecond

// instance is one running copy of a process; only the supervisor goroutine
// touches its fields after start.
type instance struct {
	proc  *formation.Process
	n     int
	name  string
	color int

	state    State
	cmd      *exec.Cmd
	pid      int
	pty      *os.File
	started  time.Time
	stream   *Stream
	drained  chan struct{} // closed when the pty reader reached the end
	lastRead atomic.Int64  // unix nanoseconds of the reader's last read
	deadline time.Time     // SIGKILL time while stopping
	killed   bool          // SIGKILL already sent
}

// exit is what an instance's waiter reports to the supervisor.
type exit struct {
	inst  *instance
	state *os.ProcessState
	err   error
}

// start runs the instance under a new pty; the waiter goroutine reports
// its exit on exits once the pty is drained (or drainTimeout passed).
func (in *instance) start(dir string, env []string, size *pty.Winsize, exits chan<- exit, register func(func() (int, error)) error) error {
	cmd := exec.Command("/bin/sh", "-c", in.proc.Command)
	cmd.Dir = dir
	cmd.Env = env
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
	in.cmd, in.pid, in.pty = cmd, cmd.Process.Pid, ptmx
	in.started = time.Now()
	in.state = StateRunning
	in.drained = make(chan struct{})
	go in.read()
	go func() {
		err := cmd.Wait()
		in.waitDrained()
		exits <- exit{inst: in, state: cmd.ProcessState, err: err}
	}()
	return nil
}

// read copies the pty to the instance's stream until the pty's end (EIO on
// Linux once every holder of the terminal is gone).
func (in *instance) read() {
	defer close(in.drained)
	buf := make([]byte, 64*1024)
	for {
		n, err := in.pty.Read(buf)
		in.lastRead.Store(time.Now().UnixNano())
		if n > 0 {
			in.stream.Write(buf[:n])
		}
		if err != nil { // EOF, EIO, or the pty closed: the end either way
			in.stream.Flush()
			return
		}
	}
}

// waitDrained waits for the reader to reach the pty's end, for as long as
// output keeps coming; it gives up after drainTimeout without any, which
// means a descendant holds the pty open without writing.
func (in *instance) waitDrained() bool {
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	for {
		select {
		case <-in.drained:
			return true
		case <-t.C:
			idle := time.Since(time.Unix(0, in.lastRead.Load()))
			if idle >= drainTimeout {
				return false
			}
			t.Reset(drainTimeout - idle)
		}
	}
}

// signal sends sig to the instance's process group (its session).
func (in *instance) signal(sig syscall.Signal) {
	if in.pid > 0 {
		syscall.Kill(-in.pid, sig)
	}
}

// describe says how a process ended, and the exit code mhrun would take from it.
func describe(st *os.ProcessState) (string, int) {
	if st == nil {
		return "ended", 1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %s", signalName(ws.Signal())), 128 + int(ws.Signal())
	}
	return fmt.Sprintf("exited with code %d", st.ExitCode()), st.ExitCode()
}
