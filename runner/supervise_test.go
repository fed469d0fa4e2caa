package runner

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// running is a formation run in the background of a test.
type running struct {
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

func runFormation(t *testing.T, files map[string]string) (*running, string) {
	t.Helper()
	f := load(t, files)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		code, _ := Run(ctx, f, Options{Stdout: r.out, Sample: 50 * time.Millisecond})
		r.done <- code
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r, f.Dir
}

// wait waits for the formation to end by itself and returns its code.
func (r *running) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(d):
		t.Fatalf("formation still running after %s:\n%s", d, r.out.String())
		return 0
	}
}

// startTimes reads the times a child wrote at each start, one per line.
func startTimes(t *testing.T, path string) []time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, l := range strings.Fields(string(b)) {
		ns, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", path, l)
		}
		out = append(out, time.Unix(0, ns))
	}
	return out
}

// A crashing process restarts after MIN·2ⁿ⁻¹ (±10%), gives up after
// max-restarts, and the formation stops with its code.
func TestRestartBackoffAndGiveUp(t *testing.T) {
	r, dir := runFormation(t, map[string]string{
		"Procfile":        "crash: date +%s%N >> starts; exit 7\nother: exec sleep 1000\n",
		"Procfile.policy": "crash: backoff=100ms..300ms max-restarts=3\n",
	})
	if code := r.wait(t, 10*time.Second); code != 7 {
		t.Errorf("exit %d, want 7 from the process that gave up", code)
	}
	starts := startTimes(t, filepath.Join(dir, "starts"))
	if len(starts) != 4 {
		t.Fatalf("%d runs, want 1 + 3 restarts:\n%s", len(starts), r.out.String())
	}
	for i, want := range []time.Duration{100, 200, 300} {
		want *= time.Millisecond
		gap := starts[i+1].Sub(starts[i])
		if gap < want*9/10 || gap > want*11/10+500*time.Millisecond {
			t.Errorf("gap before restart %d: %s, want %s ±10%% (plus start-up)", i+1, gap, want)
		}
	}
	out := r.out.String()
	for _, want := range []string{
		"crash.1 exited with code 7\n", "crash.1: restart 1 in ", "crash.1: restart 3 in ",
		"crash.1 gave up after 3 restarts in a row: stopping the formation", "other.1 stopped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

// A run that lasts `stable` resets the count: with max-restarts=1 the
// process would give up on its second failure, yet it runs on.
func TestStableResetsCount(t *testing.T) {
	r, dir := runFormation(t, map[string]string{
		"Procfile":        "flaky: echo x >> runs; n=$(wc -l < runs); if [ $n -ge 5 ]; then exit 0; fi; sleep 0.3; exit 1\n",
		"Procfile.policy": "flaky: stable=200ms max-restarts=1 backoff=10ms\n",
	})
	if code := r.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d:\n%s", code, r.out.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "runs"))
	if n := strings.Count(string(b), "x"); n != 5 {
		t.Errorf("%d runs, want 5", n)
	}
	if strings.Contains(r.out.String(), "restart 2 in") {
		t.Errorf("count not reset by stable runs:\n%s", r.out.String())
	}
}

func TestRestartAlwaysOnCleanExit(t *testing.T) {
	r, _ := runFormation(t, map[string]string{
		"Procfile":        "loop: echo run; exit 0\n",
		"Procfile.policy": "loop: restart=always backoff=20ms max-restarts=0\n",
	})
	// max-restarts=0 would give up at the first failure: clean exits never count
	r.out.waitFor(t, "4 runs", func(o string) bool { return strings.Count(o, "loop.1 | run\n") >= 4 })
	if !strings.Contains(r.out.String(), "loop.1 exited with code 0, restarting in 20ms") {
		t.Errorf("no restart event:\n%s", r.out.String())
	}
	r.cancel()
	if code := r.wait(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestOptionalGiveUpLeavesTheRest(t *testing.T) {
	r, _ := runFormation(t, map[string]string{
		"Procfile":        "bad: exit 2\nok: echo up; exec sleep 1000\n",
		"Procfile.policy": "bad: optional max-restarts=1 backoff=10ms\n",
	})
	r.out.waitFor(t, "give-up", func(o string) bool {
		return strings.Contains(o, "bad.1 gave up after 1 restart in a row; bad is optional: the rest run on")
	})
	r.out.waitFor(t, "ok up", func(o string) bool { return strings.Contains(o, "ok.1  | up") })
	select {
	case code := <-r.done:
		t.Fatalf("formation ended (%d) after an optional process gave up", code)
	default:
	}
	r.cancel()
	if code := r.wait(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

func TestCronRestart(t *testing.T) {
	r, dir := runFormation(t, map[string]string{
		"Procfile":        "web: date +%s%N >> starts; echo up; exec sleep 1000\n",
		"Procfile.policy": "web: cron-restart=\"* * * * * *\" max-restarts=0\n",
	})
	r.out.waitFor(t, "2 cron restarts", func(o string) bool {
		return strings.Count(o, "web.1: cron-restart (* * * * * *), restarting") >= 2
	})
	r.out.waitFor(t, "3 runs", func(o string) bool { return strings.Count(o, "web.1 | up\n") >= 3 })
	r.cancel()
	if code := r.wait(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d: cron restarts must not count as failures", code)
	}
	starts := startTimes(t, filepath.Join(dir, "starts"))
	if gap := starts[2].Sub(starts[1]); gap < 500*time.Millisecond || gap > 1500*time.Millisecond {
		t.Errorf("cron restarts %s apart, want about 1s", gap)
	}
}

// A burst of saves to watched files restarts the process once; other files
// do nothing; a crashed process comes back on the next change.
func TestWatchRestartsOncePerBurst(t *testing.T) {
	r, dir := runFormation(t, map[string]string{
		"Procfile":        "web: echo started; exec sleep 1000\nbad: echo tried; exit 1\n",
		"Procfile.policy": "web: watch=*.conf\nbad: watch=fix.txt restart=never optional\n",
	})
	r.out.waitFor(t, "first start", func(o string) bool {
		return strings.Contains(o, "web.1 | started") && strings.Contains(o, "bad.1 gave up")
	})
	for i := range 10 {
		os.WriteFile(filepath.Join(dir, "app.conf"), []byte(strconv.Itoa(i)), 0o644)
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte(strconv.Itoa(i)), 0o644)
	}
	r.out.waitFor(t, "restart", func(o string) bool { return strings.Count(o, "web.1 | started") == 2 })
	os.WriteFile(filepath.Join(dir, "fix.txt"), []byte("x"), 0o644)
	r.out.waitFor(t, "bad started again", func(o string) bool {
		return strings.Contains(o, "bad.1: watched files changed, starting again") && strings.Count(o, "bad.1 | tried") == 2
	})
	if n := strings.Count(r.out.String(), "web.1: watched files changed, restarting"); n != 1 {
		t.Errorf("%d restarts for one burst:\n%s", n, r.out.String())
	}
}
