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
	type sample struct {
		pid    int
		s0, s1 pstat         // ticks, for a cross-check
		c0, c1 time.Duration // the CPU clock
		clock  bool          // both clock reads worked
		rss    int64
	}
	samples := []*sample{{pid: mh.pid}, {pid: sh.pid}, {pid: goSleeper.Process.Pid}}
	for _, s := range samples {
		s.s0, _ = readStat(s.pid)
		s.c0, s.clock = cpuClock(s.pid)
	}
	busy := newBusy()
	t0 := time.Now()
	if err := b.pause(c.idle); err != nil {
		return nil, err
	}
	for _, s := range samples {
		var ok bool
		s.s1, _ = readStat(s.pid)
		s.c1, ok = cpuClock(s.pid)
		s.clock = s.clock && ok
	}
	window := time.Since(t0)
	machineBusy := busy.percent()
	for _, s := range samples {
		var ok bool
		if s.rss, ok = vmRSS(s.pid); !ok {
			return nil, fmt.Errorf("read VmRSS of pid %d: gone", s.pid)
		}
	}
	cpu := func(s *sample) float64 {
		if !s.clock { // 10 ms ticks, better than nothing
			return 100 * (s.s1.own() - s.s0.own()).Seconds() / window.Seconds()
		}
		return 100 * (s.c1 - s.c0).Seconds() / window.Seconds()
	}
	select {
	case <-mh.exited:
		return nil, fmt.Errorf("mhrun exited while idle; its stderr: %s", tail(mh.errPath))
	default:
	}
	if n := len(mh.w.sleeps(mh.pid)); n != c.procs {
		return nil, fmt.Errorf("mhrun has %d sleeps after the idle window, want %d", n, c.procs)
	}
	m, s, g := samples[0], samples[1], samples[2]
	b.logf("  mhrun RSS %s, CPU %.4f%% (CPU clock %v → %v in %v; /proc/PID/stat ticks: %v); shell RSS %s, CPU %.4f%%; Go sleeper RSS %s, CPU %.4f%%; machine busy %.0f%%",
		mib(m.rss), cpu(m), m.c0, m.c1, window.Round(time.Millisecond), m.s1.own()-m.s0.own(),
		mib(s.rss), cpu(s), mib(g.rss), cpu(g), machineBusy)
	stop, err := mh.stop()
	if err != nil {
		return nil, err
	}
	b.logf("  mhrun stop after idle: %.1f ms", ms(stop))
	name := fmt.Sprintf("idle, %d sleeps", c.procs)
	return []row{
		{name, "runner's RSS (VmRSS) at the end", fmt.Sprintf("%s (Go sleeper); %s (sh)", mib(g.rss), mib(s.rss)), mib(m.rss),
			fmt.Sprintf("%.1f× the Go sleeper", float64(m.rss)/float64(g.rss)), "< 20 MiB", met(m.rss < 20<<20)},
		{"", fmt.Sprintf("runner's CPU over %v, %% of one core", c.idle), fmt.Sprintf("%.3f%% (sh)", cpu(s)), fmt.Sprintf("%.3f%%", cpu(m)), "", "< 0.5%", met(cpu(m) < 0.5)},
	}, nil
}
