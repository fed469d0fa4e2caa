package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartExactLines(t *testing.T) {
	const procs, lines = 4, 5000
	var pf strings.Builder
	for p := 1; p <= procs; p++ {
		// one write(2) per line, as a chatty program would
		fmt.Fprintf(&pf, "chat%d: i=0; while [ $i -lt %d ]; do echo \"chat%d line $i ..........................................................\"; i=$((i+1)); done\n", p, lines, p)
	}
	dir := writeFiles(t, map[string]string{"Procfile": pf.String()})
	stdout, stderr, code := runMhrun(t, dir, "start")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	re := regexp.MustCompile(`^(chat\d)\.1 +\| (chat\d) line (\d+) \.+$`)
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if strings.HasPrefix(l, "mhrun ") {
			continue
		}
		m := re.FindStringSubmatch(l)
		if m == nil || m[1] != m[2] {
			t.Fatalf("mixed or malformed line: %q", l)
		}
		seen[l]++
	}
	if len(seen) != procs*lines {
		t.Errorf("%d distinct lines, want %d", len(seen), procs*lines)
	}
	for l, n := range seen {
		if n != 1 {
			t.Errorf("line %q printed %d times", l, n)
		}
	}
	if !strings.Contains(stdout, "| chat4.1 exited with code 0 (finished)") {
		t.Errorf("no finish event for chat4.1 in:\n%s", tail(stdout))
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

func TestStartEnvTerminalAndColour(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "web: echo \"PS=$PS PORT=$PORT SOCK=${MHRUN_SOCKET:+set} G=$GREETING\"\n" +
			"tty: if [ -t 1 ]; then printf '\\033[31mis a tty\\033[0m\\n'; else echo 'not a tty'; fi\n",
		"Procfile.policy": "web: scale=2\n",
		".env":            "GREETING=hi\nPORT=7000\n",
	})
	stdout, stderr, code := runMhrun(t, dir, "start", "--color=never")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"web.1 | PS=web.1 PORT=7000 SOCK=set G=hi",
		"web.2 | PS=web.2 PORT=7001 SOCK=set G=hi",
		"tty.1 | is a tty",
	} {
		if !strings.Contains(stdout, want+"\n") {
			t.Errorf("no line %q in:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "\x1b") {
		t.Errorf("escape sequence in plain output:\n%q", stdout)
	}
	stdout, _, _ = runMhrun(t, dir, "start", "--color=always", "tty", "-p", "6000")
	if !strings.Contains(stdout, "\x1b[31mis a tty\x1b[0m") {
		t.Errorf("child's colour lost with --color=always:\n%q", stdout)
	}
}

func TestStartPartialAndLongLines(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "long: head -c 1048576 /dev/zero | tr '\\0' x; echo\n" +
			"part: printf 'no newline at the end'\n",
	})
	stdout, stderr, code := runMhrun(t, dir, "start")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "long.1 | "+strings.Repeat("x", 1<<20)+"\n") {
		t.Errorf("the 1 MiB line did not arrive whole")
	}
	if !strings.Contains(stdout, "part.1 | no newline at the end\n") {
		t.Errorf("partial last line lost:\n%s", tail(stdout))
	}
}

func TestStartExitCodes(t *testing.T) {
	tests := []struct {
		name, procfile, policy string
		code                   int
		want                   []string
	}{
		{"failure stops the formation", "bad: exit 3\nslow: exec sleep 1000\n", "bad: restart=never\n", 3,
			[]string{"bad.1 exited with code 3", "bad.1 gave up (restart=never): stopping the formation", "slow.1 stopped"}},
		{"optional failure does not", "bad: exit 4\nok: echo fine\n", "bad: optional restart=never\n", 0,
			[]string{"bad.1 exited with code 4", "bad.1 gave up (restart=never); bad is optional: the rest run on", "ok.1 exited with code 0 (finished)"}},
		{"killed by a signal", "sig: kill -SEGV $$\nslow: exec sleep 1000\n", "sig: restart=never\n", 139,
			[]string{"sig.1 was killed by signal SEGV"}},
		{"scale 0", "web: echo hi\n", "web: scale=0\n", 0, []string{"nothing to run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"Procfile": tt.procfile, "Procfile.policy": tt.policy})
			stdout, stderr, code := runMhrun(t, dir, "start")
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("no %q in:\n%s", w, stdout)
				}
			}
		})
	}
}

// A tree with a double-forked grandchild that left the session and ignores
// SIGTERM: SIGTERM to mhrun stops all of it, the grandchild after grace.
func TestStartStopsDoubleForkedTree(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "tree: ./tree.sh\nplain: echo up; exec sleep 1000\n",
		"tree.sh": "#!/bin/sh\n" +
			"setsid sh -c 'trap \"\" TERM; echo $$ > gc.pid; exec sleep 1000' &\n" +
			"while [ ! -s gc.pid ]; do sleep 0.01; done\necho daemon started\nexec sleep 1000\n",
		"Procfile.policy": "*: grace=300ms\n",
	})
	r := startMhrun(t, dir, "start")
	r.waitLine("daemon started")
	r.waitLine("plain.1 | up")
	gc := readPid(t, filepath.Join(dir, "gc.pid"))
	start := time.Now()
	r.cmd.Process.Signal(syscall.SIGTERM)
	code, out := r.wait(10 * time.Second)
	if code != 0 {
		t.Errorf("exit %d after a requested stop, want 0", code)
	}
	waitExit(t, gc, time.Second)
	if syscall.Kill(gc, 0) == nil {
		t.Errorf("grandchild %d survived", gc)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("stopped in %s, before the grace that the grandchild needed", d)
	}
	if !slices.ContainsFunc(out, func(l string) bool { return strings.Contains(l, "tree.1 still running after grace 300ms: killing it") }) {
		t.Errorf("no event about the daemon killed with its instance:\n%s", strings.Join(out, "\n"))
	}
}

func TestStartSecondInterruptKills(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "stubborn: trap 'echo got TERM' TERM; echo up; while :; do sleep 0.05; done\n",
		"Procfile.policy": "stubborn: grace=1h\n",
	})
	r := startMhrun(t, dir, "start")
	r.waitLine("stubborn.1 | up")
	r.cmd.Process.Signal(syscall.SIGINT)
	r.waitLine("got TERM")
	r.cmd.Process.Signal(syscall.SIGINT)
	code, out := r.wait(5 * time.Second)
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if !slices.ContainsFunc(out, func(l string) bool { return strings.Contains(l, "killing every process now") }) {
		t.Errorf("no kill event:\n%s", strings.Join(out, "\n"))
	}
}

// SIGKILL to mhrun: its direct child gets the parent-death signal, a
// grandchild the pty hangup; nothing lives on.
func TestStartKilledRunnerLeavesNoSurvivor(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "direct: echo $$ > direct.pid; echo up; exec sleep 1000\n" +
			"nested: sh -c 'echo $$ > nested.pid; echo up; exec sleep 1000'; echo never\n",
	})
	r := startMhrun(t, dir, "start")
	r.waitLine("direct.1 | up")
	r.waitLine("nested.1 | up")
	direct := readPid(t, filepath.Join(dir, "direct.pid"))
	nested := readPid(t, filepath.Join(dir, "nested.pid"))
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.wait(5 * time.Second)
	waitExit(t, direct, 5*time.Second)
	waitExit(t, nested, 5*time.Second)
}

func TestStartRefusesSecondRunnerAndCleansStale(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "web: echo up; exec sleep 1000\n"})
	// a socket left by a runner that was killed: nobody accepts on it
	l, err := net.Listen("unix", filepath.Join(dir, ".mhrun.sock"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	r := startMhrun(t, dir, "start")
	r.waitLine("web.1 | up")
	if !slices.ContainsFunc(r.all, func(l string) bool { return strings.Contains(l, "removed a stale control socket") }) {
		t.Errorf("stale socket not reported:\n%s", strings.Join(r.all, "\n"))
	}
	_, stderr, code := runMhrun(t, dir, "start")
	if code != 1 || !strings.Contains(stderr, "a formation is already running in") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("second start: exit %d, stderr %q", code, stderr)
	}
	r.cmd.Process.Signal(syscall.SIGINT)
	if code, _ := r.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// Issue 13, 5: a file of the user's at the socket path (a regular file, a
// symlink) is an error that names it, and is never deleted.
func TestStartKeepsWhatIsNotASocket(t *testing.T) {
	for _, kind := range []string{"file", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"Procfile": "web: echo up; exec sleep 1000\n", "precious": "keep me"})
			sock := filepath.Join(dir, ".mhrun.sock")
			var err error
			if kind == "file" {
				err = os.WriteFile(sock, []byte("mine"), 0o600)
			} else {
				err = os.Symlink("precious", sock)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, stderr, code := runMhrun(t, dir, "start")
			if code != 1 || !strings.Contains(stderr, ".mhrun.sock exists and is not a socket") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q", code, stderr)
			}
			if _, err := os.Lstat(sock); err != nil {
				t.Errorf("%s at the socket path was removed: %v", kind, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "precious")); string(b) != "keep me" {
				t.Errorf("the symlink's target changed: %q", b)
			}
		})
	}
}
