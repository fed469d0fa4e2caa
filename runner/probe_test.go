package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"mhrun/policy"
	"mhrun/proctree"
)

// A helper for the notify tests, beside the ones in alloc_test.go:
//
//	notify  send "STATUS=starting\nREADY=1" to $NOTIFY_SOCKET and exit
func init() {
	if os.Getenv("MHRUN_TEST_HELPER") != "notify" {
		return
	}
	addr := &net.UnixAddr{Name: os.Getenv("NOTIFY_SOCKET"), Net: "unixgram"}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err == nil {
		_, err = c.Write([]byte("STATUS=starting\nREADY=1"))
		c.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// freePort returns a port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// probeAsync runs probeReady in a goroutine; its result arrives on the channel.
func probeAsync(ctx context.Context, clk clock, r policy.Ready, port int, dir string, env []string, start func(*exec.Cmd) error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- probeReady(ctx, clk, r, port, dir, env, start) }()
	return done
}

// triesFail steps clk through the waits a probe takes after each failed
// try, 50ms, 100ms, 200ms… (probeBackoff), for n tries: a wait is armed
// only once its try has failed, so each step follows a try's end.
func triesFail(t *testing.T, clk *fakeClock, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		d := probeBackoff.delay(i, 0)
		clk.step(t, d, d)
	}
}

// stillProbing fails if the probe has returned.
func stillProbing(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("probeReady returned %v before the instance was ready", err)
	default:
	}
}

// waitErr waits up to d for the probe's result.
func waitErr(t *testing.T, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("probeReady did not return within %s", d)
		return nil
	}
}

func TestProbeTCPWaitsForListener(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    func(port int) policy.Ready
		env  func(port int) int // the instance's $PORT
	}{
		{"tcp:PORT", func(p int) policy.Ready { return policy.Ready{Kind: policy.ReadyTCP, Port: p} }, func(int) int { return 1 }},
		{"tcp", func(int) policy.Ready { return policy.Ready{Kind: policy.ReadyTCP} }, func(p int) int { return p }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			clk := newFakeClock()
			ctx, cancel := withTimeout(t.Context(), clk, 10*time.Second)
			defer cancel()
			done := probeAsync(ctx, clk, tc.r(port), tc.env(port), "", nil, nil)
			triesFail(t, clk, 2)
			clk.waitTimer(t, 200*time.Millisecond, 200*time.Millisecond) // the third try refused
			stillProbing(t, done)
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			clk.advance(200 * time.Millisecond)
			if err := waitErr(t, done, 5*time.Second); err != nil {
				t.Fatalf("probeReady = %v, want nil", err)
			}
		})
	}
}

func TestProbeTCPTimesOut(t *testing.T) {
	clk := newFakeClock()
	ctx, cancel := withTimeout(t.Context(), clk, 300*time.Millisecond)
	defer cancel()
	r := policy.Ready{Kind: policy.ReadyTCP}
	done := probeAsync(ctx, clk, r, freePort(t), "", nil, nil)
	triesFail(t, clk, 2)                                         // tries at 0 and 50ms
	clk.waitTimer(t, 200*time.Millisecond, 200*time.Millisecond) // and at 150ms
	clk.advance(150 * time.Millisecond)                          // 300ms: the timeout, before the next try
	err := waitErr(t, done, 5*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probeReady = %v, want %v", err, context.DeadlineExceeded)
	}
}

func TestProbeNoPort(t *testing.T) {
	for _, r := range []policy.Ready{{Kind: policy.ReadyTCP}, {Kind: policy.ReadyHTTP, Path: "/"}} {
		err := probeReady(t.Context(), realClock{}, r, 0, "", nil, nil)
		if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no $PORT") {
			t.Errorf("%s without a port: probeReady = %v, want a no-$PORT error", r, err)
		}
	}
}

// httpServer serves h on 127.0.0.1 and counts requests and open connections.
type httpServer struct {
	*httptest.Server
	requests atomic.Int32
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

func newHTTPServer(t *testing.T, h func(n int32, w http.ResponseWriter, r *http.Request)) *httpServer {
	s := &httpServer{conns: map[net.Conn]bool{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(s.requests.Add(1), w, r)
	}))
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if st == http.StateClosed || st == http.StateHijacked {
			delete(s.conns, c)
		} else {
			s.conns[c] = true
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *httpServer) port() int { return s.Listener.Addr().(*net.TCPAddr).Port }

// waitIdle waits until the probe left no connection open.
func (s *httpServer) waitIdle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after the probe", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProbeHTTP(t *testing.T) {
	const path = "/health%2Fz?probe=1"
	for _, code := range []int{200, 204, 302} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var followed atomic.Bool
			s := newHTTPServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
				switch {
				case r.RequestURI == "/elsewhere":
					followed.Store(true)
				case r.RequestURI != path:
					t.Errorf("request for %q, want %q", r.RequestURI, path)
					w.WriteHeader(404)
				case n <= 3:
					w.WriteHeader(503)
					fmt.Fprintln(w, "warming up")
				case code == 302:
					http.Redirect(w, r, "/elsewhere", code)
				default:
					w.WriteHeader(code)
				}
			})
			clk := newFakeClock()
			ctx, cancel := withTimeout(t.Context(), clk, 10*time.Second)
			defer cancel()
			r := policy.Ready{Kind: policy.ReadyHTTP, Path: path}
			done := probeAsync(ctx, clk, r, s.port(), "", nil, nil)
			triesFail(t, clk, 3) // the 503s
			if err := waitErr(t, done, 5*time.Second); err != nil {
				t.Fatalf("probeReady = %v, want nil", err)
			}
			if n := s.requests.Load(); n != 4 {
				t.Errorf("%d requests, want 4 (three 503s, then %d)", n, code)
			}
			if followed.Load() {
				t.Error("the probe followed the redirect")
			}
			s.waitIdle(t)
		})
	}
}

func TestProbeHTTPTimesOut(t *testing.T) {
	s := newHTTPServer(t, func(_ int32, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(500)
	})
	clk := newFakeClock()
	ctx, cancel := withTimeout(t.Context(), clk, 400*time.Millisecond)
	defer cancel()
	r := policy.Ready{Kind: policy.ReadyHTTP, Path: "/"}
	done := probeAsync(ctx, clk, r, s.port(), "", nil, nil)
	triesFail(t, clk, 2)                                         // at 0 and 50ms
	clk.waitTimer(t, 200*time.Millisecond, 200*time.Millisecond) // at 150ms
	clk.advance(250 * time.Millisecond)                          // 400ms, before the next try
	err := waitErr(t, done, 5*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probeReady = %v, want %v", err, context.DeadlineExceeded)
	}
	if n := s.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	s.waitIdle(t)
}

// TestProbeHTTPHangingServer: a server that accepts and never answers
// costs one try its per-try timeout, not the whole ready-timeout.
func TestProbeHTTPHangingServer(t *testing.T) {
	release := make(chan struct{})
	hung := make(chan struct{})
	s := newHTTPServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			close(hung)
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(200)
	})
	defer close(release)
	clk := newFakeClock()
	ctx, cancel := withTimeout(t.Context(), clk, 10*time.Second)
	defer cancel()
	r := policy.Ready{Kind: policy.ReadyHTTP, Path: "/"}
	done := probeAsync(ctx, clk, r, s.port(), "", nil, nil)
	select {
	case <-hung:
	case <-time.After(5 * time.Second):
		t.Fatal("no request reached the server")
	}
	// the first try ends at its own bound, the next comes 50ms later
	clk.step(t, probeTryTimeout, probeTryTimeout)
	triesFail(t, clk, 1)
	if err := waitErr(t, done, 5*time.Second); err != nil {
		t.Fatalf("probeReady = %v, want nil", err)
	}
	if d := clk.Now().Sub(fakeStart); d != probeTryTimeout+50*time.Millisecond {
		t.Errorf("ready after %s, want the first try's bound and one wait, %s", d, probeTryTimeout+50*time.Millisecond)
	}
}

// startRecorder is a start for probeReady that records each try's command.
type startRecorder struct {
	mu      sync.Mutex
	cmds    []*exec.Cmd
	started chan int // the pid of each try
}

func newStartRecorder() *startRecorder { return &startRecorder{started: make(chan int, 100)} }

func (s *startRecorder) start(c *exec.Cmd) error {
	if err := c.Start(); err != nil {
		return err
	}
	s.mu.Lock()
	s.cmds = append(s.cmds, c)
	s.mu.Unlock()
	s.started <- c.Process.Pid
	return nil
}

func (s *startRecorder) next(t *testing.T) int {
	t.Helper()
	select {
	case pid := <-s.started:
		return pid
	case <-time.After(5 * time.Second):
		t.Fatal("no try started within 5s")
		return 0
	}
}

func TestProbeExec(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "FLAG=ready.flag"}
	rec := newStartRecorder()
	clk := newFakeClock()
	ctx, cancel := withTimeout(t.Context(), clk, 10*time.Second)
	defer cancel()
	r := policy.Ready{Kind: policy.ReadyExec, Command: `echo try >> tries.log; test -f "$FLAG"`}
	done := probeAsync(ctx, clk, r, 0, dir, env, rec.start)
	triesFail(t, clk, 1)
	clk.waitTimer(t, 100*time.Millisecond, 100*time.Millisecond) // the second try failed too
	stillProbing(t, done)
	if err := os.WriteFile(filepath.Join(dir, "ready.flag"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	clk.advance(100 * time.Millisecond)
	if err := waitErr(t, done, 5*time.Second); err != nil {
		t.Fatalf("probeReady = %v, want nil", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	log, err := os.ReadFile(filepath.Join(dir, "tries.log"))
	if err != nil {
		t.Fatal(err)
	}
	if tries := strings.Count(string(log), "try\n"); len(rec.cmds) != tries || tries != 3 {
		t.Errorf("start called %d times for %d tries, want one call a try and 3 tries", len(rec.cmds), tries)
	}
	for i, c := range rec.cmds {
		if c.ProcessState == nil {
			t.Errorf("try %d was not waited for", i+1)
		}
		if c.SysProcAttr == nil || !c.SysProcAttr.Setsid || c.SysProcAttr.Setpgid {
			t.Errorf("try %d: SysProcAttr %+v, want Setsid and not Setpgid", i+1, c.SysProcAttr)
		}
		if c.Dir != dir {
			t.Errorf("try %d ran in %q, want %q", i+1, c.Dir, dir)
		}
	}
}

func TestProbeExecKilledAtDeadline(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "sleep.pid")
	rec := newStartRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The sleep runs in the background, so that only killing the group
	// reaches it.
	r := policy.Ready{Kind: policy.ReadyExec, Command: "sleep 100 & echo $! > sleep.pid; wait"}
	done := probeAsync(ctx, realClock{}, r, 0, dir, []string{"PATH=" + os.Getenv("PATH")}, rec.start)
	shPid := rec.next(t)

	var sleepPid int
	deadline := time.Now().Add(5 * time.Second)
	for sleepPid == 0 {
		b, _ := os.ReadFile(pidFile)
		if s := strings.TrimSpace(string(b)); strings.HasSuffix(string(b), "\n") {
			sleepPid, _ = strconv.Atoi(s)
		}
		if time.Now().After(deadline) {
			t.Fatal("the probe did not write the sleep's pid within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}

	cancel()
	if err := waitErr(t, done, 2*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("probeReady = %v, want %v", err, context.Canceled)
	}
	if err := syscall.Kill(shPid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the shell (pid %d) is still there: kill 0 = %v", shPid, err)
	}
	// The orphaned sleep dies at once from SIGKILL but may linger as a
	// zombie until its new parent reaps it.
	deadline = time.Now().Add(2 * time.Second)
	for !gone(sleepPid) {
		if time.Now().After(deadline) {
			t.Fatalf("the probe's sleep (pid %d) still runs after the probe ended", sleepPid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.cmds) != 1 {
		t.Errorf("start called %d times, want 1", len(rec.cmds))
	}
}

// gone reports whether pid has exited (or is a zombie).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	return proctree.HasProc() && isZombieOrGone(pid)
}

// TestProbeBackoff: against a closed port the tries start at 0, 50, 150,
// 350 and 750ms, so a 600ms window holds 4 of them.
func TestProbeBackoff(t *testing.T) {
	clk := newFakeClock()
	try, cleanup, err := readyProbe(clk, policy.Ready{Kind: policy.ReadyTCP}, freePort(t), "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	var n atomic.Int32
	ctx, cancel := withTimeout(t.Context(), clk, 600*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- pollReady(ctx, clk, func(ctx context.Context) bool { n.Add(1); return try(ctx) }) }()
	triesFail(t, clk, 3)
	clk.waitTimer(t, 400*time.Millisecond, 400*time.Millisecond) // the fourth, at 350ms
	clk.advance(250 * time.Millisecond)
	if err := waitErr(t, done, 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pollReady = %v, want %v", err, context.DeadlineExceeded)
	}
	if n := n.Load(); n != 4 {
		t.Errorf("%d tries in 600ms, want 4", n)
	}
}

// TestProbeSchedule checks the exact schedule in fake time.
func TestProbeSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		ctx, cancel := context.WithTimeout(t.Context(), 4600*time.Millisecond)
		defer cancel()
		err := pollReady(ctx, realClock{}, func(context.Context) bool {
			at = append(at, time.Since(start))
			return false
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("pollReady = %v, want %v", err, context.DeadlineExceeded)
		}
		ms := time.Millisecond
		want := []time.Duration{0, 50 * ms, 150 * ms, 350 * ms, 750 * ms, 1550 * ms, 2550 * ms, 3550 * ms, 4550 * ms}
		if fmt.Sprint(at) != fmt.Sprint(want) {
			t.Errorf("tries at %v, want %v", at, want)
		}
	})
}

func TestProbeReadyAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := pollReady(t.Context(), realClock{}, func(context.Context) bool { return true }); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("a probe ready at once took %s", d)
		}
	})
}

// shortTempDir is a temp dir with a path short enough for a socket.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mhrun")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestNotifySocketReady(t *testing.T) {
	n, err := newNotifySocket(shortTempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if fi, err := os.Stat(n.Path()); err != nil {
		t.Fatal(err)
	} else if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if !strings.HasPrefix(filepath.Base(n.Path()), "notify-") || !strings.HasSuffix(n.Path(), ".sock") {
		t.Errorf("socket path %q, want notify-<random>.sock", n.Path())
	}

	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "MHRUN_TEST_HELPER=notify", "NOTIFY_SOCKET="+n.Path())
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		t.Fatalf("notify helper: %v", err)
	}
	select {
	case <-n.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("Ready not closed within 5s of READY=1")
	}
}

// The datagrams without a READY=1 line leave the socket not ready: the
// receiver closes Ready exactly when saysReady holds for a datagram, so
// they are checked there, without waiting on the socket for nothing to
// happen; the socket then still sees a READY=1 after them.
func TestNotifySocketNotReady(t *testing.T) {
	notReady := []string{"STATUS=starting", "MAINPID=1\nREADY=0\n", "XREADY=1\nREADY=10", "READY=1 \n"}
	for _, msg := range notReady {
		if saysReady([]byte(msg)) {
			t.Errorf("%q says READY=1", msg)
		}
	}
	for _, msg := range []string{"READY=1", "STATUS=up\nREADY=1\nMAINPID=1\n", "READY=1\n"} {
		if !saysReady([]byte(msg)) {
			t.Errorf("%q does not say READY=1", msg)
		}
	}
	n, err := newNotifySocket(shortTempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.Path(), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, msg := range notReady {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	// The same socket still sees a READY=1 after them, among other lines.
	if _, err := c.Write([]byte("STATUS=up\nREADY=1\nMAINPID=1\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("Ready not closed within 5s of READY=1")
	}
	// More messages after READY=1 are read and ignored.
	for range 3 {
		if _, err := c.Write([]byte("WATCHDOG=1")); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNotifySocketClose(t *testing.T) {
	n, err := newNotifySocket(shortTempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s")
	}
	if _, err := os.Stat(n.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestNotifySocketPathTooLong(t *testing.T) {
	dir := filepath.Join(shortTempDir(t), strings.Repeat("d", 100))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := newNotifySocket(dir)
	if err == nil {
		n.Close()
		t.Fatal("newNotifySocket with a long dir succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "under 100") || strings.ContainsAny(err.Error(), "\n") {
		t.Errorf("error %q, want one line saying the path must be under 100 bytes", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %d files behind", len(ents))
	}
}

func TestLogMatcher(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	for _, tc := range []struct {
		name   string
		re     string
		chunks []string
		want   bool
	}{
		{"one line", `listening`, []string{"listening on :3000\n"}, true},
		{"split across chunks", `^listening on :3000$`, []string{"starting\nlist", "ening on ", ":30", "00\r", "\nmore"}, true},
		{"crlf and colours", `^listening on :3000$`, []string{"\x1b[32mlistening\x1b[0m on \x1b[1m:3000\x1b[0m\x1b]0;title\x07\r\n"}, true},
		{"escape split across chunks", `^ready$`, []string{"\x1b[3", "2mready\x1b", "[0m\r\n"}, true},
		{"carriage returns as the log files show them", `^ready$`, []string{"ready\r\r\n"}, true},
		{"a progress bar's last state", `^100% ready$`, []string{"50%\r100% ready\n"}, true},
		{"control characters dropped", `^ready$`, []string{"rea\x07dy\x9b\n"}, true},
		{"no match", `ready`, []string{"starting\r\n", "not yet\n", "still\r\n"}, false},
		{"match spans lines", `a.b`, []string{"a\n", "b\n"}, false},
		{"line without its newline", `^ready$`, []string{"ready"}, false},
		{"after a long line", `^ok$`, []string{long, "ready\n", "ok\r\n"}, true},
		{"long line head", `^x+$`, []string{long + "\n"}, true},
		{"past 64 KiB", `ready`, []string{long, "ready\n"}, false},
		{"head without newline", `^ready`, []string{"ready" + long}, true},
		{"exactly 64 KiB", `^x+y$`, []string{strings.Repeat("x", 64<<10-1) + "y", "\r\n"}, true},
		{"cr past 64 KiB", `^x+$`, []string{strings.Repeat("x", 64<<10), "\r\n"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newLogMatcher(regexp.MustCompile(tc.re))
			for _, c := range tc.chunks {
				m.Write([]byte(c))
			}
			got := false
			select {
			case <-m.Matched():
				got = true
			default:
			}
			if got != tc.want {
				t.Errorf("matched = %v, want %v", got, tc.want)
			}
			m.Write([]byte("more output after\nready\n")) // must not close twice
		})
	}
}

// TestLogMatcherConcurrent: Write on one goroutine, Matched on another (-race).
func TestLogMatcherConcurrent(t *testing.T) {
	m := newLogMatcher(regexp.MustCompile(`^ready$`))
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 1000 {
			m.Write([]byte("line " + strconv.Itoa(i) + "\r\n"))
		}
		m.Write([]byte("rea"))
		m.Write([]byte("dy\r\n"))
		for range 1000 {
			m.Write([]byte("after\n"))
		}
	})
	select {
	case <-m.Matched():
	case <-time.After(5 * time.Second):
		t.Fatal("not matched within 5s")
	}
	wg.Wait()
}

// TestLogMatcherKeepsNoChunk: the runner reuses its read buffer.
func TestLogMatcherKeepsNoChunk(t *testing.T) {
	m := newLogMatcher(regexp.MustCompile(`^ready$`))
	buf := []byte("rea")
	m.Write(buf)
	copy(buf, "xxx")
	m.Write([]byte("dy\n"))
	select {
	case <-m.Matched():
	default:
		t.Fatal("not matched: the matcher kept a reference to a chunk")
	}
}
