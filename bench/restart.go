//go:build linux

package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stampLine is the length of a line of bench/stamp (its lineLen).
const stampLine = 40

// restarter is one way of running the stamp again and again.
type restarter struct {
	// what is "mhrun", "shell" or "shell, sh -c".
	what string
	// args writes what the runner needs and returns its command line.
	args func(file string, runs int) ([]string, error)
}

// restartBench measures restart latency: the time from a child's exit to
// the next start of that instance, the child being bench/stamp, which
// writes both times down. Three runners take turns, cfg.runs rounds, until
// each has cfg.restarts restarts: mhrun with restart=always
// backoff=0s..0s; the baseline, a shell loop `while :; do stamp; done`;
// and, to tell mhrun's own share, the same loop starting the stamp through
// `/bin/sh -c 'exec stamp'` the way mhrun starts every command.
func (b *bench) restartBench() ([]row, error) {
	c := b.cfg
	dir := filepath.Join(b.tmp, "restart")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	stamp := func(file string, runs int) string {
		return fmt.Sprintf("%s %s %d", shQuote(b.stamp), shQuote(file), runs)
	}
	runners := []restarter{
		{"shell", func(file string, runs int) ([]string, error) {
			return []string{"/bin/sh", "-c", "while :; do " + stamp(file, runs) + "; done"}, nil
		}},
		{"shell, sh -c", func(file string, runs int) ([]string, error) {
			return []string{"/bin/sh", "-c", "while :; do /bin/sh -c " + shQuote("exec "+stamp(file, runs)) + "; done"}, nil
		}},
		{"mhrun", func(file string, runs int) ([]string, error) {
			pf := filepath.Join(dir, "Procfile")
			if err := os.WriteFile(pf, []byte("w: exec "+stamp(file, runs)+"\n"), 0o644); err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(dir, "Procfile.policy"), []byte("w: restart=always backoff=0s..0s\n"), 0o644); err != nil {
				return nil, err
			}
			return []string{b.mhrun, "start", "-f", pf, "-d", dir}, nil
		}},
	}
	rounds := min(c.runs, c.restarts)
	fmt.Fprintf(b.log, "restart: %d restarts each of a shell loop and mhrun (restart=always backoff=0s..0s), in %d rounds\n", c.restarts, rounds)
	got := make([][]time.Duration, len(runners))
	busy := newBusy()
	for i := 0; i < rounds; i++ {
		n := c.restarts / rounds
		if i < c.restarts%rounds {
			n++
		}
		for j, r := range runners {
			lat, err := b.restartRun(dir, r, n+1)
			if err != nil {
				return nil, err
			}
			got[j] = append(got[j], lat...)
		}
	}
	b.logf("  machine busy %.0f%% over the restart runs", busy.percent())
	for j, r := range runners {
		b.logf("  %-12s all %d: min %s, median %s, p90 %s, p99 %s, max %s", r.what, len(got[j]),
			micros(best(got[j])), micros(median(got[j])), micros(percentile(got[j], 90)), micros(percentile(got[j], 99)), micros(slices.Max(got[j])))
	}
	sh, shc, mh := got[0], got[1], got[2]
	name := "restart, exit → next start"
	return []row{
		{name, fmt.Sprintf("median of %d restarts", len(mh)), millis2(median(sh)), millis2(median(mh)), ratio(median(mh), median(sh)), "< 5 ms", met(median(mh) < 5*time.Millisecond)},
		{"", "p90", millis2(percentile(sh, 90)), millis2(percentile(mh, 90)), ratio(percentile(mh, 90), percentile(sh, 90)), "", ""},
		{"", "median, the shell loop starting it through `sh -c 'exec …'` as mhrun does", millis2(median(shc)), millis2(median(mh)), ratio(median(mh), median(shc)), "", ""},
	}, nil
}

// restartRun runs the stamp runs times under one runner and returns the
// runs-1 latencies from an exit to the next start.
func (b *bench) restartRun(dir string, r restarter, runs int) ([]time.Duration, error) {
	tag := strings.ReplaceAll(strings.ReplaceAll(r.what, ",", ""), " ", "-")
	file := filepath.Join(dir, tag+".stamps")
	outPath, errPath := filepath.Join(dir, tag+".stdout"), filepath.Join(dir, tag+".stderr")
	os.Remove(file)
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	errf, err := os.Create(errPath)
	if err != nil {
		return nil, err
	}
	defer errf.Close()
	args, err := r.args(file, runs)
	if err != nil {
		return nil, err
	}
	cmd := b.command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = out, errf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.what, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { waitExited(pid); close(exited) }()
	var left []int // the last stamp, sleeping, when the runner is a shell
	defer func() {
		syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
		cmd.Wait()
		reap(left)
	}()

	// Wait until the file has its runs lines: the last stamp then sleeps.
	tick := time.NewTimer(time.Millisecond)
	defer tick.Stop()
	deadline := t0.Add(10*time.Second + time.Duration(runs)*50*time.Millisecond)
	for {
		if st, err := os.Stat(file); err == nil && st.Size() >= int64(runs*stampLine) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: fewer than %d runs of the stamp after %v; its stderr: %s", r.what, runs, time.Since(t0).Round(time.Second), tail(errPath))
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("%s exited before %d runs of the stamp; its stderr: %s", r.what, runs, tail(errPath))
		case <-b.ctx.Done():
			return nil, b.ctx.Err()
		case <-tick.C:
			tick.Reset(time.Millisecond)
		}
	}
	wall := time.Since(t0)

	if r.what == "mhrun" {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			return nil, fmt.Errorf("signal mhrun: %w", err)
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			return nil, fmt.Errorf("mhrun: not stopped 15s after SIGTERM")
		case <-b.ctx.Done():
			return nil, b.ctx.Err()
		}
		if err := cmd.Wait(); err != nil {
			return nil, fmt.Errorf("mhrun after SIGTERM: %v (want exit 0); its stderr: %s", err, tail(errPath))
		}
	} else {
		left = childrenOf(pid)
	}

	lat, err := readStamps(file, runs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.what, err)
	}
	extra := ""
	if r.what == "mhrun" {
		// One event per clean exit under restart=always; the last run was
		// stopped, not restarted.
		text, _ := os.ReadFile(outPath)
		n := bytes.Count(text, []byte("exited with code 0, restarting in 0s"))
		extra = fmt.Sprintf(", %d restart events (want %d)", n, runs-1)
		if n != runs-1 {
			fmt.Fprintf(b.log, "  mhrun printed %d \"restarting\" events for %d restarts\n", n, runs-1)
		}
	}
	if s := tail(errPath); s != "" {
		fmt.Fprintf(b.log, "  %s stderr: %s\n", r.what, s)
	}
	b.logf("  %-12s %3d restarts in %6.3fs: median %s, p90 %s, max %s%s", r.what, len(lat), wall.Seconds(),
		micros(median(lat)), micros(percentile(lat, 90)), micros(slices.Max(lat)), extra)
	return lat, nil
}

// readStamps reads the first runs lines of a stamp file and returns the
// time from each run's exit to the next run's start.
func readStamps(file string, runs int) ([]time.Duration, error) {
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if len(text) < runs*stampLine {
		return nil, fmt.Errorf("stamp file has %d bytes, want at least %d", len(text), runs*stampLine)
	}
	var start, exit []int64
	for i := 0; i < runs; i++ {
		line := text[i*stampLine : (i+1)*stampLine]
		f := strings.Fields(string(line))
		if len(f) != 2 || line[stampLine-1] != '\n' {
			return nil, fmt.Errorf("stamp line %d is %q", i+1, line)
		}
		s, err1 := strconv.ParseInt(f[0], 10, 64)
		e, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < s {
			return nil, fmt.Errorf("stamp line %d is %q", i+1, line)
		}
		start, exit = append(start, s), append(exit, e)
	}
	lat := make([]time.Duration, 0, runs-1)
	for i := 1; i < runs; i++ {
		d := time.Duration(start[i] - exit[i-1])
		if d < 0 {
			return nil, fmt.Errorf("run %d started %v before run %d exited: two runs at once", i+1, -d, i)
		}
		lat = append(lat, d)
	}
	return lat, nil
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	for _, p := range pids() {
		if s, ok := readStat(p); ok && s.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// percentile is the p-th percentile of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func millis2(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func micros(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}
