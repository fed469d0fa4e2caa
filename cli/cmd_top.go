package cli

// The rules of the screen, for `mhrun top`:
//
//   - The view lives on the alternate screen, with the cursor hidden and the
//     terminal in raw mode. One deferred restore (cooked mode, cursor shown,
//     alternate screen left) runs on every way out: q, Ctrl-C, SIGINT,
//     SIGTERM, SIGHUP, an error, end of input, the formation gone.
//   - A frame is one Write: cursor home, then every line placed with an
//     absolute cursor move and erased before it is written, so nothing
//     scrolls and nothing flickers. Raw mode has no output processing, so a
//     frame never relies on "\n".
//   - renderTop is pure: rows, histories, selection, size, message and the
//     time in; bytes out. Lines are cut to the width (counted in runes: every
//     character drawn is one column wide) and the rows to the height, scrolled
//     so the selected row shows.
//   - One goroutine (Run's) owns the rows, the histories and the selection.
//     The key reader reads only when that loop grants it a read, so while a
//     `mhrun connect` child runs, nobody else reads the terminal.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"mhrun/policy"
	"mhrun/socket"
)

// TopCmd is a live full-screen view of the running formation.
type TopCmd struct {
	ControlFlags
	Interval time.Duration `default:"1s" help:"Time between refreshes."`
}

const (
	sparkSamples = 60 // a minute at the default interval
	topTimeout   = 5 * time.Second
	topHelp      = "↑/↓ j/k select · r restart · s stop · S start · c connect · q quit"

	enterScreen = "\x1b[?1049h\x1b[?25l\x1b[2J"
	leaveScreen = "\x1b[0m\x1b[?25h\x1b[?1049l"
)

// errNeedsTerminal is the refusal when stdin or stdout is not a terminal.
var errNeedsTerminal = errors.New("mhrun top needs a terminal; use mhrun status for a one-off table")

// Run draws the view until q, a signal, or the formation stops.
func (c *TopCmd) Run(app *App) error {
	out, ok := app.Stdout.(*os.File)
	if !ok || !term.IsTerminal(int(out.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
		return errNeedsTerminal
	}
	if c.Interval <= 0 {
		return fmt.Errorf("--interval %s: want a positive duration, e.g. 1s", c.Interval)
	}
	rows, err := c.status()
	if err != nil {
		return err // no formation: say so before taking the screen
	}
	bye, err := c.view(app, out, rows)
	if bye != "" {
		fmt.Fprintln(app.Stdout, bye)
	}
	return err
}

// topState is what the loop owns between frames.
type topState struct {
	rows    []socket.Instance
	hist    map[string]*history
	sel     int
	selName string
	msg     string // the last action's result
	warn    string // the last refresh's error, shown over msg until a refresh works
}

// view runs the screen; bye is a line to print once the terminal is back.
func (c *TopCmd) view(app *App, out *os.File, rows []socket.Instance) (bye string, err error) {
	in := int(os.Stdin.Fd())
	old, err := term.MakeRaw(in)
	if err != nil {
		return "", fmt.Errorf("raw mode: %w", err)
	}
	defer func() { // the one restore, for every way out
		io.WriteString(out, leaveScreen)
		term.Restore(in, old)
	}()
	io.WriteString(out, enterScreen)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGWINCH)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(app.Ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	grant := make(chan struct{}, 1)
	keys := make(chan []byte)
	wg.Add(1)
	go func() {
		defer wg.Done()
		readKeys(ctx, in, grant, keys)
	}()
	grant <- struct{}{}

	st := &topState{hist: map[string]*history{}}
	st.update(rows, true)
	width, height := termSize(out)
	draw := func() {
		var buf bytes.Buffer
		msg := st.msg
		if st.warn != "" {
			msg = st.warn
		}
		renderTop(&buf, st.rows, st.hist, st.sel, width, height, msg, time.Now())
		out.Write(buf.Bytes())
	}
	draw()

	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return "", nil
		case s := <-sigs:
			if s == syscall.SIGWINCH {
				width, height = termSize(out)
				io.WriteString(out, "\x1b[2J")
				draw()
				continue
			}
			return "", &exitError{code: 128 + int(s.(syscall.Signal))}
		case <-tick.C:
			rows, err := c.status()
			if errors.Is(err, socket.ErrNoRunner) {
				return "the formation stopped", nil
			}
			if err != nil {
				st.warn = "status: " + err.Error()
			} else {
				st.warn = ""
				st.update(rows, true)
			}
			draw()
		case chunk := <-keys:
			if chunk == nil { // end of input
				return "", nil
			}
			quit, connect := st.keys(chunk, c)
			if quit {
				return "", nil
			}
			if connect != "" {
				var sig os.Signal
				st.msg, sig = c.connect(out, old, connect, sigs)
				if sig != nil {
					return "", &exitError{code: 128 + int(sig.(syscall.Signal))}
				}
				if _, err := term.MakeRaw(in); err != nil {
					return "", fmt.Errorf("raw mode after connect: %w", err)
				}
				io.WriteString(out, enterScreen)
				width, height = termSize(out)
			}
			if rows, err := c.status(); err == nil {
				st.update(rows, false)
			} else if errors.Is(err, socket.ErrNoRunner) {
				return "the formation stopped", nil
			}
			draw()
			grant <- struct{}{}
		}
	}
}

// keys acts on one chunk of input: moves, requests. It returns at a quit,
// or at a connect, which the loop runs (the rest of the chunk is dropped).
func (st *topState) keys(chunk []byte, c *TopCmd) (quit bool, connect string) {
	for i := 0; i < len(chunk); i++ {
		b := chunk[i]
		if b == 0x1b && i+2 < len(chunk) && (chunk[i+1] == '[' || chunk[i+1] == 'O') {
			switch chunk[i+2] {
			case 'A':
				st.move(-1)
			case 'B':
				st.move(+1)
			}
			i += 2
			continue
		}
		switch b {
		case 'q', 0x03: // Ctrl-C: raw mode turns it into a byte
			return true, ""
		case 'k':
			st.move(-1)
		case 'j':
			st.move(+1)
		case 'r', 's', 'S':
			name := st.selected()
			if name == "" {
				st.msg = "no instance selected"
				continue
			}
			cmd := map[byte]socket.Command{'r': socket.CmdRestart, 's': socket.CmdStop, 'S': socket.CmdStart}[b]
			resp, err := c.callTimeout(socket.Request{Cmd: cmd, Args: []string{name}})
			switch {
			case err != nil:
				st.msg = string(cmd) + " " + name + ": " + err.Error()
			case resp.Message != "":
				st.msg = resp.Message
			default:
				st.msg = string(cmd) + " " + name + ": done"
			}
		case 'c':
			if name := st.selected(); name != "" {
				return false, name
			}
			st.msg = "no instance selected"
		}
	}
	return false, ""
}

func (st *topState) move(d int) {
	if len(st.rows) == 0 {
		return
	}
	st.sel = min(max(st.sel+d, 0), len(st.rows)-1)
	st.selName = st.rows[st.sel].Name
}

func (st *topState) selected() string {
	if st.sel < len(st.rows) {
		return st.rows[st.sel].Name
	}
	return ""
}

// update takes a new status: the selection kept on the same name,
// histories of instances gone dropped and, on a tick, one sample per
// instance (refreshes after a key take none, so samples stay a tick apart).
func (st *topState) update(rows []socket.Instance, sample bool) {
	st.rows = rows
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		seen[r.Name] = true
		h := st.hist[r.Name]
		if h == nil {
			h = &history{}
			st.hist[r.Name] = h
		}
		if sample {
			h.add(r.CPU, r.RSS)
		}
	}
	for name := range st.hist {
		if !seen[name] {
			delete(st.hist, name)
		}
	}
	st.sel = min(st.sel, max(len(rows)-1, 0))
	for i, r := range rows {
		if r.Name == st.selName {
			st.sel = i
		}
	}
	if st.sel < len(rows) {
		st.selName = rows[st.sel].Name
	}
}

// connect hands the terminal, cooked again, to `mhrun connect NAME` and
// returns the line to show once the view is back. A SIGTERM or SIGHUP
// meanwhile goes to the child too, and is returned to end the view.
func (c *TopCmd) connect(out *os.File, cooked *term.State, name string, sigs <-chan os.Signal) (string, os.Signal) {
	exe, err := os.Executable()
	if err != nil {
		return "connect " + name + ": " + err.Error(), nil
	}
	args := []string{"connect", name}
	if c.Dir != "" {
		args = append(args, "-d", c.Dir)
	}
	if c.Socket != "" {
		args = append(args, "--socket", c.Socket)
	}
	io.WriteString(out, leaveScreen)
	term.Restore(int(os.Stdin.Fd()), cooked)
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, out, os.Stderr
	if err := cmd.Start(); err != nil {
		return "connect " + name + ": " + err.Error(), nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var stop os.Signal
	for {
		select {
		case err := <-done:
			switch {
			case stop != nil:
				return "", stop
			case err != nil:
				return "connect " + name + ": " + err.Error(), nil
			}
			return "back from " + name, nil
		case s := <-sigs:
			if s == syscall.SIGTERM || s == syscall.SIGHUP {
				stop = s
				cmd.Process.Signal(s)
			}
			// SIGINT and SIGWINCH are the child's business while it has the terminal
		}
	}
}

// readKeys sends what the terminal types, one chunk per grant, so the loop
// decides when the terminal may be read (not while a child has it). It
// polls, so it ends with ctx; a nil chunk is the end of input.
func readKeys(ctx context.Context, fd int, grant <-chan struct{}, keys chan<- []byte) {
	buf := make([]byte, 256)
	for {
		select {
		case <-ctx.Done():
			return
		case <-grant:
		}
		var chunk []byte
		for chunk == nil {
			if ctx.Err() != nil {
				return
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, 100)
			if errors.Is(err, unix.EINTR) || (err == nil && n == 0) {
				continue
			}
			if err != nil {
				chunk = []byte{}
				break
			}
			m, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			if err != nil || m == 0 {
				chunk = []byte{}
				break
			}
			chunk = append([]byte(nil), buf[:m]...)
		}
		if len(chunk) == 0 {
			chunk = nil
		}
		select {
		case keys <- chunk:
		case <-ctx.Done():
			return
		}
		if chunk == nil {
			return
		}
	}
}

// termSize is the terminal's size, or 80x24 when it cannot say.
func termSize(f *os.File) (width, height int) {
	w, h, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 || h <= 0 {
		return 80, 24
	}
	return w, h
}

// status asks for the rows, with a deadline so a stuck runner cannot freeze
// the view.
func (c *TopCmd) status() ([]socket.Instance, error) {
	resp, err := c.callTimeout(socket.Request{Cmd: socket.CmdStatus})
	return resp.Status, err
}

// callTimeout is call bounded by topTimeout.
func (c *TopCmd) callTimeout(req socket.Request) (socket.Response, error) {
	conn, err := c.dial()
	if err != nil {
		return socket.Response{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(topTimeout))
	return socket.Call(conn, req)
}

// history is an instance's last sparkSamples samples, oldest first.
type history struct {
	cpu []float64
	rss []float64
}

func (h *history) add(cpu float64, rss int64) {
	h.cpu = appendCapped(h.cpu, cpu)
	h.rss = appendCapped(h.rss, float64(rss))
}

func appendCapped(s []float64, v float64) []float64 {
	s = append(s, v)
	if len(s) > sparkSamples {
		s = append(s[:0], s[len(s)-sparkSamples:]...)
	}
	return s
}

var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width values, scaled to their max, right-aligned
// (the newest sample is the rightmost column).
func sparkline(vals []float64, width int) string {
	if width <= 0 {
		return ""
	}
	if len(vals) > width {
		vals = vals[len(vals)-width:]
	}
	top := 0.0
	for _, v := range vals {
		top = max(top, v)
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", width-len(vals)))
	for _, v := range vals {
		i := 0
		if top > 0 && v > 0 {
			i = min(int(v/top*float64(len(sparkBlocks)-1)+0.5), len(sparkBlocks)-1)
		}
		b.WriteRune(sparkBlocks[i])
	}
	return b.String()
}

// renderTop writes one frame: totals, column heads, one row per instance
// (the selected one marked and in reverse video), the message line and the
// key help, every line cut to width and the rows to height.
func renderTop(w io.Writer, rows []socket.Instance, hist map[string]*history, sel int, width, height int, msg string, now time.Time) {
	if width <= 0 || height <= 0 {
		return
	}
	running, cpu, rss := 0, 0.0, int64(0)
	for _, r := range rows {
		if r.State == "running" {
			running++
		}
		cpu += r.CPU
		rss += r.RSS
	}
	totals := fmt.Sprintf("mhrun top · %d/%d running · CPU %.1f%% · RSS %s", running, len(rows), cpu, policy.FormatBytes(rss))

	nameW, stateW := len("NAME"), len("STATE")
	for _, r := range rows {
		nameW, stateW = max(nameW, len(r.Name)), max(stateW, len(r.State))
	}
	cols := func(mark, name, state, pid, up, restarts, cpu, rss, port string) string {
		return fmt.Sprintf("%s %-*s  %-*s  %7s  %6s  %8s  %6s  %7s  %5s", mark, nameW, name, stateW, state, pid, up, restarts, cpu, rss, port)
	}
	fixed := len([]rune(cols("", "", "", "", "", "", "", "", "")))
	sparkW := min(sparkSamples, (width-fixed-4)/2)
	head := cols(" ", "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "CPU", "RSS", "PORT")
	if sparkW >= 8 {
		head += fmt.Sprintf("  %-*s  %s", sparkW, "CPU, last minute", "RSS, last minute")
	}

	// rows get what the four other lines leave, scrolled to show sel
	area := max(height-4, 0)
	first := 0
	if sel >= area && area > 0 {
		first = sel - area + 1
	}
	var lines []string
	lines = append(lines, totals, head)
	if len(rows) == 0 {
		lines = append(lines, "  no instances")
	}
	for i := first; i < len(rows) && i < first+area; i++ {
		r := rows[i]
		mark := " "
		if i == sel {
			mark = ">"
		}
		pid, up, cpuS, rssS, port := "-", "-", "-", "-", "-"
		if r.PID > 0 {
			pid = strconv.Itoa(r.PID)
			up = formatUptime(now.Sub(r.Started))
			cpuS = fmt.Sprintf("%.1f%%", r.CPU)
			rssS = policy.FormatBytes(r.RSS)
		}
		if r.Port > 0 {
			port = strconv.Itoa(r.Port)
		}
		line := cols(mark, r.Name, r.State, pid, up, strconv.Itoa(r.Restarts), cpuS, rssS, port)
		if sparkW >= 8 {
			var hc, hr []float64
			if h := hist[r.Name]; h != nil {
				hc, hr = h.cpu, h.rss
			}
			line += "  " + sparkline(hc, sparkW) + "  " + sparkline(hr, sparkW)
		}
		if i == sel {
			line = "\x1b[7m" + cut(line, width) + "\x1b[0m"
		}
		lines = append(lines, line)
	}
	lines = append(lines, msg, topHelp)

	var b bytes.Buffer
	b.WriteString("\x1b[H")
	for i, l := range lines[:min(len(lines), height)] {
		fmt.Fprintf(&b, "\x1b[%d;1H\x1b[2K%s", i+1, cut(l, width))
	}
	if len(lines) < height {
		fmt.Fprintf(&b, "\x1b[%d;1H\x1b[J", len(lines)+1)
	}
	w.Write(b.Bytes())
}

// cut keeps the first width columns of s, skipping over escape sequences
// (which take none) and keeping them.
func cut(s string, width int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			j = min(j+1, len(s))
			b.WriteString(s[i:j])
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if n < width {
			b.WriteRune(r)
		}
		n++
		i += size
	}
	return b.String()
}
