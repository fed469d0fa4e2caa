package output

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// syncBuffer is an io.Writer the tests read while the output writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls the buffer until cond holds or fails the test after a
// generous deadline.
func (b *syncBuffer) waitFor(t *testing.T, what string, cond func(out string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := b.String()
		if cond(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; output:\n%s", what, out)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockingWriter blocks every Write until release is closed, like a
// terminal whose user pressed Ctrl-S.
type blockingWriter struct {
	release chan struct{}
	syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.syncBuffer.Write(p)
}

func lines(out string) []string {
	out = strings.TrimSuffix(out, "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// splitLine splits an output line (no colour, no timestamp) into the
// instance name and the text.
func splitLine(t *testing.T, line string) (name, text string) {
	t.Helper()
	name, text, ok := strings.Cut(line, " | ")
	if !ok {
		t.Fatalf("line without prefix: %q", line)
	}
	return strings.TrimRight(name, " "), text
}

// writeChunked writes data to w in chunks of random sizes up to max, as a pty
// reader would, splitting lines (and "\r\n") anywhere.
func writeChunked(w io.Writer, data []byte, max int, rnd *rand.Rand) {
	for len(data) > 0 {
		n := min(len(data), 1+rnd.IntN(max))
		w.Write(data[:n])
		data = data[n:]
	}
}

func concurrentPayload(g, i int) string {
	return fmt.Sprintf("s%d %06d %s", g, i, strings.Repeat(string(rune('a'+(g*7+i)%26)), (g*131+i*17)%200))
}

func TestOutputConcurrentStreams(t *testing.T) {
	const nStreams, nLines = 6, 3000
	var buf syncBuffer
	// A buffer and pause large enough that nothing is dropped or split
	// however slowly the race detector runs.
	o := New(&buf, Options{NameWidth: 5, BufferSize: 64 << 20, Pause: time.Minute})
	var wg sync.WaitGroup
	for g := range nStreams {
		s := o.Stream("s"+strconv.Itoa(g), g)
		wg.Go(func() {
			var data []byte
			for i := range nLines {
				data = append(data, concurrentPayload(g, i)...)
				data = append(data, "\r\n"...)
			}
			writeChunked(s, data, 300, rand.New(rand.NewPCG(uint64(g), 1)))
		})
	}
	wg.Wait()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	next := make([]int, nStreams)
	for _, line := range lines(buf.String()) {
		name, text := splitLine(t, line)
		g, err := strconv.Atoi(strings.TrimPrefix(name, "s"))
		if err != nil || g < 0 || g >= nStreams {
			t.Fatalf("unexpected name %q in line %q", name, line)
		}
		if next[g] >= nLines {
			t.Fatalf("stream %s: extra line %q", name, text)
		}
		if want := concurrentPayload(g, next[g]); text != want {
			t.Fatalf("stream %s line %d: got %q, want %q", name, next[g], text, want)
		}
		next[g]++
	}
	for g, n := range next {
		if n != nLines {
			t.Errorf("stream s%d: %d lines, want %d", g, n, nLines)
		}
	}
}

func TestOutputCRLF(t *testing.T) {
	var buf syncBuffer
	o := New(&buf, Options{NameWidth: 5, Pause: time.Minute})
	s := o.Stream("web.1", 0)
	s.Write([]byte("a\r\nb\r"))
	s.Write([]byte("\n\r\nc\rd\r\n\r\r\n"))
	o.Close()
	want := "web.1 | a\nweb.1 | b\nweb.1 | \nweb.1 | d\nweb.1 | \n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOutputPartialFlushedAfterPause(t *testing.T) {
	var buf syncBuffer
	o := New(&buf, Options{NameWidth: 5, Pause: 20 * time.Millisecond})
	defer o.Close()
	s := o.Stream("web.1", 0)
	s.Write([]byte("done\r\nprompt> "))
	buf.waitFor(t, "the partial line", func(out string) bool {
		return out == "web.1 | done\nweb.1 | prompt> \n"
	})
	// The next bytes start a new line.
	s.Write([]byte("answer\n"))
	buf.waitFor(t, "the next line", func(out string) bool {
		return strings.HasSuffix(out, "web.1 | prompt> \nweb.1 | answer\n")
	})
}

// The pause is exact under fake time: a line continued within it is not
// split, a partial line is held for exactly the pause.
func TestOutputPauseSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		// Hold as Pause: every partial line waits the pause, prompt or not.
		o := New(&buf, Options{NameWidth: 5, Pause: 100 * time.Millisecond, Hold: 100 * time.Millisecond})
		s := o.Stream("web.1", 0)

		s.Write([]byte("hel"))
		time.Sleep(99 * time.Millisecond)
		s.Write([]byte("lo"))
		time.Sleep(99 * time.Millisecond)
		s.Write([]byte(" world\r\n"))
		synctest.Wait()
		if got, want := buf.String(), "web.1 | hello world\n"; got != want {
			t.Fatalf("continued line: got %q, want %q", got, want)
		}

		s.Write([]byte("part"))
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | hello world\n"; got != want {
			t.Fatalf("partial written before the pause: got %q, want %q", got, want)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | hello world\nweb.1 | part\n"; got != want {
			t.Fatalf("partial after the pause: got %q, want %q", got, want)
		}

		// Idle: nothing more is written however long we wait.
		time.Sleep(time.Hour)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | hello world\nweb.1 | part\n"; got != want {
			t.Fatalf("idle output changed: got %q, want %q", got, want)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStreamFlushBeforeEvent(t *testing.T) {
	var buf syncBuffer
	o := New(&buf, Options{NameWidth: 5, Pause: time.Hour})
	defer o.Close()
	s := o.Stream("web.2", 1)
	s.Write([]byte("last words, no newline"))
	s.Flush()
	o.Event("%s exited with code %d", "web.2", 1)
	want := "web.2 | last words, no newline\nmhrun | web.2 exited with code 1\n"
	buf.waitFor(t, "the event", func(out string) bool { return strings.Contains(out, "exited") })
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestOutputEventOrder(t *testing.T) {
	// Under a blocked writer everything is queued, so the order comes from
	// the queues alone.
	w := &blockingWriter{release: make(chan struct{})}
	o := New(w, Options{NameWidth: 5, Pause: time.Hour})
	a, b := o.Stream("a.1", 0), o.Stream("b.1", 1)
	o.Event("starting")
	a.Write([]byte("a1\n"))
	b.Write([]byte("b1\n"))
	a.Write([]byte("a2\nlast"))
	a.Flush()
	o.Event("a.1 exited")
	b.Write([]byte("b2\n"))
	o.Event("stopping")
	close(w.release)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(w.String())
	pos := map[string]int{}
	for i, l := range got {
		pos[l] = i
	}
	before := func(x, y string) {
		t.Helper()
		i, ok1 := pos[x]
		j, ok2 := pos[y]
		if !ok1 || !ok2 || i >= j {
			t.Errorf("want %q before %q in:\n%s", x, y, strings.Join(got, "\n"))
		}
	}
	if len(got) != 8 {
		t.Fatalf("got %d lines, want 8:\n%s", len(got), strings.Join(got, "\n"))
	}
	before("mhrun | starting", "a.1   | a1")
	before("mhrun | starting", "b.1   | b1")
	before("a.1   | a1", "a.1   | a2")
	before("a.1   | a2", "a.1   | last")
	before("a.1   | last", "mhrun | a.1 exited")
	before("b.1   | b1", "mhrun | a.1 exited")
	before("mhrun | a.1 exited", "b.1   | b2")
	before("b.1   | b2", "mhrun | stopping")
}

func TestOutputLongLine(t *testing.T) {
	for _, bufSize := range []int{0, 64 << 10} {
		t.Run(fmt.Sprintf("buffer=%d", bufSize), func(t *testing.T) {
			var buf syncBuffer
			o := New(&buf, Options{NameWidth: 5, BufferSize: bufSize, Pause: time.Minute})
			s := o.Stream("web.1", 0)
			long := make([]byte, 2<<20)
			for i := range long {
				long[i] = 'a' + byte(i%26)
			}
			data := append([]byte("before\r\n"), long...)
			data = append(data, "\r\nafter\r\n"...)
			for len(data) > 0 {
				n := min(len(data), 4096)
				s.Write(data[:n])
				data = data[n:]
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			got := lines(buf.String())
			if len(got) != 3 {
				t.Fatalf("got %d lines, want 3", len(got))
			}
			if got[0] != "web.1 | before" || got[2] != "web.1 | after" {
				t.Errorf("lines around the long one: %q, %q", got[0], got[2])
			}
			if got[1] != "web.1 | "+string(long) {
				t.Errorf("long line changed: length %d, want %d", len(got[1]), len("web.1 | ")+len(long))
			}
		})
	}
}

var sgrRE = regexp.MustCompile(`^\x1b\[([0-9;]+)m([a-z.0-9]+ *) \|\x1b\[0m (.*)$`)

func TestOutputColor(t *testing.T) {
	var buf syncBuffer
	o := New(&buf, Options{Color: true, NameWidth: 8, Pause: time.Minute})
	o.Stream("web.1", 0).Write([]byte("\x1b[1mbold\x1b[0m\r\n"))
	o.Stream("web.2", 0).Write([]byte("two\n"))
	o.Stream("worker.1", 1).Write([]byte("w\n"))
	o.Stream("x.1", 1-len(palette)).Write([]byte("x\n"))
	o.Event("hello")
	o.Close()

	colors := map[string]string{}
	for _, line := range lines(buf.String()) {
		m := sgrRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q is not colour-prefixed", line)
		}
		colors[strings.TrimSpace(m[2])] = m[1]
		if m[2] == "web.1   " && m[3] != "\x1b[1mbold\x1b[0m" {
			t.Errorf("child's escapes changed with colour on: %q", m[3])
		}
	}
	if len(colors) != 5 {
		t.Fatalf("got lines of %d names, want 5: %q", len(colors), buf.String())
	}
	if colors["web.1"] != colors["web.2"] {
		t.Errorf("instances of one process have colours %q and %q", colors["web.1"], colors["web.2"])
	}
	if colors["web.1"] == colors["worker.1"] {
		t.Errorf("two processes share colour %q", colors["web.1"])
	}
	if colors["worker.1"] != colors["x.1"] {
		t.Errorf("palette does not wrap: %q, %q", colors["worker.1"], colors["x.1"])
	}
	if colors["mhrun"] == colors["web.1"] || colors["mhrun"] == colors["worker.1"] {
		t.Errorf("events share a process colour %q", colors["mhrun"])
	}
}

func TestOutputNoColorStripsEscapes(t *testing.T) {
	var buf syncBuffer
	o := New(&buf, Options{NameWidth: 5, Pause: time.Minute})
	s := o.Stream("web.1", 0)
	// An escape sequence split across writes is still removed.
	s.Write([]byte("\x1b]0;title\x07\x1b[3"))
	s.Write([]byte("2mgreen\x1b[0m\r\n\x1b[?25l\x1b(Bplain\r\n"))
	s.Write([]byte("tail\x1b[0"))
	s.Flush()
	o.Event("event \x1b[1mbold\x1b[0m")
	o.Close()
	want := "web.1 | green\nweb.1 | plain\nweb.1 | tail\nmhrun | event bold\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// controlPayload is what children write that is not plain text: progress
// bars, colours, queries the terminal would answer into mhrun's input, a
// reset, a title, bells and backspaces, C1 controls raw and UTF-8 encoded,
// 8-bit text; each line ends in the pty's "\r\n".
const controlPayload = "" +
	"\x1b[32mok\x1b[0m started\r\n" +
	"\x1b[6n\x1b[c\x1b[>q\x1b]11;?\x07\x1bP$qm\x1b\\\x1b[18tasked\r\n" +
	"\x1bc\x1b[!p\x1b]0;pwned\x07\x1b]52;c;aGk=\x07reset\r\n" +
	" 10%\r\x1b[K 50%\r\x1b[K\x1b[1m100%\x1b[0m\r\n" +
	"bell\a back\bspace\x7f\r\n" +
	"c1 \x9b31mraw\x9b0m \u009b6nutf8 \x85nel\u0085\r\n" +
	"8-bit caf\xe9 \xff, utf-8 café ✓\r\n" +
	"tab\there\x1b[2K\x1b[1G\x1b[?1049h\x1b[?25l\x1b(0\r\n"

var controlPlain = []string{
	"ok started",
	"asked",
	"reset",
	"100%",
	"bell backspace",
	"c1 raw utf8 nel",
	"8-bit caf\xe9 \xff, utf-8 café ✓",
	"tab\there",
}

var controlColor = []string{
	"\x1b[32mok\x1b[0m started",
	"asked",
	"reset",
	"\x1b[1m100%\x1b[0m",
	"bell backspace",
	"c1 \x1b[31mraw\x1b[0m utf8 nel",
	"8-bit caf\xe9 \xff, utf-8 café ✓",
	"tab\there",
}

// TestOutputControlCharacters: children's control characters and escape
// sequences, written in chunks that cut them anywhere, reach the output, Tap
// and so the log files as the rules of ansi.go say, with and without colour.
func TestOutputControlCharacters(t *testing.T) {
	for _, color := range []bool{false, true} {
		for seed := range uint64(20) {
			t.Run(fmt.Sprintf("color=%v/seed=%d", color, seed), func(t *testing.T) {
				var buf syncBuffer
				var tapped []string
				o := New(&buf, Options{Color: color, NameWidth: 5, Pause: time.Hour,
					Tap: func(name string, _ bool, line []byte) { tapped = append(tapped, string(line)) }})
				s := o.Stream("web.1", 0)
				max := 1 + int(seed%8) // seed 0: byte by byte
				writeChunked(s, []byte(controlPayload), max, rand.New(rand.NewPCG(seed, 3)))
				s.Flush()
				if err := o.Close(); err != nil {
					t.Fatal(err)
				}
				prefix, want := "web.1 | ", controlPlain
				if color {
					prefix, want = "\x1b[36mweb.1 |\x1b[0m ", controlColor
				}
				got := lines(buf.String())
				if len(got) != len(want) {
					t.Fatalf("got %d lines, want %d:\n%q", len(got), len(want), got)
				}
				for i := range want {
					if got[i] != prefix+want[i] {
						t.Errorf("line %d = %q, want %q", i, got[i], prefix+want[i])
					}
				}
				if !slices.Equal(tapped, controlPlain) {
					t.Errorf("Tap saw %q, want %q", tapped, controlPlain)
				}
			})
		}
	}
}

// TestOutputSequenceCutByPause: a child that stops in the middle of an escape
// sequence has its partial line written after Pause; the rest of the
// sequence, when it comes, is not shown as text. A line that ends inside a
// sequence does not carry it to the next line.
func TestOutputSequenceCutByPause(t *testing.T) {
	for _, color := range []bool{false, true} {
		t.Run(fmt.Sprintf("color=%v", color), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf syncBuffer
				var tapped []string
				o := New(&buf, Options{Color: color, NameWidth: 5, Pause: 100 * time.Millisecond, Hold: 100 * time.Millisecond,
					Tap: func(name string, _ bool, line []byte) { tapped = append(tapped, string(line)) }})
				s := o.Stream("web.1", 0)
				s.Write([]byte("abc\x1b[3"))
				time.Sleep(time.Second)
				synctest.Wait()
				s.Write([]byte("1mred\r\n"))
				s.Write([]byte("title\x1b]0;never ended\r\n"))
				s.Write([]byte("next\r\n"))
				s.Write([]byte("x\x1b]2;long"))
				time.Sleep(time.Second)
				synctest.Wait()
				s.Write([]byte(" title\x07y\r\n"))
				if err := o.Close(); err != nil {
					t.Fatal(err)
				}
				want := []string{"abc", "red", "title", "next", "x", "y"}
				if !slices.Equal(tapped, want) {
					t.Errorf("got lines %q, want %q", tapped, want)
				}
				if out := buf.String(); strings.Count(out, "\x1b") != 2*strings.Count(out, "\n")*boolInt(color) {
					t.Errorf("escape sequences other than the prefixes' in %q", out)
				}
			})
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestOutputTimestamps(t *testing.T) {
	var buf syncBuffer
	o := New(&buf, Options{Timestamps: true, NameWidth: 5})
	o.Stream("web.1", 0).Write([]byte("hi\n"))
	o.Event("ev")
	o.Close()
	re := regexp.MustCompile(`^\d\d:\d\d:\d\d (web\.1 \| hi|mhrun \| ev)$`)
	got := lines(buf.String())
	if len(got) != 2 {
		t.Fatalf("got %q, want 2 lines", got)
	}
	for _, l := range got {
		if !re.MatchString(l) {
			t.Errorf("line %q does not match %s", l, re)
		}
	}

	// The time is the local time when the line is written.
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{Timestamps: true, NameWidth: 5})
		time.Sleep(3723 * time.Second)
		want := time.Now().Format("15:04:05 ") + "web.1 | hi\n"
		o.Stream("web.1", 0).Write([]byte("hi\n"))
		synctest.Wait()
		if got := buf.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		o.Close()
	})
}

// droppedRE matches the marker line that replaces dropped lines.
var droppedRE = regexp.MustCompile(`^\[mhrun: (\d+) lines dropped, output too slow\]$`)

func TestOutputPausedWriter(t *testing.T) {
	const n = 2000
	w := &blockingWriter{release: make(chan struct{})}
	o := New(w, Options{NameWidth: 5, BufferSize: 4096, Pause: time.Minute})
	s := o.Stream("web.1", 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			fmt.Fprintf(s, "line %05d %s\r\n", i, strings.Repeat("x", 40))
		}
		o.Event("still responsive")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stream.Write blocked on a paused writer")
	}
	close(w.release)
	w.waitFor(t, "the first lines", func(out string) bool { return len(out) > 0 })
	s.Write([]byte("after\r\n"))
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	next, kept, dropped, markers := 0, 0, 0, 0
	sawEvent := false
	for _, line := range lines(w.String()) {
		name, text := splitLine(t, line)
		if name == "mhrun" {
			if text != "still responsive" {
				t.Errorf("unexpected event %q", text)
			}
			sawEvent = true
			continue
		}
		if name != "web.1" {
			t.Fatalf("unexpected line %q", line)
		}
		if m := droppedRE.FindStringSubmatch(text); m != nil {
			d, _ := strconv.Atoi(m[1])
			dropped += d
			next += d
			markers++
			continue
		}
		if next == n {
			if text != "after" {
				t.Errorf("got %q, want the line written after release", text)
			}
			next++
			continue
		}
		if want := fmt.Sprintf("line %05d %s", next, strings.Repeat("x", 40)); text != want {
			t.Fatalf("got %q, want %q (the marker must stand where the lines were)", text, want)
		}
		next++
		kept++
	}
	if dropped == 0 || markers == 0 {
		t.Fatalf("no lines dropped behind a paused writer")
	}
	if kept+dropped != n {
		t.Errorf("%d lines kept + %d dropped, want %d", kept, dropped, n)
	}
	if next != n+1 {
		t.Errorf("the line written after release is missing")
	}
	if !sawEvent {
		t.Errorf("event missing")
	}
	t.Logf("%d lines kept, %d dropped in %d markers", kept, dropped, markers)
}

// slowWriter takes delay for every Write: a destination that is slow but
// always makes progress, like a file on a busy machine.
type slowWriter struct {
	delay time.Duration
	syncBuffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.syncBuffer.Write(p)
}

// Lines were dropped while the destination kept up: the writer fell behind
// on a busy machine and the queues filled although no write ever stalled.
// Now Write waits for a writer that makes progress.
func TestOutputSlowWriterDropsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const nStreams, nLines = 4, 12_500
		w := &slowWriter{delay: time.Millisecond}
		o := New(w, Options{NameWidth: 5, BufferSize: 4096})
		var wg sync.WaitGroup
		for g := range nStreams {
			s := o.Stream("s"+strconv.Itoa(g), g)
			wg.Go(func() {
				var data []byte
				for i := range nLines {
					data = append(data, concurrentPayload(g, i)...)
					data = append(data, "\r\n"...)
				}
				rnd := rand.New(rand.NewPCG(uint64(g), 3))
				for len(data) > 0 {
					if g%2 == 0 {
						s.Reading() // half the streams cooperate, as the pty reader does
					}
					n := min(len(data), 1+rnd.IntN(300))
					s.Write(data[:n])
					data = data[n:]
				}
				s.Flush()
			})
		}
		wg.Wait()
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		next := make([]int, nStreams)
		for _, line := range lines(w.String()) {
			name, text := splitLine(t, line)
			if droppedRE.MatchString(text) {
				t.Fatalf("lines dropped behind a writer that kept up: %q", line)
			}
			g, err := strconv.Atoi(strings.TrimPrefix(name, "s"))
			if err != nil || g < 0 || g >= nStreams || next[g] >= nLines {
				t.Fatalf("unexpected line %q", line)
			}
			if want := concurrentPayload(g, next[g]); text != want {
				t.Fatalf("stream %s line %d: got %q, want %q", name, next[g], text, want)
			}
			next[g]++
		}
		for g, n := range next {
			if n != nLines {
				t.Errorf("stream s%d: %d lines, want %d", g, n, nLines)
			}
		}
	})
}

// stoppingWriter makes progress for its first writes, then blocks until
// release is closed, like a terminal paused while output flows.
type stoppingWriter struct {
	after   int           // writes that pass before it blocks
	blocked chan struct{} // closed when it blocks
	release chan struct{}
	n       int // writes so far; only the output's writer touches it
	syncBuffer
}

func (w *stoppingWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n == w.after+1 {
		close(w.blocked)
		<-w.release
	} else {
		time.Sleep(time.Millisecond)
	}
	return w.syncBuffer.Write(p)
}

// A Write waits for a writer that makes progress, and once the writer is
// stuck in one write for Stall, drops lines without waiting any longer.
func TestOutputStallBoundsWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, stall = 3000, 300 * time.Millisecond
		w := &stoppingWriter{after: 5, blocked: make(chan struct{}), release: make(chan struct{})}
		o := New(w, Options{NameWidth: 5, BufferSize: 4096, Pause: time.Minute, Stall: stall})
		s := o.Stream("web.1", 0)
		var blockedAt time.Time
		go func() {
			<-w.blocked
			blockedAt = time.Now()
		}()
		for i := range n {
			fmt.Fprintf(s, "line %05d %s\r\n", i, strings.Repeat("x", 40))
		}
		done := time.Now()
		synctest.Wait()
		if blockedAt.IsZero() {
			t.Fatal("the writer never blocked: the test writes too little")
		}
		if d := done.Sub(blockedAt); d < stall || d > 2*stall {
			t.Errorf("writes returned %v after the writer blocked, want between %v and %v", d, stall, 2*stall)
		}
		// Stalled: more writes return at once.
		start := time.Now()
		for range 100 {
			s.Write([]byte("more\r\n"))
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("writes behind a stalled writer waited %v", d)
		}
		close(w.release)
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		next, dropped := 0, 0
		for _, line := range lines(w.String()) {
			_, text := splitLine(t, line)
			if m := droppedRE.FindStringSubmatch(text); m != nil {
				d, _ := strconv.Atoi(m[1])
				dropped += d
				next += d
				continue
			}
			if next >= n {
				if text != "more" {
					t.Fatalf("got %q, want \"more\"", text)
				}
				next++
				continue
			}
			if want := fmt.Sprintf("line %05d %s", next, strings.Repeat("x", 40)); text != want {
				t.Fatalf("got %q, want %q", text, want)
			}
			next++
		}
		if dropped == 0 {
			t.Error("no lines dropped behind a stalled writer")
		}
		if next != n+100 {
			t.Errorf("%d lines kept or counted, want %d", next, n+100)
		}
	})
}

// Lines were split under load: the pty reader was not scheduled for Pause
// while the rest of the line waited in the kernel. On a stream whose reader
// calls Reading, a partial line waits for the reader to come back.
func TestStreamReadingHoldsPartial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 5, Pause: 100 * time.Millisecond, Hold: 100 * time.Millisecond})
		s := o.Stream("web.1", 0)
		s.Reading()
		s.Write([]byte("done\r\nprompt> "))
		// The reader is not scheduled: the partial line is held however long.
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | done\n"; got != want {
			t.Fatalf("partial written before the reader came back: got %q, want %q", got, want)
		}
		// The reader comes back and finds nothing: Pause later, it is written.
		s.Reading()
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | done\n"; got != want {
			t.Fatalf("partial written before the pause: got %q, want %q", got, want)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | done\nweb.1 | prompt> \n"; got != want {
			t.Fatalf("partial after the pause: got %q, want %q", got, want)
		}

		// Pause counts from the later of the growth and the Reading call.
		s.Write([]byte("a"))
		s.Reading()
		time.Sleep(60 * time.Millisecond)
		s.Write([]byte("b")) // grew: waits for the reader again
		time.Sleep(time.Second)
		synctest.Wait()
		if got := buf.String(); strings.Contains(got, "ab") {
			t.Fatalf("partial written without the reader back: %q", got)
		}
		s.Reading()
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if got := buf.String(); strings.Contains(got, "ab") {
			t.Fatalf("partial written before the pause: %q", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | done\nweb.1 | prompt> \nweb.1 | ab\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A partial line continued before the reader comes back stays one line, with
// or without Reading calls in between that found more to read.
func TestStreamReadingContinued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 5, Pause: 100 * time.Millisecond})
		s := o.Stream("web.1", 0)
		s.Reading()
		s.Write([]byte("hel"))
		time.Sleep(300 * time.Millisecond) // the reader is descheduled
		synctest.Wait()
		s.Reading()
		s.Write([]byte("lo wor"))
		s.Reading()
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		s.Write([]byte("ld\r\n"))
		s.Reading()
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | hello world\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// Stray empty lines: a partial line ending in the "\r" of a "\r\n" was
// written by the timer, and the "\n" then made an empty line of its own.
func TestOutputNoEmptyLineAfterFlushedCR(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 3, Pause: 100 * time.Millisecond})
		timed := o.Stream("a.1", 0)
		coop := o.Stream("b.1", 1)
		flushed := o.Stream("c.1", 2)

		timed.Write([]byte("one\r"))
		coop.Reading()
		coop.Write([]byte("two\r"))
		coop.Reading()
		flushed.Write([]byte("three\r"))
		flushed.Flush()
		time.Sleep(time.Second)
		synctest.Wait()
		timed.Write([]byte("\nfour\r\n"))
		coop.Write([]byte("\n"))
		// Flush is the end of a run's output: what follows is the next
		// run's, whose line ends are its own, none swallowed.
		flushed.Write([]byte("\n\nfive\n"))
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		want := []string{"a.1 | one", "b.1 | two", "c.1 | three", "a.1 | four", "c.1 | ", "c.1 | ", "c.1 | five"}
		got := lines(buf.String())
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("got lines %q, want %q", got, want)
		}
	})
}

// A "\n" after a "\r\n" completed normally is a line end as always, and so
// is one after a line ended by its own "\n". (A "\n" after a partial line
// written on its own ends that line: TestOutputLineEndAfterWrittenPartial.)
func TestOutputNewlineKeptAfterCompletedLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 5, Pause: 100 * time.Millisecond})
		s := o.Stream("web.1", 0)
		s.Write([]byte("one\n"))
		time.Sleep(time.Second)
		synctest.Wait()
		s.Write([]byte("\ntwo\r"))
		s.Write([]byte("\n"))
		s.Write([]byte("\n"))
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := buf.String(), "web.1 | one\nweb.1 | \nweb.1 | two\nweb.1 | \n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestOutputCloseDrains(t *testing.T) {
	var buf syncBuffer
	o := New(&buf, Options{NameWidth: 5, Pause: time.Hour})
	a, b := o.Stream("a.1", 0), o.Stream("b.1", 1)
	for i := range 1000 {
		fmt.Fprintf(a, "a %d\n", i)
		fmt.Fprintf(b, "b %d\n", i)
	}
	a.Write([]byte("a partial"))
	b.Write([]byte("b partial"))
	o.Event("bye")
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(buf.String())
	if len(got) != 2003 {
		t.Fatalf("got %d lines, want 2003", len(got))
	}
	joined := "\n" + buf.String()
	for _, want := range []string{"a.1   | a partial\n", "b.1   | b partial\n", "mhrun | bye\n", "a.1   | a 999\n", "b.1   | b 999\n"} {
		if !strings.Contains(joined, "\n"+want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// Writes and events after Close are discarded; a second Close is fine.
	a.Write([]byte("late\n"))
	o.Event("late")
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "late") {
		t.Error("a write after Close was written")
	}
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, syscall.EPIPE }

func TestOutputWriteError(t *testing.T) {
	o := New(failingWriter{}, Options{NameWidth: 5})
	s := o.Stream("web.1", 0)
	for range 10000 {
		s.Write([]byte("line\n"))
	}
	if err := o.Close(); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Close() = %v, want EPIPE", err)
	}
}

// A stream flushed at end of file leaves the writer's list, and comes back
// when written again.
func TestStreamIdleAfterFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 5})
		s := o.Stream("web.1", 0)
		s.Write([]byte("one\nend"))
		s.Flush()
		synctest.Wait()
		o.Event("web.1 exited") // a cycle after the flushed data was written
		synctest.Wait()
		o.mu.Lock()
		n := len(o.streams)
		o.mu.Unlock()
		if n != 1 {
			t.Errorf("%d streams listed after Flush, want only the event stream", n)
		}
		s.Write([]byte("two\n"))
		synctest.Wait()
		o.Close()
		want := "web.1 | one\nweb.1 | end\nmhrun | web.1 exited\nweb.1 | two\n"
		if got := buf.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestOutputNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	for range 10 {
		o := New(io.Discard, Options{NameWidth: 5, Pause: time.Millisecond})
		s := o.Stream("web.1", 0)
		s.Write([]byte("line\npartial"))
		o.Event("x")
		o.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), base)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkOutput4x200k feeds 4 instances × 200,000 lines of 100 bytes, in
// pty-like chunks of up to 4 KiB that split lines, into an Output writing to
// a file (no colour, so escapes are scanned for), as in PEERS.md. The
// producers here are memory copies, far faster than children behind ptys,
// so the queues are made large enough that nothing is dropped: the benchmark
// measures the cost of every line through the whole path.
func BenchmarkOutput4x200k(b *testing.B) {
	const producers, nLines, lineLen = 4, 200_000, 100
	chunks := make([][][]byte, producers)
	for g := range producers {
		data := make([]byte, 0, nLines*lineLen)
		for i := range nLines {
			start := len(data)
			data = fmt.Appendf(data, "web.%d line %07d ", g+1, i)
			for len(data)-start < lineLen-2 {
				data = append(data, 'a'+byte((len(data)-start)%26))
			}
			data = append(data, "\r\n"...)
		}
		// Mostly full 4 KiB reads, sometimes short ones, as a pty gives.
		rnd := rand.New(rand.NewPCG(uint64(g), 2))
		for len(data) > 0 {
			n := 4096
			if rnd.IntN(8) == 0 {
				n = 1 + rnd.IntN(4096)
			}
			n = min(n, len(data))
			chunks[g] = append(chunks[g], data[:n])
			data = data[n:]
		}
	}
	path := filepath.Join(b.TempDir(), "out")
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	for range b.N {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		o := New(f, Options{NameWidth: 5, BufferSize: 64 << 20})
		var wg sync.WaitGroup
		for g := range producers {
			s := o.Stream(fmt.Sprintf("web.%d", g+1), g)
			wg.Go(func() {
				for _, c := range chunks[g] {
					s.Write(c)
				}
				s.Flush()
			})
		}
		wg.Wait()
		if err := o.Close(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)

	total := producers * nLines
	out, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	got, dropped := 0, 0
	for line := range bytes.Lines(out) {
		if _, text, _ := bytes.Cut(line, []byte(" | ")); bytes.HasPrefix(text, []byte("[mhrun: ")) {
			m := droppedRE.FindSubmatch(bytes.TrimSuffix(text, []byte("\n")))
			d, _ := strconv.Atoi(string(m[1]))
			dropped += d
			continue
		}
		if len(line) != len("web.1 | ")+lineLen-1 {
			b.Fatalf("line of %d bytes: %q", len(line), line)
		}
		got++
	}
	if got != total {
		b.Fatalf("%d lines + %d dropped, want %d", got, dropped, total)
	}
	cpu := time.Duration(syscall.TimevalToNsec(after.Utime) - syscall.TimevalToNsec(before.Utime) +
		syscall.TimevalToNsec(after.Stime) - syscall.TimevalToNsec(before.Stime))
	n := float64(b.N) * float64(total)
	b.ReportMetric(n/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/line")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// One Stream serves every run of an instance, so two readers may write to it
// at once (a reload's old run and its replacement, an abandoned run's reader
// still draining). A partial line written while another writer waited for
// room in the queue was lost: the waiting writer put its own emptied buffer
// back as the partial line when it resumed.
func TestStreamWriterWaitingForRoomKeepsAnotherWritersPartial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &blockingWriter{release: make(chan struct{})}
		o := New(w, Options{NameWidth: 5, BufferSize: 64, Pause: time.Hour, Stall: time.Hour})
		s := o.Stream("web.1", 0)
		s.Write([]byte("first\n"))
		synctest.Wait() // the writer is inside the destination's Write
		s.Write([]byte(strings.Repeat("x", 60) + "\n"))
		s.Write([]byte("ab"))
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.Write([]byte("c\n")) // "abc\n" does not fit: it waits for the writer
		}()
		synctest.Wait()
		s.Write([]byte("xy")) // another reader begins a line meanwhile
		close(w.release)
		<-done
		s.Flush()
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		want := "web.1 | first\nweb.1 | " + strings.Repeat("x", 60) + "\nweb.1 | abc\nweb.1 | xy\n"
		if got := w.String(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// A stream's Stderr twin marks its lines "!" in the merged output and for
// Tap, keeps its own partial line, and is one twin however often asked.
func TestStderrTwin(t *testing.T) {
	var buf syncBuffer
	var mu sync.Mutex
	var tapped []string
	o := New(&buf, Options{NameWidth: 5, Color: true, Tap: func(name string, stderr bool, line []byte) {
		mu.Lock()
		defer mu.Unlock()
		mark := "|"
		if stderr {
			mark = "!"
		}
		tapped = append(tapped, name+" "+mark+" "+string(line))
	}})
	s := o.Stream("web.1", 0)
	e := s.Stderr()
	if s.Stderr() != e {
		t.Fatal("Stderr returned a second twin")
	}
	s.Write([]byte("out one\nout "))
	e.Write([]byte("err one\nerr "))
	s.Write([]byte("two\n"))
	e.Write([]byte("two\n"))
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{"web.1 | out one", "web.1 | out two", "web.1 ! err one", "web.1 ! err two"}
	var got []string
	for _, l := range lines(buf.String()) {
		got = append(got, string(StripANSI(nil, []byte(l))))
	}
	slices.Sort(got)
	w := slices.Clone(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Errorf("output %q, want %q", got, w)
	}
	if !strings.Contains(buf.String(), "\x1b[36mweb.1 !\x1b[0m err one") {
		t.Errorf("stderr line not in the process's colour: %q", buf.String())
	}
	mu.Lock()
	slices.Sort(tapped)
	mu.Unlock()
	if !slices.Equal(tapped, w) {
		t.Errorf("Tap saw %q, want %q", tapped, w)
	}
}

// A stream that wrote a burst gives its large buffers back once it has
// been quiet for quietAfter, with nothing else waking the writer; a
// stream still writing keeps them.
func TestQuietStreamReleasesBuffers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 3})
		defer o.Close()
		loud := o.Stream("a.1", 0)
		burst := bytes.Repeat([]byte(strings.Repeat("x", 1023)+"\n"), 512) // 512 KiB
		for range 4 {
			loud.Write(burst)
		}
		synctest.Wait()
		if n := strings.Count(buf.String(), "a.1 | x"); n != 4*512 {
			t.Fatalf("%d lines of the burst written, want %d", n, 4*512)
		}
		held := func() (int, int) {
			loud.mu.Lock()
			defer loud.mu.Unlock()
			return cap(loud.queue), cap(loud.spare)
		}
		if q, sp := held(); q+sp <= quietKeep {
			t.Fatalf("right after the burst the stream holds %d + %d bytes: the test shows nothing", q, sp)
		}
		time.Sleep(quietAfter + time.Millisecond)
		synctest.Wait()
		if q, sp := held(); q > quietKeep || sp > quietKeep {
			t.Errorf("a stream quiet for %v holds a queue of %d and a spare of %d bytes, want at most %d each", quietAfter, q, sp, quietKeep)
		}
	})
}
