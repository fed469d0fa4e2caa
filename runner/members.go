package runner

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strconv"
	"sync"
)

// Every process of a run carries the run's identity: the variable
// MHRUN_RUN=TOKEN.SEQ, where TOKEN is drawn afresh by each runner and SEQ
// numbers its runs. Children inherit it, so the processes an instance
// leaves behind are found by it even when they left its session and
// process group (setsid, a double fork). A run's members are
//
//   - its leader, while it lives;
//   - every process in the leader's session or process group (the leader's
//     pid names both, as the run starts in a session of its own);
//   - every descendant of those;
//   - every descendant of mhrun (its subreaper adopts orphans) whose
//     environment holds the run's identity.
//
// Zombies are not members: they hold nothing and only wait to be reaped.
// What escapes a run's end: a process that dropped MHRUN_RUN from its
// environment (env -i, a daemon that clears it) *and* left the run's
// session and group (setsid), once its parent is gone: nothing then ties
// it to the run. mhrun, its subreaper, still stops it with the formation,
// but not before; and after a SIGKILL of the runner the guard cannot find
// it either. Also a process of another user (setuid), whose environment
// mhrun may not read.

// identityEnv names the variable that carries a run's identity.
const identityEnv = "MHRUN_RUN"

// newToken draws a runner's identity token.
func newToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// members lists the live processes of the run whose leader is (or was)
// leader and whose identity is ident; see the rules above.
func members(leader int, ident string) []int {
	if leader <= 0 {
		return nil // not started: and 0 would name the kernel's threads
	}
	s := takeSnapshot()
	defer s.close()
	return s.members(leader, ident)
}

// snapshot is one read of the process table (mhrun's tree when it is the
// subreaper, see runnerTree) to find the members of several runs in: the
// environment of each process is read at most once.
type snapshot struct {
	t      *procTable
	done   func()
	idents map[int32]string // MHRUN_RUN of the processes read so far
}

func takeSnapshot() *snapshot {
	t, done := runnerTree()
	return &snapshot{t: t, done: done}
}

func (s *snapshot) close() { s.done() }

// ident is the MHRUN_RUN value in the environment of entry i, "" without.
func (s *snapshot) ident(i int32) string {
	if v, ok := s.idents[i]; ok {
		return v
	}
	if s.idents == nil {
		s.idents = map[int32]string{}
	}
	v := environValue(s.t.procs[i].pid, identityEnv)
	s.idents[i] = v
	return v
}

// members is members, found in the snapshot.
func (s *snapshot) members(leader int, ident string) []int {
	t := s.t
	if leader <= 0 || t == nil {
		return nil
	}
	t.newWalk()
	var found []int32
	for i := range t.procs {
		p := &t.procs[i]
		if p.pid == leader || (t.stats && (p.sid == leader || p.pgrp == leader)) {
			t.visit(int32(i))
			found = append(found, int32(i))
		}
	}
	for k := 0; k < len(found); k++ { // found grows: descendants of descendants
		found = t.below(found, found[k])
	}
	if ident != "" && t.stats {
		if self, ok := t.index[os.Getpid()]; ok {
			t.newWalk()
			for _, i := range found {
				t.visit(i) // members already
			}
			t.visit(self)
			under := t.below(nil, self)
			var matches []int32
			for _, i := range under {
				if t.procs[i].state != 'Z' && s.ident(i) == ident {
					matches = append(matches, i)
				}
			}
			if len(matches) > 0 {
				t.newWalk()
				for _, i := range found {
					t.visit(i)
				}
				n := len(found)
				for _, i := range matches {
					if t.visit(i) {
						found = append(found, i)
					}
				}
				for k := n; k < len(found); k++ {
					found = t.below(found, found[k])
				}
			}
		}
	}
	var out []int
	for _, i := range found {
		if st := t.procs[i].state; st != 'Z' && st != 'X' {
			out = append(out, t.procs[i].pid)
		}
	}
	return out
}

// walkers recycles the Samplers that runnerTree walks with.
var walkers = sync.Pool{New: func() any { return new(Sampler) }}

// runnerTree is the process table members searches, and the function that
// gives it back: with mhrun a subreaper, every member of a run is below
// mhrun, so only mhrun's tree is read, walked down through children lists
// (a few files for a small formation, where a full pass reads one per
// process on the machine); else, or where the kernel lists no children,
// the whole table. nil when neither can be read.
func runnerTree() (*procTable, func()) {
	if isSubreaper() {
		w := walkers.Get().(*Sampler)
		if w.walks() {
			if proc, err := openProc(); err == nil {
				ok := w.readSubtree(proc, os.Getpid())
				closeProc(proc)
				if ok {
					w.t.link()
					return &w.t, func() { walkers.Put(w) }
				}
			}
		}
		walkers.Put(w)
	}
	t := tables.Get().(*procTable)
	if t.scan() != nil {
		tables.Put(t)
		return nil, func() {}
	}
	return t, func() { tables.Put(t) }
}

// environValue is the value of the variable name in /proc/PID/environ,
// "" when it is not there or cannot be read.
func environValue(pid int, name string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	want := []byte(name + "=")
	for len(b) > 0 {
		entry, rest, _ := bytes.Cut(b, []byte{0})
		if v, ok := bytes.CutPrefix(entry, want); ok {
			return string(v)
		}
		b = rest
	}
	return ""
}
