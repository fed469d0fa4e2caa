//go:build !linux

package proctree

import (
	"fmt"

	ps "github.com/mitchellh/go-ps"
)

// load appends every process to t.procs with go-ps: pids and parents
// only, as there is no /proc to read memory and CPU from.
func (t *Table) load() error {
	procs, err := ps.Processes()
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	t.stats = false
	for _, p := range procs {
		t.procs = append(t.procs, Proc{PID: p.Pid(), PPID: p.PPid()})
	}
	return nil
}

// Without /proc there are no trees to read one by one: SampleTrees is
// Sample, which returns nothing here.
func childrenListed() bool { return false }

func openProc() (int, error) { return -1, fmt.Errorf("no /proc on this system") }

func closeProc(int) {}

func (s *Sampler) readTree(proc, root int, ts *TreeSample) bool { return false }

func (s *Sampler) readSubtree(proc, root int) bool { return false }
