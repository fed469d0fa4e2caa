// Package runner runs a formation: every instance under its own pty, their
// output merged, restarts by policy, and the whole tree stopped cleanly.
//
// One supervisor goroutine (Run's loop) owns every instance and its state
// machine; helper goroutines (a pty reader and a waiter per run, timers,
// the orphan reaper) only report to it through channels.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"mhrun/attach"
	"mhrun/balance"
	"mhrun/formation"
	"mhrun/output"
	"mhrun/policy"
	"mhrun/procfile"
	"mhrun/proctree"
	"mhrun/socket"
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
	// Guard, when set, is the mhrun executable to start as the formation's
	// guard (see guard.go): what the runner leaves when it is killed is
	// stopped by it. Linux only.
	Guard string
	// Sample is how often the memory of instance trees is read for
	// memory= caps; 0 means every second.
	Sample time.Duration
	// Control makes the runner listen on Socket for control requests.
	Control bool
	// BalanceHost is the interface balancers listen on; "" is 127.0.0.1.
	BalanceHost string
	// Logs, if set, also gets every output line (log files); its errors
	// are shown as events. LogDir is where its combined log is, for
	// `mhrun logs -n` beyond what memory holds.
	Logs   LogSink
	LogDir string

	// answered, in tests, is told how long the supervisor took to answer
	// each control request, from the hand-over to the reply: the loop must
	// never block.
	answered func(cmd socket.Command, d time.Duration)
	// clock is the supervisor's time (clock.go); nil is the real clock.
	// Only this package's tests set it, to a fake they step, so it is not
	// exported: a program has no use for a runner on another time, and an
	// exported field would make the clock interface a promise to keep.
	clock clock
}

// LogSink is where the log files are written (logfile.Sink).
type LogSink interface {
	Write(name string, t time.Time, line []byte)
	Errors() <-chan string
}

// tap sees every output line on the output's writer goroutine.
func (r *Runner) tap(name string, line []byte) {
	now := time.Now()
	r.logs.add(name, now, line)
	if r.o.Logs != nil {
		r.o.Logs.Write(name, now, line)
	}
}

// Runner runs one formation once.
type Runner struct {
	f      *formation.Formation
	o      Options
	out    *output.Output
	insts  []*instance
	exits  chan exit
	spawns chan spawned
	wakes  chan wake
	crons  chan *cronJob
	ready  chan readyEvent

	requests chan request // from control connections
	drains   chan drained // balanced runs drained of their connections

	balancers map[string]*balance.Balancer // by process name
	balanceWG sync.WaitGroup
	seq       int           // numbers runs
	token     string        // this runner's identity, see members.go
	loopDone  chan struct{} // closed when the supervisor stops answering
	logs      *logbook
	done      chan struct{} // closed when the supervisor returns
	width     int           // the prefix's width, taken from the terminal for the ptys

	mu    sync.Mutex // guards known, shared with the orphan reaper
	known map[int]bool

	reload    *reloading // a rolling reload under way, or nil
	stopping  bool       // a stop of the formation is under way
	forced    bool       // a second interrupt: kill without waiting for grace
	code      int        // mhrun's exit code
	clock     clock      // the time of every policy wait (clock.go)
	killTimer timer      // the earliest SIGKILL due (armKill)
	killC     <-chan time.Time

	guard   *guard           // nil without one
	watchC  <-chan string    // processes whose watched files changed
	sampler proctree.Sampler // reads instance trees for memory caps
	stats   statusSampler    // fills status rows, off the loop
	roots   []int            // reused by sampleMemory
}

// wake is a timer firing for an instance: a restart after backoff, or
// another try of the singleton lock in standby.
type wake struct {
	inst *instance
	gen  int
}

// Run runs the formation until it stops, and returns mhrun's exit code:
// 0 after a requested stop or when everything finished cleanly, else the
// code of the process that gave up.
func Run(ctx context.Context, f *formation.Formation, o Options) (int, error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.clock == nil {
		o.clock = realClock{}
	}
	r := &Runner{f: f, o: o, clock: o.clock, exits: make(chan exit), spawns: make(chan spawned), wakes: make(chan wake), crons: make(chan *cronJob), ready: make(chan readyEvent), requests: make(chan request), drains: make(chan drained), balancers: map[string]*balance.Balancer{}, loopDone: make(chan struct{}), logs: newLogbook(), done: make(chan struct{}), known: map[int]bool{}, token: newToken()}
	width := len("mhrun")
	for _, p := range f.Processes {
		for n := 1; n <= p.Scale; n++ {
			in := &instance{proc: p, n: n, name: p.Instance(n), color: p.Index, hub: attach.New()}
			width = max(width, len(in.name))
			r.insts = append(r.insts, in)
		}
	}
	r.width = width + len(" | ")
	if o.Timestamps {
		r.width += len("15:04:05 ")
	}
	if err := checkMemorySupport(f); err != nil {
		return 1, err
	}
	r.out = output.New(o.Stdout, output.Options{Color: o.Color, Timestamps: o.Timestamps, NameWidth: width, Tap: r.tap})
	defer r.out.Close()
	if len(r.insts) == 0 {
		r.out.Event("nothing to run: every process has scale 0")
		return 0, nil
	}

	w, err := r.startWatch()
	if err != nil {
		return 1, err
	}
	if err := r.startBalancers(o.BalanceHost); err != nil {
		return 1, err
	}
	defer r.closeBalancers()
	if w != nil {
		defer w.Close()
		r.watchC = w.C()
	}

	var wg sync.WaitGroup
	defer func() { close(r.done); wg.Wait() }()
	if o.Control {
		srv, err := socket.Listen(o.Socket)
		if err != nil {
			return 1, fmt.Errorf("control socket: %w", err)
		}
		sctx, cancel := context.WithCancel(context.Background())
		wg.Add(1)
		go func() { defer wg.Done(); srv.Serve(sctx, control{r}) }()
		defer func() {
			r.out.Close() // every line reaches the logbook's followers first
			r.logs.close()
			cancel()
			srv.Close()
		}()
	}
	if o.Subreaper {
		if err := proctree.SetSubreaper(); err != nil {
			r.out.Event("cannot become child subreaper (%v): double-forked daemons may escape a stop", err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); proctree.ReapOrphans(r.done, r.isKnown) }()
	}

	if o.Guard != "" && proctree.HasProc() {
		g, err := startGuard(o.Guard, r.token)
		if err != nil {
			r.out.Event("%v: processes may outlive a runner that is killed", err)
		} else {
			r.guard = g
			r.known[g.pid()] = true // its own waiter reaps it
			defer g.finish(2 * time.Second)
		}
	}
	for _, in := range r.insts {
		in.stream = r.out.Stream(in.name, in.color)
		if in.proc.Policy.Schedule != "" {
			in.state = StateScheduled
		} else {
			r.launch(in)
		}
	}
	r.startCrons()
	r.loop(ctx)
	close(r.loopDone)
	r.sweep()
	for _, in := range r.insts {
		if in.run != nil {
			in.run.close()
		}
		in.release()
		in.hub.Close("the formation stopped")
	}
	return r.code, nil
}

// loop is the supervisor: it owns every instance until none is alive.
func (r *Runner) loop(ctx context.Context) {
	done := ctx.Done()
	var logErrs <-chan string
	if r.o.Logs != nil {
		logErrs = r.o.Logs.Errors()
	}
	mem := r.watchMemory()
	defer mem.stop()
	r.killTimer, r.killC = r.clock.NewTimer(time.Hour)
	r.killTimer.Stop()
	defer r.killTimer.Stop()
	waited := false // a request was taken out of turn last time round
	for r.alive() > 0 {
		// A control request goes before a backlog of events (forty
		// instances restarting at once are 120 of them), but never twice
		// in a row: a flood of requests cannot starve the events either.
		if !waited {
			select {
			case q := <-r.requests:
				waited = true
				r.onRequest(q)
				continue
			default:
			}
		}
		waited = false
		select {
		case s := <-r.spawns:
			r.onSpawned(s)
		case e := <-r.exits:
			if e.end {
				r.onEnd(e)
			} else {
				r.onExit(e)
			}
		case w := <-r.wakes:
			r.onWake(w)
		case e := <-r.ready:
			r.onReady(e)
		case d := <-r.drains:
			r.onDrained(d)
		case msg, ok := <-logErrs:
			if !ok {
				logErrs = nil
				continue
			}
			r.out.Event("%s", msg)
		case q := <-r.requests:
			r.onRequest(q)
		case j := <-r.crons:
			r.onCron(j)
		case <-mem.C():
			r.sampleMemory(mem)
		case name := <-r.watchC:
			r.onWatch(name)
		case sig := <-r.o.Signals:
			if sig == syscall.SIGWINCH {
				r.resize()
				continue
			}
			r.interrupt(sig.String())
		case <-done:
			done = nil
			r.interrupt("stop request")
		case <-r.killC:
			r.killOverdue()
		}
	}
}

// onRequest answers a control request; a reload answers when it ends.
func (r *Runner) onRequest(q request) {
	if q.req.Cmd == socket.CmdReload {
		r.startReload(q)
		return
	}
	q.reply <- r.handle(q.req)
}

// onWake is a timer for an instance: the end of a backoff, or another
// try of a singleton lock; a wake from before a stop or start is stale.
func (r *Runner) onWake(w wake) {
	if w.gen != w.inst.gen {
		return
	}
	switch w.inst.state {
	case StateBackoff:
		r.start(w.inst)
	case StateStandby:
		r.launch(w.inst)
	}
}

// launch starts an instance once it may: after its dependencies are
// ready, and holding its singleton lock; until then it waits or stands by.
func (r *Runner) launch(in *instance) {
	if r.stopping {
		in.state = StateStopped
		return
	}
	if waiting := r.waitingFor(in.proc); len(waiting) > 0 {
		in.state = StateWaiting
		in.reason = "waiting for " + strings.Join(waiting, ", ")
		return
	}
	ok, err := r.acquire(in)
	if err != nil {
		r.out.Event("%s: %v", in.name, err)
		r.giveUp(in, 1, "could not take its singleton lock")
		return
	}
	if !ok {
		if in.state != StateStandby {
			in.state = StateStandby
			in.reason = "singleton lock held elsewhere: " + singletonPath(r.f, in.proc)
			r.out.Event("%s: standby, its singleton lock is held elsewhere (%s)", in.name, singletonPath(r.f, in.proc))
		}
		r.after(in, standbyPoll)
		return
	}
	if in.state == StateStandby {
		r.out.Event("%s: took the singleton lock, starting", in.name)
	}
	r.start(in)
}

// start starts a run of the instance; a start that fails is a failed run.
func (r *Runner) start(in *instance) {
	cmd := exec.Command("/bin/sh", "-c", procfile.ShellCommand(in.proc.Command))
	cmd.Dir = r.f.Dir
	cmd.Env = r.f.Env(in.proc, in.n, r.o.Socket)
	port, err := r.portFor(in)
	r.seq++
	// started is taken here, before the fork, so that a test's fake clock,
	// stepped once the child shows it runs, counts from before the step
	run := &run{cmd: cmd, id: in.name + "#" + strconv.Itoa(r.seq), ident: r.token + "." + strconv.Itoa(r.seq), port: port,
		started: r.clock.Now(), drained: make(chan struct{}), abandon: make(chan struct{}), again: in.run != nil}
	// exec keeps the last of a name: PORT and the identity are mhrun's
	cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(port), identityEnv+"="+run.ident)
	if err == nil {
		err = r.prepareReady(in, run)
	}
	if err != nil {
		r.startFailed(in, run, err)
		return
	}
	in.run = run
	in.reason = ""
	in.ready = false
	in.state = StateStarting
	spawn(in, run, r.ptySize(), r.spawns, r.exits, r.done, r.register)
}

// onSpawned is a run's process started, or not: a ready check follows,
// or the stop asked for meanwhile.
func (r *Runner) onSpawned(s spawned) {
	in, run := s.inst, s.run
	if s.err != nil {
		if in.state == StateStopping { // stopped before it could start
			in.exited = false
			r.onEnd(exit{inst: in, run: run, end: true})
			return
		}
		r.startFailed(in, run, s.err)
		return
	}
	run.pid, run.pty = s.pid, s.pty
	notice := ""
	if run.again {
		in.restarts++
		notice = in.name + " restarted: following the new run"
	}
	in.hub.SetPTY(run.pty, notice)
	if in.state == StateStopping { // a stop came while it started
		if in.killed {
			run.stop(syscall.SIGKILL, nil)
		} else {
			run.stop(in.proc.Policy.StopSignalOf(), nil)
		}
		return
	}
	if r.readyOf(in).Kind == policy.ReadyNone || in.proc.Policy.Schedule != "" {
		r.markReady(in)
		return
	}
	r.checkReady(in, run)
}

// startFailed is a start that failed before the process ran: a failed run,
// given up at once when no retry can help.
func (r *Runner) startFailed(in *instance, run *run, err error) {
	run.close()
	r.out.Event("%v", err)
	in.lastExit = "could not start"
	if in.proc.Policy.Schedule != "" { // a job is not retried: its next tick is
		in.release()
		in.state = StateScheduled
		return
	}
	if permanent(err) { // the same start would fail the same way
		r.giveUp(in, 127, "cannot be started: "+err.Error())
		return
	}
	r.afterFailure(in, 127)
}

// permanent reports whether a start failed in a way no retry can fix:
// exec refused the command or the environment as too large or invalid.
func permanent(err error) bool {
	return errors.Is(err, syscall.E2BIG) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENAMETOOLONG)
}

// markReady makes a started instance running, puts it in its balancer's
// pool, and lets what waited for it go.
func (r *Runner) markReady(in *instance) {
	in.state = StateRunning
	in.ready = true
	r.joinPool(in)
	if r.reload != nil && in == r.reload.rep {
		r.reloadReady(in)
	}
	r.advance()
}

// interrupt is a stop asked for from outside: the first one graceful, the
// next one kills at once.
func (r *Runner) interrupt(why string) {
	if r.stopping {
		r.forced = true
		r.out.Event("%s again: killing every process now", why)
		for _, in := range r.insts {
			if in.state == StateRunning || in.state == StateStarting {
				r.stopInstance(in, "") // dependencies still waiting their turn
			}
			if in.state == StateStopping {
				in.deadline = r.clock.Now()
			}
		}
		r.killOverdue()
		return
	}
	r.out.Event("%s: stopping the formation (again to kill at once)", why)
	r.stopAll()
}

// stopAll stops the formation: what has no process stops at once, the
// rest in reverse after= order (dependents first, each within its grace).
func (r *Runner) stopAll() {
	r.stopping = true
	if r.reload != nil {
		r.endReload("", "reload of "+r.reload.proc+" cut short: the formation is stopping")
	}
	for _, in := range r.insts {
		in.held = false
		switch in.state {
		case StateBackoff, StateWaiting, StateStandby, StateScheduled:
			in.gen++
			in.state = StateStopped
			in.release()
		case StateStopping:
			in.restart, in.exited = "", false
		}
	}
	r.advanceStop()
}

// advanceStop sends the stop-signal to every instance that no running
// dependent waits on any more.
func (r *Runner) advanceStop() {
	for _, in := range r.insts {
		if (in.state == StateRunning || in.state == StateStarting) && !r.hasLiveDependents(in.proc) {
			r.stopInstance(in, "")
		}
	}
}

// stopInstance sends the instance its stop-signal and arms SIGKILL after
// its grace; restart, when set, is why it starts again after the exit. On
// an instance already stopping it only changes what follows the stop.
func (r *Runner) stopInstance(in *instance, restart string) {
	if in.state == StateStopping {
		in.restart, in.exited, in.failed = restart, false, false
		return
	}
	in.state = StateStopping
	in.restart = restart
	in.failed = false
	in.exited = false
	in.killed = false
	if r.drainThenSignal(in) {
		// out of the pool now; the signal follows once it settled (at most a
		// quarter of its grace): SIGKILL one grace from here
		in.deadline = r.clock.Now().Add(in.proc.Policy.Grace)
		r.armKill()
		return
	}
	in.deadline = r.clock.Now().Add(in.proc.Policy.Grace)
	in.run.stop(in.proc.Policy.StopSignalOf(), nil)
	r.armKill()
}

// armKill sets the timer for the earliest pending SIGKILL.
func (r *Runner) armKill() {
	var next time.Time
	for _, in := range r.insts {
		if in.state == StateStopping && !in.killed && (next.IsZero() || in.deadline.Before(next)) {
			next = in.deadline
		}
	}
	r.killTimer.Stop()
	if !next.IsZero() {
		r.killTimer.Reset(next.Sub(r.clock.Now()))
	}
}

// killOverdue SIGKILLs every stopping instance past its grace: its group
// and every member of its run, wherever it went. The groups are stopped
// first and the members of every run found in one read of the process
// table, so that forty instances past their grace cost one pass, not
// forty, in the supervisor's loop.
func (r *Runner) killOverdue() {
	now := r.clock.Now()
	var due []*instance
	for _, in := range r.insts {
		if in.state != StateStopping || in.killed || now.Before(in.deadline) {
			continue
		}
		if !r.forced {
			r.out.Event("%s still running after grace %s: killing it", in.name, in.proc.Policy.Grace)
			r.reportOpen(in)
		}
		in.run.signal(syscall.SIGSTOP) // neither grows nor forks while it is looked for
		due = append(due, in)
	}
	if len(due) > 0 {
		s := takeSnapshot()
		for _, in := range due {
			r.killMembers(in, s.members(in.run.pid, in.run.ident))
		}
		s.close()
	}
	r.armKill()
}

// onExit is the leader's exit, the moment wait returns. The run is not
// over while processes it left behind live or its pty has output: they
// are stopped like the instance (stop-signal, then SIGKILL past the
// grace), and the restart policy applies at the run's end (onEnd).
func (r *Runner) onExit(e exit) {
	in, run := e.inst, e.run
	run.exited, run.status, run.exitedAt = true, e.state, r.clock.Now()
	r.forget([]int{run.pid})
	r.leavePool(in, run)
	left := e.left
	if in.state != StateStopping {
		in.state = StateStopping
		in.restart, in.failed, in.killed = "", false, false
		in.exited = true
		in.deadline = r.clock.Now().Add(in.proc.Policy.Grace)
		what, _ := describe(e.state)
		in.reason = what
		if len(left) > 0 {
			in.reason = fmt.Sprintf("%s, stopping %s it left", what, plural(len(left), "process"))
			r.out.Event("%s %s; stopping %s it left running (grace %s)", in.name, what, plural(len(left), "process"), in.proc.Policy.Grace)
		}
	}
	switch {
	case in.killed:
		run.stop(syscall.SIGKILL, left)
		run.giveUpDrain()
	case len(left) > 0:
		run.stop(in.proc.Policy.StopSignalOf(), left)
	}
	r.armKill()
}

// onEnd is the state machine's answer to a run's end: the leader gone,
// nothing of it left, its output read.
func (r *Runner) onEnd(e exit) {
	in := e.inst
	defer r.armKill() // this run has nothing left to kill: the timer moves to the next due, if any
	r.guard.forget(e.run.pid)
	e.run.close()
	in.hub.UnsetPTY(e.run.pty)
	own := in.exited
	in.exited = false
	if rl := r.reload; rl != nil && in == rl.rep && own {
		in.lastExit, _ = describe(e.state)
		in.state = StateStopped
		r.abortReload(in.name + "'s replacement " + in.lastExit + " before it was ready")
		return
	}
	what, code := describe(e.state)
	in.lastExit = what
	if !own {
		restart, failed := in.restart, in.failed
		in.restart, in.failed = "", false
		switch {
		case failed && !r.stopping && !in.removed:
			r.afterFailure(in, 1)
		case restart != "" && !r.stopping && !in.removed:
			r.start(in)
		default:
			in.state = StateStopped
			in.release()
			r.out.Event("%s stopped (%s)", in.name, what)
			if in.removed {
				r.remove(in)
			}
			if r.stopping {
				r.advanceStop()
			}
		}
		return
	}
	in.reason = ""
	if in.proc.Policy.Schedule != "" {
		r.jobExited(in, e.run, what, code)
		return
	}
	p := in.proc.Policy
	if r.clock.Now().Sub(e.run.started) >= p.Stable {
		in.inRow = 0
	}
	if code == 0 {
		if p.Restart != policy.RestartAlways {
			in.state = StateExited
			in.release()
			r.out.Event("%s exited with code 0 (finished)", in.name)
			r.advance() // a finished one-shot counts as ready for after=
			return
		}
		// restart=always: a clean exit comes back after MIN and never counts
		r.out.Event("%s exited with code 0, restarting in %s", in.name, p.BackoffMin)
		r.restartIn(in, p.BackoffMin)
		return
	}
	r.out.Event("%s %s", in.name, what)
	if code == 127 && e.run.exitedAt.Sub(e.run.started) < notFoundWindow {
		// the shell's "not found": no restart will find the program
		r.giveUp(in, code, "gave up: command not found ("+in.proc.Command+")")
		return
	}
	if p.Restart == policy.RestartNever {
		r.giveUp(in, code, "gave up (restart=never)")
		return
	}
	r.afterFailure(in, code)
}

// notFoundWindow is how soon after its start an exit 127, the shell's
// "command not found", counts as one: a program that ran for longer and
// chose 127 is an ordinary failure.
const notFoundWindow = time.Second

// afterFailure counts a failed run and either schedules the restart or
// gives up past max-restarts.
func (r *Runner) afterFailure(in *instance, code int) {
	p := in.proc.Policy
	if p.Restart == policy.RestartNever || r.stopping {
		r.giveUp(in, code, "gave up (restart=never)")
		return
	}
	in.inRow++
	if in.inRow > p.MaxRestarts {
		r.giveUp(in, code, "gave up after "+plural(in.inRow-1, "restart")+" in a row")
		return
	}
	d := backoff{p.BackoffMin, p.BackoffMax}.delay(in.inRow, 2*rand.Float64()-1)
	r.out.Event("%s: restart %d in %s", in.name, in.inRow, d.Round(time.Millisecond))
	r.restartIn(in, d)
}

// restartIn puts the instance in backoff; the timer's wake restarts it.
func (r *Runner) restartIn(in *instance, d time.Duration) {
	in.state = StateBackoff
	r.after(in, d)
}

// after wakes the supervisor for the instance in d, unless its gen moves
// on first (a stop or another start cancels the wake).
func (r *Runner) after(in *instance, d time.Duration) {
	in.gen++
	w := wake{in, in.gen}
	r.clock.AfterFunc(d, func() {
		select {
		case r.wakes <- w:
		case <-r.done:
		}
	})
}

// giveUp leaves the instance errored; the formation stops with its code
// unless the process is optional.
func (r *Runner) giveUp(in *instance, code int, why string) {
	in.state = StateErrored
	in.reason = why
	in.release()
	if r.stopping {
		return
	}
	defer r.advance() // its dependents will not start: say so
	if in.proc.Policy.Optional {
		r.out.Event("%s %s; %s is optional: the rest run on", in.name, why, in.proc.Name)
		return
	}
	r.code = code
	r.out.Event("%s %s: stopping the formation", in.name, why)
	r.stopAll()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	if strings.HasSuffix(word, "s") {
		return strconv.Itoa(n) + " " + word + "es" // processes
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// alive counts instances that have, or will have, a process.
func (r *Runner) alive() int {
	n := 0
	for _, in := range r.insts {
		if in.alive() {
			n++
		}
	}
	return n
}

// sweep ends what outlived its instance: daemons adopted by mhrun as
// subreaper. They get SIGTERM, then SIGKILL after the longest grace; the
// dead are reaped before mhrun exits.
func (r *Runner) sweep() {
	left := slices.DeleteFunc(proctree.Descendants(os.Getpid()), func(pid int) bool { return pid == r.guard.pid() })
	if len(left) == 0 {
		return
	}
	defer proctree.ReapZombies(os.Getpid(), r.isKnown)
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
	for _, pid := range proctree.Descendants(os.Getpid()) {
		if pid != r.guard.pid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
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
	if !proctree.HasProc() {
		return false
	}
	st, ok := proctree.State(pid)
	return !ok || st == 'Z'
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
	r.guard.tell(pid)
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
		if in.run != nil && in.state == StateRunning {
			attach.SetSize(in.run.pty, int(size.Cols), int(size.Rows))
		}
	}
}
