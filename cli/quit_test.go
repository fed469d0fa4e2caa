package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mhrun/socket"
)

// detachedPid starts a detached formation in dir and returns its runner's pid.
func detachedPid(t *testing.T, dir string, args ...string) int {
	t.Helper()
	out, stderr, code := runMhrun(t, dir, append([]string{"start", "-D"}, args...)...)
	if code != 0 {
		t.Fatalf("start -D %v: exit %d %q %q", args, code, out, stderr)
	}
	m := regexp.MustCompile(`\(pid (\d+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no pid in %q", out)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// Regression (issue 14): `mhrun quit && mhrun start -D` failed while an
// instance took its time to stop, since quit returned at once. quit now
// returns once the runner has exited, so the next start succeeds at once.
func TestQuitWaitsThenStartDetached(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "slow: trap 'sleep 0.5; echo slow done; exit 0' TERM; echo slow up; while :; do sleep 0.05; done\n",
	})
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	for round := range 3 {
		pid := detachedPid(t, dir)
		waitStatus(t, dir, "slow running", func(s map[string]socket.Instance) bool { return s["slow.1"].State == "running" })
		t0 := time.Now()
		out, stderr, code := runMhrun(t, dir, "quit")
		took := time.Since(t0)
		if code != 0 || out != "stopping the formation\nthe formation stopped\n" || stderr != "" {
			t.Fatalf("round %d: quit: exit %d %q %q", round, code, out, stderr)
		}
		if took < 500*time.Millisecond {
			t.Errorf("round %d: quit returned after %s, before slow had stopped", round, took)
		}
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			// a zombie until its parent, init here, reaps it: it has exited
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(b), ") Z ") {
				t.Errorf("round %d: the runner (pid %d) still runs after quit returned", round, pid)
			}
		}
		log, _ := os.ReadFile(filepath.Join(dir, ".mhrun", "logs", "slow.log"))
		if strings.Count(string(log), "slow done") != round+1 {
			t.Errorf("round %d: slow did not end its stop before quit returned:\n%s", round, log)
		}
	}
}

// quit says what is still stopping every few seconds (here, 3 s into the
// stop: slow, and db which stops after it); --no-wait returns at once; a
// --timeout that runs out fails naming what is left, and the formation
// stops on; a quit while it stops waits too, it does not kill.
func TestQuitReportsNoWaitTimeout(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "db: echo db up; exec sleep 1000\n" +
			"slow: trap 'sleep 4.5; exit 0' TERM; echo slow up; while :; do sleep 0.05; done\n",
		"Procfile.policy": "slow: after=db grace=20s\n",
	})
	detachedPid(t, dir)
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	waitStatus(t, dir, "slow running", func(s map[string]socket.Instance) bool { return s["slow.1"].State == "running" })

	t0 := time.Now()
	out, stderr, code := runMhrun(t, dir, "quit", "--no-wait")
	if code != 0 || out != "stopping the formation\n" || stderr != "" || time.Since(t0) > 2*time.Second {
		t.Fatalf("quit --no-wait: exit %d after %s, %q %q", code, time.Since(t0), out, stderr)
	}
	out, stderr, code = runMhrun(t, dir, "quit", "--timeout", "300ms")
	if code != 1 || out != "the formation is already stopping\n" || !strings.HasPrefix(stderr, "mhrun: gave up waiting after 300ms (") || !strings.Contains(stderr, "goes on stopping") {
		t.Fatalf("quit --timeout 300ms: exit %d %q %q", code, out, stderr)
	}
	out, stderr, code = runMhrun(t, dir, "quit")
	if code != 0 || out != "the formation is already stopping\nthe formation stopped\n" {
		t.Fatalf("quit: exit %d %q %q", code, out, stderr)
	}
	if want := "mhrun: still stopping after 3s: slow.1; waiting their turn: db.1\n"; !strings.Contains(stderr, want) {
		t.Errorf("quit's report: %q, want %q", stderr, want)
	}
	if s, ok := tryStatus(t, dir); ok {
		t.Errorf("a runner still answers after quit: %+v", s)
	}
}

// A runner that dies during the stop (here SIGKILLed) makes quit fail
// with one line that says so.
func TestQuitRunnerDies(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "stuck: trap 'echo got TERM' TERM; echo stuck up; while :; do sleep 0.05; done\n",
		"Procfile.policy": "stuck: grace=1h\n",
	})
	r := startMhrun(t, dir, "start")
	r.waitLine("stuck.1 | stuck up")
	q := startMhrun(t, dir, "quit")
	q.waitLine("stopping the formation")
	r.waitLine("stuck.1 | got TERM")
	r.cmd.Process.Signal(syscall.SIGKILL)
	code, lines := q.wait(10 * time.Second)
	if out := strings.Join(lines, "\n"); code != 1 || !strings.Contains(out, "mhrun: the runner (pid "+strconv.Itoa(r.cmd.Process.Pid)+") died before the formation had stopped") {
		t.Errorf("quit: exit %d\n%s", code, out)
	}
}

// start --wait (-D implied) returns once every instance is ready: a
// process once its ready= check passed, a one-shot once it finished, a job
// at once (it waits for its tick); an optional process that gives up is
// reported and not waited for.
func TestStartWaitReady(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "migrate: sleep 0.2; echo migrated\n" +
			"web: sleep 0.6; echo listening; exec sleep 1000\n" +
			"job: echo tick\n" +
			"opt: exit 4\n",
		"Procfile.policy": "web: ready=log:listening\njob: schedule=\"@every 1h\"\nopt: optional restart=never\n",
	})
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	t0 := time.Now()
	out, stderr, code := runMhrun(t, dir, "start", "--wait")
	if code != 0 || !strings.Contains(out, "formation running in the background") || !strings.Contains(out, "every instance is ready") {
		t.Fatalf("start --wait: exit %d %q %q", code, out, stderr)
	}
	if took := time.Since(t0); took < 600*time.Millisecond {
		t.Errorf("start --wait returned after %s, before web was ready", took)
	}
	if want := "mhrun: opt.1 gave up (restart=never): its last run exited with code 4; opt is optional\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	s := statusOf(t, dir)
	for name, state := range map[string]string{"migrate.1": "exited", "web.1": "running", "job.1": "scheduled", "opt.1": "errored"} {
		if s[name].State != state {
			t.Errorf("%s is %s right after start --wait, want %s", name, s[name].State, state)
		}
	}
}

// start -D --wait fails with the reason when an instance gives up, and
// after --wait-timeout naming what is not ready (the formation runs on).
func TestStartWaitFails(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: sleep 0.5; echo listening; exec sleep 1000\nbad: sleep 0.1; exit 3\n",
		"Procfile.policy": "web: ready=log:listening\nbad: restart=never\n",
	})
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	out, stderr, code := runMhrun(t, dir, "start", "-D", "--wait")
	// seen in status, or, when the runner was quicker, from its exit and its log
	if code != 1 || !strings.HasPrefix(stderr, "mhrun: bad.1 gave up (restart=never)") || strings.Count(stderr, "\n") != 1 || strings.Contains(out, "every instance is ready") {
		t.Errorf("start -D --wait with bad giving up: exit %d %q %q", code, out, stderr)
	}

	dir = writeFiles(t, map[string]string{
		"Procfile":        "web: exec sleep 1000\n",
		"Procfile.policy": "web: ready=tcp ready-timeout=1h\n",
	})
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	// web's port is held by a bound socket that never listens: nothing
	// else (another package's test server on 5000) can answer the check.
	port := closedPort(t)
	out, stderr, code = runMhrun(t, dir, "start", "-D", "--wait", "--wait-timeout", "500ms", "-p", strconv.Itoa(port))
	if want := "mhrun: not ready after 500ms: web.1 (starting); the formation runs on (mhrun status, mhrun logs, mhrun quit)\n"; code != 1 || stderr != want {
		t.Errorf("start -D --wait-timeout 500ms: exit %d %q %q, want %q", code, out, stderr, want)
	}
	if s := statusOf(t, dir); s["web.1"].State != "starting" {
		t.Errorf("web.1 after the wait ran out: %+v", s["web.1"])
	}
}

// closedPort is a loopback port bound, for the test's life, by a socket
// that never listens: a connection to it is refused, and no other program
// can take it meanwhile.
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
