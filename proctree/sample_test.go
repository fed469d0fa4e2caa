package proctree

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Helper children for the sampler's tests: the test binary run again with
// MHRUN_TEST_HELPER set. An init, not a TestMain, so that it leaves the
// package's TestMain (if one comes) to others; cases it does not know
// fall through to it.
//
//	alloc        allocate and touch MHRUN_TEST_ALLOC_MB MiB, print "allocated PID", wait for stdin to close
//	spawn-alloc  start an alloc grandchild on the same stdin and stdout, wait for it
//	spin         print "ready", read a line, spend 200ms of CPU, print "done", wait for stdin to close
func init() {
	switch os.Getenv("MHRUN_TEST_HELPER") {
	case "alloc":
		mb, _ := strconv.Atoi(os.Getenv("MHRUN_TEST_ALLOC_MB"))
		b := make([]byte, mb<<20)
		for i := 0; i < len(b); i += os.Getpagesize() {
			b[i] = 1
		}
		fmt.Printf("allocated %d\n", os.Getpid())
		io.Copy(io.Discard, os.Stdin)
		runtime.KeepAlive(b)
		os.Exit(0)
	case "spawn-alloc":
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "MHRUN_TEST_HELPER=alloc")
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := c.Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "spin":
		in := bufio.NewReader(os.Stdin)
		fmt.Println("ready")
		in.ReadString('\n')
		n := 0
		for cpuTime() < 200*time.Millisecond {
			for i := range 1_000_000 {
				n += i
			}
		}
		spinSink = n
		fmt.Println("done")
		io.Copy(io.Discard, in)
		os.Exit(0)
	}
}

var spinSink int

// cpuTime is the user+system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// helper is a running helper child and the lines it prints.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startHelper starts the test binary as helper kind; cleanup closes its
// stdin, kills it and every descendant it left by pid, and waits for it.
func startHelper(t *testing.T, kind string, env ...string) *helper {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), "MHRUN_TEST_HELPER="+kind)
	c.Env = append(c.Env, env...)
	c.Stderr = os.Stderr
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: c, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				close(h.lines)
				return
			}
			h.lines <- strings.TrimSpace(l)
		}
	}()
	t.Cleanup(func() {
		left := Descendants(c.Process.Pid)
		stdin.Close()
		c.Process.Kill()
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		c.Wait()
	})
	return h
}

// expect waits for the next line and checks that it starts with prefix.
func (h *helper) expect(t *testing.T, prefix string) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok || !strings.HasPrefix(l, prefix) {
			t.Fatalf("helper printed %q (open %v), want %q", l, ok, prefix)
		}
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("helper did not print %q within 20s", prefix)
	}
	return ""
}

func needProc(t testing.TB) {
	if !MemorySupported() {
		t.Skip("no /proc to sample")
	}
}

// A child that spawned a grandchild holding 64 MiB has a tree of at least
// 64 MiB and two processes; the child alone is far below that.
func TestSampleCountsGrandchildMemory(t *testing.T) {
	needProc(t)
	const mb = 64
	h := startHelper(t, "spawn-alloc", "MHRUN_TEST_ALLOC_MB="+strconv.Itoa(mb))
	line := h.expect(t, "allocated ")
	grandchild, err := strconv.Atoi(strings.TrimPrefix(line, "allocated "))
	if err != nil {
		t.Fatal(err)
	}
	root := h.cmd.Process.Pid

	var s Sampler
	got := s.Sample([]int{root, grandchild})
	tree, ok := got[root]
	if !ok {
		t.Fatalf("root %d absent from %v", root, got)
	}
	t.Logf("tree %+v, grandchild %+v", tree, got[grandchild])
	if tree.RSS < mb<<20 || tree.Procs < 2 {
		t.Errorf("tree of %d: %+v, want RSS ≥ %d MiB and ≥ 2 processes", root, tree, mb)
	}
	if gc := got[grandchild]; gc.Procs != 1 || gc.RSS < mb<<20 || gc.RSS >= tree.RSS {
		t.Errorf("grandchild %+v, tree %+v", gc, tree)
	}
	// The root on its own: what a sampler that missed descendants would see.
	self := s.t.procs[s.t.index[root]].rss * int64(os.Getpagesize())
	if self >= mb<<20/2 {
		t.Errorf("root alone has %d MiB, want well under %d", self>>20, mb)
	}
	if !slices.Contains(Descendants(root), grandchild) {
		t.Errorf("Descendants(%d) = %v, want %d in it", root, Descendants(root), grandchild)
	}
}

// The CPU of a busy child grows by what it spent between two samples.
func TestSampleCPUGrows(t *testing.T) {
	needProc(t)
	h := startHelper(t, "spin")
	h.expect(t, "ready")
	pid := h.cmd.Process.Pid
	var s Sampler
	before := s.Sample([]int{pid})[pid]
	io.WriteString(h.stdin, "go\n")
	h.expect(t, "done")
	after := s.Sample([]int{pid})[pid]
	t.Logf("CPU before %v, after %v", before.CPU, after.CPU)
	// The child spun 200ms; ticks are 10ms and utime/stime are split by
	// sampling, so allow some slack below.
	if d := after.CPU - before.CPU; d < 150*time.Millisecond {
		t.Errorf("CPU grew by %v (from %v to %v), want ≥ 200ms", d, before.CPU, after.CPU)
	}
}

// A root that no longer exists is absent; a live one is present.
func TestSampleAbsentRoot(t *testing.T) {
	needProc(t)
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	gone := c.Process.Pid // reaped: its pid is free
	self := os.Getpid()
	var s Sampler
	got := s.Sample([]int{gone, self})
	if _, ok := got[gone]; ok {
		t.Errorf("exited pid %d present: %v", gone, got)
	}
	if me := got[self]; me.Procs < 1 || me.RSS <= 0 {
		t.Errorf("self: %+v", me)
	}
	// A fresh test binary may not yet have used one clock tick (10 ms) of
	// CPU, and /proc counts in ticks: spend CPU until the sampler sees it.
	deadline := time.Now().Add(10 * time.Second)
	for got[self].CPU <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("self CPU still %v after 10 s of spinning", got[self].CPU)
		}
		for end := time.Now().Add(20 * time.Millisecond); time.Now().Before(end); {
		}
		got = s.Sample([]int{self})
	}
}

// descendants and childrenOf see the whole tree below the test process,
// and no root twice.
func TestDescendantsAndChildren(t *testing.T) {
	h := startHelper(t, "spawn-alloc", "MHRUN_TEST_ALLOC_MB=1")
	line := h.expect(t, "allocated ")
	grandchild, _ := strconv.Atoi(strings.TrimPrefix(line, "allocated "))
	child := h.cmd.Process.Pid
	self := os.Getpid()

	if kids := childrenOf(self); !slices.Contains(kids, child) || slices.Contains(kids, grandchild) {
		t.Errorf("childrenOf(self) = %v, want %d and not %d", kids, child, grandchild)
	}
	all := Descendants(self)
	if !slices.Contains(all, child) || !slices.Contains(all, grandchild) || slices.Contains(all, self) {
		t.Errorf("Descendants(self) = %v, want %d and %d", all, child, grandchild)
	}
	// A root below another root is a root, not a descendant.
	if got := Descendants(self, child); slices.Contains(got, child) || !slices.Contains(got, grandchild) {
		t.Errorf("Descendants(self, child) = %v", got)
	}
	if got := Descendants(grandchild); len(got) != 0 {
		t.Errorf("descendants of a leaf: %v", got)
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		line string
		ok   bool
		want Proc
	}{
		{
			line: "1234 (sleep) S 1200 1234 1200 34816 1234 4194304 91 0 0 0 7 3 0 0 20 0 1 0 123456 8429568 236 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			ok:   true,
			want: Proc{State: 'S', PPID: 1200, Pgrp: 1234, SID: 1200, flags: 4194304, ticks: 10, rss: 236},
		},
		{
			// A name with spaces and ')' in it: fields start after the last ')'.
			line: "77 (a) b) (c ) R 1 77 77 0 -1 4194560 0 0 0 0 150 50 0 0 20 0 1 0 9 100 5000 18446744073709551615\n",
			ok:   true,
			want: Proc{State: 'R', PPID: 1, Pgrp: 77, SID: 77, flags: 4194560, ticks: 200, rss: 5000},
		},
		{line: "9 (zombie) Z 8 9 9 0 -1 4227084 0 0 0 0 1 2 0 0 20 0 1 0 9 0 0 18446744073709551615 0\n", ok: true, want: Proc{State: 'Z', PPID: 8, Pgrp: 9, SID: 9, flags: 4227084, ticks: 3}},
		{line: "5 (cut short) S 1 5 5 0 -1 4194560 0 0 0 0 1 2 0 0\n"},
		{line: "no parenthesis S 1 2 3"},
		{line: ""},
	}
	for _, tt := range tests {
		var e Proc
		ok := parseStat([]byte(tt.line), &e)
		if ok != tt.ok || ok && e != tt.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v, %v", tt.line, e, ok, tt.want, tt.ok)
		}
	}
}

// BenchmarkSample200 samples 200 idle children, one tree each, as the
// runner does every second.
func BenchmarkSample200(b *testing.B) {
	needProc(b)
	var roots []int
	for range 200 {
		c := exec.Command("sleep", "1000")
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			c.Process.Kill()
			c.Wait()
		})
		roots = append(roots, c.Process.Pid)
	}
	var s Sampler
	if got := s.Sample(roots); len(got) != len(roots) {
		b.Fatalf("sampled %d of %d roots", len(got), len(roots))
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Sample(roots)
	}
	b.ReportMetric(float64(len(s.t.procs)), "procs")
}

// SampleTrees, reading only the trees asked for, finds what a full pass
// finds: the grandchild's memory under the root, the same processes.
func TestSampleTreesMatchesSample(t *testing.T) {
	needProc(t)
	const mb = 64
	h := startHelper(t, "spawn-alloc", "MHRUN_TEST_ALLOC_MB="+strconv.Itoa(mb))
	line := h.expect(t, "allocated ")
	grandchild, err := strconv.Atoi(strings.TrimPrefix(line, "allocated "))
	if err != nil {
		t.Fatal(err)
	}
	root := h.cmd.Process.Pid
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	gone := c.Process.Pid

	var s Sampler
	if !s.Walks() {
		t.Skip("this kernel does not list children per thread (CONFIG_PROC_CHILDREN)")
	}
	full := s.Sample([]int{root, grandchild})
	some := s.SampleTrees([]int{root, grandchild, gone})
	t.Logf("full pass %+v, trees %+v (%d processes on the machine)", full, some, s.Processes())
	if _, ok := some[gone]; ok {
		t.Errorf("exited pid %d present: %v", gone, some)
	}
	for _, pid := range []int{root, grandchild} {
		f, w := full[pid], some[pid]
		if w.Procs != f.Procs || w.RSS < mb<<20 {
			t.Errorf("tree of %d: walked %+v, full pass %+v", pid, w, f)
		}
		// Taken a moment apart: the Go runtimes may touch a few pages.
		if d := w.RSS - f.RSS; d < -4<<20 || d > 4<<20 {
			t.Errorf("tree of %d: walked RSS %d, full pass %d", pid, w.RSS, f.RSS)
		}
		if w.Files < 3 {
			t.Errorf("tree of %d: %d files read, want at least stat, task and children", pid, w.Files)
		}
	}
	// Where the kernel lists no children, it is a full pass.
	fb := Sampler{children: -1}
	if got := fb.SampleTrees([]int{root}); got[root].Procs != full[root].Procs || got[root].Files != 0 || fb.Processes() == 0 {
		t.Errorf("without children lists: %+v after %d processes, want a full pass's %+v", got, fb.Processes(), full[root])
	}
}

// BenchmarkSampleTreesOne reads one tree of two Go processes (a helper and
// its grandchild) the way a fast memory sample does.
func BenchmarkSampleTreesOne(b *testing.B) {
	needProc(b)
	var s Sampler
	if !s.Walks() {
		b.Skip("no children lists")
	}
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), "MHRUN_TEST_HELPER=spawn-alloc", "MHRUN_TEST_ALLOC_MB=1")
	in, _ := c.StdinPipe()
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		left := Descendants(c.Process.Pid)
		in.Close()
		c.Process.Kill()
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		c.Wait()
	})
	bufio.NewReader(out).ReadString('\n') // "allocated PID"
	roots := []int{c.Process.Pid}
	got := s.SampleTrees(roots)[roots[0]]
	if got.Procs != 2 {
		b.Fatalf("tree %+v, want 2 processes", got)
	}
	s.Sample(roots)
	b.ReportAllocs()
	for b.Loop() {
		s.SampleTrees(roots)
	}
	b.ReportMetric(float64(got.Files), "files")
	b.ReportMetric(float64(s.Processes()), "machine-procs")
}

// A live process and a zombie are not exiting; a gone one is not either.
// (The window Exiting reports, between the release of a process's memory
// and its zombie state, cannot be held open from a test.)
func TestExitingOutsideTheWindow(t *testing.T) {
	needProc(t)
	c := exec.Command("sleep", "1000")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	if Exiting(pid) {
		t.Errorf("live sleep %d reported exiting", pid)
	}
	c.Process.Kill()
	// a zombie until reaped: wait for the state, then check
	for deadline := time.Now().Add(10 * time.Second); ; {
		if st, ok := State(pid); ok && st == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed sleep never became a zombie")
		}
		time.Sleep(time.Millisecond) // no event to wait on for another's state
	}
	if Exiting(pid) {
		t.Errorf("zombie %d reported exiting", pid)
	}
	c.Wait()
	if Exiting(pid) {
		t.Errorf("reaped %d reported exiting", pid)
	}
}
