package proctree

import (
	"os"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat:
// 1/sysconf(_SC_CLK_TCK), USER_HZ, which the kernel fixes at 100 for user
// space on every architecture mhrun builds for. x/sys offers no sysconf
// on Linux to read it.
const clockTick = time.Second / 100

// TreeSample is one instance tree's usage at one moment.
type TreeSample struct {
	RSS   int64         // bytes, summed over the root and all its descendants
	CPU   time.Duration // user+system time consumed so far by the live processes of the tree
	Procs int           // processes in the tree
	Files int           // /proc files read for it by SampleTrees; 0 from a full pass (Sample)
}

// Sampler reads the memory and CPU of process trees. It keeps its buffers
// from one Sample to the next; one goroutine uses it at a time.
//
// A tree is a root and whatever has it as an ancestor at the moment of the
// sample. Pages shared between processes of a tree (a forking server's
// workers) count once per process, as RSS does. A process that was
// orphaned and adopted by mhrun, the subreaper, is no longer under its
// instance's root and is not counted; neither is CPU time of children
// that already exited.
type Sampler struct {
	t    Table
	tree []int32

	// SampleTrees's: the walk's stack, the pids it saw, a path buffer,
	// and whether the kernel lists children (0 not known yet, 1, -1).
	stack    []int
	seen     map[int]struct{}
	kids     []byte
	children int8
}

// Sample reads the process table once and returns, for each root pid, its
// tree's usage. Roots that no longer exist are absent from the result.
// Without /proc (MemorySupported is false) it returns nil.
func (s *Sampler) Sample(roots []int) map[int]TreeSample {
	t := &s.t
	if t.scan() != nil || !t.stats {
		return nil
	}
	page := int64(os.Getpagesize())
	out := make(map[int]TreeSample, len(roots))
	for _, r := range roots {
		i, ok := t.index[r]
		if !ok {
			continue
		}
		t.NewWalk()
		t.Visit(i)
		s.tree = t.Below(append(s.tree[:0], i), i)
		var ts TreeSample
		var ticks int64
		for _, j := range s.tree {
			ts.RSS += t.procs[j].rss * page
			ticks += t.procs[j].ticks
		}
		ts.CPU = time.Duration(ticks) * clockTick
		ts.Procs = len(s.tree)
		out[r] = ts
	}
	return out
}

// SampleTrees returns, for each root pid, its tree's usage as Sample
// does, but reads only those trees, each walked down from its root (see
// readTree), not the whole process table: for a few trees on a busy
// machine it costs a small part of a full pass. Where the kernel does not
// list children per thread it is Sample.
func (s *Sampler) SampleTrees(roots []int) map[int]TreeSample {
	if !s.Walks() {
		return s.Sample(roots)
	}
	proc, err := openProc()
	if err != nil {
		return nil
	}
	defer closeProc(proc)
	out := make(map[int]TreeSample, len(roots))
	for _, r := range roots {
		var ts TreeSample
		if s.readTree(proc, r, &ts) {
			out[r] = ts
		}
	}
	return out
}

// Walks reports whether SampleTrees can read a tree on its own.
func (s *Sampler) Walks() bool {
	if s.children == 0 {
		s.children = -1
		if childrenListed() {
			s.children = 1
		}
	}
	return s.children > 0
}

// Processes is how many processes the last full pass (Sample) read: what
// one costs, in files, against a tree's Files from SampleTrees.
func (s *Sampler) Processes() int { return len(s.t.procs) }

// MemorySupported reports whether this system has /proc to sample process
// trees from: memory= needs it, and it is absent on macOS.
func MemorySupported() bool { return HasProc() }
