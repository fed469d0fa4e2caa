package runner

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Regression: a give-up while the formation was still being launched
// (here: a singleton lock that cannot be taken) began the stop, and the
// launch loop then started the next process, which nothing ever stopped.
func TestRegressionNoLaunchAfterStopBegan(t *testing.T) {
	r, _ := runFormation(t, map[string]string{
		"Procfile":        "a: echo a\nb: echo b started; exec sleep 100\n",
		"Procfile.policy": "a: singleton=/proc/a.lock\n", // /proc takes no new file, not even from root
	})
	if code := r.wait(t, 10*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if strings.Contains(r.out.String(), "b started") {
		t.Errorf("b started after the formation began to stop:\n%s", r.out.String())
	}
}

// Regression: a second interrupt killed only the instances already
// stopping; a dependency still waiting for its dependents to stop got its
// whole grace later.
func TestRegressionSecondInterruptKillsAfterChains(t *testing.T) {
	f := load(t, map[string]string{
		"Procfile": "db: trap '' TERM; echo db up; while :; do sleep 0.05; done\n" +
			"app: trap '' TERM; echo app up; while :; do sleep 0.05; done\n",
		"Procfile.policy": "*: grace=1h\napp: after=db\n",
	})
	out := &syncBuffer{}
	sigs := make(chan os.Signal, 2)
	done := make(chan int, 1)
	go func() {
		code, _ := Run(context.Background(), f, Options{Stdout: out, Signals: sigs})
		done <- code
	}()
	waitFor(t, out, "app.1 | app up")
	sigs <- syscall.SIGINT // app first, db waits for it
	waitFor(t, out, "stopping the formation")
	sigs <- syscall.SIGINT
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("a second interrupt left db to its grace:\n%s", out.String())
	}
}
