package runner

// The ready= checks themselves; ready.go runs them for a run. The probes
// (tcp, http, exec) poll: one try at once, then tries 50ms, 100ms, 200ms,
// 400ms, 800ms and then every 1s after the previous one ends, until one
// succeeds or the context ends (the ready-timeout or a stop); the waits and
// the bound of one try are on the supervisor's clock. notify and log: are
// pushed to mhrun instead: notifySocket and logMatcher close a channel that
// the caller waits on.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mhrun/output"
	"mhrun/policy"
	"mhrun/socket"
)

// probeBackoff spaces the tries of a probe.
var probeBackoff = backoff{min: 50 * time.Millisecond, max: time.Second}

// probeTryTimeout bounds one tcp or http try, so that a server that accepts
// but never answers does not use up the whole ready-timeout in one try.
const probeTryTimeout = time.Second

// probeReady waits until an instance answers the probe of r (kinds tcp,
// http and exec), trying at once and then with backoff, and returns nil
// once it is ready or ctx's cause when ctx ends. port is the instance's $PORT:
// tcp uses it when r.Port is 0, http always. An exec: try runs
// `/bin/sh -c r.Command` in dir with env, in a session of its own; start
// starts it (the runner registers the pid with its orphan reaper there) and
// a try still running when ctx ends is killed with its process group. The
// waits between tries, and the bound of a tcp or http try, are on clk.
func probeReady(ctx context.Context, clk clock, r policy.Ready, port int, dir string, env []string, start func(*exec.Cmd) error) error {
	try, cleanup, err := readyProbe(clk, r, port, dir, env, start)
	if err != nil {
		return err
	}
	defer cleanup()
	return pollReady(ctx, clk, try)
}

// readyProbe returns one try of the probe of r, and what to call once the
// tries are over.
func readyProbe(clk clock, r policy.Ready, port int, dir string, env []string, start func(*exec.Cmd) error) (try func(context.Context) bool, cleanup func(), err error) {
	switch r.Kind {
	case policy.ReadyTCP:
		p := r.Port
		if p == 0 {
			p = port
		}
		if p <= 0 {
			return nil, nil, errors.New("ready=tcp: the instance has no $PORT to probe (set port= or use tcp:PORT)")
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		return func(ctx context.Context) bool { return tryTCP(ctx, clk, addr) }, func() {}, nil
	case policy.ReadyHTTP:
		if port <= 0 {
			return nil, nil, fmt.Errorf("ready=http:%s: the instance has no $PORT to probe (set port=)", r.Path)
		}
		if !strings.HasPrefix(r.Path, "/") {
			return nil, nil, fmt.Errorf("ready=http:%s: the path must start with \"/\"", r.Path)
		}
		url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + r.Path
		tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
		c := &http.Client{
			Transport: tr,
			// A redirect already says the server answers; do not follow it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		return func(ctx context.Context) bool { return tryHTTP(ctx, clk, c, url) }, tr.CloseIdleConnections, nil
	case policy.ReadyExec:
		if start == nil {
			start = (*exec.Cmd).Start
		}
		return func(ctx context.Context) bool { return tryExec(ctx, r.Command, dir, env, start) }, func() {}, nil
	}
	return nil, nil, fmt.Errorf("ready=%s is not a probe (want tcp, http or exec)", r)
}

// pollReady calls try at once and then after each delay of probeBackoff on
// clk until it reports success (nil) or ctx ends (context.Cause(ctx):
// context.DeadlineExceeded at a timeout, on either clock).
func pollReady(ctx context.Context, clk clock, try func(context.Context) bool) error {
	var t timer
	var fired <-chan time.Time
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for n := 1; ; n++ {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if try(ctx) {
			return nil
		}
		if d := probeBackoff.delay(n, 0); t == nil {
			t, fired = clk.NewTimer(d)
		} else {
			t.Reset(d)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-fired:
		}
	}
}

// tryTCP reports whether a TCP connect to addr succeeds.
func tryTCP(ctx context.Context, clk clock, addr string) bool {
	ctx, cancel := withTimeout(ctx, clk, probeTryTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// tryHTTP reports whether GET url answers 2xx or 3xx.
func tryHTTP(ctx context.Context, clk clock, c *http.Client, url string) bool {
	ctx, cancel := withTimeout(ctx, clk, probeTryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "mhrun-ready")
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// tryExec reports whether `/bin/sh -c command` exits 0. Its output goes to
// /dev/null: a pipe would keep Wait waiting for any daemon it leaves behind.
func tryExec(ctx context.Context, command, dir string, env []string, start func(*exec.Cmd) error) bool {
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := start(cmd); err != nil {
		return false
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		return err == nil
	case <-ctx.Done():
		// The shell leads its own session, so its pid is its group's.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		return false
	}
}

// notifySocket receives the sd_notify messages of one instance, as
// systemd's NOTIFY_SOCKET does: datagrams of newline-separated KEY=VALUE
// lines. Only READY=1 matters to mhrun; other lines are ignored.
type notifySocket struct {
	path  string
	conn  *net.UnixConn
	ready chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	err   error
}

// newNotifySocket listens on a new unixgram socket notify-<random>.sock in
// dir, mode 0600.
func newNotifySocket(dir string) (*notifySocket, error) {
	var b [8]byte
	rand.Read(b[:])
	path := filepath.Join(dir, "notify-"+hex.EncodeToString(b[:])+".sock")
	if len(path) >= socket.MaxPath {
		return nil, fmt.Errorf("notify socket path %s is %d bytes, a unix socket path must be under %d: set XDG_RUNTIME_DIR to a shorter dir", path, len(path), socket.MaxPath)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listen on notify socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		conn.Close()
		os.Remove(path)
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	n := &notifySocket{path: path, conn: conn, ready: make(chan struct{})}
	n.wg.Add(1)
	go n.receive()
	return n, nil
}

// receive reads datagrams until the socket closes. It keeps reading after
// READY=1 so that a chatty sender (STATUS=, WATCHDOG=1) never blocks on a
// full socket buffer.
func (n *notifySocket) receive() {
	defer n.wg.Done()
	buf := make([]byte, 64<<10)
	ready := false
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient error (a truncated datagram, ENOBUFS): keep listening
		}
		if !ready && saysReady(buf[:k]) {
			ready = true
			close(n.ready)
		}
	}
}

// saysReady reports whether an sd_notify datagram has the line READY=1.
func saysReady(datagram []byte) bool {
	for line := range bytes.SplitSeq(datagram, []byte("\n")) {
		if string(line) == "READY=1" {
			return true
		}
	}
	return false
}

// Path is the socket's path, the value of NOTIFY_SOCKET.
func (n *notifySocket) Path() string { return n.path }

// Ready is closed once a datagram with the line READY=1 has arrived.
func (n *notifySocket) Ready() <-chan struct{} { return n.ready }

// Close stops receiving and removes the socket file; it may be called more
// than once.
func (n *notifySocket) Close() error {
	n.once.Do(func() {
		n.err = n.conn.Close()
		n.wg.Wait()
		if err := os.Remove(n.path); err != nil && !errors.Is(err, os.ErrNotExist) && n.err == nil {
			n.err = err
		}
	})
	return n.err
}

// maxMatchLine is how much of a line logMatcher matches against; the rest
// of a longer line is skipped.
const maxMatchLine = 64 << 10

// logMatcher reports the first line of an instance's output that matches
// ready=log:REGEX. It is fed the raw pty chunks: it joins them into lines,
// drops one trailing \r and the ANSI escape sequences, and matches each
// line, at most its first maxMatchLine bytes (matched as soon as they are
// in, so a long line without end still counts). A last line without a
// newline is not matched until its newline comes.
type logMatcher struct {
	re *regexp.Regexp
	*matchState

	// Touched by Write only, from one goroutine.
	line    []byte // the current line so far
	skip    bool   // the current line passed maxMatchLine and was matched
	scratch []byte // StripANSI's output
}

// matchState is what a matcher and its twin share: the first match of either.
type matchState struct {
	matched chan struct{}
	done    atomic.Bool // set with close(matched); read first by every Write
	once    sync.Once
}

// newLogMatcher returns a matcher for re.
func newLogMatcher(re *regexp.Regexp) *logMatcher {
	return &logMatcher{re: re, matchState: &matchState{matched: make(chan struct{})}}
}

// twin returns a matcher of a second stream of the same run (its stderr,
// with output=pipes), with lines of its own: the first match of either
// closes Matched.
func (m *logMatcher) twin() *logMatcher {
	return &logMatcher{re: m.re, matchState: m.matchState}
}

// Write takes the next chunk of output. It never keeps p. After the first
// match it returns at once.
func (m *logMatcher) Write(p []byte) {
	for len(p) > 0 && !m.done.Load() {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk, p = p[:i], p[i+1:]
		} else {
			p = nil
		}
		if !m.skip {
			room := maxMatchLine - len(m.line)
			if len(chunk) >= room && (i < 0 || len(chunk) > room) {
				// The line is too long: match its head now, skip the rest.
				m.line = append(m.line, chunk[:room]...)
				m.match(m.line)
				m.line, m.skip = m.line[:0], true
			} else {
				m.line = append(m.line, chunk...)
			}
		}
		if i < 0 {
			continue
		}
		if !m.skip {
			m.match(bytes.TrimSuffix(m.line, []byte("\r")))
		}
		m.line, m.skip = m.line[:0], false
	}
	if m.done.Load() {
		m.line, m.scratch = nil, nil
	}
}

// match closes matched if line, as the log files show it (escape
// sequences and control characters filtered, a progress bar's last state
// after its carriage returns), matches.
func (m *logMatcher) match(line []byte) {
	m.scratch = output.StripANSI(m.scratch[:0], line)
	line = m.scratch
	if m.re.Match(line) && !m.done.Load() {
		m.once.Do(func() {
			m.done.Store(true)
			close(m.matched)
		})
	}
}

// Matched is closed at the first matching line.
func (m *logMatcher) Matched() <-chan struct{} { return m.matched }
