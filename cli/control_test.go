package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mhrun/socket"
)

// tryStatus runs `mhrun status --json` against the formation in dir; ok
// is false while no runner listens yet.
func tryStatus(t *testing.T, dir string) (map[string]socket.Instance, bool) {
	t.Helper()
	out, stderr, code := runMhrun(t, dir, "status", "--json")
	if code != 0 {
		if strings.Contains(stderr, "no formation running") {
			return nil, false
		}
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	var rows []socket.Instance
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	m := map[string]socket.Instance{}
	for _, r := range rows {
		m[r.Name] = r
	}
	return m, true
}

func statusOf(t *testing.T, dir string) map[string]socket.Instance {
	t.Helper()
	s, ok := tryStatus(t, dir)
	if !ok {
		t.Fatal("status: no formation running")
	}
	return s
}

// waitStatus polls status until cond holds (the runner's state changes
// are events inside it; status is how a client sees them).
func waitStatus(t *testing.T, dir, what string, cond func(map[string]socket.Instance) bool) map[string]socket.Instance {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, ok := tryStatus(t, dir)
		if ok && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s: %+v", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestControlStatusScaleRestartQuit(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "web: echo web $PS up; exec sleep 1000\n" +
			"crash: if [ ! -f crashed ]; then touch crashed; exit 3; fi; echo recovered; exec sleep 1000\n",
		"Procfile.policy": "web: scale=2\ncrash: backoff=50ms\n",
	})
	r := startMhrun(t, dir, "start", "-p", "7000")
	r.waitLine("crash.1 | recovered")

	// status reflects the crash and the restart
	s := waitStatus(t, dir, "everything running", func(s map[string]socket.Instance) bool {
		return s["web.1"].State == "running" && s["web.2"].State == "running" && s["crash.1"].State == "running"
	})
	if c := s["crash.1"]; c.Restarts != 1 || c.LastExit != "exited with code 3" || c.PID == 0 || c.Port != 7100 {
		t.Errorf("crash.1 status %+v", c)
	}
	if w := s["web.2"]; w.Port != 7001 || w.PID == 0 || w.RSS == 0 {
		t.Errorf("web.2 status %+v", w)
	}
	out, _, code := runMhrun(t, dir, "status")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "crash.1") || !strings.Contains(out, "exited with code 3") {
		t.Errorf("status table:\n%s", out)
	}

	// restart of one instance leaves the others' pids unchanged
	before := s
	if out, stderr, code := runMhrun(t, dir, "restart", "web.2"); code != 0 || !strings.Contains(out, "restarting web.2") {
		t.Fatalf("restart: %d %s %s", code, out, stderr)
	}
	s = waitStatus(t, dir, "web.2 restarted", func(s map[string]socket.Instance) bool {
		return s["web.2"].State == "running" && s["web.2"].PID != before["web.2"].PID && s["web.2"].PID != 0
	})
	if s["web.1"].PID != before["web.1"].PID || s["crash.1"].PID != before["crash.1"].PID {
		t.Errorf("restart of web.2 touched others: before %+v after %+v", before, s)
	}

	// scale up: new instances with their own PORT; scale down: the highest stop
	if out, stderr, code := runMhrun(t, dir, "scale", "web=4"); code != 0 || !strings.Contains(out, "web scaled to 4") {
		t.Fatalf("scale up: %d %s %s", code, out, stderr)
	}
	s = waitStatus(t, dir, "web.4 running", func(s map[string]socket.Instance) bool { return s["web.4"].State == "running" })
	if s["web.3"].Port != 7002 || s["web.4"].Port != 7003 {
		t.Errorf("new ports: web.3 %d web.4 %d", s["web.3"].Port, s["web.4"].Port)
	}
	r.waitLine("web web.4 up")
	gone := s["web.4"].PID
	if _, _, code := runMhrun(t, dir, "scale", "web=1"); code != 0 {
		t.Fatal("scale down failed")
	}
	s = waitStatus(t, dir, "web scaled to 1", func(s map[string]socket.Instance) bool {
		_, w2 := s["web.2"]
		_, w4 := s["web.4"]
		return !w2 && !w4 && s["web.1"].State == "running"
	})
	waitExit(t, gone, 5*time.Second)

	// errors say what exists
	for _, tt := range []struct{ args []string }{
		{[]string{"restart", "web.9"}}, {[]string{"scale", "wbe=2"}}, {[]string{"signal", "web", "NOPE"}}, {[]string{"connect", "web.7"}},
	} {
		_, stderr, code := runMhrun(t, dir, tt.args...)
		if code != 1 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q", tt.args, code, stderr)
		}
		if tt.args[1] == "web.9" && !strings.Contains(stderr, "web has instance 1 only") {
			t.Errorf("%v: %q", tt.args, stderr)
		}
	}

	// quit: exit 0, nothing left
	pids := []int{s["web.1"].PID, s["crash.1"].PID}
	if out, _, code := runMhrun(t, dir, "quit"); code != 0 || !strings.Contains(out, "stopping the formation") {
		t.Errorf("quit: %d %q", code, out)
	}
	if code, _ := r.wait(15 * time.Second); code != 0 {
		t.Errorf("runner exit %d after quit", code)
	}
	for _, pid := range pids {
		waitExit(t, pid, 5*time.Second)
	}
	_, stderr, code := runMhrun(t, dir, "status")
	if code != 1 || !strings.Contains(stderr, "no formation running in") {
		t.Errorf("status after quit: %d %q", code, stderr)
	}
}

func TestControlLogsFollow(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "talk: i=0; while :; do i=$((i+1)); echo talk $i; if [ -f more ]; then echo got more; rm more; fi; sleep 0.05; done\nquiet: echo quiet up; exec sleep 1000\n",
	})
	r := startMhrun(t, dir, "start")
	r.waitLine("| talk 3")
	out, _, code := runMhrun(t, dir, "logs", "-n", "2", "talk")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, " talk.1 | talk ") {
		t.Errorf("logs -n 2 talk: %d\n%s", code, out)
	}
	f := startMhrun(t, dir, "logs", "-f", "-n", "0", "talk")
	f.waitLine("| talk ") // following now: a new line has come through
	os.WriteFile(filepath.Join(dir, "more"), nil, 0o644)
	f.waitLine("| got more")
	if strings.Contains(strings.Join(f.all, "\n"), "quiet") {
		t.Errorf("logs talk showed another process")
	}
	f.cmd.Process.Signal(syscall.SIGINT)
	if code, _ := f.wait(5 * time.Second); code != 0 {
		t.Errorf("logs -f exit %d after Ctrl-C", code)
	}
	runMhrun(t, dir, "quit")
	r.wait(10 * time.Second)
}

func TestControlNoRunner(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "web: x\n"})
	// a stale socket file: nobody listens
	os.WriteFile(filepath.Join(dir, ".mhrun.sock"), nil, 0o600)
	for _, args := range [][]string{{"status"}, {"quit"}, {"scale", "web=2"}, {"logs"}, {"connect", "web"}} {
		_, stderr, code := runMhrun(t, dir, args...)
		if code != 1 || stderr != fmt.Sprintf("mhrun: no formation running in %s (start one with mhrun start)\n", "this dir") {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
}
