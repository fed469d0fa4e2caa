package runner

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"

	"mhrun/attach"
	"mhrun/output"
	"mhrun/policy"
	"mhrun/proctree"
)

// endPoll is how often a run whose leader exited looks for its leftover
// processes to be gone: they are not mhrun's children to wait for.
const endPoll = 20 * time.Millisecond

// killWait bounds how long a run waits for SIGKILLed processes to vanish
// before it reports its end anyway (a process stuck in the kernel, in
// state D, cannot die until the kernel lets it).
const killWait = 2 * time.Second

// run is one run of an instance: a process under its own pty, or with
// output=pipes its stdout and stderr two pipes. The reader
// and the waiter goroutines use only this, never the instance.
//
// A run ends in two steps, each an event for the supervisor: the leader's
// exit (the moment wait returns), then the run's end, once no member of the
// run is left (see members.go) and its pty reached its end. Between the
// two the supervisor stops the leftovers (stop-signal, grace, SIGKILL), as
// systemd does on a main process's exit, and their output is still shown.
type run struct {
	cmd     *exec.Cmd
	id      string        // unique per run: web.2#7, its name in a balancer's pool
	ident   string        // the run's identity, MHRUN_RUN's value
	port    int           // its $PORT
	pooled  bool          // in its balancer's pool
	matcher *logMatcher   // sees the raw output too (ready=log), or nil
	notify  *notifySocket // ready=notify, or nil
	cancel  func()        // ends the ready check, if any
	closing sync.Once
	pid     int
	pty     *os.File      // nil with output=pipes
	pipes   [2]*os.File   // output=pipes: the read ends of stdout and stderr
	started time.Time     // on the supervisor's clock, as the start began
	drained chan struct{} // closed when the reader reached the pty's end (with pipes: both pipes')
	again   bool          // a restart: the instance ran before

	ready      bool             // passed its ready= check (supervisor only)
	killed     bool             // SIGKILL sent to every member (supervisor only)
	exited     bool             // the leader's exit was reported (supervisor only)
	status     *os.ProcessState // the leader's exit status, once exited
	exitedAt   time.Time        // when the supervisor heard of the exit, on its clock
	abandon    chan struct{}    // closed by the supervisor: leftovers were SIGKILLed, stop waiting for the drain
	abandoning sync.Once
}

// exit is what a run's waiter reports to the supervisor: the leader's
// exit, then (end set) the run's end.
type exit struct {
	inst  *instance
	run   *run
	state *os.ProcessState
	left  []int // at the leader's exit: the members of the run still alive
	end   bool
}

// spawned is what a run's starter reports: the run's process started
// (err nil), or could not be.
type spawned struct {
	inst  *instance
	run   *run
	pid   int         // the fields of run the supervisor sets: the
	pty   *os.File    // starter keeps its own copies
	pipes [2]*os.File // output=pipes
	err   error
}

// startSlots bounds the starts under way at once. A start holds a thread
// in fork and exec until the child has exec'd, and Go keeps every thread
// it ever made: 300 instances started at once left 300 idle threads
// behind. Eight at a time keep a 2-core machine's forks as fast.
var startSlots = make(chan struct{}, 8)

// spawn starts the run's command under a new pty (or, with output=pipes,
// with two pipes, see startPiped) in a goroutine of its own, so that the supervisor never waits for a fork and an exec (the
// exec waits for the child to be scheduled, which a loaded machine takes
// its time over). register wraps the start so that the orphan reaper
// never sees the pid before it is known. The goroutine reports the start,
// then stays as the run's waiter: the leader's exit the moment wait
// returns, then the run's end.
func spawn(in *instance, r *run, size *pty.Winsize, spawns chan<- spawned, exits chan<- exit, done <-chan struct{}, register func(func() (int, error)) error) {
	go func() {
		cmd := r.cmd
		var ptmx *os.File
		var pipes [2]*os.File
		piped := in.proc.Policy.Pipes
		startSlots <- struct{}{}
		err := register(func() (int, error) {
			var err error
			if piped {
				pipes, err = startPiped(cmd)
			} else if ptmx, err = pty.StartWithAttrs(cmd, size, proctree.SysProcAttr()); err == nil {
				ptmx = pollable(ptmx)
			}
			if err != nil {
				return 0, err
			}
			return cmd.Process.Pid, nil
		})
		<-startSlots
		var pid int
		switch {
		case err != nil:
			err = fmt.Errorf("start %s: %w", in.name, err)
		case piped:
			pid = cmd.Process.Pid
			r.readPipes(pipes, in.stream)
		default:
			pid = cmd.Process.Pid
			go r.read(ptmx, in.stream, in.hub)
		}
		select { // the supervisor outlives every run; done only guards that
		case spawns <- spawned{inst: in, run: r, pid: pid, pty: ptmx, pipes: pipes, err: err}:
		case <-done:
			return
		}
		if err != nil {
			return
		}
		waitExit(cmd)
		left := membersSince(time.Now(), pid, r.ident) // read here, off the supervisor's loop
		select {
		case exits <- exit{inst: in, run: r, state: cmd.ProcessState, left: left}:
		case <-done:
			return
		}
		r.waitEnd(pid, left)
		select {
		case exits <- exit{inst: in, run: r, state: cmd.ProcessState, end: true}:
		case <-done:
		}
	}()
}

// waitEnd waits, once the leader has exited, until no member of the run
// is left and the pty has reached its end; after the supervisor abandons
// the run (its members were SIGKILLed), only until the members are gone,
// and at most killWait: a process that escaped every search may hold the
// pty open for ever, and a SIGKILLed one in state D cannot die at once.
// It only watches: the supervisor decides every signal but the repeat of
// its SIGKILL to a member forked since.
func (r *run) waitEnd(pid int, left []int) {
	tick := time.NewTicker(endPoll)
	defer tick.Stop()
	drained, abandon := r.drained, r.abandon
	var killedAt time.Time
	for first := true; ; first = false {
		if !first { // the first time: the members read at the exit
			left = stillExiting(left, membersSince(time.Now(), pid, r.ident))
		}
		if abandon == nil { // SIGKILLed: repeat it for what forked meanwhile
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			if len(left) == 0 || time.Since(killedAt) > killWait {
				return
			}
		}
		if len(left) == 0 && drained == nil {
			return
		}
		select {
		case <-drained:
			drained = nil
		case <-abandon:
			abandon, killedAt = nil, time.Now()
		case <-tick.C:
		}
	}
}

// giveUpDrain tells the waiter to stop waiting for the pty's end.
func (r *run) giveUpDrain() {
	if r.abandon != nil {
		r.abandoning.Do(func() { close(r.abandon) })
	}
}

// read copies the pty to the stream until the pty's end (EIO on Linux once
// every holder of the terminal is gone, or the pty closed).
func (r *run) read(pty *os.File, s *output.Stream, h *attach.Hub) {
	defer close(r.drained)
	defer s.LookAhead(func() bool { return unread(pty) })()
	copyOut(pty, s, r.matcher, h)
}

// copyOut copies f to the stream, the ready=log matcher m and the hub h
// (either may be nil) until f's end or an error, then flushes the stream.
//
// A reader holds a buffer only while it copies: it waits for output in
// Go's poller with none (f is non-blocking, see pollable), takes one from
// readBufs once the descriptor is readable and gives it back once the
// chunk is copied (the stream, the matcher and the hub copy what they
// keep). So an idle instance costs its parked goroutine and no buffer.
func copyOut(f *os.File, s *output.Stream, m *logMatcher, h *attach.Hub) {
	defer s.Flush()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	for {
		s.Reading()
		var buf *[readSize]byte
		var n int
		var rerr error
		werr := rc.Read(func(fd uintptr) bool {
			buf = readBufs.Get().(*[readSize]byte)
			for {
				n, rerr = syscall.Read(int(fd), buf[:])
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				readBufs.Put(buf)
				buf = nil
				return false // wait in the poller, holding no buffer
			}
			return true
		})
		if n > 0 {
			s.Write(buf[:n]) // may wait while a slow stdout still moves
			if m != nil {
				m.Write(buf[:n])
			}
			if h != nil {
				h.Write(buf[:n])
			}
		}
		if buf != nil {
			readBufs.Put(buf)
		}
		if werr != nil || rerr != nil || n <= 0 { // EIO: the pty's end; 0: a pipe's
			return
		}
	}
}

// readSize is the most one read takes: as the pty layer hands over at most
// 4 KiB at a time and a pipe 64 KiB, big enough to empty a pipe at once.
const readSize = 64 << 10

// readBufs lends the readers their buffers while they copy.
var readBufs = sync.Pool{New: func() any { return new([readSize]byte) }}

// startPiped starts cmd with output=pipes: stdin /dev/null, stdout and
// stderr two pipes whose read ends it returns, in a session of its own
// without a controlling terminal. The pipes are the poller's: a reader
// waiting on them holds no thread.
func startPiped(cmd *exec.Cmd) (pipes [2]*os.File, err error) {
	var w [2]*os.File
	for i := range pipes {
		if pipes[i], w[i], err = os.Pipe(); err != nil {
			closeAll(pipes[:i], w[:i])
			return [2]*os.File{}, err
		}
	}
	cmd.Stdout, cmd.Stderr = w[0], w[1]
	attr := proctree.SysProcAttr()
	attr.Setctty = false // no terminal to make its own
	cmd.SysProcAttr = attr
	err = cmd.Start()
	closeAll(w[:])
	if err != nil {
		closeAll(pipes[:])
		return [2]*os.File{}, err
	}
	return pipes, nil
}

func closeAll(files ...[]*os.File) {
	for _, fs := range files {
		for _, f := range fs {
			f.Close()
		}
	}
}

// readPipes copies the stdout and stderr pipes of an output=pipes run to
// the stream and its Stderr twin, in a goroutine each; the run is drained
// once both reached their end. The ready=log matcher sees both, each line
// whole from its own pipe.
func (r *run) readPipes(pipes [2]*os.File, s *output.Stream) {
	left := new(atomic.Int32)
	left.Store(2)
	m := r.matcher
	var errm *logMatcher
	if m != nil {
		errm = m.twin()
	}
	done := func() {
		if left.Add(-1) == 0 {
			close(r.drained)
		}
	}
	go func() { defer done(); copyOut(pipes[0], s, m, nil) }()
	go func() { defer done(); copyOut(pipes[1], s.Stderr(), errm, nil) }()
}

// close ends the ready check and the notify socket, and closes the pty
// (or, with output=pipes, both pipes). It never waits: at a run's end
// the output has been read to its end, or the run was abandoned, and a
// reader parked in the poller is woken by the close and returns.
func (r *run) close() { r.closing.Do(r.doClose) }

func (r *run) doClose() {
	if r.cancel != nil {
		r.cancel()
	}
	if r.notify != nil {
		r.notify.Close()
	}
	if r.pty != nil {
		r.pty.Close()
	}
	closeAll(r.pipes[:])
}

// signal sends sig to the run's process group (its session).
func (r *run) signal(sig syscall.Signal) {
	if r != nil && r.pid > 0 {
		syscall.Kill(-r.pid, sig)
	}
}

// stop sends the stop signal to the run's process group, then SIGCONT, so
// that a stopped process (SIGSTOP, Ctrl-Z) can act on it instead of
// waiting for SIGKILL; with leftovers, to every member found too.
func (r *run) stop(sig syscall.Signal, leftovers []int) {
	r.signal(sig)
	for _, pid := range leftovers {
		syscall.Kill(pid, sig)
	}
	if sig != syscall.SIGKILL && sig != syscall.SIGCONT {
		r.signal(syscall.SIGCONT)
		for _, pid := range leftovers {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
}

// describe says how a process ended, whether that is a failure, and the
// exit code mhrun would take from it (128+N for signal N, as shells do).
func describe(st *os.ProcessState) (what string, code int) {
	if st == nil {
		return "ended", 1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %s", policy.SignalName(ws.Signal())), 128 + int(ws.Signal())
	}
	return fmt.Sprintf("exited with code %d", st.ExitCode()), st.ExitCode()
}

// stillExiting adds to cur the members of prev that are still on their
// way out (proctree.Exiting): one found by its MHRUN_RUN alone is not
// found once its memory is released, and the run must not end before it
// has.
func stillExiting(prev, cur []int) []int {
	for _, pid := range prev {
		if !slices.Contains(cur, pid) && proctree.Exiting(pid) {
			cur = append(cur, pid)
		}
	}
	return cur
}
