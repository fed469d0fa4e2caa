package cli

import (
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
	Name       string `arg:"" name:"name[.n]" help:"The instance, e.g. web.2 (web means web.1)."`
	DetachKeys string `default:"ctrl-]" help:"Keys that detach, comma-separated: ctrl-X or a character (e.g. ctrl-p,ctrl-q)."`
}

// Run bridges keys and output until detach or the formation stops.
func (c *ConnectCmd) Run(app *App) error {
	detach, err := parseDetachKeys(c.DetachKeys)
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
	go func() {
		for range winch {
			if w, h, err := term.GetSize(fd); err == nil {
				conn.WriteFrame(socket.FrameResize, socket.ResizePayload(w, h))
			}
		}
	}()
	detached := make(chan struct{})
	leave := func() { // detached is closed before the runner can answer
		close(detached)
		conn.WriteFrame(socket.FrameDetach, nil)
	}
	go func() { // keys: everything but the detach sequence goes to the instance
		buf := make([]byte, 1024)
		matched := 0
		for {
			n, err := in.Read(buf)
			if err != nil {
				if err == io.EOF {
					leave()
				}
				return
			}
			var out []byte
			for _, b := range buf[:n] {
				if b == detach[matched] {
					matched++
					if matched == len(detach) {
						leave()
						return
					}
					continue
				}
				out = append(out, detach[:matched]...)
				matched = 0
				if b == detach[0] { // it may begin the sequence anew
					matched = 1
					continue
				}
				out = append(out, b)
			}
			if len(out) > 0 && conn.WriteFrame(socket.FrameData, out) != nil {
				return
			}
		}
	}()
	for {
		typ, p, err := conn.ReadFrame()
		if err != nil {
			select {
			case <-detached:
				say("detached from " + c.Name + ", it keeps running")
				return nil
			default:
			}
			say("the runner closed the connection")
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
