package output

import (
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"
)

// Issue 16: under load a line was split, its first part written as a line of
// its own because the rest came more than Pause later. A partial line that
// does not look like a prompt waits Hold, not Pause.
func TestOutputLineHeldUnlessPrompt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 5, Pause: 100 * time.Millisecond}) // Hold: the default 5s
		s := o.Stream("web.1", 0)

		s.Write([]byte("w4 000180753 abcdefghij"))
		time.Sleep(4 * time.Second) // a very slow machine
		synctest.Wait()
		if got := buf.String(); got != "" {
			t.Fatalf("line cut after 4s: %q", got)
		}
		s.Write([]byte("klmnopqrst\r\n"))
		synctest.Wait()
		if got, want := buf.String(), "web.1 | w4 000180753 abcdefghijklmnopqrst\n"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}

		// A child that really stopped mid-line is shown after Hold.
		s.Write([]byte("loading..."))
		time.Sleep(5*time.Second - time.Millisecond)
		synctest.Wait()
		if got := buf.String(); strings.Contains(got, "loading") {
			t.Fatalf("partial line written before Hold: %q", got)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got := buf.String(); !strings.HasSuffix(got, "web.1 | loading...\n") {
			t.Fatalf("partial line not written after Hold: %q", got)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A prompt is shown after Pause, on a cooperative stream too, with its
// escape sequences.
func TestOutputPromptAfterPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 5, Pause: 100 * time.Millisecond})
		s := o.Stream("db.1", 0)
		s.Reading()
		s.Write([]byte("ready\r\n\x1b[1mpostgres=#\x1b[0m "))
		s.Reading() // the reader is back and blocked: nothing more came
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if got, want := buf.String(), "db.1  | ready\n"; got != want {
			t.Fatalf("before the pause: got %q, want %q", got, want)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if got, want := buf.String(), "db.1  | ready\ndb.1  | postgres=# \n"; got != want {
			t.Fatalf("after the pause: got %q, want %q", got, want)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// A partial line written on its own stays open: its line end, coming alone
// and late, ends it without an empty line; anything else is a line of its own.
func TestOutputLineEndAfterWrittenPartial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 3, Pause: 100 * time.Millisecond})
		timed := o.Stream("a.1", 0) // written by the timer (Hold)
		coop := o.Stream("b.1", 1)  // a prompt, on a cooperative stream
		flushed := o.Stream("c.1", 2)

		timed.Write([]byte("one"))
		coop.Reading()
		coop.Write([]byte("Password: "))
		coop.Reading()
		flushed.Write([]byte("three"))
		flushed.Flush()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := len(lines(buf.String())); got != 3 {
			t.Fatalf("got %d lines, want the 3 partial lines: %q", got, buf.String())
		}
		timed.Write([]byte("\r"))
		timed.Write([]byte("\nfour\r\n"))
		coop.Write([]byte("\r\n"))
		coop.Reading()
		coop.Write([]byte("\r\n")) // a line end after the line ended: an empty line
		flushed.Write([]byte("more\r\n"))
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		want := "c.1 | three\nb.1 | Password: \na.1 | one\na.1 | four\nb.1 | \nc.1 | more\n"
		if got := buf.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

// Late look: when a partial line is due but the pty holds more bytes that
// its reader has not read yet, the line waits for them, Pause at a time, up
// to Hold.
func TestOutputLateLook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		o := New(&buf, Options{NameWidth: 5, Pause: 100 * time.Millisecond, Hold: time.Second})
		s := o.Stream("web.1", 0)
		var waiting atomic.Bool
		waiting.Store(true)
		var looked atomic.Int32
		undo := s.LookAhead(func() bool {
			looked.Add(1)
			return waiting.Load()
		})
		s.Reading()
		s.Write([]byte("Name? "))
		s.Reading()
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		if got := buf.String(); got != "" || looked.Load() == 0 {
			t.Fatalf("prompt written while more input waits (looked %d times): %q", looked.Load(), got)
		}
		// Bytes waiting that nobody reads hold the line Hold at most.
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | Name? \n"; got != want {
			t.Fatalf("after Hold: got %q, want %q", got, want)
		}

		s.Write([]byte("\r\nQuest? "))
		s.Reading()
		waiting.Store(false)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got, want := buf.String(), "web.1 | Name? \nweb.1 | Quest? \n"; got != want {
			t.Fatalf("nothing waiting: got %q, want %q", got, want)
		}

		undo()
		waiting.Store(true)
		s.Write([]byte("\r\nAnother? "))
		s.Reading()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got := buf.String(); !strings.HasSuffix(got, "web.1 | Another? \n") {
			t.Fatalf("look taken back, yet the prompt is held: %q", got)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLooksLikePrompt(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"Name: ", true},
		{"Continue? [Y/n] ", true},
		{"Are you sure? ", true},
		{">>> ", true},
		{"> ", true},
		{"user@host:~$ ", true},
		{"postgres=# ", true},
		{"% ", true},
		{"(Pdb) ", true},
		{"irb(main):001> ", true},
		{"Password:  ", true},
		{"\x1b[32m❯\x1b[0m ", true},
		{"» ", true},
		{"\x1b[1mName:\x1b[0m ", true},
		{"progress 10%\rEnter a value: ", true},
		{"Name:", false},
		{"Name", false},
		{"w4 000180753 abcdefghij", false},
		{"w4 000180753 abcde ", false},
		{"done\r", false},
		{"", false},
		{" ", false},
		{"a: \x1b[1m", true}, // an open SGR is no text
		{"a:\x1b[0m", false}, // the space is missing
		{"x: \r", true},      // a "\r" at the end overwrites nothing
		{"x: \rabc", false},  // what follows the "\r" is what shows
		{"\xff\xfe ", false}, // not a prompt character
		{strings.Repeat("x", 1000) + "Name: ", true},
	} {
		if got := looksLikePrompt([]byte(tc.text)); got != tc.want {
			t.Errorf("looksLikePrompt(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

// FuzzLooksLikePrompt: any bytes a child writes are classified without a
// panic; a prompt's shown text ends in a prompt character and a space, and
// plain text written after it (after a CAN, which ends any sequence left
// open) makes it no prompt.
func FuzzLooksLikePrompt(f *testing.F) {
	for _, s := range []string{"Name: ", ">>> ", "\x1b[1mName:\x1b[0m ", "x: \r", "abc", "\x9b1m$ ", "❯ ", "\xe2\x9d"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !looksLikePrompt(b) {
			return
		}
		shown := string(StripANSI(nil, b[max(0, len(b)-promptTail):]))
		text := strings.TrimRight(shown, " ")
		if r, _ := utf8.DecodeLastRuneInString(text); text == shown || !strings.ContainsRune(promptEnds, r) {
			t.Errorf("looksLikePrompt(%q) = true, but its text is %q", b, shown)
		}
		if looksLikePrompt(append(append([]byte(nil), b...), "\x18abc"...)) {
			t.Errorf("looksLikePrompt(%q + \"\\x18abc\") = true", b)
		}
	})
}
