package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"mhrun/socket"
)

// ConnectCmd attaches this terminal to an instance's pty.
type ConnectCmd struct {
	ControlFlags
	Name       string `arg:"" name:"name[.n]" predictor:"instance" help:"The instance, e.g. web.2 (web means web.1)."`
	DetachKeys string `default:"ctrl-]" help:"Keys that detach, comma-separated: ctrl-X or a character (e.g. ctrl-p,ctrl-q)."`
}

// Run bridges keys and output until detach or the formation stops.
func (c *ConnectCmd) Run(app *App) error {
	keys, err := parseDetachKeys(c.DetachKeys)
	if err != nil {
		return err
	}
	in := os.Stdin
	fd := int(in.Fd())
	tty := term.IsTerminal(fd)
	cols, rows := 80, 24
	if tty {
		if w, h, err := term.GetSize(fd); err == nil {
			cols, rows = w, h
		}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := socket.Call(conn, socket.Request{Cmd: socket.CmdAttach, Args: []string{c.Name}, Cols: cols, Rows: rows})
	if err != nil {
		return err
	}
	if tty {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("raw mode: %w", err)
		}
		defer term.Restore(fd, old)
	}
	say := func(msg string) { fmt.Fprintf(app.Stderr, "\r\n[mhrun: %s]\r\n", msg) }
	say(resp.Message + ", " + c.DetachKeys + " detaches")

	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	go forwardResizes(conn, fd, winch)
	detached := make(chan struct{})
	go forwardKeys(conn, in, &detachMatcher{keys: keys}, detached)
	return c.showFrames(app, conn, detached, say)
}

// forwardResizes tells the runner the terminal's new size on each SIGWINCH.
func forwardResizes(conn *socket.Conn, fd int, winch <-chan os.Signal) {
	for range winch {
		if w, h, err := term.GetSize(fd); err == nil {
			conn.WriteFrame(socket.FrameResize, socket.ResizePayload(w, h))
		}
	}
}

// forwardKeys sends every key but the detach sequence to the instance. On
// the sequence or EOF it closes detached, before the runner can answer,
// and asks the runner to detach.
func forwardKeys(conn *socket.Conn, in io.Reader, m *detachMatcher, detached chan<- struct{}) {
	buf := make([]byte, 1024)
	for {
		n, err := in.Read(buf)
		var out []byte
		leave := false
		if n > 0 {
			out, leave = m.feed(buf[:n])
		}
		if len(out) > 0 && conn.WriteFrame(socket.FrameData, out) != nil {
			return
		}
		if leave || err == io.EOF {
			close(detached)
			conn.WriteFrame(socket.FrameDetach, nil)
			return
		}
		if err != nil {
			return
		}
	}
}

// showFrames prints what the runner sends until the instance's end, a
// detach or the connection's end.
func (c *ConnectCmd) showFrames(app *App, conn *socket.Conn, detached <-chan struct{}, say func(string)) error {
	for {
		typ, p, err := conn.ReadFrame()
		if err != nil {
			select {
			case <-detached:
				say("detached from " + c.Name + ", it keeps running")
			default:
				say("the runner closed the connection")
			}
			return nil
		}
		switch typ {
		case socket.FrameData:
			app.Stdout.Write(p)
		case socket.FrameNotice:
			say(string(p))
		case socket.FrameEnd:
			say(string(p))
			return nil
		}
	}
}

// detachMatcher finds the detach sequence in the keys typed, across reads.
// Keys that began the sequence but did not finish it are passed on, except
// the longest tail that may still begin it (ctrl-p ctrl-p ctrl-q detaches
// on ctrl-p,ctrl-q).
type detachMatcher struct {
	keys    []byte
	matched int // how many of keys the last bytes typed match
}

// feed takes typed bytes and gives what goes to the instance, and whether
// the sequence is complete (bytes after it are dropped: the client leaves).
func (m *detachMatcher) feed(p []byte) (out []byte, done bool) {
	for _, b := range p {
		held := append(m.keys[:m.matched:m.matched], b)
		// the longest suffix of held that is a prefix of keys
		k := min(len(held), len(m.keys))
		for ; k > 0; k-- {
			if bytes.Equal(held[len(held)-k:], m.keys[:k]) {
				break
			}
		}
		out = append(out, held[:len(held)-k]...)
		m.matched = k
		if k == len(m.keys) {
			return out, true
		}
	}
	return out, false
}

// parseDetachKeys reads "ctrl-]" or "ctrl-p,ctrl-q" into the bytes they send.
func parseDetachKeys(s string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		low := strings.ToLower(k)
		switch {
		case strings.HasPrefix(low, "ctrl-") && len(k) == 6:
			c := k[5]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c < '@' || c > '_' {
				return nil, fmt.Errorf("--detach-keys %q: ctrl-%c has no control code (want ctrl-a … ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^ or ctrl-_)", s, k[5])
			}
			out = append(out, c-'@')
		case len(k) == 1:
			out = append(out, k[0])
		default:
			return nil, fmt.Errorf("--detach-keys %q: want keys like ctrl-] or ctrl-p,ctrl-q", s)
		}
	}
	return out, nil
}
