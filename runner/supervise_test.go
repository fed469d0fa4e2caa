package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
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

// runFormationOn is runFormation on the fake clock clk (with o's other
// options), with a gate (a fifo) in the project for each name in gates,
// made before any child starts. Its cleanup stops the formation with two
// interrupts, the second of which kills at once: a stop must not wait for
// a grace on a clock nobody moves any more.
func runFormationOn(t *testing.T, clk *fakeClock, o Options, files map[string]string, gates ...string) (*running, string) {
	t.Helper()
	f := load(t, files)
	for _, g := range gates {
		if err := syscall.Mkfifo(filepath.Join(f.Dir, g), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	sigs := make(chan os.Signal, 1)
	o.Stdout, o.clock, o.Signals = r.out, clk, sigs
	if o.Sample == 0 {
		o.Sample = 50 * time.Millisecond
	}
	go func() {
		code, _ := Run(ctx, f, o)
		r.done <- code
	}()
	t.Cleanup(func() {
		cancel()
		sigs <- syscall.SIGINT
		<-r.done
	})
	return r, f.Dir
}

// atGate waits until a child waits at the gate (a fifo) at path with
// `read _ < gate`, which it does once its open for reading meets ours for
// writing, and returns what lets it through.
func atGate(t *testing.T, path string) (open func()) {
	t.Helper()
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
		}
		opened <- f
	}()
	select {
	case f := <-opened:
		if f == nil {
			t.FailNow()
		}
		return func() {
			f.WriteString("go\n")
			f.Close()
		}
	case <-time.After(10 * time.Second):
		// meet our own open, so that its goroutine ends
		if rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			if f := <-opened; f != nil {
				f.Close()
			}
			rd.Close()
		}
		t.Fatalf("no child reached the gate %s within 10s", path)
		return nil
	}
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
// max-restarts, and the formation stops with its code. The delays are
// the ones the supervisor arms on its clock.
func TestRestartBackoffAndGiveUp(t *testing.T) {
	clk := newFakeClock()
	r, _ := runFormationOn(t, clk, Options{}, map[string]string{
		"Procfile":        "crash: echo started; exit 7\nother: exec sleep 1000\n",
		"Procfile.policy": "crash: backoff=100ms..300ms max-restarts=3\n",
	})
	var delays []time.Duration
	for i, want := range []time.Duration{100, 200, 300} {
		want *= time.Millisecond
		r.out.waitFor(t, fmt.Sprintf("run %d", i+1), func(o string) bool { return strings.Count(o, "crash.1 | started") == i+1 })
		delays = append(delays, clk.step(t, want*9/10, want*11/10))
	}
	if code := r.wait(t, 10*time.Second); code != 7 {
		t.Errorf("exit %d, want 7 from the process that gave up", code)
	}
	out := r.out.String()
	if n := strings.Count(out, "crash.1 | started"); n != 4 {
		t.Errorf("%d runs, want 1 + 3 restarts:\n%s", n, out)
	}
	want := []string{"crash.1 exited with code 7\n", "crash.1 gave up after 3 restarts in a row: stopping the formation", "other.1 stopped"}
	for i, d := range delays {
		want = append(want, fmt.Sprintf("crash.1: restart %d in %s\n", i+1, d.Round(time.Millisecond)))
	}
	for _, want := range want {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}

// A run that lasts `stable` resets the count: with max-restarts=1 the
// process would give up on its second failure, yet it runs on; a run
// shorter by a nanosecond does not.
func TestStableResetsCount(t *testing.T) {
	for _, tc := range []struct {
		name  string
		runs  time.Duration // how long each failed run lasts
		fails int           // failed runs before the fifth exits 0
		code  int
	}{
		{"stable", 200 * time.Millisecond, 4, 0},
		{"short", 200*time.Millisecond - 1, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			r, dir := runFormationOn(t, clk, Options{}, map[string]string{
				"Procfile":        "flaky: echo x >> runs; n=$(wc -l < runs); if [ $n -ge 5 ]; then exit 0; fi; read _ < gate; exit 1\n",
				"Procfile.policy": "flaky: stable=200ms max-restarts=1 backoff=10ms\n",
			}, "gate")
			for i := 1; i <= tc.fails; i++ {
				open := atGate(t, filepath.Join(dir, "gate"))
				clk.advance(tc.runs)
				open()
				if i < tc.fails || tc.code == 0 {
					clk.step(t, 9*time.Millisecond, 11*time.Millisecond) // restart 1, every time
				}
			}
			if code := r.wait(t, 10*time.Second); code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, r.out.String())
			}
			b, _ := os.ReadFile(filepath.Join(dir, "runs"))
			out := r.out.String()
			if tc.code == 0 {
				if n := strings.Count(string(b), "x"); n != 5 {
					t.Errorf("%d runs, want 5", n)
				}
				if strings.Contains(out, "restart 2 in") {
					t.Errorf("count not reset by stable runs:\n%s", out)
				}
			} else if !strings.Contains(out, "flaky.1 gave up after 1 restart in a row") {
				t.Errorf("runs 1ns short of stable reset the count:\n%s", out)
			}
		})
	}
}

// A clean exit under restart=always comes back after MIN, exactly (no
// jitter), and never counts: max-restarts=0 would give up at the first
// failure. The runner runs in a synctest bubble, on the bubble's clock:
// its children exit at once, so the bubble's time moves only between runs.
func TestRestartAlwaysOnCleanExit(t *testing.T) {
	f := load(t, map[string]string{
		"Procfile":        "loop: echo run; exit 0\n",
		"Procfile.policy": "loop: restart=always backoff=1s..1m max-restarts=0\n",
	})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		out := &timedOutput{mark: "loop.1 | run\n", after: func(n int) {
			if n == 5 {
				cancel()
			}
		}}
		if code, err := Run(ctx, f, Options{Stdout: out}); code != 0 || err != nil {
			t.Errorf("Run = %d, %v", code, err)
		}
		if len(out.times) < 5 {
			t.Fatalf("%d runs, want 5:\n%s", len(out.times), out.String())
		}
		for i := 1; i < 5; i++ {
			if d := out.times[i].Sub(out.times[i-1]); d != time.Second {
				t.Errorf("run %d came %s after the one before, want 1s", i+1, d)
			}
		}
		if !strings.Contains(out.String(), "loop.1 exited with code 0, restarting in 1s") {
			t.Errorf("no restart event:\n%s", out.String())
		}
	})
}

// The default policy end to end, in a synctest bubble: a process that
// always fails is restarted after 1s, 2s, 4s… capped at 1m, each ±10%,
// given up after 10 restarts in a row, and the runner waited exactly the
// delays it announced.
func TestCrashLoopDefaultPolicy(t *testing.T) {
	f := load(t, map[string]string{"Procfile": "crash: exit 1\n"})
	synctest.Test(t, func(t *testing.T) {
		out := &syncBuffer{}
		start := time.Now()
		code, err := Run(t.Context(), f, Options{Stdout: out})
		took := time.Since(start)
		if code != 1 || err != nil {
			t.Errorf("Run = %d, %v, want 1 from the process that gave up", code, err)
		}
		o := out.String()
		if !strings.Contains(o, "crash.1 gave up after 10 restarts in a row: stopping the formation") {
			t.Errorf("no give-up after 10 restarts:\n%s", o)
		}
		var sum time.Duration
		for n := 1; n <= 10; n++ {
			_, rest, ok := strings.Cut(o, fmt.Sprintf("crash.1: restart %d in ", n))
			line, _, _ := strings.Cut(rest, "\n")
			d, err := time.ParseDuration(line)
			if !ok || err != nil {
				t.Fatalf("no restart %d:\n%s", n, o)
			}
			want := min(time.Second<<(n-1), time.Minute)
			if d < want*9/10 || d > want*11/10 {
				t.Errorf("restart %d in %s, want %s ±10%%", n, d, want)
			}
			sum += d
		}
		// the events round to the millisecond
		if diff := took - sum; diff < -5*time.Millisecond || diff > 5*time.Millisecond {
			t.Errorf("the formation took %s, the restarts announced %s", took, sum)
		}
	})
}

// timedOutput is a formation's output that notes the time at which each
// line holding mark is written, and calls after(n) after the n-th.
type timedOutput struct {
	syncBuffer
	mark  string
	after func(n int)
	times []time.Time // read once Run has returned
}

func (w *timedOutput) Write(p []byte) (int, error) {
	for range strings.Count(string(p), w.mark) {
		w.times = append(w.times, time.Now())
		w.after(len(w.times))
	}
	return w.syncBuffer.Write(p)
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

// cron-restart restarts a running process at each tick, on the whole
// second for "* * * * * *", and such restarts never count as failures.
// (ready=log: the ready event says the supervisor has the new run running,
// so that the next tick finds it so.)
func TestCronRestart(t *testing.T) {
	clk := newFakeClock()
	r, _ := runFormationOn(t, clk, Options{}, map[string]string{
		"Procfile":        "web: echo up; exec sleep 1000\n",
		"Procfile.policy": "web: cron-restart=\"* * * * * *\" max-restarts=0 ready=log:up\n",
	})
	for run, want := range []time.Duration{750 * time.Millisecond, time.Second} {
		r.out.waitFor(t, fmt.Sprintf("run %d ready", run+1), func(o string) bool { return strings.Count(o, "web.1 is ready") == run+1 })
		if d := clk.step(t, 0, time.Second); d != want {
			t.Errorf("tick %d %s on, want %s (at %v)", run+1, d, want, clk.Now())
		}
	}
	r.out.waitFor(t, "2 cron restarts", func(o string) bool {
		return strings.Count(o, "web.1: cron-restart (* * * * * *), restarting") == 2
	})
	r.out.waitFor(t, "3 runs", func(o string) bool { return strings.Count(o, "web.1 | up\n") == 3 })
	r.cancel()
	if code := r.wait(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d: cron restarts must not count as failures", code)
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
