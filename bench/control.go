//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// The control-socket benchmarks run mhrun's client commands (status,
// scale) from another process, as a user would, against a formation
// started by the harness: each command is a fresh exec of the same mhrun
// binary with -d the formation's dir.

// statusRow is the part of a row of "mhrun status --json" the harness reads.
type statusRow struct {
	Name    string `json:"name"`
	Process string `json:"process"`
	State   string `json:"state"`
	PID     int    `json:"pid"`
	Port    int    `json:"port"`
	Conns   int64  `json:"conns"`
	Served  int64  `json:"served"`
}

// client runs "mhrun ARGS -d DIR" against f to its exit and returns its
// stdout; it is for setting up and checking, not timed.
func (b *bench) client(f *sleepers, args ...string) ([]byte, error) {
	cmd := b.command(b.mhrun, append(args, "-d", f.dir)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("mhrun %v: %v: %s", args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// statusRows is f's "mhrun status --json".
func (b *bench) statusRows(f *sleepers) ([]statusRow, error) {
	out, err := b.client(f, "status", "--json")
	if err != nil {
		return nil, err
	}
	var rows []statusRow
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("mhrun status --json: %w", err)
	}
	return rows, nil
}

// waitStatus polls "mhrun status --json", 20 ms between calls, until ok
// holds of its rows; the socket may not be there yet on the first calls.
func (b *bench) waitStatus(f *sleepers, what string, ok func([]statusRow) bool) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, err := b.statusRows(f)
		if err == nil && ok(rows) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mhrun status: not %s after 10s (last error: %v, %d rows)", what, err, len(rows))
		}
		select {
		case <-f.exited:
			return fmt.Errorf("mhrun exited while waiting until %s; its stderr: %s", what, tail(f.errPath))
		default:
		}
		if err := b.pause(20 * time.Millisecond); err != nil {
			return err
		}
	}
}

// timed runs cmd to its exit (reaped), stdout and stderr to files, and
// returns the wall time from just before exec to then.
func timed(cmd *exec.Cmd, outPath, errPath string) (time.Duration, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	errf, err := os.Create(errPath)
	if err != nil {
		return 0, err
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	err = cmd.Wait()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%v; its stderr: %s", err, tail(errPath))
	}
	return d, nil
}

// statusBench measures the round trip of "mhrun status" (exec to exit)
// against a formation of cfg.listed sleeps, all running, cfg.queries
// times, taking turns with "mhrun version": the same binary starting and
// exiting without the socket, so that the difference is the round trip's
// own cost.
func (b *bench) statusBench() ([]row, error) {
	c := b.cfg
	fmt.Fprintf(b.log, "status: %d instances, %d runs each of mhrun version and mhrun status\n", c.listed, c.queries)
	f, err := b.startSleepersN(true, "status", c.listed, "")
	if err != nil {
		return nil, err
	}
	defer f.kill()
	if _, err := f.waitAll(); err != nil {
		return nil, err
	}
	allRunning := func(rows []statusRow) bool {
		n := 0
		for _, r := range rows {
			if r.State == "running" {
				n++
			}
		}
		return len(rows) == c.listed && n == c.listed
	}
	if err := b.waitStatus(f, fmt.Sprintf("all %d running", c.listed), allRunning); err != nil {
		return nil, err
	}
	if err := b.pause(settle); err != nil {
		return nil, err
	}
	outPath, errPath := filepath.Join(f.dir, "client.stdout"), filepath.Join(f.dir, "client.stderr")
	type query struct {
		what  string
		args  []string
		lines int // of its stdout
		took  []time.Duration
	}
	queries := []*query{
		{what: "version", args: []string{"version"}, lines: 1},
		{what: "status", args: []string{"status", "-d", f.dir}, lines: 1 + c.listed}, // a header and a row each
	}
	one := func(q *query, keep bool) error {
		d, err := timed(b.command(b.mhrun, q.args...), outPath, errPath)
		if err != nil {
			return fmt.Errorf("mhrun %s: %w", q.what, err)
		}
		if text, _ := os.ReadFile(outPath); bytes.Count(text, []byte("\n")) != q.lines {
			return fmt.Errorf("mhrun %s printed %d lines, want %d: %.300q", q.what, bytes.Count(text, []byte("\n")), q.lines, text)
		}
		if keep {
			q.took = append(q.took, d)
		}
		return nil
	}
	for _, q := range queries { // not counted: the binary's first start pages it in
		if err := one(q, false); err != nil {
			return nil, err
		}
	}
	busy := newBusy()
	c0, _ := cpuClock(f.pid)
	for i := 0; i < c.queries; i++ {
		for _, q := range queries {
			if err := one(q, true); err != nil {
				return nil, err
			}
		}
	}
	c1, _ := cpuClock(f.pid)
	b.logf("  machine busy %.0f%% over the runs", busy.percent())
	select {
	case <-f.exited:
		return nil, fmt.Errorf("mhrun exited during the status runs; its stderr: %s", tail(f.errPath))
	default:
	}
	if n := len(f.w.sleeps(f.pid)); n != c.listed {
		return nil, fmt.Errorf("mhrun has %d sleeps after the status runs, want %d", n, c.listed)
	}
	for _, q := range queries {
		b.logf("  mhrun %-7s min %s, median %s, p90 %s, max %s", q.what,
			millis2(best(q.took)), millis2(median(q.took)), millis2(percentile(q.took, 90)), millis2(slices.Max(q.took)))
	}
	perQuery := (c1 - c0) / time.Duration(c.queries) // the version runs do not reach it
	b.logf("  the formation's mhrun: CPU %v over the %d status runs (CPU clock %v → %v), %v a request; %d threads, %d processes on the machine",
		(c1 - c0).Round(time.Microsecond), c.queries, c0, c1, perQuery.Round(time.Microsecond), threads(f.pid), len(pids()))
	stop, err := f.stop()
	if err != nil {
		return nil, err
	}
	b.logf("  mhrun stop: %.1f ms", ms(stop))
	v, s := queries[0].took, queries[1].took
	name := fmt.Sprintf("status, %d instances", c.listed)
	return []row{
		{name, fmt.Sprintf("exec → exit of `mhrun status` (baseline: `mhrun version`), median of %d", c.queries),
			millis2(median(v)), millis2(median(s)), ratio(median(s), median(v)), "< 20 ms", met(median(s) < 20*time.Millisecond)},
		{"", "p90", millis2(percentile(v, 90)), millis2(percentile(s, 90)), ratio(percentile(s, 90), percentile(v, 90)), "", ""},
		{"", "the formation's mhrun: its own CPU per status request", "", fmt.Sprintf("%.2f ms", float64(perQuery)/float64(time.Millisecond)), "", "", ""},
	}, nil
}

// scaleBench measures a live scale-up: "mhrun scale web=N" (cfg.procs)
// on a running formation whose web (exec sleep 1000) has scale=0, from
// exec of the scale command until N new sleeps exist under mhrun; the
// formation's other process, keep, holds it up. Between runs web is
// scaled back to 0 and the harness waits until the N are gone. Baseline:
// a shell starting N sleeps, from exec until they exist, as in start/stop.
// Shell and mhrun take turns, cfg.runs times each.
func (b *bench) scaleBench() ([]row, error) {
	c := b.cfg
	n := c.procs
	fmt.Fprintf(b.log, "scale: web=0 → web=%d on a running mhrun, against a shell starting %d sleeps; %d runs each\n", n, n, c.runs)
	f, err := b.startFormation("scale", 1, "web: exec sleep 1000\nkeep: exec sleep 1000\n", "web: scale=0\n")
	if err != nil {
		return nil, err
	}
	var web []int // the web sleeps up at the moment, for the cleanup
	defer func() { f.kill(); reap(web) }()
	if _, err := f.waitAll(); err != nil {
		return nil, err
	}
	keep := f.sleeps
	noWeb := func(rows []statusRow) bool {
		up := false
		for _, r := range rows {
			if r.Process == "web" {
				return false
			}
			up = up || r.Name == "keep.1" && r.State == "running"
		}
		return up
	}
	if err := b.waitStatus(f, "keep.1 running and no web", noWeb); err != nil {
		return nil, err
	}
	if err := b.pause(settle); err != nil {
		return nil, err
	}
	var bUp, mUp, mReply, mDown []time.Duration
	busy := newBusy()
	for i := 0; i < c.runs; i++ {
		sh, err := b.startSleepers(false, "scale-shell")
		if err != nil {
			return nil, err
		}
		d, err := sh.waitAll()
		sh.kill()
		if err != nil {
			return nil, err
		}
		b.logf("  shell start %7.1f ms (first sleep seen at %5.1f ms, half of them at %5.1f ms)", ms(d), ms(sh.first), ms(sh.half))
		bUp = append(bUp, d)

		r, err := b.scaleRun(f, keep, n, &web)
		if err != nil {
			return nil, err
		}
		b.logf("  mhrun scale %7.1f ms (first sleep seen at %5.1f ms, half of them at %5.1f ms; the scale command exited at %5.1f ms)  back to 0: %5.1f ms",
			ms(r.up), ms(r.first), ms(r.half), ms(r.reply), ms(r.down))
		mUp, mReply, mDown = append(mUp, r.up), append(mReply, r.reply), append(mDown, r.down)
		if err := b.pause(settle); err != nil {
			return nil, err
		}
	}
	b.logf("  machine busy %.0f%% over the scale runs (this benchmark's polling included)", busy.percent())
	b.logf("  medians: mhrun scale command's exit %.1f ms, scale back to 0 until the %d are gone %.1f ms", ms(median(mReply)), n, ms(median(mDown)))
	if _, err := f.stop(); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("scale 0 → %d", n)
	bm, mm := median(bUp), median(mUp)
	return []row{
		{name, fmt.Sprintf("exec of `mhrun scale web=%d` → %d sleeps exist (baseline: `sh` starting %d), median of %d", n, n, n, c.runs),
			millis(bm), millis(mm), ratio(mm, bm), "< 200 ms", met(mm < 200*time.Millisecond)},
		{"", "best", millis(best(bUp)), millis(best(mUp)), ratio(best(mUp), best(bUp)), "", ""},
	}, nil
}

// scaled is one run of scaleRun.
type scaled struct {
	up, first, half time.Duration // from exec of the scale command: all, the first, half of the sleeps exist
	reply           time.Duration // from exec of the scale command to its exit
	down            time.Duration // from exec of "scale web=0" until the sleeps are gone
}

// scaleRun scales f's web from 0 to n and back, polling /proc a
// millisecond between scans as waitAll does; web holds the web sleeps
// while they are up (for the caller's cleanup, by pid), and none once they
// are gone.
func (b *bench) scaleRun(f *sleepers, keep []int, n int, web *[]int) (scaled, error) {
	var r scaled
	outPath, errPath := filepath.Join(f.dir, "scale.stdout"), filepath.Join(f.dir, "scale.stderr")
	out, err := os.Create(outPath)
	if err != nil {
		return r, err
	}
	defer out.Close()
	errf, err := os.Create(errPath)
	if err != nil {
		return r, err
	}
	defer errf.Close()
	cmd := b.command(b.mhrun, "scale", "-d", f.dir, fmt.Sprintf("web=%d", n))
	cmd.Stdout, cmd.Stderr = out, errf
	w := newWatcher()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start mhrun scale: %w", err)
	}
	replied := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		r.reply = time.Since(t0)
		replied <- err
	}()
	abandon := func() { // the scale command's exit is not waited for
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-replied
	}
	tick := time.NewTimer(time.Millisecond)
	defer tick.Stop()
	var sl []int
	for {
		sl = slices.DeleteFunc(w.sleeps(f.pid), func(pid int) bool { return slices.Contains(keep, pid) })
		d := time.Since(t0)
		if r.first == 0 && len(sl) > 0 {
			r.first = d
		}
		if r.half == 0 && 2*len(sl) >= n {
			r.half = d
		}
		if len(sl) >= n {
			r.up = d
			break
		}
		if d > 10*time.Second {
			abandon()
			return r, fmt.Errorf("mhrun scale web=%d: only %d of %d sleeps after 10s; the scale command said: %s %s", n, len(sl), n, tail(outPath), tail(errPath))
		}
		select {
		case <-f.exited:
			abandon()
			return r, fmt.Errorf("mhrun exited while scaling up; its stderr: %s", tail(f.errPath))
		case <-b.ctx.Done():
			abandon()
			return r, b.ctx.Err()
		case <-tick.C:
			tick.Reset(time.Millisecond)
		}
	}
	*web = sl
	select {
	case err := <-replied:
		if err != nil {
			return r, fmt.Errorf("mhrun scale web=%d: %v; its stderr: %s", n, err, tail(errPath))
		}
	case <-time.After(10 * time.Second):
		abandon()
		return r, fmt.Errorf("mhrun scale web=%d: no exit 10s after its %d sleeps were up", n, n)
	}
	if err := b.pause(settle); err != nil {
		return r, err
	}

	t1 := time.Now()
	if _, err := b.client(f, "scale", "web=0"); err != nil {
		return r, err
	}
	for !allGone(sl) {
		if time.Since(t1) > 10*time.Second {
			return r, fmt.Errorf("mhrun scale web=0: sleeps still there after 10s")
		}
		if err := b.pause(time.Millisecond); err != nil {
			return r, err
		}
	}
	r.down = time.Since(t1)
	*web = nil
	noWeb := func(rows []statusRow) bool {
		return !slices.ContainsFunc(rows, func(r statusRow) bool { return r.Process == "web" })
	}
	return r, b.waitStatus(f, "rid of web after scale web=0", noWeb)
}
