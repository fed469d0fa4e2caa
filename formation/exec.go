package formation

import (
	"fmt"
	"strings"

	"mhrun/policy"
	"mhrun/procfile"
)

// What exec takes, and so what mhrun checks at load rather than failing
// every start with E2BIG (Linux's fs/exec.c):
//
//   - each argument and each NAME=value of the environment: at most
//     MAX_ARG_STRLEN, 128 KiB with its NUL (procfile.MaxArgLen). The
//     Procfile parser checks commands, the env file reader each variable.
//   - all of them together, each with its NUL and an 8-byte pointer: at
//     most a quarter of the stack limit (ulimit -s; 8 MiB gives 2 MiB),
//     never less than 128 KiB nor more than 6 MiB (execLimit). checkExec
//     adds up, for each process, /bin/sh -c and its command (or its
//     ready=exec command, if longer) with the environment of its last
//     instance, and keeps execMargin free for what the runner adds at
//     start (PORT again, NOTIFY_SOCKET, LISTEN_FDS and their kin) and for
//     a control socket path longer than the placeholder's.
//
// The children inherit mhrun's stack limit, so the bound `mhrun start`
// checks is the one their exec meets; `mhrun check` run from another shell
// checks that shell's.

// execMargin is the room left in the exec bound for the runner's own
// variables.
const execMargin = 4 << 10

// socketPlaceholder stands for MHRUN_SOCKET's path, unknown at load: as
// long as any unix socket path may be.
var socketPlaceholder = "/" + strings.Repeat("s", 107)

// execSize is what exec's bound counts of a start of path with argv and
// env: each string with its NUL and an 8-byte pointer, and path with its
// NUL (the kernel copies it first). It counts 8 bytes more than the kernel,
// for the pointer that ends envp.
func execSize(path string, argv, env []string) int {
	n := len(path) + 1 + 8
	for _, s := range argv {
		n += len(s) + 1 + 8
	}
	for _, s := range env {
		n += len(s) + 1 + 8
	}
	return n
}

// checkExec refuses a process whose command and environment together are
// more than exec takes (see above), naming the largest variable.
func (f *Formation) checkExec() error {
	limit, why := execLimit()
	for _, p := range f.Processes {
		cmd := procfile.ShellCommand(p.Command)
		if p.Policy.Ready.Kind == policy.ReadyExec && len(p.Policy.Ready.Command) > len(cmd) {
			cmd = p.Policy.Ready.Command
		}
		env := f.Env(p, max(p.Scale, 1), socketPlaceholder)
		total := execSize("/bin/sh", []string{"/bin/sh", "-c", cmd}, env)
		if total+execMargin <= limit {
			continue
		}
		biggest := ""
		for _, kv := range env {
			if len(kv) > len(biggest) {
				biggest = kv
			}
		}
		name, _, _ := strings.Cut(biggest, "=")
		where, smaller := "the environment", "the env files"
		if _, ok := p.Policy.Env[name]; ok {
			where, smaller = "the policy (env."+name+")", "the policy's env. variables"
		} else if _, ok := f.FileEnv[name]; ok {
			where = "an env file"
		}
		return fmt.Errorf("%s: its command and environment come to %d bytes, more than the %d exec takes here (%s) less %d kept for mhrun's own variables; the largest variable is %s, %d bytes, from %s: make %s smaller, or raise ulimit -s",
			p.Name, total, limit, why, execMargin, name, len(biggest), where, smaller)
	}
	return nil
}
