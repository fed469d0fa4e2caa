package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"

	"mhrun/socket"
)

var (
	lineMove = regexp.MustCompile(`\x1b\[\d+;1H`)
	anyCSI   = regexp.MustCompile(`\x1b\[[0-9;?]*[@-~]`)
)

// frameLines turns one frame's bytes into its screen lines, escapes gone.
func frameLines(frame string) []string {
	parts := lineMove.Split(frame, -1)
	var lines []string
	for _, p := range parts[1:] { // before the first move: only the home
		if p == "\x1b[J" { // the clear below the last line
			continue
		}
		lines = append(lines, anyCSI.ReplaceAllString(p, ""))
	}
	return lines
}

func TestTopRender(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	rows := []socket.Instance{
		{Name: "web.1", Process: "web", N: 1, State: "running", PID: 4101, Started: now.Add(-90 * time.Second), CPU: 2.5, RSS: 3 << 20, Port: 5000},
		{Name: "web.2", Process: "web", N: 2, State: "running", PID: 4102, Started: now.Add(-2 * time.Hour), Restarts: 3, CPU: 1.0, RSS: 1 << 20, Port: 5001},
		{Name: "worker.1", Process: "worker", N: 1, State: "stopped", Reason: "stopped on request", Port: 5100},
	}
	hist := map[string]*history{}
	for i, r := range rows {
		h := &history{}
		for j := range 70 { // more than a minute: the oldest fall off
			h.add(float64((j+i)%8), int64(j)<<20)
		}
		hist[r.Name] = h
	}
	if h := hist["web.1"]; len(h.cpu) != sparkSamples || len(h.rss) != sparkSamples {
		t.Fatalf("history keeps %d/%d samples, want %d", len(h.cpu), len(h.rss), sparkSamples)
	}
	for _, tc := range []struct {
		width, height int
		sel           int
		wantNames     []string
		wantSpark     bool
	}{
		{width: 200, height: 40, sel: 1, wantNames: []string{"web.1", "web.2", "worker.1"}, wantSpark: true},
		{width: 100, height: 30, sel: 0, wantNames: []string{"web.1", "web.2", "worker.1"}, wantSpark: true},
		{width: 40, height: 30, sel: 2, wantNames: []string{"web.1", "web.2", "worker.1"}},
		// two rows of room: scrolled so the selected last row shows
		{width: 100, height: 6, sel: 2, wantNames: []string{"web.2", "worker.1"}, wantSpark: true},
		{width: 10, height: 2},
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.width, tc.height), func(t *testing.T) {
			var b bytes.Buffer
			renderTop(&b, rows, hist, tc.sel, tc.width, tc.height, "restarting web.2", now)
			out := b.String()
			if !strings.HasPrefix(out, "\x1b[H") {
				t.Errorf("frame does not start at home: %q", out[:min(len(out), 20)])
			}
			lines := frameLines(out)
			if len(lines) > tc.height {
				t.Errorf("%d lines for a height of %d", len(lines), tc.height)
			}
			for _, l := range lines {
				if n := utf8.RuneCountInString(l); n > tc.width {
					t.Errorf("line of %d columns, wider than %d: %q", n, tc.width, l)
				}
			}
			text := strings.Join(lines, "\n")
			if tc.height == 2 {
				if !strings.HasPrefix(lines[0], "mhrun top") || len(lines) != 2 {
					t.Errorf("tiny frame:\n%s", text)
				}
				return
			}
			if !strings.Contains(lines[0], "2/3 running") {
				t.Errorf("totals line %q: want 2/3 running", lines[0])
			}
			if tc.width >= 100 && (!strings.Contains(lines[0], "CPU 3.5%") || !strings.Contains(lines[0], "RSS 4M")) {
				t.Errorf("totals line %q: want CPU 3.5%% and RSS 4M", lines[0])
			}
			for _, n := range tc.wantNames {
				if !strings.Contains(text, n) {
					t.Errorf("no %s in the frame:\n%s", n, text)
				}
			}
			if tc.height == 6 && strings.Contains(text, "web.1") {
				t.Errorf("web.1 shown though only two rows fit:\n%s", text)
			}
			sel := rows[tc.sel].Name
			var selLine string
			for _, l := range lines {
				if strings.HasPrefix(l, "> ") {
					selLine = l
				}
			}
			if !strings.HasPrefix(strings.TrimPrefix(selLine, "> "), sel) {
				t.Errorf("selected line %q, want %s", selLine, sel)
			}
			if !strings.Contains(out, "\x1b[7m") {
				t.Error("the selected row is not in reverse video")
			}
			if spark := strings.ContainsAny(text, "▂▃▄▅▆▇") && strings.Contains(text, "█"); spark != tc.wantSpark {
				t.Errorf("sparklines shown: %v, want %v:\n%s", spark, tc.wantSpark, text)
			}
			if tc.width >= 100 {
				if l := lines[len(lines)-2]; l != "restarting web.2" {
					t.Errorf("status line %q", l)
				}
				if l := lines[len(lines)-1]; !strings.Contains(l, "q quit") {
					t.Errorf("help line %q", l)
				}
			}
		})
	}
}

func TestTopSparkline(t *testing.T) {
	for _, tc := range []struct {
		vals  []float64
		width int
		want  string
	}{
		{[]float64{0, 1, 2, 3, 4, 5, 6, 7}, 8, "▁▂▃▄▅▆▇█"},
		{[]float64{0, 0, 0}, 3, "▁▁▁"},
		{[]float64{5, 10}, 4, "  ▅█"},        // few samples: right-aligned
		{[]float64{10, 0, 0, 7}, 2, "▁█"},    // the newest that fit, scaled among themselves
		{[]float64{1e9, 2e9, 4e9}, 3, "▃▅█"}, // bytes scale like percents
		{nil, 3, "   "},
	} {
		if got := sparkline(tc.vals, tc.width); got != tc.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", tc.vals, tc.width, got, tc.want)
		}
	}
}

func TestTopKeysMoveTheSelection(t *testing.T) {
	st := &topState{hist: map[string]*history{}}
	st.update([]socket.Instance{{Name: "a.1"}, {Name: "b.1"}, {Name: "c.1"}}, true)
	for _, tc := range []struct {
		keys string
		want string
	}{
		{"j", "b.1"}, {"jjjj", "c.1"}, {"\x1b[A", "b.1"}, {"k\x1b[B\x1b[B", "c.1"}, {"\x1bOA\x1bOA\x1bOA", "a.1"},
	} {
		if quit, connect := st.keys([]byte(tc.keys), nil); quit || connect != "" {
			t.Fatalf("keys %q: quit %v, connect %q", tc.keys, quit, connect)
		}
		if got := st.selected(); got != tc.want {
			t.Errorf("after %q selected %s, want %s", tc.keys, got, tc.want)
		}
	}
	// the selection follows its name when rows move, and stays in range
	st.update([]socket.Instance{{Name: "z.1"}, {Name: "a.1"}, {Name: "b.1"}}, false)
	if got := st.selected(); got != "a.1" {
		t.Errorf("after reorder selected %s, want a.1", got)
	}
	st.update([]socket.Instance{{Name: "z.1"}}, false)
	if got := st.selected(); got != "z.1" {
		t.Errorf("after shrink selected %s, want z.1", got)
	}
	if _, ok := st.hist["c.1"]; ok {
		t.Error("history of a gone instance kept")
	}
	if quit, _ := st.keys([]byte("jq"), nil); !quit {
		t.Error("q does not quit")
	}
	if quit, _ := st.keys([]byte{0x03}, nil); !quit {
		t.Error("Ctrl-C does not quit")
	}
	if _, connect := st.keys([]byte("cq"), nil); connect != "z.1" {
		t.Errorf("c connects to %q, want z.1", connect)
	}
}

func TestTopNeedsATerminal(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, code := runMhrun(t, dir, "top")
	want := "mhrun: mhrun top needs a terminal; use mhrun status for a one-off table\n"
	if code != 1 || stderr != want || stdout != "" {
		t.Errorf("top without a terminal: exit %d, stdout %q, stderr %q; want exit 1 and %q", code, stdout, stderr, want)
	}
}

// ptyTop is `mhrun top` running under a pty, its output kept whole.
type ptyTop struct {
	t    *testing.T
	cmd  *exec.Cmd
	f    *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	read chan struct{} // closed when the pty has no more to read
	done chan struct{} // closed when top has exited
	seen int           // frames already looked at by waitFrame
}

func startTop(t *testing.T, dir string, args ...string) *ptyTop {
	t.Helper()
	cmd := mhrunCmd(t, dir, append([]string{"top"}, args...)...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyTop{t: t, cmd: cmd, f: f, read: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.read)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil { // EIO once top and its children are gone
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		f.Close()
	})
	return p
}

func (p *ptyTop) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFrame waits for a frame, newer than the last one it returned, whose
// lines satisfy cond.
func (p *ptyTop) waitFrame(what string, cond func(lines []string) bool) []string {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		frames := strings.Split(p.output(), "\x1b[H")
		for i := max(p.seen, 1); i < len(frames); i++ {
			if lines := frameLines(frames[i]); cond(lines) {
				p.seen = i + 1
				return lines
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no frame with %s in 15s; last frame:\n%s", what, strings.Join(frameLines(frames[len(frames)-1]), "\n"))
		}
		select {
		case <-p.done:
			<-p.read
			if p.seen < len(strings.Split(p.output(), "\x1b[H")) {
				continue // what it wrote last may still hold the frame
			}
			p.t.Fatalf("top exited (%v) before a frame with %s; output:\n%q", p.cmd.ProcessState, what, p.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait waits for top to exit and returns its code and whole output.
func (p *ptyTop) wait() (int, string) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("top still running after 10s; output:\n%q", p.output())
	}
	select {
	case <-p.read:
	case <-time.After(5 * time.Second):
		p.t.Fatal("the pty never reached its end")
	}
	return p.cmd.ProcessState.ExitCode(), p.output()
}

func selectedIn(lines []string) string {
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "> "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

func has(lines []string, subs ...string) bool {
	text := strings.Join(lines, "\n")
	for _, s := range subs {
		if !strings.Contains(text, s) {
			return false
		}
	}
	return true
}

// assertRestored checks that the terminal was given back after the last
// frame: alternate screen left, cursor shown.
func assertRestored(t *testing.T, out string) {
	t.Helper()
	lastFrame := strings.LastIndex(out, "\x1b[H")
	for _, seq := range []string{"\x1b[?1049l", "\x1b[?25h"} {
		if i := strings.LastIndex(out, seq); i < lastFrame {
			t.Errorf("no %q after the last frame; output ends %q", seq, lastBytes(out, 300))
		}
	}
}

func startTopFormation(t *testing.T) (string, *liveRunner) {
	t.Helper()
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: echo up; exec sleep 1000\nworker: exec sleep 1000\n",
		"Procfile.policy": "web: scale=2\n",
	})
	r := startMhrun(t, dir, "start")
	waitStatus(t, dir, "everything running", func(s map[string]socket.Instance) bool {
		return s["web.1"].State == "running" && s["web.2"].State == "running" && s["worker.1"].State == "running"
	})
	return dir, r
}

// top end to end: a frame shows every instance, j moves the selection, r
// restarts the selected instance (a new pid), q quits and gives the
// terminal back.
func TestTopEndToEnd(t *testing.T) {
	dir, r := startTopFormation(t)
	top := startTop(t, dir, "--interval", "200ms")

	lines := top.waitFrame("every instance", func(l []string) bool { return has(l, "web.1", "web.2", "worker.1", "3/3 running") })
	first := selectedIn(lines)
	if first == "" {
		t.Fatalf("no selected row in:\n%s", strings.Join(lines, "\n"))
	}
	top.f.Write([]byte("j"))
	lines = top.waitFrame("the selection moved", func(l []string) bool { s := selectedIn(l); return s != "" && s != first })
	sel := selectedIn(lines)
	old := statusOf(t, dir)[sel].PID

	top.f.Write([]byte("r"))
	top.waitFrame("the restart's message", func(l []string) bool { return has(l, "restarting "+sel) })
	waitStatus(t, dir, sel+" on a new pid", func(s map[string]socket.Instance) bool {
		return s[sel].State == "running" && s[sel].PID != 0 && s[sel].PID != old
	})
	top.waitFrame("sparklines", func(l []string) bool { return has(l, "▁") })

	top.f.Write([]byte("q"))
	code, out := top.wait()
	if code != 0 {
		t.Errorf("top exit %d after q; output ends %q", code, lastBytes(out, 300))
	}
	assertRestored(t, out)

	runMhrun(t, dir, "quit")
	r.wait(10 * time.Second)
}

// When the formation stops under it, top gives the terminal back, says so
// in one line and exits 0.
func TestTopExitsWhenTheFormationStops(t *testing.T) {
	dir, r := startTopFormation(t)
	top := startTop(t, dir, "--interval", "100ms")
	top.waitFrame("every instance", func(l []string) bool { return has(l, "web.1", "web.2", "worker.1") })
	if _, stderr, code := runMhrun(t, dir, "quit"); code != 0 {
		t.Fatalf("quit: %s", stderr)
	}
	r.wait(10 * time.Second)
	code, out := top.wait()
	if code != 0 {
		t.Errorf("top exit %d after the formation stopped", code)
	}
	assertRestored(t, out)
	if tail := out[strings.LastIndex(out, "\x1b[?1049l"):]; !strings.Contains(tail, "the formation stopped\r\n") {
		t.Errorf("no one-line goodbye after the restore: %q", tail)
	}
}

// SIGTERM is an exit path too: the terminal comes back and the code says
// which signal.
func TestTopRestoresTheTerminalOnSIGTERM(t *testing.T) {
	dir, r := startTopFormation(t)
	top := startTop(t, dir)
	top.waitFrame("every instance", func(l []string) bool { return has(l, "web.1", "web.2", "worker.1") })
	top.cmd.Process.Signal(syscall.SIGTERM)
	code, out := top.wait()
	if code != 128+int(syscall.SIGTERM) {
		t.Errorf("top exit %d after SIGTERM, want %d", code, 128+int(syscall.SIGTERM))
	}
	assertRestored(t, out)
	runMhrun(t, dir, "quit")
	r.wait(10 * time.Second)
}

// c hands the terminal to `mhrun connect` for the selected instance; its
// detach keys bring the view back, and the keys after it reach top again.
func TestTopConnectsAndComesBack(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "repl: while read l; do echo \"got $l\"; done\n",
	})
	r := startMhrun(t, dir, "start")
	waitStatus(t, dir, "repl running", func(s map[string]socket.Instance) bool { return s["repl.1"].State == "running" })
	top := startTop(t, dir)
	top.waitFrame("repl.1", func(l []string) bool { return has(l, "repl.1") })

	top.f.Write([]byte("c"))
	waitOutput := func(s string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(top.output(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q from top; output ends %q", s, lastBytes(top.output(), 500))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOutput("attached to repl.1")
	top.f.Write([]byte("hello\r"))
	waitOutput("got hello")
	top.mu.Lock()
	top.seen = len(strings.Split(top.out.String(), "\x1b[H"))
	top.mu.Unlock()
	top.f.Write([]byte{0x1d}) // Ctrl-]
	top.waitFrame("the view back", func(l []string) bool { return has(l, "repl.1", "back from repl.1") })

	top.f.Write([]byte("q"))
	if code, out := top.wait(); code != 0 {
		t.Errorf("top exit %d; output ends %q", code, lastBytes(out, 300))
	} else {
		assertRestored(t, out)
	}
	if s := statusOf(t, dir); s["repl.1"].State != "running" {
		t.Errorf("repl.1 after connect: %+v", s["repl.1"])
	}
	runMhrun(t, dir, "quit")
	r.wait(10 * time.Second)
}

// lastBytes is the end of s, for failure messages.
func lastBytes(s string, n int) string { return s[max(len(s)-n, 0):] }
