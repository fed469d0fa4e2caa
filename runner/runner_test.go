package runner

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mhrun/formation"
)

// load writes a project into a temp dir and loads its formation.
func load(t *testing.T, files map[string]string) *formation.Formation {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, err := formation.Load(formation.Options{Dir: dir, Environ: []string{"PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A paused stdout does not block the children: they run to their end, the
// lines past the buffer are dropped and counted.
func TestPausedReaderDropsAndCounts(t *testing.T) {
	f := load(t, map[string]string{
		"Procfile": "flood: seq 1 300000; echo finished > fifo\n",
	})
	fifo := filepath.Join(f.Dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	g := &blockingWriter{release: make(chan struct{})}
	done := make(chan int)
	go func() {
		code, _ := Run(context.Background(), f, Options{Stdout: g})
		done <- code
	}()
	// The child gets to its last command although nobody reads its output.
	b, err := os.ReadFile(fifo)
	if err != nil || string(b) != "finished\n" {
		t.Fatalf("fifo: %q %v", b, err)
	}
	close(g.release)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the output was released")
	}
	out := g.String()
	m := regexp.MustCompile(`\[mhrun: (\d+) lines dropped, output too slow\]`).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no drop marker in %d bytes of output", len(out))
	}
	dropped := 0
	for _, x := range m {
		n, _ := strconv.Atoi(x[1])
		dropped += n
	}
	kept := regexp.MustCompile(`(?m)^flood\.1 \| \d+$`).FindAllString(out, -1)
	if len(kept)+dropped != 300000 {
		t.Errorf("%d lines kept + %d dropped != 300000", len(kept), dropped)
	}
}

// The pty is mhrun's terminal less the prefix, and follows SIGWINCH.
func TestPtySizeFollowsTerminal(t *testing.T) {
	f := load(t, map[string]string{
		"Procfile": "sz: trap 'echo resized $(stty size)' WINCH; echo size $(stty size); while :; do sleep 0.02; done\n",
	})
	var mu sync.Mutex
	cols, rows := 100, 30
	out := &syncBuffer{}
	sigs := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, f, Options{Stdout: out, Signals: sigs, TermSize: func() (int, int, bool) {
			mu.Lock()
			defer mu.Unlock()
			return cols, rows, true
		}})
		close(done)
	}()
	// prefix "sz.1  | " is len("mhrun")+3 = 8 wide
	waitFor(t, out, "sz.1  | size 30 92\n")
	mu.Lock()
	cols, rows = 60, 20
	mu.Unlock()
	sigs <- syscall.SIGWINCH
	waitFor(t, out, "sz.1  | resized 20 52\n")
	cancel()
	<-done
}

// waitFor waits until the output holds s.
func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	out.waitFor(t, strconv.Quote(s), func(o string) bool { return strings.Contains(o, s) })
}

func TestStopSignalAndGraceFromPolicy(t *testing.T) {
	f := load(t, map[string]string{
		"Procfile":        "intr: trap 'echo got INT; exit 0' INT; echo up; while :; do sleep 0.02; done\n",
		"Procfile.policy": "intr: stop-signal=INT grace=10s\n",
	})
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		code, _ := Run(ctx, f, Options{Stdout: out})
		done <- code
	}()
	waitFor(t, out, "intr.1 | up\n")
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after a requested stop", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not stopped by its stop-signal")
	}
	for _, want := range []string{"intr.1 | got INT\n", "intr.1 stopped (exited with code 0)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}
