package runner

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"mhrun/formation"
	"mhrun/policy"
	"mhrun/proctree"
)

// Memory caps. A capped tree (the RSS of the instance's process and every
// descendant) is read on a pace of its own, the timer re-armed after each
// read for the tree due first:
//
//   - every --sample (1s), all trees together, while far under their caps
//     and not growing towards them: the periodic read;
//   - every fastSample (100 ms) while its last read was above half its
//     cap, and while it is being stopped for memory; a new run is read
//     within fastSample of running (the timer never sleeps longer than
//     that) and again fastSample later, which gives its growth;
//   - sooner, down to floorSample (20 ms), when its growth between its
//     last two reads would take it to its cap (or, being stopped, to twice
//     its cap) within two intervals: then at half the time it has left.
//
// Over its cap a running tree gets a graceful restart (stop-signal,
// grace, SIGKILL); being stopped for memory, past twice its cap it is
// SIGKILLed at once, group and descendants, without waiting for its grace.
//
// Reads happen in the supervisor loop. The periodic read is one pass over
// all of /proc (Sampler.Sample: a file a process on the machine, about
// 5-13 ms for 500 processes on a 2-CPU machine); reads in between walk
// only the trees due (Sampler.SampleTrees: three files a process plus one
// a thread, about 0.25 ms for two Go processes on the same machine),
// unless that would read more files than a full pass. However fast a tree
// grows, the next read is never sooner than sampleBudget times the last
// read in between took, so those take at most a twentieth of the loop's
// time (where the kernel lists no children, each is a full pass).
const (
	fastSample   = 100 * time.Millisecond
	floorSample  = 20 * time.Millisecond
	sampleBudget = 20
)

// checkMemorySupport refuses memory= where there is no /proc to read, so a
// cap is never silently ignored.
func checkMemorySupport(f *formation.Formation) error {
	if proctree.MemorySupported() {
		return nil
	}
	var names []string
	for _, p := range f.Processes {
		if p.Policy.Memory > 0 && p.Scale > 0 {
			names = append(names, p.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("memory= needs /proc to measure process trees, which this system lacks: remove memory= from %s, or run on Linux", strings.Join(names, ", "))
}

// capped reports whether any process of the formation has a memory cap.
func (r *Runner) capped() bool {
	for _, in := range r.insts {
		if in.proc.Policy.Memory > 0 {
			return true
		}
	}
	return false
}

// pace is how often trees are read: every base (--sample), every fast
// near the cap, never more often than floor.
type pace struct{ base, fast, floor time.Duration }

func newPace(base time.Duration) pace {
	if base <= 0 {
		base = time.Second
	}
	fast := min(fastSample, base)
	return pace{base: base, fast: fast, floor: min(floorSample, fast)}
}

// next is how long until a tree is read again, given its last read (rss)
// and the one before it (prev, gap earlier; prev 0 if there was none), the
// limit it is held to, and whether it is hot: near its cap, new, or being
// stopped. A tree growing towards its limit is read again at half the
// time the growth would take to reach it.
func (p pace) next(rss, prev int64, gap time.Duration, limit int64, hot bool) time.Duration {
	d := p.base
	if hot {
		d = p.fast
	}
	if prev > 0 && rss > prev && gap > 0 {
		left := float64(limit-rss) / float64(rss-prev) * float64(gap)
		if left < float64(2*d) {
			d = time.Duration(left / 2)
		}
	}
	return max(d, p.floor)
}

// memWatch paces the memory reads: a timer the loop waits on, re-armed
// by sampleMemory, and what it knows of each capped tree. Only the
// supervisor goroutine uses it; a nil memWatch (no caps) never fires.
type memWatch struct {
	timer *time.Timer
	pace  pace
	trees map[*instance]*watched

	periodic time.Time     // the next read of every watched tree
	cost     time.Duration // how long the last read between periodic ones took
	last     time.Time     // when it ended

	due []*instance // reused by sampleMemory
}

// watched is what memWatch knows of one instance's tree.
type watched struct {
	run   *run      // the run the figures are of; another run starts afresh
	at    time.Time // its last read
	rss   int64     // what it read
	next  time.Time // when it is due again
	files int       // /proc files its last walk read
}

// watchMemory starts the memory reads of a formation with caps, the
// first a fast interval away; nil without caps.
func (r *Runner) watchMemory() *memWatch {
	if !r.capped() {
		return nil
	}
	p := newPace(r.o.Sample)
	return &memWatch{timer: time.NewTimer(p.fast), pace: p, trees: map[*instance]*watched{}, periodic: time.Now().Add(p.fast)}
}

// C is the channel the loop waits on; nil (never ready) without caps.
func (w *memWatch) C() <-chan time.Time {
	if w == nil {
		return nil
	}
	return w.timer.C
}

func (w *memWatch) stop() {
	if w != nil {
		w.timer.Stop()
	}
}

// memLimit is what the instance's tree is held to now: its cap while it
// runs, twice its cap while it is being stopped for memory and not yet
// killed; 0 when it is not watched.
func memLimit(in *instance) int64 {
	most := in.proc.Policy.Memory
	switch {
	case most <= 0 || in.run == nil || in.run.pid == 0 || in.run.exited:
		return 0 // not started yet, or its leader is gone: no tree to read
	case in.state == StateRunning:
		return most
	case in.state == StateStopping && in.then == thenRestart && in.why == "memory" && !in.run.killed:
		return 2 * most
	}
	return 0
}

// sampleMemory reads the capped trees that are due, restarts the ones
// over their cap (such restarts never count as failures), kills the ones
// being restarted for memory that passed twice their cap, and re-arms the
// timer for the next tree due. It runs when w's timer fires.
//
// Every --sample, every watched tree is due, and they are read together
// (the periodic read); in between, only new runs and hot trees are.
func (r *Runner) sampleMemory(w *memWatch) {
	if r.stopping {
		return // a stop of the formation is final: nothing to restart
	}
	now := time.Now()
	soon := now.Add(w.pace.floor / 2)
	periodic := !w.periodic.After(soon)
	if periodic {
		w.periodic = now.Add(w.pace.base)
	}
	wake := minTime(now.Add(w.pace.fast), w.periodic) // look for new runs this often
	due, files := w.due[:0], 0
	for _, in := range r.insts {
		if memLimit(in) == 0 {
			delete(w.trees, in)
			continue
		}
		t := w.trees[in]
		if t == nil || t.run != in.run {
			t = &watched{run: in.run, files: 4} // a new run: read it now
			w.trees[in] = t
		}
		if !periodic && t.next.After(soon) {
			wake = minTime(wake, t.next)
			continue
		}
		due = append(due, in)
		files += t.files
	}
	w.due = due
	if len(due) == 0 {
		w.timer.Reset(max(time.Until(wake), 0))
		return
	}
	roots := r.roots[:0]
	for _, in := range due {
		roots = append(roots, in.run.pid)
	}
	r.roots = roots
	// Walk the due trees, unless that reads more files than one pass
	// over /proc.
	start := time.Now()
	var got map[int]proctree.TreeSample
	if !r.sampler.Walks() || files >= r.sampler.Processes() {
		got = r.sampler.Sample(roots)
	} else {
		got = r.sampler.SampleTrees(roots)
	}
	now = time.Now()
	if !periodic { // the periodic read is paid for at --sample, as ever
		w.cost, w.last = now.Sub(start), now
	}
	for _, in := range due {
		s, ok := got[in.run.pid]
		if !ok {
			continue // it ended: its exit is on its way
		}
		if next, ok := r.checkMemory(in, w, s, now); ok {
			wake = minTime(wake, next)
		}
	}
	wake = maxTime(wake, w.last.Add(sampleBudget*w.cost))
	w.timer.Reset(max(time.Until(wake), 0))
}

// checkMemory acts on one read of an instance's tree and says when it is
// due again, or false when it is no longer watched.
func (r *Runner) checkMemory(in *instance, w *memWatch, s proctree.TreeSample, now time.Time) (time.Time, bool) {
	t := w.trees[in]
	prev, gap := t.rss, now.Sub(t.at)
	if t.at.IsZero() {
		prev, gap = 0, 0
	}
	t.at, t.rss = now, s.RSS
	t.files = s.Files
	if t.files == 0 { // read by a full pass: guess stat, task and two threads a process
		t.files = 4 * s.Procs
	}
	in.rss = s.RSS
	most := in.proc.Policy.Memory
	switch in.state {
	case StateRunning:
		if s.RSS > most {
			r.out.Event("%s over memory cap: %s > %s, restarting", in.name, policy.FormatBytes(s.RSS), policy.FormatBytes(most))
			r.stopInstance(in, "memory")
		}
	case StateStopping:
		if s.RSS > 2*most {
			r.out.Event("%s passed twice its memory cap while stopping (%s > 2×%s): killing it now", in.name, policy.FormatBytes(s.RSS), policy.FormatBytes(most))
			r.killTree(in)
			r.armKill()
		}
	}
	limit := memLimit(in)
	if limit == 0 {
		delete(w.trees, in)
		return time.Time{}, false
	}
	hot := prev == 0 || s.RSS > most/2 || in.state == StateStopping
	// A tree with nothing to hurry waits for the next periodic read.
	t.next = minTime(now.Add(w.pace.next(s.RSS, prev, gap, limit, hot)), w.periodic)
	return t.next, true
}

// killTree SIGKILLs a stopping instance at once: every member of its run
// (see members.go), wherever it went. The group is SIGSTOPped first, so
// that it neither grows nor forks during the pass over /proc that finds
// the members (5-15 ms on a busy machine: 10 MiB more for a child growing
// 1 GiB/s, before the stop). killOverdue does the same for every instance
// past its grace, with one pass for all.
func (r *Runner) killTree(in *instance) {
	in.run.signal(syscall.SIGSTOP)
	r.killMembers(in, members(in.run.pid, in.run.ident))
}

// killMembers SIGKILLs a stopping instance's group and the members found
// of its run; a run whose leader has exited stops waiting for its pty.
func (r *Runner) killMembers(in *instance, pids []int) {
	in.run.killed = true
	in.run.stop(syscall.SIGKILL, pids)
	if in.run.exited {
		in.run.giveUpDrain()
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
