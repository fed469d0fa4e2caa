package runner

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"mhrun/proctree"
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

// latest is the snapshot the runs' waiters share (membersSince).
var latest struct {
	sync.Mutex
	s  *snapshot
	at time.Time // when its read began
}

// membersSince is members, from a read of the process table begun after
// since. The waiters of runs that end together (a formation stopping: 50
// leaders exiting at once) share one read instead of one each: reading
// mhrun's tree and the environment of every process in it, once per run,
// made a stop of 50 cost 50 times 100 files in /proc.
func membersSince(since time.Time, leader int, ident string) []int {
	if leader <= 0 {
		return nil
	}
	latest.Lock()
	defer latest.Unlock()
	if latest.s == nil || !latest.at.After(since) {
		if latest.s != nil {
			latest.s.close()
		}
		latest.at = time.Now()
		latest.s = takeSnapshot()
	}
	return latest.s.members(leader, ident)
}

// snapshot is one read of the process table (mhrun's tree when it is the
// subreaper, see runnerTree) to find the members of several runs in: the
// environment of each process is read at most once.
type snapshot struct {
	t      *proctree.Table  // nil when the table could not be read
	idents map[int32]string // MHRUN_RUN of the processes read so far
}

// tableReads counts the snapshots taken, for the test that holds a pass
// over many overdue instances to one read of the table.
var tableReads atomic.Int64

func takeSnapshot() *snapshot {
	tableReads.Add(1)
	return &snapshot{t: runnerTree()}
}

func (s *snapshot) close() {
	if s.t != nil {
		s.t.Release()
	}
}

// ident is the MHRUN_RUN value in the environment of entry i, "" without.
func (s *snapshot) ident(i int32) string {
	if v, ok := s.idents[i]; ok {
		return v
	}
	if s.idents == nil {
		s.idents = map[int32]string{}
	}
	v := proctree.EnvValue(s.t.Procs()[i].PID, identityEnv)
	s.idents[i] = v
	return v
}

// members is members, found in the snapshot.
func (s *snapshot) members(leader int, ident string) []int {
	t := s.t
	if leader <= 0 || t == nil {
		return nil
	}
	procs := t.Procs()
	t.NewWalk()
	var found []int32
	for i := range procs {
		p := &procs[i]
		if p.PID == leader || (t.FromProc() && (p.SID == leader || p.Pgrp == leader)) {
			t.Visit(int32(i))
			found = append(found, int32(i))
		}
	}
	for k := 0; k < len(found); k++ { // found grows: descendants of descendants
		found = t.Below(found, found[k])
	}
	if ident != "" && t.FromProc() {
		if self, ok := t.Index(os.Getpid()); ok {
			t.NewWalk()
			for _, i := range found {
				t.Visit(i) // members already
			}
			t.Visit(self)
			under := t.Below(nil, self)
			var matches []int32
			for _, i := range under {
				if procs[i].State != 'Z' && s.ident(i) == ident {
					matches = append(matches, i)
				}
			}
			if len(matches) > 0 {
				t.NewWalk()
				for _, i := range found {
					t.Visit(i)
				}
				n := len(found)
				for _, i := range matches {
					if t.Visit(i) {
						found = append(found, i)
					}
				}
				for k := n; k < len(found); k++ {
					found = t.Below(found, found[k])
				}
			}
		}
	}
	var out []int
	for _, i := range found {
		if st := procs[i].State; st != 'Z' && st != 'X' {
			out = append(out, procs[i].PID)
		}
	}
	return out
}

// runnerTree is the process table members searches, nil when it cannot be
// read: with mhrun a subreaper, every member of a run is below mhrun, so
// only mhrun's tree is read (proctree.ReadTree: a few files for a small
// formation, where a full pass reads one per process on the machine);
// else the whole table.
func runnerTree() *proctree.Table {
	var t *proctree.Table
	var err error
	if proctree.IsSubreaper() {
		t, err = proctree.ReadTree(os.Getpid())
	} else {
		t, err = proctree.Read()
	}
	if err != nil {
		return nil
	}
	return t
}
