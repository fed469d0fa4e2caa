//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on Linux).
const userHZ = 100

// pstat is what the benchmark reads from /proc/PID/stat.
type pstat struct {
	pid    int
	ppid   int
	comm   string
	state  byte
	utime  int64 // clock ticks of the process itself (all its threads)
	stime  int64
	cutime int64 // clock ticks of its children it waited for, and of theirs
	cstime int64
}

// own is the process's own user+sys CPU.
func (s pstat) own() time.Duration { return ticks(s.utime + s.stime) }

// children is the user+sys CPU of the children it reaped (and of theirs).
func (s pstat) children() time.Duration { return ticks(s.cutime + s.cstime) }

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// readStat reads /proc/PID/stat; ok is false once the process is gone.
func readStat(pid int) (pstat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return pstat{}, false
	}
	// The comm is in parentheses and may hold anything: fields start after the last ')'.
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return pstat{}, false
	}
	f := bytes.Fields(b[close+1:])
	if len(f) < 15 {
		return pstat{}, false
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(string(f[i]), 10, 64); return n }
	return pstat{
		pid:    pid,
		ppid:   int(num(1)),
		comm:   string(b[open+1 : close]),
		state:  f[0][0],
		utime:  num(11),
		stime:  num(12),
		cutime: num(13),
		cstime: num(14),
	}, true
}

// cpuClock is the CPU time pid has used, all its threads, to the
// nanosecond: its process CPU-time clock (CLOCK_PROCESS_CPUTIME_ID seen
// from outside). /proc/PID/stat counts in 10 ms ticks, too coarse for an
// idle process.
func cpuClock(pid int) (time.Duration, bool) {
	clock := int32((^pid)<<3 | 2) // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}

// gone reports whether pid no longer runs: no such process, or a zombie.
func gone(pid int) bool {
	s, ok := readStat(pid)
	return !ok || s.state == 'Z' || s.state == 'X'
}

// vmRSS is the VmRSS of pid in bytes, from /proc/PID/status.
func vmRSS(pid int) (int64, bool) {
	kb, ok := statusValue(pid, "VmRSS:") // "1234 kB"
	return kb << 10, ok
}

// threads is the number of threads of pid, from /proc/PID/status.
func threads(pid int) int {
	n, _ := statusValue(pid, "Threads:")
	return int(n)
}

// statusValue is the number after key in /proc/PID/status.
func statusValue(pid int, key string) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				n, err := strconv.ParseInt(string(f[0]), 10, 64)
				return n, err == nil
			}
		}
	}
	return 0, false
}

// pids lists every process in /proc.
func pids() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	out := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// watcher finds the live "sleep" processes under one root, polling /proc.
// The kernel here has no /proc/PID/task/TID/children, so each poll reads
// /proc/*/stat; to keep a 1 ms poll light it skips processes that existed
// before the root started or were seen outside its tree (neither can join
// it, barring pid reuse, which the fallback covers), and does not read again
// the sleeps it found (a sleep does not exec anything else).
type watcher struct {
	skip  map[int]bool
	found map[int]int // sleeps found: pid → ppid
	since time.Time
	scans int
	spent time.Duration
}

// newWatcher snapshots the processes that exist now; call it just before
// starting the root.
func newWatcher() *watcher {
	w := &watcher{skip: map[int]bool{}, found: map[int]int{}, since: time.Now()}
	for _, pid := range pids() {
		w.skip[pid] = true
	}
	return w
}

// sleeps lists the live descendants of root whose comm is "sleep".
func (w *watcher) sleeps(root int) []int {
	t0 := time.Now()
	defer func() { w.scans++; w.spent += time.Since(t0) }()
	if len(w.skip) > 0 && time.Since(w.since) > 2*time.Second {
		w.skip = map[int]bool{} // a pid reused by the tree would hide for ever: read everything
	}
	var read []pstat
	live := map[int]bool{}
	for _, pid := range pids() {
		live[pid] = true
		if ppid, ok := w.found[pid]; ok {
			read = append(read, pstat{pid: pid, ppid: ppid, comm: "sleep", state: 'S'})
			continue
		}
		if pid == root || w.skip[pid] {
			continue
		}
		if s, ok := readStat(pid); ok {
			read = append(read, s)
		}
	}
	for pid := range w.found {
		if !live[pid] {
			delete(w.found, pid)
		}
	}
	in := map[int]bool{root: true}
	for changed := true; changed; { // parents may come after children in /proc order
		changed = false
		for _, s := range read {
			if !in[s.pid] && in[s.ppid] {
				in[s.pid], changed = true, true
			}
		}
	}
	var out []int
	for _, s := range read {
		switch {
		case !in[s.pid]:
			w.skip[s.pid] = true
		case s.comm == "sleep" && s.state != 'Z' && s.state != 'X':
			out = append(out, s.pid)
			w.found[s.pid] = s.ppid
		}
	}
	return out
}

// waitExited blocks until child pid has exited, without reaping it, so its
// /proc/PID/stat (a zombie's final CPU times) can still be read.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// setSubreaper makes the benchmark the reaper of orphans from its runs (a
// shell's sleeps once the shell is gone), so they are reaped here rather
// than left to whatever PID 1 is.
func setSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// reap kills what is left of pids (by pid) and reaps those that became
// this process's children, for up to two seconds.
func reap(pids []int) {
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range pids {
		if !gone(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for {
			var ws unix.WaitStatus
			got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			if got == pid || errors.Is(err, syscall.ECHILD) && gone(pid) || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// sweep is the last cleanup: every live descendant of this process is
// killed by pid, and every zombie child reaped. Call it only when no
// exec.Cmd is waiting.
func sweep() {
	self := os.Getpid()
	var all []pstat
	for _, pid := range pids() {
		if s, ok := readStat(pid); ok {
			all = append(all, s)
		}
	}
	in := map[int]bool{self: true}
	for changed := true; changed; {
		changed = false
		for _, s := range all {
			if !in[s.pid] && in[s.ppid] {
				in[s.pid], changed = true, true
			}
		}
	}
	for _, s := range all {
		if s.pid != self && in[s.pid] && s.state != 'Z' {
			syscall.Kill(s.pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil { // ECHILD: no children left
			return
		}
		if got == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// busy measures how busy the whole machine was (every CPU, every process,
// this benchmark included) from /proc/stat, to tell a noisy run.
type busy struct{ work, total int64 }

func newBusy() busy {
	var b busy
	b.work, b.total = cpuTimes()
	return b
}

// percent is the share of CPU time spent busy since newBusy.
func (b busy) percent() float64 {
	work, total := cpuTimes()
	if total <= b.total {
		return 0
	}
	return 100 * float64(work-b.work) / float64(total-b.total)
}

// cpuTimes reads the "cpu" line of /proc/stat: busy and total ticks.
func cpuTimes() (work, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	for i := 1; i < len(f); i++ {
		n, _ := strconv.ParseInt(string(f[i]), 10, 64)
		if i > 8 { // guest and guest_nice are already in user and nice
			break
		}
		total += n
		if i != 4 && i != 5 { // idle, iowait
			work += n
		}
	}
	return work, total
}

// guardOf finds the guard of the runner pid: its child running the same
// executable (mhrun runs itself again as the formation's guard).
func guardOf(pid int) (int, bool) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return 0, false
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := statusValue(child, "PPid:"); !ok || int(ppid) != pid {
			continue
		}
		if x, err := os.Readlink("/proc/" + e.Name() + "/exe"); err == nil && x == exe {
			return child, true
		}
	}
	return 0, false
}

// privateMem is the memory only pid uses (Private_Clean + Private_Dirty
// of /proc/PID/smaps_rollup): what it costs beyond pages it shares, such
// as the text of a binary another process runs too.
func privateMem(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, false
	}
	var total int64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "Private_Clean:" || f[0] == "Private_Dirty:") {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, false
			}
			total += kb << 10
		}
	}
	return total, true
}
