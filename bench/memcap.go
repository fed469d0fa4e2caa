//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// memcapCap is the cap the memcap benchmark holds its child to: the
// memory=200M of the report that measured the overshoot.
const memcapCap = 200 << 20

// memcapped is what one shape of the memcap benchmark measured.
type memcapped struct {
	ignore bool
	peaks  []int64   // each measured run's peak RSS, from its own file
	rates  []float64 // each measured run's growth, MiB/s
	seen   []int64   // the RSS each "over memory cap" event gave
	twice  []int64   // the RSS each "passed twice its memory cap" event gave
	grace  int       // "still running after grace" events
	cpu    float64   // mhrun's CPU over the runs, % of one core
	wall   time.Duration
	busy   float64 // the machine, % busy over the runs
}

// memcapBench runs bench/grow under mhrun with memory=200M, default
// --sample (1s), in two shapes: a child that dies at SIGTERM (grace=2s
// never reached), and one that ignores SIGTERM and grows on (grace=2s:
// without the kill at twice the cap it would grow for 2 s). Each runs
// until cfg.memRuns memory restarts have happened; each run's peak RSS is
// the figure its child left in its own file (see bench/grow), so a
// SIGKILL does not hide it.
func (b *bench) memcapBench() ([]row, error) {
	grow, err := b.helper("grow")
	if err != nil {
		return nil, err
	}
	c := b.cfg
	fmt.Fprintf(b.log, "memcap: a child growing %d MiB/s under memory=200M, %d memory restarts, dying at SIGTERM, then ignoring it (grace=2s)\n", c.memRate, c.memRuns)
	var rows []row
	for _, ignore := range []bool{false, true} {
		m, err := b.memcapRun(grow, ignore)
		if err != nil {
			return rows, err
		}
		rows = append(rows, m.rows(c)...)
	}
	return rows, nil
}

func (b *bench) memcapRun(grow string, ignore bool) (memcapped, error) {
	c := b.cfg
	m := memcapped{ignore: ignore}
	tag, flag := "memcap-term", ""
	if ignore {
		tag, flag = "memcap-ignore", "-ignore-term "
	}
	dir, err := b.runDir(tag)
	if err != nil {
		return m, err
	}
	peaks := filepath.Join(dir, "peaks")
	os.RemoveAll(peaks) // a previous run's, with -keep
	if err := os.MkdirAll(peaks, 0o755); err != nil {
		return m, err
	}
	procfile := fmt.Sprintf("alloc: exec %s -rate %d -max 4096 %s%s\n", shQuote(grow), c.memRate, flag, shQuote(peaks))
	f, err := b.startFormation(tag, 0, procfile, "alloc: memory=200M grace=2s\n")
	if err != nil {
		return m, err
	}
	defer f.kill()
	cpu0, _ := cpuClock(f.pid)
	busy := newBusy()
	t0 := time.Now()
	deadline := t0.Add(30*time.Second + time.Duration(c.memRuns)*3*time.Second)
	for {
		text, _ := os.ReadFile(f.outPath)
		if len(growing(text)) > c.memRuns { // the runs measured have ended
			break
		}
		if time.Now().After(deadline) {
			return m, fmt.Errorf("%s: %d runs in %v, want %d; its output ends: %s", tag, len(growing(text)), time.Since(t0).Round(time.Second), c.memRuns+1, tail(f.outPath))
		}
		select {
		case <-f.exited:
			return m, fmt.Errorf("%s: mhrun exited; its stderr: %s", tag, tail(f.errPath))
		default:
		}
		if err := b.pause(20 * time.Millisecond); err != nil {
			return m, err
		}
	}
	cpu1, _ := cpuClock(f.pid)
	m.wall = time.Since(t0)
	m.busy = busy.percent()
	m.cpu = 100 * (cpu1 - cpu0).Seconds() / m.wall.Seconds()
	if _, err := f.stop(); err != nil {
		return m, err
	}
	text, _ := os.ReadFile(f.outPath)
	for _, pid := range growing(text)[:c.memRuns] {
		rss, took, err := readPeak(filepath.Join(peaks, strconv.Itoa(pid)))
		if err != nil {
			return m, err
		}
		m.peaks = append(m.peaks, rss)
		m.rates = append(m.rates, float64(rss)/(1<<20)/took.Seconds())
	}
	// The events of the runs measured, up to the start of the next: the
	// formation's stop ends that one by its grace.
	sc := bufio.NewScanner(bytes.NewReader(text))
	for runs := 0; runs <= c.memRuns && sc.Scan(); {
		l := sc.Text()
		switch {
		case strings.Contains(l, "alloc.1 | growing "):
			runs++
		case strings.Contains(l, "alloc.1 over memory cap: "):
			v, _, _ := strings.Cut(l[strings.Index(l, "cap: ")+len("cap: "):], " ")
			if n, ok := parseSize(v); ok {
				m.seen = append(m.seen, n)
			}
		case strings.Contains(l, "alloc.1 passed twice its memory cap"):
			v, _, _ := strings.Cut(l[strings.Index(l, "stopping (")+len("stopping ("):], " ")
			if n, ok := parseSize(v); ok {
				m.twice = append(m.twice, n)
			}
		case strings.Contains(l, "alloc.1 still running after grace"):
			m.grace++
		}
	}
	shape := "dies at SIGTERM"
	if ignore {
		shape = "ignores SIGTERM"
	}
	b.logf("  %s: %d runs in %v; mhrun CPU %.2f%% of a core; machine busy %.0f%%", shape, c.memRuns, m.wall.Round(time.Millisecond), m.cpu, m.busy)
	for i, p := range m.peaks {
		at := "?"
		if i < len(m.seen) {
			at = mib(m.seen[i])
		}
		if ignore && i < len(m.twice) {
			at += ", then " + mib(m.twice[i]) + " (twice the cap)"
		}
		b.logf("    run %2d: peak %s (%.2f× the cap), grew %.0f MiB/s; mhrun's events saw %s", i+1, mib(p), float64(p)/memcapCap, m.rates[i], at)
	}
	b.logf("    events: %d over memory cap, %d passed twice the cap, %d after grace", len(m.seen), len(m.twice), m.grace)
	return m, nil
}

// growing lists the pids of the runs in mhrun's output, in order: each
// run of bench/grow prints "growing PID" first.
func growing(text []byte) []int {
	var out []int
	for line := range bytes.Lines(text) {
		if _, rest, ok := bytes.Cut(line, []byte("alloc.1 | growing ")); ok {
			if pid, err := strconv.Atoi(string(bytes.TrimSpace(rest))); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}

// readPeak reads a run's file: its last resident size and when it was
// read, from the run's start.
func readPeak(path string) (int64, time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("%s: %q", path, b)
	}
	rss, err1 := strconv.ParseInt(f[0], 10, 64)
	ns, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || ns <= 0 {
		return 0, 0, fmt.Errorf("%s: %q", path, b)
	}
	return rss, time.Duration(ns), nil
}

// parseSize reads a size as mhrun prints it: 231.5M, 1.2G, 512K.
func parseSize(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	shift, ok := map[byte]int{'K': 10, 'M': 20, 'G': 30, 'T': 40}[s[len(s)-1]]
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s[:len(s)-1], 64)
	if err != nil {
		return 0, false
	}
	return int64(v * float64(int64(1)<<shift)), true
}

func (m memcapped) rows(c config) []row {
	ratios := make([]float64, len(m.peaks))
	for i, p := range m.peaks {
		ratios[i] = float64(p) / memcapCap
	}
	worst := slices.Max(ratios)
	name := "memcap, dies at SIGTERM"
	if m.ignore {
		name = "memcap, ignores SIGTERM (grace=2s)"
	}
	rows := []row{
		{name, fmt.Sprintf("peak RSS ÷ cap (memory=200M, --sample 1s), worst of %d runs", len(m.peaks)), "", fmt.Sprintf("%.2f× (%s)", worst, mib(slices.Max(m.peaks))), "", "≤ 1.5×", met(worst <= 1.5)},
		{"", "peak RSS ÷ cap, median", "", fmt.Sprintf("%.2f×", medianF(ratios)), "", "", ""},
		{"", "the child's growth, median (bench/grow -rate " + strconv.Itoa(c.memRate) + ")", "", fmt.Sprintf("%.0f MiB/s", medianF(m.rates)), "", "", ""},
	}
	if m.ignore {
		past := make([]float64, len(m.twice))
		for i, n := range m.twice {
			past[i] = float64(n) / (2 * memcapCap)
		}
		if len(past) > 0 {
			rows = append(rows, row{"", "RSS mhrun saw when it killed at twice the cap ÷ twice the cap, worst / median (how late the kill)", "", fmt.Sprintf("%.2f× / %.2f×", slices.Max(past), medianF(past)), "", "", ""})
		}
		rows = append(rows, row{"", "runs killed at twice the cap / after their grace", "", fmt.Sprintf("%d / %d of %d", len(m.twice), m.grace, len(m.peaks)), "", fmt.Sprintf("%d / 0", len(m.peaks)), met(len(m.twice) >= len(m.peaks) && m.grace == 0)})
	}
	rows = append(rows, row{"", fmt.Sprintf("runner's CPU over the %d runs (%.1f s), %% of one core", len(m.peaks), m.wall.Seconds()), "", fmt.Sprintf("%.2f%%", m.cpu), "", "", ""})
	return rows
}

func medianF(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
