package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mhrun/socket"
)

// A detached formation driven entirely by commands: start -D returns once
// it is up; status, scale, restart, logs work on it; quit leaves nothing.
func TestDetachedFormation(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "web: echo web $PS up; exec sleep 1000\nworker: echo worker up; exec sleep 1000\n",
	})
	out, stderr, code := runMhrun(t, dir, "start", "-D")
	if code != 0 || !strings.Contains(out, "formation running in the background") {
		t.Fatalf("start -D: exit %d %q %q", code, out, stderr)
	}
	m := regexp.MustCompile(`\(pid (\d+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no pid in %q", out)
	}
	runnerPid, _ := strconv.Atoi(m[1])
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	// runner.pid (PIDFile= of mhrun startup's unit) names the live runner,
	// written whole: no temporary file is left beside it
	logDir := filepath.Join(dir, ".mhrun", "logs")
	if b, err := os.ReadFile(filepath.Join(logDir, "runner.pid")); err != nil || string(b) != m[1]+"\n" {
		t.Errorf("runner.pid = %q, %v; want %q", b, err, m[1]+"\n")
	}
	if err := syscall.Kill(runnerPid, 0); err != nil {
		t.Errorf("runner pid %d: %v", runnerPid, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(logDir, ".runner.pid.*")); len(tmp) > 0 {
		t.Errorf("temporary pid files left: %v", tmp)
	}

	waitStatus(t, dir, "both running", func(s map[string]socket.Instance) bool {
		return s["web.1"].State == "running" && s["worker.1"].State == "running"
	})
	if _, _, code := runMhrun(t, dir, "scale", "web=2"); code != 0 {
		t.Fatal("scale failed")
	}
	s := waitStatus(t, dir, "web.2 running", func(s map[string]socket.Instance) bool { return s["web.2"].State == "running" })
	old := s["worker.1"].PID
	if _, _, code := runMhrun(t, dir, "restart", "worker"); code != 0 {
		t.Fatal("restart failed")
	}
	s = waitStatus(t, dir, "worker restarted", func(s map[string]socket.Instance) bool {
		return s["worker.1"].State == "running" && s["worker.1"].PID != old
	})
	logs, _, _ := runMhrun(t, dir, "logs", "web")
	if !strings.Contains(logs, "web.2 | web web.2 up") {
		t.Errorf("logs web:\n%s", logs)
	}
	pids := []int{runnerPid, s["web.1"].PID, s["web.2"].PID, s["worker.1"].PID}
	if out, _, code := runMhrun(t, dir, "quit"); code != 0 {
		t.Fatalf("quit: %d %q", code, out)
	}
	for _, pid := range pids {
		waitExit(t, pid, 10*time.Second)
	}
	// after quit, so that every line is flushed
	// the log files: one per process and one combined, timestamped, plain
	stamp := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) `
	for file, want := range map[string]string{
		"web.log":    stamp + `web\.2 \| web web\.2 up\n`,
		"worker.log": stamp + `worker\.1 \| worker up\n`,
		"mhrun.log":  stamp + `mhrun \| web scaled to 2`,
	} {
		b, err := os.ReadFile(filepath.Join(dir, ".mhrun", "logs", file))
		if err != nil || !regexp.MustCompile(want).Match(b) {
			t.Errorf("%s (%v) lacks %s:\n%s", file, err, want, b)
		}
	}
}

// A log file that cannot be written (here: a disk that is full) is
// reported once in the output, and the children keep running.
func TestLogFileErrorReportedChildrenRun(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "talk: i=0; while :; do i=$((i+1)); echo line $i; sleep 0.02; done\n",
	})
	logs := filepath.Join(dir, "logs")
	os.Mkdir(logs, 0o755)
	if err := os.Symlink("/dev/full", filepath.Join(logs, "talk.log")); err != nil {
		t.Skip(err)
	}
	r := startMhrun(t, dir, "start", "--log-dir", logs)
	line := r.waitLine("log file")
	if !strings.Contains(line, "talk.log") || !strings.Contains(line, "no space left on device") {
		t.Errorf("reported: %q", line)
	}
	r.waitLine("talk.1 | line 30")
	if s := statusOf(t, dir); s["talk.1"].State != "running" {
		t.Errorf("talk.1 after a log error: %+v", s["talk.1"])
	}
	if n := strings.Count(strings.Join(r.all, "\n"), "no space left on device"); n != 1 {
		t.Errorf("the error was reported %d times, want once", n)
	}
	runMhrun(t, dir, "quit")
	r.wait(10 * time.Second)
}

// A runner whose socket is hashed into a runtime dir (a project path too
// long for a socket of its own) started without XDG_RUNTIME_DIR, as a
// system service is, is found by commands run from a login shell, which
// has one: status answers and `start NAME` goes to it, not to a second
// runner.
func TestOtherRuntimeDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("p", 100))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte("sleeper: exec sleep 1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	service := func(args ...string) *exec.Cmd {
		cmd := mhrunCmd(t, dir, args...)
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR=")
		return cmd
	}
	shell := func(args ...string) (string, int) {
		cmd := mhrunCmd(t, dir, args...)
		cmd.Env = append(cmd.Env, "XDG_RUNTIME_DIR="+t.TempDir())
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return string(out), code
	}
	if out, err := service("start", "-D").CombinedOutput(); err != nil {
		t.Fatalf("start -D without XDG_RUNTIME_DIR: %v\n%s", err, out)
	}
	t.Cleanup(func() { service("quit").Run() })
	if out, code := shell("status"); code != 0 || !strings.Contains(out, "sleeper.1") {
		t.Fatalf("status from a shell with XDG_RUNTIME_DIR: exit %d\n%s", code, out)
	}
	if out, code := shell("stop", "sleeper"); code != 0 {
		t.Fatalf("stop sleeper from the shell: exit %d\n%s", code, out)
	}
	if out, code := shell("start", "sleeper"); code != 0 || strings.Contains(out, "running in the background") {
		t.Fatalf("start sleeper from the shell: exit %d\n%s", code, out)
	}
	if out, code := shell("quit"); code != 0 {
		t.Fatalf("quit from the shell: exit %d\n%s", code, out)
	}
}

// Regression (issue 14): under -D, `mhrun logs web` printed nothing once a
// neighbour had written more recently, and -n 1000 printed the files' lines
// in another format. Now it shows web's last lines and mhrun's events about
// web, the same before the neighbour's burst (from memory) and after it
// (from the log files), in one format.
func TestDetachedLogsChattyNeighbour(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "web: echo web up; exec sleep 1000\n" +
			"noisy: while [ ! -f go ]; do sleep 0.02; done; seq -f 'noise %g' 1 12000; exec sleep 1000\n",
	})
	if out, stderr, code := runMhrun(t, dir, "start", "-D"); code != 0 {
		t.Fatalf("start -D: exit %d %q %q", code, out, stderr)
	}
	t.Cleanup(func() { runMhrun(t, dir, "quit") })
	s := waitStatus(t, dir, "web running", func(s map[string]socket.Instance) bool { return s["web.1"].State == "running" })
	if _, _, code := runMhrun(t, dir, "restart", "web"); code != 0 {
		t.Fatal("restart failed")
	}
	waitStatus(t, dir, "web restarted", func(n map[string]socket.Instance) bool {
		return n["web.1"].State == "running" && n["web.1"].PID != s["web.1"].PID
	})
	logs := func(args ...string) []string {
		t.Helper()
		out, stderr, code := runMhrun(t, dir, append([]string{"logs"}, args...)...)
		if code != 0 || stderr != "" {
			t.Fatalf("logs %v: exit %d, %q", args, code, stderr)
		}
		return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	}
	// wait for the second "web up" in the output (a run's output may come
	// after status shows it running)
	var before []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if before = logs("web", "-n", "20"); strings.Count(strings.Join(before, "\n"), "web.1 | web up") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs web never showed two runs:\n%s", strings.Join(before, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) \S+ \| `)
	text := strings.Join(before, "\n")
	for _, want := range []string{"mhrun | web.1: restart requested"} {
		if !strings.Contains(text, want) {
			t.Errorf("logs web lacks the event %q:\n%s", want, text)
		}
	}
	for _, l := range before {
		if !stamp.MatchString(l) || strings.Contains(l, "noise") {
			t.Errorf("logs web: %q", l)
		}
	}

	os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	combined := filepath.Join(dir, ".mhrun", "logs", "mhrun.log")
	for deadline := time.Now().Add(15 * time.Second); ; {
		if b, _ := os.ReadFile(combined); strings.Contains(string(b), "noise 12000\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the burst never reached mhrun.log")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// memory (10,000 lines) now holds only noise: web's lines come from the files
	if after := logs("web", "-n", "20"); !slices.Equal(after, before) {
		t.Errorf("logs web after the burst:\n%s\nbefore it:\n%s", strings.Join(after, "\n"), text)
	}
	if last := logs("web", "-n", "1"); !slices.Equal(last, before[len(before)-1:]) {
		t.Errorf("logs web -n 1: %q, want %q", last, before[len(before)-1:])
	}
	// everything, across files and memory: one format, each line once
	all := logs("-n", "20000")
	seen := map[string]int{}
	for _, l := range all {
		if !stamp.MatchString(l) {
			t.Fatalf("logs -n 20000: %q", l)
		}
		if _, text, ok := strings.Cut(l, " noisy.1 | "); ok {
			seen[text]++
		}
	}
	for i := 1; i <= 12000; i++ {
		if n := seen[fmt.Sprintf("noise %d", i)]; n != 1 {
			t.Fatalf("noise %d shown %d times", i, n)
		}
	}
}
