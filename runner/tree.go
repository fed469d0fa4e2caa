package runner

import (
	"bytes"
	"os"
	"strconv"

	ps "github.com/mitchellh/go-ps"
)

// descendants lists every live descendant of the roots (the roots
// excluded), found by walking parent links with go-ps. Nothing is ever
// matched by name.
func descendants(roots ...int) []int {
	procs, err := ps.Processes()
	if err != nil {
		return nil
	}
	kids := make(map[int][]int, len(procs))
	for _, p := range procs {
		kids[p.PPid()] = append(kids[p.PPid()], p.Pid())
	}
	seen := map[int]bool{}
	var out []int
	queue := append([]int(nil), roots...)
	for _, r := range roots {
		seen[r] = true
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, k := range kids[pid] {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
				queue = append(queue, k)
			}
		}
	}
	return out
}

// childrenOf lists the direct children of pid.
func childrenOf(pid int) []int {
	procs, err := ps.Processes()
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range procs {
		if p.PPid() == pid {
			out = append(out, p.Pid())
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
	// The command name is in parentheses and may hold spaces: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+4 > len(b) {
		return procStat{}, false
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 2 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	return procStat{state: f[0][0], ppid: ppid}, true
}
