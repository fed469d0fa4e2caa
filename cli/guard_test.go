package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// escapeShapes are processes that leave their instance's reach in the
// ways issue 13 found surviving a SIGKILLed runner; each appends its pid
// to pids, and each instance's leader does too.
var escapeShapes = map[string]string{
	"nohup":      `nohup sh -c 'echo $$ >> pids; exec sleep 1000' >/dev/null 2>&1 &`,
	"ignorehup":  `sh -c 'trap "" HUP; echo $$ >> pids; while :; do sleep 0.05; done' &`,
	"setsid":     `setsid sh -c 'echo $$ >> pids; exec sleep 1000' &`,
	"doublefork": `( sh -c 'trap "" HUP TERM; echo $$ >> pids; exec sleep 1000' & ) ;`,
	"daemon":     `( setsid sh -c 'trap "" HUP TERM; echo $$ >> pids; exec sleep 1000' </dev/null >/dev/null 2>&1 & ) ;`,
}

// procfileOfShapes is a Procfile with one process per shape: the shape,
// then its leader records itself and sleeps. want is the pids to expect.
func procfileOfShapes() (procfile string, want int) {
	var b strings.Builder
	for name, shape := range escapeShapes {
		b.WriteString(name + ": " + shape + " echo $$ >> pids; exec sleep 1000\n")
		want += 2
	}
	return b.String(), want
}

// pidsWritten waits until the pids file holds n pids and returns them.
func pidsWritten(t *testing.T, dir string, n int) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "pids"))
		if f := strings.Fields(string(b)); len(f) >= n {
			var pids []int
			for _, s := range f {
				pid, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("pids: %q", s)
				}
				pids = append(pids, pid)
			}
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %q in pids after 20s", b)
		}
		time.Sleep(10 * time.Millisecond) // a file has no event to wait on
	}
}

// Issue 13, 3: after a SIGKILL of the runner nothing of its formation
// survives, not a nohup'd child, one ignoring HUP, one in its own session,
// a double-forked one or a daemon: its guard stops them, within 2 s
// (SIGTERM, SIGKILL after 1 s for those that ignore it).
func TestKilledRunnerLeavesNothing(t *testing.T) {
	procfile, n := procfileOfShapes()
	dir := writeFiles(t, map[string]string{"Procfile": procfile})
	r := startMhrun(t, dir, "start")
	pids := pidsWritten(t, dir, n)
	for _, pid := range pids {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	killed := time.Now()
	r.cmd.Process.Signal(syscall.SIGKILL)
	r.wait(10 * time.Second)
	for _, pid := range pids {
		waitExit(t, pid, 3*time.Second)
	}
	t.Logf("%d processes gone %s after the SIGKILL", len(pids), time.Since(killed).Round(time.Millisecond))
}

// SIGHUP (a closed terminal) stops the formation gracefully, as INT and
// TERM do: exit 0, every process stopped, the socket gone.
func TestHangupStopsGracefully(t *testing.T) {
	procfile, n := procfileOfShapes()
	dir := writeFiles(t, map[string]string{"Procfile": procfile, "Procfile.policy": "*: grace=300ms\n"})
	r := startMhrun(t, dir, "start")
	pids := pidsWritten(t, dir, n)
	r.cmd.Process.Signal(syscall.SIGHUP)
	code, out := r.wait(20 * time.Second)
	if code != 0 {
		t.Errorf("exit %d after SIGHUP, want 0:\n%s", code, strings.Join(out, "\n"))
	}
	if !strings.Contains(strings.Join(out, "\n"), "hangup: stopping the formation") {
		t.Errorf("no graceful stop on SIGHUP:\n%s", strings.Join(out, "\n"))
	}
	for _, pid := range pids {
		waitExit(t, pid, time.Second)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".mhrun.sock")); err == nil {
		t.Errorf("the control socket was left behind")
	}
}

// Under -D, SIGHUP is a graceful stop too, written in the combined log.
func TestDetachedHangupStopsGracefully(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "web: echo $$ >> pids; exec sleep 1000\n"})
	out, stderr, code := runMhrun(t, dir, "start", "-D")
	if code != 0 {
		t.Fatalf("start -D: exit %d %q %q", code, out, stderr)
	}
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	pids := pidsWritten(t, dir, 1)
	runnerPid := pidIn(t, filepath.Join(dir, ".mhrun", "logs", "runner.pid"))
	syscall.Kill(runnerPid, syscall.SIGHUP)
	waitExit(t, runnerPid, 10*time.Second)
	waitExit(t, pids[0], time.Second)
	b, _ := os.ReadFile(filepath.Join(dir, ".mhrun", "logs", "mhrun.log"))
	for _, want := range []string{"hangup: stopping the formation", "web.1 stopped"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("no %q in the combined log:\n%s", want, b)
		}
	}
}
