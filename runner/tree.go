package runner

import (
	"bytes"
	"os"
	"strconv"
	"sync"
)

// The process table is read in one pass (procTable.load: /proc on Linux,
// go-ps elsewhere) and turned into child lists. Stop logic walks it for
// descendants, the sampler sums memory and CPU over it. Nothing is ever
// matched by name.

// procEntry is one process of a procTable.
type procEntry struct {
	pid, ppid int
	pgrp, sid int // process group and session
	state     byte
	rss       int64  // resident pages
	ticks     int64  // utime+stime in clock ticks
	child     int32  // first child: index into procTable.procs, -1 for none
	next      int32  // next sibling, -1 for none
	seen      uint32 // the walk that last visited the entry
}

// procTable is a snapshot of the process table with parent links turned
// into child lists. Its buffers are kept from one scan to the next; it is
// not safe for concurrent use.
type procTable struct {
	procs []procEntry
	index map[int]int32 // pid → index into procs
	stats bool          // rss and ticks were read; without /proc only pids are known
	stamp uint32        // the current walk, see newWalk

	// load's buffers
	dir, stat, path []byte
}

// tables recycles procTables for descendants and childrenOf, which run
// from more than one goroutine.
var tables = sync.Pool{New: func() any { return new(procTable) }}

// scan reads the process table afresh and links children to parents.
func (t *procTable) scan() error {
	t.procs = t.procs[:0]
	t.stamp = 0
	if err := t.load(); err != nil {
		return err
	}
	t.link()
	return nil
}

// link indexes t.procs and turns parent links into child lists.
func (t *procTable) link() {
	t.stamp = 0
	if t.index == nil {
		t.index = make(map[int]int32, len(t.procs))
	} else {
		clear(t.index)
	}
	for i := range t.procs {
		t.index[t.procs[i].pid] = int32(i)
		t.procs[i].child, t.procs[i].next = -1, -1
	}
	for i := range t.procs {
		p, ok := t.index[t.procs[i].ppid]
		if ok && int(p) != i {
			t.procs[i].next = t.procs[p].child
			t.procs[p].child = int32(i)
		}
	}
}

// newWalk starts a walk: every entry counts as not yet visited.
func (t *procTable) newWalk() { t.stamp++ }

// visit marks entry i visited in this walk and reports whether it was not yet.
func (t *procTable) visit(i int32) bool {
	if t.procs[i].seen == t.stamp {
		return false
	}
	t.procs[i].seen = t.stamp
	return true
}

// below appends to out the indexes of every descendant of entry i not yet
// visited in this walk, and marks them visited. Marks also keep a cycle of
// parent links, possible in a snapshot taken while pids are reused, from
// looping.
func (t *procTable) below(out []int32, i int32) []int32 {
	next := len(out)
	for {
		for c := t.procs[i].child; c >= 0; c = t.procs[c].next {
			if t.visit(c) {
				out = append(out, c)
			}
		}
		if next == len(out) {
			return out
		}
		i = out[next]
		next++
	}
}

// descendants lists every live descendant of the roots (the roots
// excluded), found by walking parent links.
func descendants(roots ...int) []int {
	t := tables.Get().(*procTable)
	defer tables.Put(t)
	if t.scan() != nil {
		return nil
	}
	t.newWalk()
	var found []int32
	for _, r := range roots {
		if i, ok := t.index[r]; ok {
			t.visit(i)
			found = append(found, i)
		}
	}
	n := len(found)
	for _, i := range found[:n] {
		found = t.below(found, i)
	}
	var out []int
	for _, i := range found[n:] {
		out = append(out, t.procs[i].pid)
	}
	return out
}

// childrenOf lists the direct children of pid.
func childrenOf(pid int) []int {
	t := tables.Get().(*procTable)
	defer tables.Put(t)
	if t.scan() != nil {
		return nil
	}
	var out []int
	for _, p := range t.procs {
		if p.ppid == pid {
			out = append(out, p.pid)
		}
	}
	return out
}

type procStat struct {
	state byte
	ppid  int
}

// readStat reads the fields mhrun needs from /proc/PID/stat.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	var e procEntry
	if !parseStat(b, &e) {
		return procStat{}, false
	}
	return procStat{state: e.state, ppid: e.ppid}, true
}

// parseStat reads state, ppid, utime+stime and rss from the text of
// /proc/PID/stat into e. The command name is in parentheses and may hold
// spaces and ')' itself: the fields that follow start after the last ')'.
// Counted from there, from 0, they are state 0, ppid 1, pgrp 2, session 3,
// utime 11, stime 12 and rss 21 (fields 3, 4, 5, 6, 14, 15 and 24 of
// proc(5)).
func parseStat(b []byte, e *procEntry) bool {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	b = b[i+1:]
	for f := 0; ; f++ {
		for len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		end := bytes.IndexByte(b, ' ')
		if end < 0 {
			return false // every field we need is followed by another
		}
		tok := b[:end]
		b = b[end:]
		switch f {
		case 0:
			e.state = tok[0]
		case 1, 2, 3, 11, 12, 21:
			n, ok := atoi(tok)
			if !ok {
				return false
			}
			switch f {
			case 1:
				e.ppid = int(n)
			case 2:
				e.pgrp = int(n)
			case 3:
				e.sid = int(n)
			case 11, 12:
				e.ticks += n
			case 21:
				e.rss = n
				return true
			}
		}
	}
}

// atoi parses a non-negative decimal without allocating.
func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
