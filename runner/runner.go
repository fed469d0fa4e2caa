// Package runner runs a formation: every instance under its own pty, their
// output merged, and the whole tree stopped cleanly.
//
// One supervisor goroutine (Run's loop) owns every instance and its state;
// helper goroutines (a pty reader and a waiter per instance, the orphan
// reaper) only report to it.
package runner

import (
	"context"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"mhrun/formation"
)

// Options say how to run a formation.
type Options struct {
	Stdout     io.Writer
	Color      bool
	Timestamps bool
	// Socket is given to every instance as MHRUN_SOCKET.
	Socket string
	// Signals carries what mhrun received: the first SIGINT or SIGTERM stops
	// the formation gracefully, the second kills it at once; SIGWINCH
	// resizes the ptys. Cancelling Run's context is a first stop too.
	Signals <-chan os.Signal
	// TermSize reports mhrun's terminal size, if it has one.
	TermSize func() (cols, rows int, ok bool)
	// Subreaper makes mhrun the reaper of orphans in its tree (Linux), so
	// that daemons double-forked by an instance are stopped with it.
	Subreaper bool
}

// Runner runs one formation once.
type Runner struct {
	f     *formation.Formation
	o     Options
	out   *Output
	insts []*instance
	exits chan exit
	width int // the prefix's width, less than the terminal for the ptys

	mu    sync.Mutex // guards known, shared with the orphan reaper
	known map[int]bool

	stopping  bool // a stop is under way
	requested bool // the stop was asked for (signal, context), not forced by a failure
	forced    bool // a second interrupt: kill without waiting for grace
	code      int  // mhrun's exit code
	timer     *time.Timer
}

// Run runs the formation until it stops, and returns mhrun's exit code:
// 0 after a requested stop or when everything finished cleanly, else the
// code of the process that failed.
func Run(ctx context.Context, f *formation.Formation, o Options) (int, error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	r := &Runner{f: f, o: o, exits: make(chan exit), known: map[int]bool{}}
	width := len("mhrun")
	for _, p := range f.Processes {
		for n := 1; n <= p.Scale; n++ {
			in := &instance{proc: p, n: n, name: p.Instance(n), color: p.Index}
			width = max(width, len(in.name))
			r.insts = append(r.insts, in)
		}
	}
	r.width = width + len(" | ")
	if o.Timestamps {
		r.width += len("15:04:05 ")
	}
	r.out = NewOutput(o.Stdout, OutputOptions{Color: o.Color, Timestamps: o.Timestamps, NameWidth: width})
	defer r.out.Close()
	if len(r.insts) == 0 {
		r.out.Event("nothing to run: every process has scale 0")
		return 0, nil
	}

	var wg sync.WaitGroup
	reaperDone := make(chan struct{})
	defer func() { close(reaperDone); wg.Wait() }()
	if o.Subreaper {
		if err := setSubreaper(); err != nil {
			r.out.Event("cannot become child subreaper (%v): double-forked daemons may escape a stop", err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); reapOrphans(reaperDone, r.isKnown) }()
	}

	size := r.ptySize()
	for _, in := range r.insts {
		in.stream = r.out.Stream(in.name, in.color)
		if err := in.start(f.Dir, f.Env(in.proc, in.n, o.Socket), size, r.exits, r.register); err != nil {
			in.state = StateErrored
			r.out.Event("%v", err)
			r.fail(in, 127)
		}
	}
	r.loop(ctx)
	r.sweep()
	for _, in := range r.insts {
		if in.pty != nil {
			in.waitDrained() // the tree is gone, so the pty's end is near
			in.pty.Close()
			<-in.drained
		}
	}
	return r.code, nil
}

// loop is the supervisor: it owns every instance until none is alive.
func (r *Runner) loop(ctx context.Context) {
	done := ctx.Done()
	r.timer = time.NewTimer(time.Hour)
	r.timer.Stop()
	defer r.timer.Stop()
	for r.alive() > 0 {
		select {
		case e := <-r.exits:
			r.onExit(e)
		case sig := <-r.o.Signals:
			if sig == syscall.SIGWINCH {
				r.resize()
				continue
			}
			r.interrupt(sig.String())
		case <-done:
			done = nil
			r.interrupt("stop request")
		case <-r.timer.C:
			r.killOverdue()
		}
	}
}

// interrupt is a stop asked for from outside: the first one graceful, the
// next one kills at once.
func (r *Runner) interrupt(why string) {
	if r.stopping {
		r.forced = true
		r.out.Event("%s again: killing every process now", why)
		for _, in := range r.insts {
			if in.state == StateStopping {
				in.deadline = time.Now()
			}
		}
		r.killOverdue()
		return
	}
	r.requested = true
	r.out.Event("%s: stopping the formation (again to kill at once)", why)
	r.beginStop()
}

// beginStop sends every live instance its stop-signal and arms SIGKILL
// after its grace.
func (r *Runner) beginStop() {
	r.stopping = true
	now := time.Now()
	for _, in := range r.insts {
		if in.state != StateRunning && in.state != StateStarting {
			continue
		}
		in.state = StateStopping
		in.deadline = now.Add(in.proc.Policy.Grace)
		in.signal(parseSignal(in.proc.Policy.StopSignal))
	}
	r.armTimer()
}

// armTimer sets the timer for the earliest pending SIGKILL.
func (r *Runner) armTimer() {
	var next time.Time
	for _, in := range r.insts {
		if in.state == StateStopping && !in.killed && (next.IsZero() || in.deadline.Before(next)) {
			next = in.deadline
		}
	}
	r.timer.Stop()
	if !next.IsZero() {
		r.timer.Reset(time.Until(next))
	}
}

// killOverdue SIGKILLs every stopping instance past its grace: its group
// and every descendant, wherever it went.
func (r *Runner) killOverdue() {
	now := time.Now()
	for _, in := range r.insts {
		if in.state != StateStopping || in.killed || now.Before(in.deadline) {
			continue
		}
		in.killed = true
		if !r.forced {
			r.out.Event("%s still running after grace %s: killing it", in.name, in.proc.Policy.Grace)
		}
		pids := descendants(in.pid)
		in.signal(syscall.SIGKILL)
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	r.armTimer()
}

// onExit records an instance's end and decides what it means for the formation.
func (r *Runner) onExit(e exit) {
	in := e.inst
	r.mu.Lock()
	delete(r.known, in.pid)
	r.mu.Unlock()
	what, code := describe(e.state)
	switch {
	case in.state == StateStopping:
		in.state = StateStopped
		r.out.Event("%s stopped (%s)", in.name, what)
		r.armTimer()
	case code == 0:
		in.state = StateExited
		r.out.Event("%s exited with code 0 (finished)", in.name)
	default:
		in.state = StateErrored
		r.out.Event("%s %s", in.name, what)
		r.fail(in, code)
	}
}

// fail handles an instance that gave up: the formation stops with its code
// unless the process is optional.
func (r *Runner) fail(in *instance, code int) {
	if in.proc.Policy.Optional {
		r.out.Event("%s is optional: the rest run on", in.proc.Name)
		return
	}
	if r.stopping {
		return
	}
	r.code = code
	r.out.Event("%s failed: stopping the formation", in.name)
	r.beginStop()
}

// alive counts instances whose process may still be running.
func (r *Runner) alive() int {
	n := 0
	for _, in := range r.insts {
		if in.state == StateRunning || in.state == StateStarting || in.state == StateStopping {
			n++
		}
	}
	return n
}

// sweep ends what outlived its instance: daemons adopted by mhrun as
// subreaper. They get SIGTERM, then SIGKILL after the longest grace.
func (r *Runner) sweep() {
	left := descendants(os.Getpid())
	if len(left) == 0 {
		return
	}
	var grace time.Duration
	for _, in := range r.insts {
		grace = max(grace, in.proc.Policy.Grace)
	}
	r.out.Event("%d process(es) outlived their instance: stopping them", len(left))
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	if waitGone(left, grace) {
		return
	}
	for _, pid := range descendants(os.Getpid()) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(left, 2*time.Second)
}

// waitGone waits until none of pids is alive (zombies count as gone), at most d.
func waitGone(pids []int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := false
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !isZombieOrGone(pid) {
				alive = true
				break
			}
		}
		if !alive {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

func isZombieOrGone(pid int) bool {
	if !hasProc() {
		return false
	}
	st, ok := readStat(pid)
	return !ok || st.state == 'Z'
}

// register starts a child with the reaper held off, so that the reaper
// never takes the exit status of a child mhrun waits for itself.
func (r *Runner) register(start func() (int, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return err
	}
	r.known[pid] = true
	return nil
}

func (r *Runner) isKnown(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.known[pid]
}

// ptySize is mhrun's terminal less the prefix, or 80x24 without a terminal.
func (r *Runner) ptySize() *pty.Winsize {
	cols, rows := 80, 24
	if r.o.TermSize != nil {
		if c, rw, ok := r.o.TermSize(); ok {
			cols, rows = c-r.width, rw
		}
	}
	return &pty.Winsize{Cols: uint16(max(cols, 20)), Rows: uint16(max(rows, 1))}
}

// resize follows mhrun's terminal size (SIGWINCH).
func (r *Runner) resize() {
	size := r.ptySize()
	for _, in := range r.insts {
		if in.pty != nil && (in.state == StateRunning || in.state == StateStarting) {
			pty.Setsize(in.pty, size)
		}
	}
}
