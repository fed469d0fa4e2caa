//go:build linux

package output

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// The helper children of the pty tests, the test binary run again:
//
//	MHRUN_TEST_HELPER=parts  writes each "|"-separated piece of
//	      MHRUN_TEST_PARTS with one write(2), MHRUN_TEST_GAP apart: a line
//	      that reaches the pty in two pieces, the second late.
//	MHRUN_TEST_HELPER=password  turns echo off, writes "Password: ", reads
//	      a line, then writes "\n" and "ok\n", as getpass does.
func init() {
	switch os.Getenv("MHRUN_TEST_HELPER") {
	case "parts":
		gap, err := time.ParseDuration(os.Getenv("MHRUN_TEST_GAP"))
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		for i, part := range strings.Split(os.Getenv("MHRUN_TEST_PARTS"), "|") {
			if i > 0 {
				time.Sleep(gap) // the scenario: the child writes the rest late
			}
			if _, err := os.Stdout.Write([]byte(part)); err != nil {
				os.Exit(1)
			}
		}
		os.Exit(0)
	case "password":
		tio, err := unix.IoctlGetTermios(0, unix.TCGETS)
		if err == nil {
			tio.Lflag &^= unix.ECHO
			err = unix.IoctlSetTermios(0, unix.TCSETS, tio)
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		os.Stdout.Write([]byte("Password: "))
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			os.Exit(1)
		}
		os.Stdout.Write([]byte("\n"))
		os.Stdout.Write([]byte("ok\n"))
		os.Exit(0)
	}
}

// startPty runs a helper child under a pty and copies the pty to s the way
// the runner's reader does (Reading before each read, the look-ahead, Flush
// at the end). It returns the pty, for input, and a channel closed once the
// pty reached its end and the child was reaped.
func startPty(t *testing.T, s *Stream, env ...string) (*os.File, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cmd.Wait()
		undo := s.LookAhead(func() bool { return unread(f) })
		defer undo()
		buf := make([]byte, 4096)
		for {
			s.Reading()
			n, err := f.Read(buf)
			if n > 0 {
				s.Write(buf[:n])
			}
			if err != nil {
				s.Flush()
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
		<-done
	})
	return f, done
}

// unread reports whether the pty holds bytes not read yet.
func unread(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }) != nil {
		return false
	}
	return n > 0
}

// waitDone waits for the child and its pty's end, or fails the test after
// a generous deadline.
func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the helper child did not end")
	}
}

// Issue 16: a child's line that reached the pty in two pieces, the second
// long after Pause, came out as two lines, or as the line and an empty
// line when the cut fell before the pty's "\r\n". Now it is one line; and
// a partial line written on its own (Hold as short as Pause) takes its late
// line end without an empty line.
func TestPtyLineInTwoPieces(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parts string
		hold  time.Duration
		want  string
	}{
		{"cut mid-line", "w1 000001 abc|defghij\n", time.Hour, "p.1 | w1 000001 abcdefghij\n"},
		{"cut before the line end", "w1 000002 abcdefghij|\n", time.Hour, "p.1 | w1 000002 abcdefghij\n"},
		{"line end after the partial was written", "loading...|\n|done\n", 10 * time.Millisecond, "p.1 | loading...\np.1 | done\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf syncBuffer
			o := New(&buf, Options{NameWidth: 3, Pause: 10 * time.Millisecond, Hold: tc.hold})
			s := o.Stream("p.1", 0)
			_, done := startPty(t, s, "MHRUN_TEST_HELPER=parts", "MHRUN_TEST_PARTS="+tc.parts, "MHRUN_TEST_GAP=300ms")
			waitDone(t, done)
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// A prompt is shown while the child waits for its answer, and the line end
// the child writes after a password read with echo off ends the prompt's
// line: no empty line.
func TestPtyPasswordPrompt(t *testing.T) {
	var buf syncBuffer
	o := New(&buf, Options{NameWidth: 3, Pause: 10 * time.Millisecond, Hold: time.Hour})
	s := o.Stream("p.1", 0)
	f, done := startPty(t, s, "MHRUN_TEST_HELPER=password")
	buf.waitFor(t, "the prompt", func(out string) bool { return out == "p.1 | Password: \n" })
	if _, err := f.Write([]byte("secret\n")); err != nil {
		t.Fatal(err)
	}
	waitDone(t, done)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "p.1 | Password: \np.1 | ok\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
