package runner

// The instance lifecycle in one file: its states, what follows a stop,
// and the transitions. Events reach the supervisor's loop (runner.go) from
// a run's goroutine (spawned, exit, run.go), ready checks (ready.go),
// timers (wake, cron, memory, the SIGKILL deadline) and control requests
// (control.go), which call the request functions here; only this file's
// functions change an instance's state.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mhrun/attach"
	"mhrun/formation"
	"mhrun/output"
	"mhrun/policy"
	"mhrun/procfile"
)

// State is where an instance is in its life. Only the supervisor goroutine
// changes it, in answer to the events below; helper goroutines only report.
//
//	state      event                        next state (and what is done)
//	waiting    dependencies ready           starting (standby without its lock)
//	standby    lock taken (poll)            starting
//	scheduled  cron tick                    starting
//	starting   ready check passed           running
//	starting   ready check timed out        stopping (a failed start)
//	starting,  leader exited                stopping (its leftovers get the
//	running                                   stop-signal; the policy waits)
//	starting,  stop, restart, scale down,   stopping (stop-signal, SIGCONT,
//	running      memory, cron-restart,        SIGKILL after grace)
//	             watch, formation stop
//	stopping   leader exited                stopping (leftovers signalled)
//	stopping   grace passed                 stopping (SIGKILL to every member)
//	stopping   run ended (nothing left,     starting (restart asked), backoff
//	             pty read to its end)         (failure), exited (exit 0,
//	                                          one-shot), errored (gave up),
//	                                          scheduled (a job), stopped
//	backoff    wake                         starting
//	exited,    start, restart               starting (or waiting, standby)
//	errored,
//	stopped
//
// What a stopping instance does at its run's end is instance.then (see
// then): the restart policy decides only when the leader exited by itself
// and no request came before the end; a request during a stop changes only
// what follows it (a restart during a stop starts it again after the stop;
// a stop during a restart leaves it stopped). A run's own facts (ready,
// SIGKILL sent) are fields of the run, so a new run starts without them.
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

// then is what follows a stopping instance's run end.
type then uint8

const (
	thenStop    then = iota // stays stopped: a stop request, a scale down, the formation's stop
	thenRestart             // starts again at once: restart, memory, watch, cron-restart (why says which)
	thenFailed              // a failed start (not ready in time): a failure, so backoff and max-restarts
	thenPolicy              // the leader exited by itself: the restart policy decides
)

// instance is one slot of a process (web.2) across its runs; only the
// supervisor goroutine touches it.
type instance struct {
	proc   *formation.Process
	n      int
	name   string
	color  int
	stream *output.Stream
	hub    *attach.Hub // the terminal clients attach to, across runs

	state    State
	run      *run      // the current or last run; nil before the first
	deadline time.Time // SIGKILL time while stopping
	then     then      // while stopping: what follows the run's end
	why      string    // with thenRestart: why it starts again ("memory", "restart requested")
	inRow    int       // failed runs in a row, for backoff and max-restarts
	restarts int       // restarts so far, for status
	gen      int       // bumped to cancel a pending restart timer
	lastExit string    // how the last run ended ("exited with code 1")
	reason   string    // why the state is what it is
	rss      int64     // the tree's RSS at the last sample
	lock     *os.File  // the singleton lock, held while the instance lives
	next     time.Time // a job's next tick

	// Facts of the slot, not of a run or a state: they outlive both.
	held    bool // stopped on request: stays stopped until a start, and keeps the runner up
	fresh   bool // on its replacement port: a reload's replacement, through its restarts until the next reload
	shared  bool // its stream and hub live on in another instance (a reload)
	removed bool // scaled away: forgotten once its process is gone
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
	r.withSocket(in, cmd) // socket=: fd 3 and LISTEN_PID (listen.go)
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
	in.state = StateStarting
	spawn(in, run, r.ptySize(), r.spawns, r.exits, r.done, r.register)
}

// onSpawned is a run's process started, or not: a ready check follows,
// or the stop asked for meanwhile.
func (r *Runner) onSpawned(s spawned) {
	in, run := s.inst, s.run
	if s.err != nil {
		if in.state == StateStopping { // stopped before it could start
			r.onEnd(exit{inst: in, run: run, end: true})
			return
		}
		r.startFailed(in, run, s.err)
		return
	}
	run.pid, run.pty, run.pipes = s.pid, s.pty, s.pipes
	notice := ""
	if run.again {
		in.restarts++
		notice = in.name + " restarted: following the new run"
	}
	in.hub.SetPTY(run.pty, notice)
	if in.state == StateStopping { // a stop came while it started
		if run.killed {
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
	in.run.ready = true
	r.joinPool(in)
	if r.reload != nil && in == r.reload.rep {
		r.reloadReady(in)
	}
	r.advance()
}

// stopInstance sends the instance its stop-signal and arms SIGKILL after
// its grace; restart, when set, is why it starts again after the exit
// (thenRestart), else it stays stopped (thenStop). On an instance already
// stopping it only changes what follows the stop.
func (r *Runner) stopInstance(in *instance, restart string) {
	in.then, in.why = thenStop, restart
	if restart != "" {
		in.then = thenRestart
	}
	if in.state == StateStopping {
		return
	}
	in.state = StateStopping
	in.deadline = r.clock.Now().Add(in.proc.Policy.Grace)
	if r.drainThenSignal(in) {
		// out of the pool now; the signal follows once it settled (at most a
		// quarter of its grace): SIGKILL one grace from here
		r.armKill()
		return
	}
	in.run.stop(in.proc.Policy.StopSignalOf(), nil)
	r.armKill()
}

// failStart stops a started instance whose ready check failed: a failed
// run, so backoff and max-restarts apply after the stop.
func (r *Runner) failStart(in *instance) {
	r.stopInstance(in, "")
	in.then = thenFailed
}

// requestRestart is `mhrun restart`: a running instance stops and starts
// again; one stopping starts again after its stop; one without a process
// starts now.
func (r *Runner) requestRestart(in *instance) bool {
	switch {
	case in.state == StateRunning || in.state == StateStarting:
		r.out.Event("%s: restart requested", in.name)
		r.stopInstance(in, "restart requested")
	case in.state == StateStopping:
		r.stopInstance(in, "restart requested") // restarts after the stop
	default:
		r.startNow(in, "restart requested")
	}
	return true
}

// requestStop is `mhrun stop`: the instance stops (a stop under way, a
// restart's included, then leaves it stopped) and stays stopped, held,
// until a start; a pending restart or standby poll is cancelled.
func (r *Runner) requestStop(in *instance) bool {
	switch in.state {
	case StateRunning, StateStarting:
		r.out.Event("%s: stop requested", in.name)
		r.stopInstance(in, "")
	case StateStopping:
		r.stopInstance(in, "") // stays stopped after the stop
	default:
		in.gen++ // cancels a pending restart or standby poll
		in.state = StateStopped
		in.release()
	}
	in.held = true
	in.reason = "stopped on request"
	return true
}

// requestStart is `mhrun start NAME` on a running formation: an instance
// without a process starts now; one being stopped starts again after the
// stop (unless scaled away); one running is left alone (false).
func (r *Runner) requestStart(in *instance) bool {
	if in.state == StateStopping && !in.removed {
		// a stop under way (mhrun stop, then start): start again after it
		in.held = false
		r.stopInstance(in, "start requested")
		r.out.Event("%s: start requested, once it has stopped", in.name)
		return true
	}
	if in.hasProcess() {
		return false
	}
	r.startNow(in, "start requested")
	return true
}

// startNow starts an instance that has no process: a held, finished,
// errored or backing-off one, or a job between ticks (which runs now).
func (r *Runner) startNow(in *instance, why string) {
	r.out.Event("%s: %s", in.name, why)
	in.held = false
	in.inRow = 0
	in.gen++
	if in.proc.Policy.Schedule != "" {
		if ok, err := r.acquire(in); err != nil || !ok {
			r.out.Event("%s: not run, its singleton lock is held elsewhere", in.name)
			return
		}
		r.start(in)
		return
	}
	r.launch(in)
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
		in.then, in.why = thenPolicy, ""
		in.deadline = r.clock.Now().Add(in.proc.Policy.Grace)
		what, _ := describe(e.state)
		in.reason = what
		if len(left) > 0 {
			in.reason = fmt.Sprintf("%s, stopping %s it left", what, plural(len(left), "process"))
			r.out.Event("%s %s; stopping %s it left running (grace %s)", in.name, what, plural(len(left), "process"), in.proc.Policy.Grace)
		}
	}
	switch {
	case run.killed:
		run.stop(syscall.SIGKILL, left)
		run.giveUpDrain()
	case len(left) > 0:
		run.stop(in.proc.Policy.StopSignalOf(), left)
	}
	r.armKill()
}

// onEnd is the state machine's answer to a run's end: the leader gone,
// nothing of it left, its output read. What follows is instance.then.
func (r *Runner) onEnd(e exit) {
	in := e.inst
	defer r.armKill() // this run has nothing left to kill: the timer moves to the next due, if any
	r.guard.forget(e.run.pid)
	e.run.close()
	in.hub.UnsetPTY(e.run.pty)
	then := in.then
	in.then, in.why = thenStop, ""
	what, code := describe(e.state)
	in.lastExit = what
	if rl := r.reload; rl != nil && in == rl.rep && then == thenPolicy {
		in.state = StateStopped
		r.abortReload(in.name + "'s replacement " + what + " before it was ready")
		return
	}
	stays := r.stopping || in.removed // the formation's stop and a scale down win over a restart
	switch {
	case then == thenPolicy:
		r.byPolicy(in, e.run, what, code)
	case then == thenFailed && !stays:
		r.afterFailure(in, 1)
	case then == thenRestart && !stays:
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
}

// byPolicy is the restart policy's decision on a run whose leader exited
// by itself: a job waits for its next tick; exit 0 finishes a one-shot or,
// with restart=always, restarts after backoff's MIN without counting; a
// failure restarts after backoff, or gives up (restart=never, max-restarts,
// a command not found).
func (r *Runner) byPolicy(in *instance, run *run, what string, code int) {
	in.reason = ""
	if in.proc.Policy.Schedule != "" {
		r.jobExited(in, run, what, code)
		return
	}
	p := in.proc.Policy
	if r.clock.Now().Sub(run.started) >= p.Stable {
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
	if code == 127 && run.exitedAt.Sub(run.started) < notFoundWindow {
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
