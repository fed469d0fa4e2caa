package cli

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"mhrun/socket"
)

// connect end to end: the client runs under a real pty, types into an
// interactive child, sees its answers, follows a resize and detaches,
// leaving the child running.
func TestConnectEndToEnd(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "repl: while read l; do echo \"got $l\"; stty size; done\n",
	})
	r := startMhrun(t, dir, "start")
	waitStatus(t, dir, "repl running", func(s map[string]socket.Instance) bool { return s["repl.1"].State == "running" })

	cmd := mhrunCmd(t, dir, "connect", "repl")
	client, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(client)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
		close(lines)
	}()
	var seen []string
	expect := func(s string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("client ended before %q; saw %q", s, seen)
				}
				seen = append(seen, l)
				if strings.Contains(l, s) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q from the client; saw %q", s, seen)
			}
		}
	}
	expect("attached to repl.1")
	client.Write([]byte("one\r"))
	expect("got one")
	expect("30 100")
	if err := pty.Setsize(client, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	// the resize travels as a signal and a frame: retype until it shows
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		client.Write([]byte("two\r"))
		expect("got two")
		if l := <-lines; strings.Contains(l, "40 120") {
			break
		} else {
			seen = append(seen, l)
		}
		if time.Now().After(deadline) {
			t.Fatalf("resize never reached the child; saw %q", seen)
		}
	}
	// a restart while attached: the client follows the new run
	if _, stderr, code := runMhrun(t, dir, "restart", "repl"); code != 0 {
		t.Fatalf("restart: %s", stderr)
	}
	expect("repl.1 restarted: following the new run")
	client.Write([]byte("three\r"))
	expect("got three")

	client.Write([]byte{0x1d}) // Ctrl-]
	expect("detached from repl")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("connect exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("connect did not exit after detach")
	}
	s := statusOf(t, dir)
	if s["repl.1"].State != "running" {
		t.Errorf("repl.1 after detach: %+v", s["repl.1"])
	}
	runMhrun(t, dir, "quit")
	r.wait(10 * time.Second)
}

func TestDetachMatcher(t *testing.T) {
	pq := []byte{0x10, 0x11} // ctrl-p, ctrl-q
	for _, tt := range []struct {
		keys  []byte
		reads []string
		out   string
		done  bool
	}{
		{[]byte{0x1d}, []string{"ab\x1dcd"}, "ab", true},
		{pq, []string{"a\x10", "\x11z"}, "a", true},  // split across reads
		{pq, []string{"\x10x"}, "\x10x", false},      // a start that did not finish is typed
		{pq, []string{"\x10\x10\x11"}, "\x10", true}, // the second ctrl-p begins it anew
		{pq, []string{"\x10", "\x10", "\x10", "\x11"}, "\x10\x10", true},
		{[]byte("aab"), []string{"aaab"}, "a", true}, // the tail "aa" still begins it
		{[]byte("aba"), []string{"ab", "b", "aba"}, "abb", true},
		{pq, []string{"plain text"}, "plain text", false},
	} {
		m := &detachMatcher{keys: tt.keys}
		var out []byte
		done := false
		for _, r := range tt.reads {
			o, d := m.feed([]byte(r))
			out = append(out, o...)
			if d {
				done = true
				break
			}
		}
		if string(out) != tt.out || done != tt.done {
			t.Errorf("keys %q reads %q: out %q done %v, want %q %v", tt.keys, tt.reads, out, done, tt.out, tt.done)
		}
	}
}

// Issue 16: connect to an output=pipes instance is refused in one line,
// and logs shows its stderr lines marked "!".
func TestConnectRefusedForPipes(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "quiet: echo up; echo oops >&2; exec sleep 1000\n",
		"Procfile.policy": "quiet: output=pipes\n",
	})
	startMhrun(t, dir, "start")
	waitStatus(t, dir, "quiet running", func(s map[string]socket.Instance) bool { return s["quiet.1"].State == "running" })
	cmd := mhrunCmd(t, dir, "connect", "quiet")
	client, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	out, _ := io.ReadAll(client) // EIO once connect exits
	cmd.Wait()
	want := "quiet.1 has output=pipes: no terminal to connect to; follow its output with `mhrun logs -f quiet.1`, or set output=pty"
	if got := strings.TrimSpace(string(out)); !strings.HasSuffix(got, want) || strings.Count(got, "\n") != 0 || cmd.ProcessState.ExitCode() == 0 {
		t.Errorf("connect said %q (exit %d), want one line ending in %q", got, cmd.ProcessState.ExitCode(), want)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		logs, stderr, _ := runIn(t, "logs", "-d", dir, "quiet")
		if strings.Contains(logs, " quiet.1 ! oops\n") && strings.Contains(logs, " quiet.1 | up\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs gave %q %q, want the stderr line marked !", logs, stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
