// Package proctree reads the process tree: the process table (/proc on
// Linux, go-ps elsewhere) walked by parent links, the memory and CPU of a
// process's tree, and mhrun's place at the top of its children's trees
// (their sessions, the subreaper, the reaping of orphans).
package proctree

import (
	"bytes"
	"sync"
)

// The process table is read in one pass (Table.load: /proc on Linux,
// go-ps elsewhere) and turned into child lists. Stop logic walks it for
// descendants, the sampler sums memory and CPU over it. Nothing is ever
// matched by name.

// Proc is one process of a Table. Without /proc (Table.FromProc false) only
// PID and PPID are known.
type Proc struct {
	PID, PPID int
	Pgrp, SID int    // process group and session
	State     byte   // the state letter of proc(5): R, S, D, Z, X, …
	flags     uint32 // the kernel's PF_* flags (see Exiting)
	rss       int64  // resident pages
	ticks     int64  // utime+stime in clock ticks
	child     int32  // first child: index into Table.procs, -1 for none
	next      int32  // next sibling, -1 for none
	seen      uint32 // the walk that last visited the entry
}

// Table is a snapshot of the process table with parent links turned into
// child lists, walked by index into Procs. Its buffers are kept from one
// read to the next; it is not safe for concurrent use.
type Table struct {
	procs []Proc
	index map[int]int32 // pid → index into procs
	stats bool          // read from /proc: groups, sessions, states, rss and ticks are known
	stamp uint32        // the current walk, see NewWalk
	owner *Sampler      // the pooled Sampler whose table this is (ReadTree), or nil

	// load's buffers
	dir, stat, path []byte
}

// tables recycles Tables for Read, Descendants and childrenOf, which run
// from more than one goroutine.
var tables = sync.Pool{New: func() any { return new(Table) }}

// scan reads the process table afresh and links children to parents.
func (t *Table) scan() error {
	t.procs = t.procs[:0]
	t.stamp = 0
	if err := t.load(); err != nil {
		return err
	}
	t.link()
	return nil
}

// link indexes t.procs and turns parent links into child lists.
func (t *Table) link() {
	t.stamp = 0
	if t.index == nil {
		t.index = make(map[int]int32, len(t.procs))
	} else {
		clear(t.index)
	}
	for i := range t.procs {
		t.index[t.procs[i].PID] = int32(i)
		t.procs[i].child, t.procs[i].next = -1, -1
	}
	for i := range t.procs {
		p, ok := t.index[t.procs[i].PPID]
		if ok && int(p) != i {
			t.procs[i].next = t.procs[p].child
			t.procs[p].child = int32(i)
		}
	}
}

// NewWalk starts a walk: every entry counts as not yet visited.
func (t *Table) NewWalk() { t.stamp++ }

// Visit marks entry i visited in this walk and reports whether it was not yet.
func (t *Table) Visit(i int32) bool {
	if t.procs[i].seen == t.stamp {
		return false
	}
	t.procs[i].seen = t.stamp
	return true
}

// Below appends to out the indexes of every descendant of entry i not yet
// visited in this walk, and marks them visited. Marks also keep a cycle of
// parent links, possible in a snapshot taken while pids are reused, from
// looping.
func (t *Table) Below(out []int32, i int32) []int32 {
	next := len(out)
	for {
		for c := t.procs[i].child; c >= 0; c = t.procs[c].next {
			if t.Visit(c) {
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

// Descendants lists every live descendant of the roots (the roots
// excluded), found by walking parent links.
func Descendants(roots ...int) []int {
	t := tables.Get().(*Table)
	defer tables.Put(t)
	if t.scan() != nil {
		return nil
	}
	t.NewWalk()
	var found []int32
	for _, r := range roots {
		if i, ok := t.index[r]; ok {
			t.Visit(i)
			found = append(found, i)
		}
	}
	n := len(found)
	for _, i := range found[:n] {
		found = t.Below(found, i)
	}
	var out []int
	for _, i := range found[n:] {
		out = append(out, t.procs[i].PID)
	}
	return out
}

// childrenOf lists the direct children of pid.
func childrenOf(pid int) []int {
	t := tables.Get().(*Table)
	defer tables.Put(t)
	if t.scan() != nil {
		return nil
	}
	var out []int
	for _, p := range t.procs {
		if p.PPID == pid {
			out = append(out, p.PID)
		}
	}
	return out
}

// parseStat reads state, ppid, utime+stime and rss from the text of
// /proc/PID/stat into e. The command name is in parentheses and may hold
// spaces and ')' itself: the fields that follow start after the last ')'.
// Counted from there, from 0, they are state 0, ppid 1, pgrp 2, session 3,
// utime 11, stime 12 and rss 21 (fields 3, 4, 5, 6, 14, 15 and 24 of
// proc(5)).
func parseStat(b []byte, e *Proc) bool {
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
			e.State = tok[0]
		case 1, 2, 3, 6, 11, 12, 21:
			n, ok := atoi(tok)
			if !ok {
				return false
			}
			switch f {
			case 1:
				e.PPID = int(n)
			case 2:
				e.Pgrp = int(n)
			case 3:
				e.SID = int(n)
			case 6:
				e.flags = uint32(n)
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
