package runner

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mhrun/socket"
)

// after= at start and the reverse at stop, shown by the children's own
// timestamps: db before web before voice at start, the reverse at stop.
func TestAfterOrderStartAndStop(t *testing.T) {
	child := func(name string) string {
		return name + ": trap 'date +%s%N > " + name + ".stop; exit 0' TERM; date +%s%N > " + name + ".start; " +
			"while :; do sleep 0.02; done\n"
	}
	r, dir := runFormation(t, map[string]string{
		"Procfile":        child("voice") + child("web") + child("db"),
		"Procfile.policy": "web: after=db ready=\"exec:test -s web.start\"\nvoice: after=web\n" + "db: ready=\"exec:test -s db.start\"\n",
	})
	// -s: the file is created before date has written into it
	r.out.waitFor(t, "voice started", func(string) bool { return fileNotEmpty(dir, "voice.start") })
	r.cancel()
	if code := r.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.out.String())
	}
	at := func(f string) time.Time {
		ts := startTimes(t, filepath.Join(dir, f))
		return ts[0]
	}
	if !(at("db.start").Before(at("web.start")) && at("web.start").Before(at("voice.start"))) {
		t.Errorf("start order wrong:\n%s", r.out.String())
	}
	if !(at("voice.stop").Before(at("web.stop")) && at("web.stop").Before(at("db.stop"))) {
		t.Errorf("stop order wrong:\n%s", r.out.String())
	}
}

func fileNotEmpty(dir, name string) bool {
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && st.Size() > 0
}

// A one-shot dependency (a release phase) runs first; its failure leaves
// its dependents unstarted, with the reason shown.
func TestAfterOneShot(t *testing.T) {
	r, _ := runFormation(t, map[string]string{
		"Procfile":        "release: echo migrating\nweb: echo web up; exec sleep 1000\n",
		"Procfile.policy": "web: after=release\nrelease: restart=never\n",
	})
	r.out.waitFor(t, "web after release", func(o string) bool { return strings.Contains(o, "web.1     | web up") })
	o := r.out.String()
	if strings.Index(o, "release.1 exited with code 0") > strings.Index(o, "web.1     | web up") {
		t.Errorf("web started before release finished:\n%s", o)
	}

	r, _ = runFormation(t, map[string]string{
		"Procfile":        "release: exit 3\nweb: echo web up; exec sleep 1000\nother: exec sleep 1000\n",
		"Procfile.policy": "web: after=release\nrelease: restart=never optional\n",
	})
	r.out.waitFor(t, "web not started", func(o string) bool {
		return strings.Contains(o, "web.1 not started: release gave up or stopped")
	})
	if strings.Contains(r.out.String(), "web up") {
		t.Errorf("web started after its dependency failed:\n%s", r.out.String())
	}
}

// Two runners contend for one singleton: only one runs it; when the holder
// stops, the standby takes over.
func TestSingletonStandbyTakesOver(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "agent.lock")
	files := map[string]string{
		"Procfile":        "agent: echo $$ > agent.pid; echo agent up; exec sleep 1000\n",
		"Procfile.policy": "agent: singleton=" + lock + "\n",
	}
	a, adir := runFormation(t, files)
	a.out.waitFor(t, "a runs the agent", func(o string) bool { return strings.Contains(o, "agent up") })
	b, _ := runFormation(t, files)
	b.out.waitFor(t, "b stands by", func(o string) bool { return strings.Contains(o, "agent.1: standby") })
	if strings.Contains(b.out.String(), "agent up") {
		t.Fatal("both runners run the singleton")
	}
	// the holder stops: its lock goes with its instance
	pid := readPidFile(t, filepath.Join(adir, "agent.pid"))
	a.cancel()
	a.wait(t, 10*time.Second)
	start := time.Now()
	b.out.waitFor(t, "b takes over", func(o string) bool { return strings.Contains(o, "agent up") })
	if d := time.Since(start); d > time.Second {
		t.Errorf("standby took %s to take over", d)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("first agent %d still alive", pid)
	}
}

// An outside holder of the lock file (here flock(1)'s equivalent: a plain
// flock by the test) keeps the instance in standby until it lets go.
func TestSingletonExternalHolder(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "x.lock")
	f, err := socket.TryLock(lock)
	if err != nil || f == nil {
		t.Fatal(err)
	}
	r, _ := runFormation(t, map[string]string{
		"Procfile":        "x: echo x up; exec sleep 1000\n",
		"Procfile.policy": "x: singleton=" + lock + "\n",
	})
	r.out.waitFor(t, "standby", func(o string) bool { return strings.Contains(o, "x.1: standby") })
	f.Close()
	r.out.waitFor(t, "started", func(o string) bool { return strings.Contains(o, "x.1   | x up") })
}

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// A @every 1s job runs at each tick, skips a tick while still running, and
// a failing run neither stops the formation nor stops the schedule; each
// end names the next tick.
func TestScheduleJob(t *testing.T) {
	clk := newFakeClock()
	r, dir := runFormationOn(t, clk, Options{}, map[string]string{
		"Procfile": "job: n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo run $n; " +
			"if [ $n -eq 1 ]; then read _ < gate; fi; if [ $n -eq 2 ]; then exit 3; fi\n",
		"Procfile.policy": "job: schedule=\"@every 1s\"\n",
	}, "gate")
	tick := func(want time.Duration) {
		t.Helper()
		if d := clk.step(t, 0, time.Second); d != want {
			t.Fatalf("a tick %s on, want %s", d, want)
		}
	}
	// the first tick is armed once the formation is launched
	clk.waitTimer(t, 750*time.Millisecond, 750*time.Millisecond)
	if strings.Contains(r.out.String(), "run 1") {
		t.Fatal("job ran at start")
	}
	tick(750 * time.Millisecond) // 12:00:01
	open := atGate(t, filepath.Join(dir, "gate"))
	tick(time.Second) // 12:00:02, run 1 still at its gate
	waitFor(t, r.out, "job.1 is still running: tick skipped")
	open()
	waitFor(t, r.out, "job.1 exited with code 0, next run 2026-03-01 12:00:03\n")
	tick(time.Second)
	waitFor(t, r.out, "job.1 failed: exited with code 3, next run 2026-03-01 12:00:04\n")
	tick(time.Second)
	waitFor(t, r.out, "job.1 exited with code 0, next run 2026-03-01 12:00:05\n")
	if o := r.out.String(); strings.Count(o, "job.1 | run ") != 3 || !strings.Contains(o, "job.1 | run 3") {
		t.Errorf("want runs 1 to 3, once each:\n%s", o)
	}
}

// A process that is not ready by ready-timeout is a failed start.
func TestReadyTimeoutIsAFailedStart(t *testing.T) {
	clk := newFakeClock()
	r, _ := runFormationOn(t, clk, Options{}, map[string]string{
		"Procfile":        "slow: echo starting; exec sleep 1000\n",
		"Procfile.policy": "slow: ready=log:never-printed ready-timeout=200ms max-restarts=1 backoff=10ms\n",
	})
	clk.step(t, 200*time.Millisecond, 200*time.Millisecond)
	clk.step(t, 9*time.Millisecond, 11*time.Millisecond) // restart 1
	clk.step(t, 200*time.Millisecond, 200*time.Millisecond)
	if code := r.wait(t, 10*time.Second); code != 1 {
		t.Errorf("exit %d, want 1:\n%s", code, r.out.String())
	}
	o := r.out.String()
	for _, want := range []string{"slow.1 not ready after 200ms (log:never-printed): a failed start", "slow.1: restart 1 in", "slow.1 gave up after 1 restart in a row"} {
		if !strings.Contains(o, want) {
			t.Errorf("no %q in:\n%s", want, o)
		}
	}
}
