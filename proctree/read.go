package proctree

import (
	"bytes"
	"os"
	"strconv"
	"sync"
)

// walkers recycles the Samplers that ReadTree walks with.
var walkers = sync.Pool{New: func() any { return new(Sampler) }}

// Read reads the whole process table. Release gives the Table back.
func Read() (*Table, error) {
	t := tables.Get().(*Table)
	if err := t.scan(); err != nil {
		tables.Put(t)
		return nil, err
	}
	return t, nil
}

// ReadTree reads root and every process below it, walked down through the
// children lists of each one's threads (see Sampler.SampleTrees): a few
// files for a small tree, where Read reads one per process on the machine.
// Where the kernel lists no children, or root cannot be read, it is Read.
// Release gives the Table back.
func ReadTree(root int) (*Table, error) {
	w := walkers.Get().(*Sampler)
	if w.Walks() {
		if proc, err := openProc(); err == nil {
			ok := w.readSubtree(proc, root)
			closeProc(proc)
			if ok {
				w.t.link()
				w.t.owner = w
				return &w.t, nil
			}
		}
	}
	walkers.Put(w)
	return Read()
}

// Release gives a Table from Read or ReadTree back for reuse; it must not
// be used after.
func (t *Table) Release() {
	if t.owner != nil {
		walkers.Put(t.owner)
		return
	}
	tables.Put(t)
}

// Procs is every process of the table; indexes into it name processes in
// Index, Visit and Below. It is valid until Release.
func (t *Table) Procs() []Proc { return t.procs }

// Index is the index in Procs of the process pid, if the table holds it.
func (t *Table) Index(pid int) (int32, bool) {
	i, ok := t.index[pid]
	return i, ok
}

// FromProc reports whether the table was read from /proc, so that process
// groups, sessions and states are known; elsewhere (go-ps) only pids and
// parents are.
func (t *Table) FromProc() bool { return t.stats }

// State is the state letter of the process pid (see Proc.State), read from
// /proc/PID/stat; ok is false once it is gone, or without /proc.
func State(pid int) (state byte, ok bool) {
	e, ok := readStat(pid)
	return e.State, ok
}

// Exiting reports whether the process pid is on its way out: not yet a
// zombie, but past the start of its exit (the kernel's PF_EXITING flag,
// field 9 of /proc/PID/stat). Its memory may already be released, so
// that its environment reads empty: a process found by its environment
// is not found in that window, though it still exists.
func Exiting(pid int) bool {
	e, ok := readStat(pid)
	return ok && e.State != 'Z' && e.State != 'X' && e.flags&pfExiting != 0
}

// pfExiting is the kernel's PF_EXITING (include/linux/sched.h).
const pfExiting = 0x4

// readStat reads the process pid's /proc/PID/stat; ok is false once it is
// gone, or without /proc.
func readStat(pid int) (e Proc, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return e, false
	}
	ok = parseStat(b, &e)
	return e, ok
}

// EnvValue is the value of the variable name in the environment of the
// process pid (/proc/PID/environ), "" when it is not there or cannot be
// read.
func EnvValue(pid int, name string) string {
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
