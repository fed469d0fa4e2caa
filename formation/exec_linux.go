package formation

import (
	"strconv"
	"syscall"
)

// execLimit is the most Linux's exec takes of argument and environment
// strings for a child of this process, and why: a quarter of the stack
// limit, at least 128 KiB (ARG_MAX) and at most 6 MiB (three quarters of
// _STK_LIM), as bprm_stack_limits in fs/exec.c.
func execLimit() (int, string) {
	const floor, ceiling = 128 << 10, 6 << 20
	var rl syscall.Rlimit
	switch err := syscall.Getrlimit(syscall.RLIMIT_STACK, &rl); {
	case err != nil || rl.Cur == ^uint64(0) || rl.Cur/4 >= ceiling:
		return ceiling, "the most Linux takes, whatever the stack limit"
	case rl.Cur/4 <= floor:
		return floor, "the least Linux takes, whatever the stack limit"
	}
	return int(rl.Cur / 4), "a quarter of the stack limit, ulimit -s " + strconv.FormatUint(rl.Cur>>10, 10)
}
