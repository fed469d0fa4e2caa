//go:build linux

package main

import (
	"fmt"
	"time"
)

// idleBench runs mhrun with cfg.procs sleeps for cfg.idle and reads its RSS
// and CPU; beside it, for scale, a shell holding as many sleeps and a
// trivial Go program (the writer, sleeping), measured over the same window.
func (b *bench) idleBench() ([]row, error) {
	c := b.cfg
	fmt.Fprintf(b.log, "idle: %d sleeps for %v\n", c.procs, c.idle)
	goSleeper := b.command(b.writer, "-sleep", "1000s")
	if err := goSleeper.Start(); err != nil {
		return nil, fmt.Errorf("start the Go sleeper: %w", err)
	}
	defer func() { goSleeper.Process.Kill(); goSleeper.Wait() }()
	sh, err := b.startSleepers(false, "idle-shell")
	if err != nil {
		return nil, err
	}
	defer sh.kill()
	mh, err := b.startSleepers(true, "idle-mhrun")
	if err != nil {
		return nil, err
	}
	defer mh.kill()
	for _, s := range []*sleepers{sh, mh} {
		if _, err := s.waitAll(); err != nil {
			return nil, err
		}
	}
	if err := b.pause(time.Second); err != nil { // let the start settle
		return nil, err
	}
	w, err := b.cpuWindow(c.idle, mh.pid, sh.pid, goSleeper.Process.Pid)
	if err != nil {
		return nil, err
	}
	for _, u := range w.use {
		var ok bool
		if u.rss, ok = vmRSS(u.pid); !ok {
			return nil, fmt.Errorf("read VmRSS of pid %d: gone", u.pid)
		}
	}
	cpu := w.percent
	select {
	case <-mh.exited:
		return nil, fmt.Errorf("mhrun exited while idle; its stderr: %s", tail(mh.errPath))
	default:
	}
	if n := len(mh.w.sleeps(mh.pid)); n != c.procs {
		return nil, fmt.Errorf("mhrun has %d sleeps after the idle window, want %d", n, c.procs)
	}
	m, s, g := w.use[0], w.use[1], w.use[2]
	// The guard is part of what mhrun holds, as a daemon or a tmux server
	// is for other runners: its RSS is counted with the runner's.
	var guardRSS, guardOwn int64
	if gp, ok := guardOf(mh.pid); ok {
		guardRSS, _ = vmRSS(gp)
		guardOwn, _ = privateMem(gp)
		b.logf("  mhrun's guard (pid %d) RSS %s, of it private %s", gp, mib(guardRSS), mib(guardOwn))
	}
	b.logf("  mhrun RSS %s, %d threads, CPU %.4f%% (CPU clock %v → %v in %v; /proc/PID/stat ticks: %v); shell RSS %s, CPU %.4f%%; Go sleeper RSS %s, CPU %.4f%%; machine busy %.0f%%",
		mib(m.rss), threads(m.pid), cpu(m), m.c0, m.c1, w.window.Round(time.Millisecond), m.s1.own()-m.s0.own(),
		mib(s.rss), cpu(s), mib(g.rss), cpu(g), w.busy)
	stop, err := mh.stop()
	if err != nil {
		return nil, err
	}
	b.logf("  mhrun stop after idle: %.1f ms", ms(stop))
	name := fmt.Sprintf("idle, %d sleeps", c.procs)
	sh.kill() // its sleeps would count as the in-process runner's
	goSleeper.Process.Kill()
	light, err := b.idleLight()
	return append([]row{
		{name, "runner's RSS (VmRSS) at the end", fmt.Sprintf("%s (Go sleeper); %s (sh)", mib(g.rss), mib(s.rss)), mib(m.rss),
			fmt.Sprintf("%.1f× the Go sleeper", float64(m.rss)/float64(g.rss)), "< 20 MiB", met(m.rss < 20<<20)},
		{"", "runner's and its guard's RSS together", "", mib(m.rss + guardRSS), "", "< 20 MiB", met(m.rss+guardRSS < 20<<20)},
		{"", "the guard's private memory (what it adds beyond the pages it shares with the runner)", "", mib(guardOwn), "", "", ""},
		{"", fmt.Sprintf("runner's CPU over %v, %% of one core", c.idle), fmt.Sprintf("%.3f%% (sh)", cpu(s)), fmt.Sprintf("%.3f%%", cpu(m)), "", "< 0.5%", met(cpu(m) < 0.5)},
	}, light...), err
}

// cpuUse is the CPU one process used over a window.
type cpuUse struct {
	pid    int
	s0, s1 pstat         // /proc/PID/stat: 10 ms ticks, for a cross-check
	c0, c1 time.Duration // the process CPU-time clock
	clock  bool          // both clock reads worked
	rss    int64         // filled in by the caller, if it wants it
}

// cpuWindowed is what cpuWindow measured.
type cpuWindowed struct {
	use    []*cpuUse
	window time.Duration
	busy   float64 // the whole machine, % busy over the window
	nprocs int     // processes on the machine at the end of the window
}

// percent is the CPU u used over the window as % of one core: from the
// CPU clock, or from the ticks if a clock read failed.
func (w cpuWindowed) percent(u *cpuUse) float64 {
	if !u.clock {
		return 100 * (u.s1.own() - u.s0.own()).Seconds() / w.window.Seconds()
	}
	return 100 * (u.c1 - u.c0).Seconds() / w.window.Seconds()
}

// cpuWindow reads the CPU of each process in who (its CPU clock, all threads, and its
// /proc/PID/stat ticks) before and after d, over one window for all.
func (b *bench) cpuWindow(d time.Duration, who ...int) (cpuWindowed, error) {
	w := cpuWindowed{}
	for _, pid := range who {
		w.use = append(w.use, &cpuUse{pid: pid})
	}
	for _, u := range w.use {
		u.s0, _ = readStat(u.pid)
		u.c0, u.clock = cpuClock(u.pid)
	}
	busy := newBusy()
	t0 := time.Now()
	if err := b.pause(d); err != nil {
		return w, err
	}
	for _, u := range w.use {
		var ok bool
		u.s1, _ = readStat(u.pid)
		u.c1, ok = cpuClock(u.pid)
		u.clock = u.clock && ok
	}
	w.window = time.Since(t0)
	w.busy = busy.percent()
	w.nprocs = len(pids())
	return w, nil
}
