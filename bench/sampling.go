//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"time"
)

// samplingBench measures what memory= costs mhrun: two mhruns with
// cfg.sampled sleeps each, one with "s: memory=1G" in its Procfile.policy
// (so it reads every instance tree once a --sample interval, 1s by
// default, by one pass over /proc) and one without (no sampling at all),
// their CPU read over the same window of cfg.idle, as in idleBench.
func (b *bench) samplingBench() ([]row, error) {
	c := b.cfg
	fmt.Fprintf(b.log, "sampling: %d sleeps under memory=1G and %d without, %v\n", c.sampled, c.sampled, c.idle)
	on, err := b.startSleepersN(true, "sampling-on", c.sampled, "s: memory=1G\n")
	if err != nil {
		return nil, err
	}
	defer on.kill()
	off, err := b.startSleepersN(true, "sampling-off", c.sampled, "")
	if err != nil {
		return nil, err
	}
	defer off.kill()
	for _, s := range []*sleepers{on, off} {
		d, err := s.waitAll()
		if err != nil {
			return nil, err
		}
		b.logf("  %s (%s): %d sleeps up in %.0f ms", s.what, tagOf(s, on), s.n, ms(d))
	}
	if err := b.pause(time.Second); err != nil { // let the start settle
		return nil, err
	}
	w, err := b.cpuWindow(c.idle, on.pid, off.pid)
	if err != nil {
		return nil, err
	}
	for _, s := range []*sleepers{on, off} {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("mhrun (%s) exited during the window; its stderr: %s", tagOf(s, on), tail(s.errPath))
		default:
		}
		if n := len(s.w.sleeps(s.pid)); n != c.sampled {
			return nil, fmt.Errorf("mhrun (%s) has %d sleeps after the window, want %d", tagOf(s, on), n, c.sampled)
		}
	}
	u1, u0 := w.use[0], w.use[1]
	for _, u := range w.use {
		u.rss, _ = vmRSS(u.pid)
	}
	p1, p0 := w.percent(u1), w.percent(u0)
	samples := w.window.Seconds() / time.Second.Seconds() // at --sample 1s
	perSample := time.Duration(float64((u1.c1-u1.c0)-(u0.c1-u0.c0)) / samples)
	b.logf("  with memory=: CPU %.4f%% (CPU clock %v → %v; /proc/PID/stat ticks: %v), RSS %s, %d threads", p1, u1.c0, u1.c1, u1.s1.own()-u1.s0.own(), mib(u1.rss), threads(u1.pid))
	b.logf("  without:      CPU %.4f%% (CPU clock %v → %v; /proc/PID/stat ticks: %v), RSS %s, %d threads", p0, u0.c0, u0.c1, u0.s1.own()-u0.s0.own(), mib(u0.rss), threads(u0.pid))
	b.logf("  difference %.4f%% of a core over %v: about %v of CPU per sample; %d processes on the machine at the end; machine busy %.0f%%",
		p1-p0, w.window.Round(time.Millisecond), perSample.Round(time.Microsecond), w.nprocs, w.busy)
	for _, s := range []*sleepers{on, off} {
		stop, err := s.stop()
		if err != nil {
			return nil, err
		}
		text, _ := os.ReadFile(s.outPath)
		b.logf("  mhrun (%s) stop: %.1f ms; its stdout: %d lines", tagOf(s, on), ms(stop), bytes.Count(text, []byte("\n")))
	}
	name := fmt.Sprintf("sampling, %d sleeps", c.sampled)
	return []row{
		{name, fmt.Sprintf("runner's CPU over %v, %% of one core: with memory=1G (baseline: without)", c.idle),
			fmt.Sprintf("%.3f%%", p0), fmt.Sprintf("%.3f%%", p1), "", "< 1%", met(p1 < 1)},
		{"", fmt.Sprintf("sampling's share: with − without (%d processes on the machine)", w.nprocs), "", fmt.Sprintf("%.3f%% (%v a sample)", p1-p0, perSample.Round(10*time.Microsecond)), "", "", ""},
	}, nil
}

func tagOf(s, on *sleepers) string {
	if s == on {
		return "with memory="
	}
	return "without memory="
}
