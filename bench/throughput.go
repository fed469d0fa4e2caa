//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// tpRun is one throughput run.
type tpRun struct {
	wall   time.Duration // from Start until the runner exited
	stat   pstat         // the runner's /proc/PID/stat after it exited, before it was reaped
	rusage time.Duration // ProcessState.UserTime()+SystemTime() (wait4's rusage)
	chk    checked
	floor  floorChecked // the pty floor's output, counted
	busy   float64      // machine busy %, this run included
}

// floorChecked is what the pty floor's output file held. The pty turns
// each "\n" into "\r\n" and the floor copies chunks of the four ptys as
// they come, so lines from different writers interleave anywhere; only
// the "\n" and the bytes are counted.
type floorChecked struct {
	newlines, returns, bytes int64
}

func (f floorChecked) String() string {
	return fmt.Sprintf("%d \\n, %d \\r, %d bytes", f.newlines, f.returns, f.bytes)
}

// countFloor counts the "\n", the "\r" and the bytes in path.
func countFloor(path string) (floorChecked, error) {
	f, err := os.Open(path)
	if err != nil {
		return floorChecked{}, err
	}
	defer f.Close()
	var c floorChecked
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		c.bytes += int64(n)
		c.newlines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		c.returns += int64(bytes.Count(buf[:n], []byte{'\r'}))
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return c, err
		}
	}
}

// throughput runs the baseline, the pty floor and mhrun in turn,
// cfg.runs times each.
func (b *bench) throughput() ([]row, error) {
	c := b.cfg
	floor, err := b.helper("ptyfloor")
	if err != nil {
		return nil, err
	}
	ids := make([]string, c.writers)
	var script, procfile strings.Builder
	var floorArgs []string
	for i := range ids {
		ids[i] = "w" + strconv.Itoa(i+1)
		w := fmt.Sprintf("%s -id %s -lines %d -size %d", shQuote(b.writer), ids[i], c.lines, c.size)
		fmt.Fprintf(&script, "%s & ", w)
		fmt.Fprintf(&procfile, "%s: exec %s\n", ids[i], w)
		if i > 0 {
			floorArgs = append(floorArgs, ";")
		}
		floorArgs = append(floorArgs, b.writer, "-id", ids[i], "-lines", strconv.Itoa(c.lines), "-size", strconv.Itoa(c.size))
	}
	script.WriteString("wait")
	dir := filepath.Join(b.tmp, "throughput")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	pf := filepath.Join(dir, "Procfile")
	if err := os.WriteFile(pf, []byte(procfile.String()), 0o644); err != nil {
		return nil, err
	}
	// The same formation with output=pipes: the children's stdout is a pipe.
	pipesDir := filepath.Join(b.tmp, "throughput-pipes")
	if err := os.MkdirAll(pipesDir, 0o755); err != nil {
		return nil, err
	}
	ppf := filepath.Join(pipesDir, "Procfile")
	if err := os.WriteFile(ppf, []byte(procfile.String()), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pipesDir, "Procfile.policy"), []byte("*: output=pipes\n"), 0o644); err != nil {
		return nil, err
	}

	fmt.Fprintf(b.log, "throughput: %d writers × %d lines of %d bytes, %d runs each of the shell, the pty floor, mhrun and mhrun with output=pipes\n", c.writers, c.lines, c.size, c.runs)
	var base, fl, mh, mp, old []tpRun
	busy := newBusy()
	defer func() { b.logf("  machine busy %.0f%% over the throughput runs (the runs included)", busy.percent()) }()
	for i := 0; i < c.runs; i++ {
		r, err := b.throughputRun("shell", ids, "/bin/sh", "-c", script.String())
		if err != nil {
			return nil, err
		}
		base = append(base, r)
		r, err = b.throughputRun("floor", ids, floor, floorArgs...)
		if err != nil {
			return nil, err
		}
		fl = append(fl, r)
		r, err = b.throughputRun("mhrun", ids, b.mhrun, "start", "-f", pf, "-d", dir)
		if err != nil {
			return nil, err
		}
		mh = append(mh, r)
		r, err = b.throughputRun("pipes", ids, b.mhrun, "start", "-f", ppf, "-d", pipesDir)
		if err != nil {
			return nil, err
		}
		mp = append(mp, r)
		if c.before != "" { // the -before binary, under ptys
			r, err = b.throughputRun("before", ids, c.before, "start", "-f", pf, "-d", dir)
			if err != nil {
				return nil, err
			}
			old = append(old, r)
		}
	}
	rows := throughputRows(c, base, fl, mh, mp)
	if len(old) > 0 {
		wall := func(rs []tpRun) []time.Duration {
			out := make([]time.Duration, len(rs))
			for i, r := range rs {
				out[i] = r.wall
			}
			return out
		}
		var oc checked
		for _, r := range old {
			oc.add(r.chk)
		}
		om, mm := median(wall(old)), median(wall(mh))
		rows = append(rows,
			row{"", fmt.Sprintf("ptys: the -before binary (baseline column) → this one, wall, median of %d", c.runs), secs(om), secs(mm), ratio(mm, om), "", ""},
			row{"", "ptys: before → this one, wall, best", secs(best(wall(old))), secs(best(wall(mh))), ratio(best(wall(mh)), best(wall(old))), "", ""},
			row{"", "ptys, the -before binary: lines lost / split / stray empty", fmt.Sprintf("%d / %d / %d", oc.lost, oc.split, oc.empty), "", "", "", ""})
	}
	return rows, nil
}

// throughputRun runs one runner with stdout to a file and checks the file.
func (b *bench) throughputRun(what string, ids []string, name string, args ...string) (tpRun, error) {
	outPath := filepath.Join(b.tmp, "throughput.out")
	errPath := filepath.Join(b.tmp, "throughput.err")
	out, err := os.Create(outPath)
	if err != nil {
		return tpRun{}, err
	}
	defer out.Close()
	errf, err := os.Create(errPath)
	if err != nil {
		return tpRun{}, err
	}
	defer errf.Close()
	cmd := b.command(name, args...)
	cmd.Stdout, cmd.Stderr = out, errf

	busy := newBusy()
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return tpRun{}, fmt.Errorf("start %s: %w", what, err)
	}
	werr := waitExited(cmd.Process.Pid)
	r := tpRun{wall: time.Since(t0), busy: busy.percent()}
	r.stat, _ = readStat(cmd.Process.Pid)
	err = cmd.Wait()
	if b.ctx.Err() != nil {
		return r, b.ctx.Err()
	}
	if werr != nil {
		return r, fmt.Errorf("wait for %s: %w", what, werr)
	}
	if err != nil {
		return r, fmt.Errorf("%s: %v; its stderr: %s", what, err, tail(errPath))
	}
	r.rusage = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	var chk fmt.Stringer
	if what == "floor" {
		// No line check (see floorChecked), but every byte must be there:
		// each line's "\n" became "\r\n", so size+1 bytes a line.
		if r.floor, err = countFloor(outPath); err != nil {
			return r, fmt.Errorf("count %s output: %w", what, err)
		}
		total := int64(len(ids) * b.cfg.lines)
		if r.floor.newlines != total || r.floor.returns != total || r.floor.bytes != total*int64(b.cfg.size+1) {
			return r, fmt.Errorf("pty floor output: %v, want %d \\n and \\r and %d bytes", r.floor, total, total*int64(b.cfg.size+1))
		}
		chk = r.floor
	} else {
		if r.chk, err = checkOutput(outPath, ids, b.cfg.lines, b.cfg.size, what != "shell"); err != nil {
			return r, fmt.Errorf("check %s output: %w", what, err)
		}
		chk = r.chk
	}
	if s := tail(errPath); s != "" {
		fmt.Fprintf(b.log, "  %s stderr: %s\n", what, s)
	}
	b.logf("  %-5s wall %6.3fs  own CPU %5.2fs  reaped children CPU %5.2fs  ProcessState user+sys %5.2fs  machine busy %3.0f%%  %v",
		what, r.wall.Seconds(), r.stat.own().Seconds(), r.stat.children().Seconds(), r.rusage.Seconds(), r.busy, chk)
	for _, l := range r.chk.samples {
		b.logf("    unexpected line: %q", l)
	}
	return r, nil
}

func throughputRows(c config, base, fl, mh, mp []tpRun) []row {
	field := func(rs []tpRun, f func(tpRun) time.Duration) []time.Duration {
		out := make([]time.Duration, len(rs))
		for i, r := range rs {
			out[i] = f(r)
		}
		return out
	}
	wall := func(r tpRun) time.Duration { return r.wall }
	own := func(r tpRun) time.Duration { return r.stat.own() }
	ru := func(r tpRun) time.Duration { return r.rusage }
	var bc, mc, pc checked
	for _, r := range base {
		bc.add(r.chk)
	}
	for _, r := range mh {
		mc.add(r.chk)
	}
	for _, r := range mp {
		pc.add(r.chk)
	}
	pMed, pBest := median(field(mp, wall)), best(field(mp, wall))
	bMed, mMed := median(field(base, wall)), median(field(mh, wall))
	bBest, mBest := best(field(base, wall)), best(field(mh, wall))
	fMed, fBest := median(field(fl, wall)), best(field(fl, wall))
	var nl int64
	for _, r := range fl {
		nl += r.floor.newlines
	}
	total := c.runs * c.writers * c.lines
	name := fmt.Sprintf("throughput %d×%dk lines", c.writers, c.lines/1000)
	const floor = "pty floor: each writer under its own pty, bytes copied to a file, nothing else (baseline column)"
	return []row{
		{name, fmt.Sprintf("wall, median of %d", c.runs), secs(bMed), secs(mMed), ratio(mMed, bMed), "≤ 1.5×", met(float64(mMed) <= 1.5*float64(bMed))},
		{"", fmt.Sprintf("wall, best of %d", c.runs), secs(bBest), secs(mBest), ratio(mBest, bBest), "", ""},
		{"", fmt.Sprintf("%s: wall, median of %d", floor, c.runs), secs(fMed), secs(mMed), ratio(mMed, fMed), "", ""},
		{"", fmt.Sprintf("pty floor: wall, best of %d", c.runs), secs(fBest), secs(mBest), ratio(mBest, fBest), "", ""},
		{"", `pty floor: its own CPU (user+sys), median; "\n" in its files`, fmt.Sprintf("%s; %d of %d", secs(median(field(fl, own))), nl, total), "", "", "", ""},
		{"", fmt.Sprintf("lines lost (of %d)", total), strconv.Itoa(bc.lost), strconv.Itoa(mc.lost), "", "0", met(mc.lost == 0)},
		{"", "lines split", strconv.Itoa(bc.split), strconv.Itoa(mc.split), "", "0", met(mc.split == 0)},
		{"", "stray empty lines (a line's end flushed apart)", "–", strconv.Itoa(mc.empty), "", "0", met(mc.empty == 0)},
		{"", "lines duplicated / unexpected output lines", fmt.Sprintf("%d / %d", bc.dup, bc.other), fmt.Sprintf("%d / %d", mc.dup, mc.other), "", "0", met(mc.dup == 0 && mc.other == 0)},
		{"", "lines mhrun reported dropped", "–", strconv.Itoa(mc.dropped), "", "", ""},
		{"", "runner's own CPU (user+sys), median", secs(median(field(base, own))) + " (sh)", secs(median(field(mh, own))), "", "", ""},
		{"", "ProcessState user+sys, median", secs(median(field(base, ru))), secs(median(field(mh, ru))), "", "", ""},
		{"", fmt.Sprintf("output=pipes (the children's stdout a pipe each): wall, median of %d", c.runs), secs(bMed), secs(pMed), ratio(pMed, bMed), "≤ 1.3×", met(float64(pMed) <= 1.3*float64(bMed))},
		{"", fmt.Sprintf("output=pipes: wall, best of %d", c.runs), secs(bBest), secs(pBest), ratio(pBest, bBest), "", ""},
		{"", "output=pipes: lines lost / split / empty / duplicated or unexpected", fmt.Sprintf("%d / %d / – / %d", bc.lost, bc.split, bc.dup+bc.other),
			fmt.Sprintf("%d / %d / %d / %d", pc.lost, pc.split, pc.empty, pc.dup+pc.other), "", "0", met(pc.lost == 0 && pc.split == 0 && pc.empty == 0 && pc.dup == 0 && pc.other == 0)},
		{"", "output=pipes: runner's own CPU (user+sys), median", secs(median(field(base, own))) + " (sh)", secs(median(field(mp, own))), "", "", ""},
	}
}
