// Package runner runs a formation: every instance under its own pty, their
// output merged, restarts by policy, and the whole tree stopped cleanly.
//
// One supervisor goroutine (Run's loop) owns every instance and its state
// machine; helper goroutines (a pty reader and a waiter per run, timers,
// the orphan reaper) only report to it through channels.
package runner

import (
	"context"
	"fmt"
	"io"
	"os"
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
	// overdue, in tests, is told after each killOverdue pass how many
	// instances it killed and how many times it read the process table.
	overdue func(killed int, reads int64)
	// clock is the supervisor's time (clock.go); nil is the real clock.
	// Only this package's tests set it, to a fake they step, so it is not
	// exported: a program has no use for a runner on another time, and an
	// exported field would make the clock interface a promise to keep.
	clock clock
}

// LogSink is where the log files are written (logfile.Sink).
type LogSink interface {
	Write(name string, t time.Time, line []byte)
	WriteErr(name string, t time.Time, line []byte) // a stderr line (output=pipes)
	Errors() <-chan string
}

// tap sees every output line on the output's writer goroutine.
func (r *Runner) tap(name string, stderr bool, line []byte) {
	now := time.Now()
	r.logs.add(name, stderr, now, line)
	switch {
	case r.o.Logs == nil:
	case stderr:
		r.o.Logs.WriteErr(name, now, line)
	default:
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
	sockets   map[string]*sharedSocket // socket= processes' listeners, by process name (listen.go)
	seq       int                      // numbers runs
	token     string                   // this runner's identity, see members.go
	loopDone  chan struct{}            // closed when the supervisor stops answering
	logs      *logbook
	done      chan struct{} // closed when the supervisor returns
	width     int           // the prefix's width, taken from the terminal for the ptys

	mu sync.Mutex // guards known, shared with the orphan reaper
	// starting is held shared by every start under way (register) and
	// exclusively by the orphan reaper's pass (reap), so that starts run
	// side by side while no pid is reaped before it is known.
	starting sync.RWMutex
	known    map[int]bool

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
	r := &Runner{f: f, o: o, clock: o.clock, exits: make(chan exit), spawns: make(chan spawned), wakes: make(chan wake), crons: make(chan *cronJob), ready: make(chan readyEvent), requests: make(chan request), drains: make(chan drained), balancers: map[string]*balance.Balancer{}, sockets: map[string]*sharedSocket{}, loopDone: make(chan struct{}), logs: newLogbook(), done: make(chan struct{}), known: map[int]bool{}, token: newToken()}
	width := len(output.EventName)
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
	if err := r.startSockets(o.BalanceHost); err != nil {
		return 1, err
	}
	defer r.closeSockets()
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
		go func() { defer wg.Done(); proctree.ReapOrphans(r.done, r.reap) }()
	}

	if o.Guard != "" && proctree.HasProc() {
		r.starting.RLock() // the reaper runs already: held off as for any start
		g, err := startGuard(o.Guard, r.token)
		if err != nil {
			r.out.Event("%v: processes may outlive a runner that is killed", err)
		} else {
			r.guard = g
			r.mu.Lock()
			r.known[g.pid()] = true // its own waiter reaps it
			r.mu.Unlock()
			defer g.finish(2 * time.Second)
		}
		r.starting.RUnlock()
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
			in.then, in.why = thenStop, ""
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

// armKill sets the timer for the earliest pending SIGKILL.
func (r *Runner) armKill() {
	var next time.Time
	for _, in := range r.insts {
		if in.state == StateStopping && !in.run.killed && (next.IsZero() || in.deadline.Before(next)) {
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
		if in.state != StateStopping || in.run.killed || now.Before(in.deadline) {
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
		reads := tableReads.Load()
		s := takeSnapshot()
		found := make([][]int, len(due))
		for i, in := range due {
			found[i] = s.members(in.run.pid, in.run.ident)
		}
		s.close()
		reads = tableReads.Load() - reads
		for i, in := range due {
			r.killMembers(in, found[i])
		}
		if r.o.overdue != nil {
			r.o.overdue(len(due), reads)
		}
	}
	r.armKill()
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
	defer r.reap()
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
// never takes the exit status of a child mhrun waits for itself. Starts
// run side by side: each holds starting shared, from the fork until its
// pid is known.
func (r *Runner) register(start func() (int, error)) error {
	r.starting.RLock()
	defer r.starting.RUnlock()
	pid, err := start()
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.known[pid] = true
	r.guard.tell(pid)
	return nil
}

// reap waits for the dead children of mhrun that no start knows: adopted
// orphans. It waits for the starts under way to register first.
func (r *Runner) reap() {
	r.starting.Lock()
	defer r.starting.Unlock()
	proctree.ReapZombies(os.Getpid(), r.isKnown)
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
