//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"mhrun/formation"
	"mhrun/runner"
)

// idleLook is what one idle runner of n sleeps held once settled.
type idleLook struct {
	n       int
	threads int
	rss     int64 // VmRSS
	anon    int64 // RssAnon: Go heap, goroutine and thread stacks, runtime metadata
	binary  int64 // the Rss of the mappings of the runner's own executable
	other   int64 // VmRSS - anon - binary: other files (libc and ld.so for a cgo build, the vdso)
	// The idle working set: the pages referenced over an idle window
	// after clear_refs, of the binary's mappings and in all.
	usedBinary, used int64
}

// idleLight measures the idle runner's threads and memory with cfg.procs
// and cfg.many instances, for each binary (the -before one first, when
// given, then the measured one), one after the other in the same run.
func (b *bench) idleLight() ([]row, error) {
	c := b.cfg
	type bin struct{ name, path string }
	bins := []bin{{"after", b.mhrun}}
	if c.before != "" {
		before, err := filepath.Abs(c.before)
		if err != nil {
			return nil, err
		}
		bins = append([]bin{{"before", before}}, bins...)
	}
	looks := map[string][2]idleLook{}
	for _, x := range bins {
		var got [2]idleLook
		for i, n := range []int{c.procs, c.many} {
			l, err := b.idleLookAt(x.path, n)
			if err != nil {
				return nil, fmt.Errorf("%s, %d instances: %w", x.name, n, err)
			}
			b.logf("  %-6s %3d idle instances: %d threads, RSS %s = binary's pages %s + anonymous %s + other files %s; referenced over %v idle: %s, of it the binary's %s",
				x.name, n, l.threads, mib(l.rss), mib(l.binary), mib(l.anon), mib(l.other), idleWindow, mib(l.used), mib(l.usedBinary))
			got[i] = l
		}
		looks[x.name] = got
	}
	after := looks["after"]
	before, hasBefore := looks["before"]
	col := func(f func([2]idleLook) string) string {
		if !hasBefore {
			return "–"
		}
		return f(before)
	}
	per := func(l [2]idleLook, v func(idleLook) int64) int64 {
		return (v(l[1]) - v(l[0])) / int64(l[1].n-l[0].n)
	}
	rss := func(l idleLook) int64 { return l.rss }
	anon := func(l idleLook) int64 { return l.anon }
	kib := func(n int64) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }
	name := fmt.Sprintf("idle runner, before → after (%d and %d instances)", c.procs, c.many)
	rows := []row{
		{name, fmt.Sprintf("OS threads, %d idle instances", c.many), col(func(l [2]idleLook) string { return strconv.Itoa(l[1].threads) }),
			strconv.Itoa(after[1].threads), "", "< 20", met(after[1].threads < 20)},
		{"", fmt.Sprintf("OS threads, %d idle instances", c.procs), col(func(l [2]idleLook) string { return strconv.Itoa(l[0].threads) }),
			strconv.Itoa(after[0].threads), "", "", ""},
		{"", fmt.Sprintf("RSS, %d idle instances", c.procs), col(func(l [2]idleLook) string { return mib(l[0].rss) }),
			mib(after[0].rss), "", "≤ 8 MiB", met(after[0].rss <= 8<<20)},
		{"", "  of it: the binary's own pages (text, rodata, data: file-backed)", col(func(l [2]idleLook) string { return mib(l[0].binary) }),
			mib(after[0].binary), "", "", ""},
		{"", "  of it: anonymous (Go heap, stacks, runtime metadata)", col(func(l [2]idleLook) string { return mib(l[0].anon) }),
			mib(after[0].anon), "", "", ""},
		{"", "  of it: other files (libc and ld.so of a cgo build, the vdso)", col(func(l [2]idleLook) string { return mib(l[0].other) }),
			mib(after[0].other), "", "", ""},
		{"", fmt.Sprintf("pages referenced over %v idle after clear_refs (the idle working set), of them the binary's", idleWindow),
			col(func(l [2]idleLook) string { return mib(l[0].used) + ", " + mib(l[0].usedBinary) }),
			mib(after[0].used) + ", " + mib(after[0].usedBinary), "", "", ""},
		{"", fmt.Sprintf("RSS, %d idle instances", c.many), col(func(l [2]idleLook) string { return mib(l[1].rss) }),
			mib(after[1].rss), "", "", ""},
		{"", "RSS per extra idle instance", col(func(l [2]idleLook) string { return kib(per(l, rss)) }),
			kib(per(after, rss)), "", "", ""},
		{"", "  of it anonymous", col(func(l [2]idleLook) string { return kib(per(l, anon)) }),
			kib(per(after, anon)), "", "", ""},
	}
	in, err := b.idleInProcess()
	return append(rows, in...), err
}

// idleLookAt starts the binary at path with n sleeps, lets it settle and
// reads its threads and memory, then stops it.
func (b *bench) idleLookAt(path string, n int) (idleLook, error) {
	saved := b.mhrun
	b.mhrun = path
	s, err := b.startFormation("idle-light", n, "s: exec sleep 1000\n", "", "-m", fmt.Sprintf("s=%d", n))
	b.mhrun = saved
	if err != nil {
		return idleLook{}, err
	}
	defer s.kill()
	if _, err := s.waitAll(); err != nil {
		return idleLook{}, err
	}
	if err := b.pause(2 * time.Second); err != nil { // the start settled, a GC or two done
		return idleLook{}, err
	}
	l := idleLook{n: n, threads: threads(s.pid)}
	var ok bool
	if l.rss, ok = vmRSS(s.pid); !ok {
		return l, fmt.Errorf("read VmRSS of pid %d: gone; its stderr: %s", s.pid, tail(s.errPath))
	}
	kb, _ := statusValue(s.pid, "RssAnon:")
	l.anon = kb << 10
	l.binary, _ = exeRSS(s.pid)
	l.other = l.rss - l.anon - l.binary
	if gp, ok := guardOf(s.pid); ok {
		grss, _ := vmRSS(gp)
		gbin, _ := exeRSS(gp)
		b.logf("    its guard, the same binary having run its package init and little else: RSS %s, of it the binary's pages %s", mib(grss), mib(gbin))
	}
	// What the idle runner touches: clear the referenced bits, wait, count.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid), []byte("1"), 0); err == nil {
		if err := b.pause(idleWindow); err != nil {
			return l, err
		}
		_, l.usedBinary = exeRSS(s.pid)
		l.used = referenced(s.pid)
	}
	_, err = s.stop()
	return l, err
}

// idleWindow is how long the idle working set is watched.
const idleWindow = 3 * time.Second

// referenced is the Referenced total of /proc/PID/smaps_rollup.
func referenced(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Referenced:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// exeRSS sums the Rss (less the anonymous pages the data segment copied,
// which RssAnon counts), and the Referenced, of pid's mappings of its own
// executable (/proc/PID/smaps).
func exeRSS(pid int) (rss, referenced int64) {
	dir := "/proc/" + strconv.Itoa(pid)
	exe, err := os.Readlink(dir + "/exe")
	if err != nil {
		return 0, 0
	}
	f, err := os.Open(dir + "/smaps")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	mine := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 { // a mapping's header
			mine = len(fields) >= 6 && strings.TrimSuffix(strings.Join(fields[5:], " "), " (deleted)") == exe
			continue
		}
		if mine && len(fields) >= 2 {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			switch fields[0] {
			case "Rss:":
				rss += kb << 10
			case "Anonymous:": // the data segment's copied pages: counted in RssAnon
				rss -= kb << 10
			case "Referenced:":
				referenced += kb << 10
			}
		}
	}
	return rss, referenced
}

// memClasses are the runtime/metrics memory classes reported, in order.
var memClasses = []struct{ name, what string }{
	{"/memory/classes/heap/objects:bytes", "heap: live objects and not yet swept dead ones"},
	{"/memory/classes/heap/unused:bytes", "heap: spans in use, free slots"},
	{"/memory/classes/heap/free:bytes", "heap: free spans not returned to the OS"},
	{"/memory/classes/heap/stacks:bytes", "goroutine stacks"},
	{"/memory/classes/os-stacks:bytes", "thread stacks from the OS"},
	{"/memory/classes/metadata/other:bytes", "runtime metadata: GC bitmaps, arenas' heads"},
	{"/memory/classes/metadata/mspan/inuse:bytes", "runtime metadata: spans"},
	{"/memory/classes/metadata/mcache/inuse:bytes", "runtime metadata: per-P caches"},
	{"/memory/classes/other:bytes", "other: trace, debug, GC work buffers"},
	{"/memory/classes/profiling/buckets:bytes", "profiling buckets (this measure's own, MemProfileRate=1)"},
	{"/memory/classes/total:bytes", "total mapped by the Go runtime (less the released heap)"},
}

// idleInProcess runs the runner inside this process with cfg.procs, then
// cfg.many, idle sleeps and reads runtime/metrics after a GC, and the heap
// profile (every allocation sampled) of what is still live: where the
// anonymous memory of an idle runner goes, and what one more instance
// adds. This process is the bench, not mhrun: the binary's pages are not
// comparable, the Go heap and the stacks are (the runner's code is the same).
func (b *bench) idleInProcess() ([]row, error) {
	c := b.cfg
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	var at [2]map[string]uint64
	var sites [2]map[string]int64
	for i, n := range []int{c.procs, c.many} {
		m, prof, err := b.inProcessRun(n)
		if err != nil {
			return nil, err
		}
		at[i], sites[i] = m, prof
	}
	per := func(name string) string {
		d := int64(at[1][name]) - int64(at[0][name])
		return fmt.Sprintf("%.1f KiB", float64(d)/1024/float64(c.many-c.procs))
	}
	rows := []row{{fmt.Sprintf("idle runner in-process (runtime/metrics after a GC), %d → %d instances", c.procs, c.many), "goroutines",
		strconv.FormatUint(at[0]["/sched/goroutines:goroutines"], 10), strconv.FormatUint(at[1]["/sched/goroutines:goroutines"], 10), "", "", ""}}
	for _, mc := range memClasses {
		rows = append(rows, row{"", mc.what, mib(int64(at[0][mc.name])), mib(int64(at[1][mc.name])), per(mc.name) + " per instance", "", ""})
	}
	// The heap profile: live bytes by the first mhrun function on the
	// allocation's stack, at procs, and per extra instance.
	type site struct {
		fn     string
		at, dx int64
	}
	var all []site
	for fn, v := range sites[1] {
		all = append(all, site{fn, sites[0][fn], v - sites[0][fn]})
	}
	slices.SortFunc(all, func(a, b site) int { return int(b.dx - a.dx) })
	for i, s := range all {
		if i == 8 {
			break
		}
		rows = append(rows, row{"", "live heap allocated in " + s.fn, fmt.Sprintf("%.1f KiB", float64(s.at)/1024), "",
			fmt.Sprintf("%.2f KiB per instance", float64(s.dx)/1024/float64(c.many-c.procs)), "", ""})
	}
	return rows, nil
}

// inProcessRun runs n idle sleeps under runner.Run in this process, reads
// the memory classes and the live heap by site once they all run, then
// stops the formation.
func (b *bench) inProcessRun(n int) (map[string]uint64, map[string]int64, error) {
	dir, err := b.runDir(fmt.Sprintf("idle-inprocess-%d", n))
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("s: exec sleep 1000\n"), 0o644); err != nil {
		return nil, nil, err
	}
	f, err := formation.Load(formation.Options{Dir: dir, Environ: b.env, Scale: []string{fmt.Sprintf("s=%d", n)}})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(ctx, f, runner.Options{Stdout: io.Discard})
		done <- err
	}()
	stop := func() error { cancel(); return <-done }
	w := newWatcher()
	self := os.Getpid()
	deadline := time.Now().Add(20 * time.Second)
	for len(w.sleeps(self)) < n {
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("in-process runner: %d sleeps of %d after 20s", len(w.sleeps(self)), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := b.pause(time.Second); err != nil {
		stop()
		return nil, nil, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	samples := []metrics.Sample{{Name: "/sched/goroutines:goroutines"}}
	for _, mc := range memClasses {
		samples = append(samples, metrics.Sample{Name: mc.name})
	}
	metrics.Read(samples)
	m := map[string]uint64{}
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			m[s.Name] = s.Value.Uint64()
		}
	}
	prof := liveBySite()
	return m, prof, stop()
}

// liveBySite sums the live heap bytes of the memory profile by the first
// function of the module (mhrun/...) on each allocation's stack, or the
// first function at all when none is.
func liveBySite() map[string]int64 {
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	out := map[string]int64{}
	for _, r := range recs {
		fn := ""
		frames := runtime.CallersFrames(r.Stack())
		for {
			fr, more := frames.Next()
			if fn == "" {
				fn = fr.Function
			}
			if strings.HasPrefix(fr.Function, "mhrun/") && !strings.HasPrefix(fr.Function, "mhrun/bench") {
				fn = fr.Function
				break
			}
			if !more {
				break
			}
		}
		out[fn] += r.InUseBytes()
	}
	return out
}
