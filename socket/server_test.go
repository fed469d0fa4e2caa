package socket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestMain turns the test binary into a client of the socket named by
// MHRUN_TEST_SOCKET_CLIENT when run as a helper child (another uid).
func TestMain(m *testing.M) {
	if path := os.Getenv("MHRUN_TEST_SOCKET_CLIENT"); path != "" {
		os.Exit(helperClient(path))
	}
	if path := os.Getenv("MHRUN_TEST_SOCKET_SERVER"); path != "" {
		srv, err := Listen(path) // serves until killed
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		srv.Serve(context.Background(), &testHandler{})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperClient asks for status and prints the outcome on one line.
func helperClient(path string) int {
	c, err := Dial(path)
	if err != nil {
		fmt.Println("dial:", err)
		return 0
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := Call(c, Request{Cmd: "status"}); err != nil {
		var re *RemoteError
		fmt.Printf("call: remote=%v: %v\n", errors.As(err, &re), err)
		return 0
	}
	fmt.Println("ok")
	return 0
}

// shortDir is a temporary directory with a path short enough for a socket.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testHandler answers by command:
//
//	status: OK with the args echoed in Message and one full Instance
//	fail:   an error answer
//	attach: a stream; resize frames are answered with a notice, data is
//	        echoed, detach ends it with FrameEnd
//	burst:  a stream written from two goroutines at once, then FrameEnd
//	wait:   a stream that ends with FrameEnd when ctx does
//	stuck:  a stream whose handler ignores ctx and blocks reading
type testHandler struct {
	calls   atomic.Int32
	ended   atomic.Int32
	readErr chan error
}

var testInstance = Instance{
	Name: "web.2", Process: "web", N: 2, State: "running", PID: 4242,
	Started:  time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC),
	Restarts: 3, LastExit: "exited with code 1", Reason: "memory over 512M",
	CPU: 12.5, RSS: 1 << 30, Port: 5100,
	Next: time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC),
}

func (h *testHandler) Serve(ctx context.Context, req Request, c *Conn) {
	h.calls.Add(1)
	defer h.ended.Add(1)
	switch req.Cmd {
	case "status":
		c.Reply(Response{OK: true, Message: strings.Join(req.Args, " "), Status: []Instance{testInstance}})
	case "len":
		c.Reply(Response{OK: true, Message: fmt.Sprint(len(strings.Join(req.Args, "")))})
	case "fail":
		c.Reply(Response{Error: "no process named " + strings.Join(req.Args, " ")})
	case "attach":
		c.Reply(Response{OK: true, Stream: true, Message: fmt.Sprintf("attached at %dx%d", req.Cols, req.Rows)})
		for {
			typ, p, err := c.ReadFrame()
			if err != nil {
				if h.readErr != nil {
					h.readErr <- err
				}
				return
			}
			switch typ {
			case FrameResize:
				cols, rows, err := ParseResize(p)
				if err != nil {
					c.WriteFrame(FrameNotice, []byte(err.Error()))
					continue
				}
				c.WriteFrame(FrameNotice, fmt.Appendf(nil, "resized to %dx%d", cols, rows))
			case FrameData:
				c.WriteFrame(FrameData, p)
			case FrameDetach:
				c.WriteFrame(FrameEnd, []byte("detached"))
				return
			}
		}
	case "burst":
		c.Reply(Response{OK: true, Stream: true})
		var wg sync.WaitGroup
		for _, b := range []byte("ab") {
			wg.Go(func() {
				for range 200 {
					c.WriteFrame(FrameData, []byte(strings.Repeat(string(b), 1000)))
				}
			})
		}
		wg.Wait()
		c.WriteFrame(FrameEnd, []byte("done"))
	case "wait":
		c.Reply(Response{OK: true, Stream: true})
		<-ctx.Done()
		c.WriteFrame(FrameEnd, []byte("the formation stopped"))
	case "stuck":
		c.Reply(Response{OK: true, Stream: true})
		c.ReadFrame()
	default:
		c.Reply(Response{Error: "unknown command " + string(req.Cmd)})
	}
}

// serve starts a server on a fresh socket and closes it at cleanup.
func serve(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	path := filepath.Join(shortDir(t), "s.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.Background(), h) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, path
}

// dial connects with a deadline, so a hang fails the test instead.
func dial(t *testing.T, path string) *Conn {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRoundTrip(t *testing.T) {
	h := &testHandler{}
	_, path := serve(t, h)

	t.Run("status", func(t *testing.T) {
		resp, err := Call(dial(t, path), Request{Cmd: "status", Args: []string{"web", "web.2"}})
		if err != nil {
			t.Fatal(err)
		}
		want := Response{OK: true, Message: "web web.2", Status: []Instance{testInstance}}
		if !reflect.DeepEqual(resp, want) {
			t.Errorf("got %+v\nwant %+v", resp, want)
		}
	})

	t.Run("error answer", func(t *testing.T) {
		resp, err := Call(dial(t, path), Request{Cmd: "fail", Args: []string{"wbe"}})
		var re *RemoteError
		if !errors.As(err, &re) || re.Msg != "no process named wbe" || err.Error() != "no process named wbe" {
			t.Fatalf("err = %#v, want RemoteError %q", err, "no process named wbe")
		}
		if resp.OK || resp.Error != "no process named wbe" {
			t.Errorf("resp = %+v", resp)
		}
	})

	t.Run("stream both ways", func(t *testing.T) {
		c := dial(t, path)
		resp, err := Call(c, Request{Cmd: "attach", Args: []string{"web.1"}, Cols: 120, Rows: 40})
		if err != nil || !resp.Stream || resp.Message != "attached at 120x40" {
			t.Fatalf("Call = %+v, %v", resp, err)
		}
		expect := func(typ byte, payload string) {
			t.Helper()
			gt, gp, err := c.ReadFrame()
			if err != nil || gt != typ || string(gp) != payload {
				t.Fatalf("ReadFrame = %q %q %v, want %q %q", gt, gp, err, typ, payload)
			}
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(c.WriteFrame(FrameResize, ResizePayload(80, 24)))
		expect(FrameNotice, "resized to 80x24")
		must(c.WriteFrame(FrameResize, []byte{1}))
		expect(FrameNotice, "resize frame of 1 bytes: want 4 (cols, rows)")
		must(c.WriteFrame(FrameData, []byte("ls\r")))
		expect(FrameData, "ls\r")
		must(c.WriteFrame(FrameData, nil))
		expect(FrameData, "")
		must(c.WriteFrame(FrameDetach, nil))
		expect(FrameEnd, "detached")
		if _, _, err := c.ReadFrame(); err != io.EOF {
			t.Errorf("after FrameEnd: %v, want EOF", err)
		}
	})

	t.Run("frames from two writers", func(t *testing.T) {
		c := dial(t, path)
		if _, err := Call(c, Request{Cmd: "burst"}); err != nil {
			t.Fatal(err)
		}
		count := map[byte]int{}
		for {
			typ, p, err := c.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if typ == FrameEnd {
				break
			}
			if len(p) != 1000 || strings.Count(string(p), string(p[0])) != 1000 {
				t.Fatalf("frame mixed or cut: %d bytes starting %q", len(p), p[:min(len(p), 10)])
			}
			count[p[0]]++
		}
		if count['a'] != 200 || count['b'] != 200 {
			t.Errorf("frames: %v, want 200 of each", count)
		}
	})
}

func TestSocketIsMode0600(t *testing.T) {
	old := syscall.Umask(0) // the mode must not depend on the umask
	defer syscall.Umask(old)
	dir := shortDir(t)
	path := filepath.Join(dir, ".mhrun.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want a socket with 0600", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want only the socket", names)
	}
}

// staleSocket leaves a socket file nobody listens on, as a killed runner does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left: %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	staleSocket(t, path)
	s, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.Background(), &testHandler{}) }()
	if _, err := Call(dial(t, path), Request{Cmd: "status"}); err != nil {
		t.Errorf("Call: %v", err)
	}
	s.Close()
	if err := <-errc; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
}

func TestLiveSocketIsRefused(t *testing.T) {
	h := &testHandler{}
	_, path := serve(t, h)
	_, err := Listen(path)
	want := "another mhrun is listening on " + path
	if err == nil || err.Error() != want {
		t.Fatalf("second Listen: %v, want %q", err, want)
	}
	if _, err := Call(dial(t, path), Request{Cmd: "status"}); err != nil {
		t.Errorf("the first server after the probe: %v", err)
	}
	if n := h.calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1 (the probe is no request)", n)
	}
}

func TestNotASocketIsKept(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	os.WriteFile(path, []byte("data"), 0o644)
	_, err := Listen(path)
	if err == nil || !strings.Contains(err.Error(), "exists and is not a socket") {
		t.Fatalf("Listen over a file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "data" {
		t.Errorf("the file was touched: %q", b)
	}
}

func TestListenPathTooLong(t *testing.T) {
	path := "/tmp/" + strings.Repeat("x", 200) + "/s.sock"
	_, err := Listen(path)
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Listen: %v", err)
	}
}

func TestDialNoRunner(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, ".mhrun.sock")
	check := func(err error, dir string) {
		t.Helper()
		want := "no formation running in " + dir + " (start one with mhrun start)"
		if !errors.Is(err, ErrNoRunner) || err.Error() != want {
			t.Errorf("err = %v, want ErrNoRunner printing %q", err, want)
		}
	}
	_, err := Dial(path)
	check(err, dir)
	_, err = DialProject(path, "/home/me/app")
	check(err, "/home/me/app")

	staleSocket(t, path)
	_, err = Dial(path)
	check(err, dir)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err = %v, want the cause kept", err)
	}
}

// raw sends bytes as they are and reads the answer line.
func raw(t *testing.T, path string, send []byte) Response {
	t.Helper()
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	go nc.Write(send) // may fail once the server has answered and closed
	c := NewConn(nc)
	resp, err := c.ReadResponse()
	if err != nil {
		t.Fatalf("no answer to %.40q: %v", send, err)
	}
	if _, err := c.ReadResponse(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after the answer to %.40q: %v, want the server to close", send, err)
	}
	return resp
}

func TestBadRequestsAreAnswered(t *testing.T) {
	h := &testHandler{}
	_, path := serve(t, h)
	for _, tc := range []struct {
		name string
		send string
		want string
	}{
		{"not JSON", "status\n", "malformed request: not a JSON object"},
		{"not an object", "[1]\n", "malformed request: not a JSON object"},
		{"bad JSON", `{"v":1,cmd}` + "\n", "malformed request: invalid character 'c' looking for beginning of object key string"},
		{"null", "null\n", "malformed request: not a JSON object"},
		{"empty line", "\n", "malformed request: empty line"},
		{"cut JSON", `{"v":1,"cmd":` + "\n", "malformed request: unexpected end of JSON input"},
		{"unknown field", `{"v":1,"cmd":"status","color":1}` + "\n", `malformed request: json: unknown field "color"`},
		{"two objects", `{"v":1,"cmd":"status"} {"v":1}` + "\n", "malformed request: data after the JSON object"},
		{"wrong type", `{"v":"1","cmd":"status"}` + "\n", "malformed request: json: cannot unmarshal string into Go struct field Request.v of type int"},
		{"newer version", `{"v":2,"cmd":"status"}` + "\n", "request is protocol version 2 but this runner speaks version 1: use the same mhrun for the commands and the runner"},
		{"no version", `{"cmd":"status"}` + "\n", "request is protocol version 0 but this runner speaks version 1: use the same mhrun for the commands and the runner"},
		{"no cmd", `{"v":1}` + "\n", "malformed request: no cmd"},
		{"2 MiB line", strings.Repeat("x", 2<<20), "request longer than 1 MiB"},
		{"2 MiB JSON", `{"v":1,"cmd":"status","args":["` + strings.Repeat("x", 2<<20) + `"]}` + "\n", "request longer than 1 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := raw(t, path, []byte(tc.send))
			if resp.OK || resp.Error != tc.want {
				t.Errorf("answer %+v, want error %q", resp, tc.want)
			}
		})
	}
	if n := h.calls.Load(); n != 0 {
		t.Errorf("handler called %d times for bad requests", n)
	}
	// A request of exactly MaxMessage bytes is fine
	req := `{"v":1,"cmd":"len","args":["`
	n := MaxMessage - len(req) - len(`"]}`)
	req += strings.Repeat("x", n) + `"]}`
	if resp := raw(t, path, []byte(req+"\n")); !resp.OK || resp.Message != fmt.Sprint(n) {
		t.Errorf("a request of MaxMessage bytes: %+v, want %d", resp, n)
	}
	if n := h.calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
}

func TestBadFramesEndTheStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []byte
		want   string
	}{
		{"unknown type", []byte{'Z', 0, 0, 0, 0}, "read frame: unknown frame type 0x5a"},
		{"oversized", []byte{'d', 0, 0x10, 0, 1}, `read frame: 'd' payload of 1048577 bytes is longer than 1 MiB`},
		{"cut", []byte{'d', 0, 0, 0, 9, 'a'}, "read frame: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &testHandler{readErr: make(chan error, 1)}
			_, path := serve(t, h)
			c := dial(t, path)
			if _, err := Call(c, Request{Cmd: "attach"}); err != nil {
				t.Fatal(err)
			}
			nc := c.rw.(*net.UnixConn)
			nc.Write(tc.header)
			nc.CloseWrite()
			select {
			case err := <-h.readErr:
				if err == nil || err.Error() != tc.want {
					t.Errorf("handler's ReadFrame: %v, want %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("handler still reading")
			}
			if _, _, err := c.ReadFrame(); err != io.EOF {
				t.Errorf("client after the bad frame: %v, want EOF", err)
			}
		})
	}
}

func TestCloseEndsHandlers(t *testing.T) {
	h := &testHandler{}
	path := filepath.Join(shortDir(t), "s.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.Background(), h) }()
	var clients []*Conn
	for range 3 {
		c := dial(t, path)
		if _, err := Call(c, Request{Cmd: "wait"}); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	idle := dial(t, path) // connected, no request yet
	// Accept is in order: once a later call is answered, idle is accepted
	// (a connection still in the backlog when Close comes is reset).
	if _, err := Call(dial(t, path), Request{Cmd: "status"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > shutdownGrace {
		t.Errorf("Close took %v", d)
	}
	if n := h.ended.Load(); n != 4 {
		t.Errorf("%d handlers ended when Close returned, want 4", n)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	for _, c := range clients {
		if typ, p, err := c.ReadFrame(); typ != FrameEnd || string(p) != "the formation stopped" {
			t.Errorf("client got %q %q %v, want the end frame", typ, p, err)
		}
	}
	if resp, err := idle.ReadResponse(); err != nil || resp.Error != "the runner is shutting down" {
		t.Errorf("idle client got %+v %v", resp, err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := Dial(path); !errors.Is(err, ErrNoRunner) {
		t.Errorf("Dial after Close: %v", err)
	}
}

func TestCloseClosesAStuckHandlersConn(t *testing.T) {
	h := &testHandler{}
	path := filepath.Join(shortDir(t), "s.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(context.Background(), h)
	c := dial(t, path)
	if _, err := Call(c, Request{Cmd: "stuck"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace + 5*time.Second):
		t.Fatal("Close waits for a handler that ignores ctx")
	}
}

func TestServeEndsWithCtx(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, &testHandler{}) }()
	if _, err := Call(dial(t, path), Request{Cmd: "status"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Serve: %v", err)
	}
	if err := s.Serve(context.Background(), &testHandler{}); err == nil {
		t.Error("Serve after the end: nil error")
	}
	s.Close()
}

func TestCloseWithoutServe(t *testing.T) {
	path := filepath.Join(shortDir(t), "s.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	path := filepath.Join(shortDir(t), "s.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.Background(), &testHandler{}) }()
	for range 5 {
		c, err := Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := Call(c, Request{Cmd: "status"}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	Call(c, Request{Cmd: "wait"})
	s.Close()
	<-errc
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOtherUIDIsRefused connects as nobody from a child process: the 0600
// mode stops it at connect, and with the mode opened the uid check still
// refuses it before any request reaches the handler.
func TestOtherUIDIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as another uid")
	}
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary's own directory may be closed to nobody: run a copy.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &testHandler{}
	go s.Serve(context.Background(), h)
	defer s.Close()

	asNobody := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = []string{"MHRUN_TEST_SOCKET_CLIENT=" + path}
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("client as nobody: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}

	t.Run("by the file mode", func(t *testing.T) {
		got := asNobody()
		want := "dial: connect to control socket " + path + ": permission denied (the formation belongs to another user)"
		if got != want {
			t.Errorf("client said %q, want %q", got, want)
		}
	})
	t.Run("by the peer's uid", func(t *testing.T) {
		if err := os.Chmod(path, 0o666); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(path, 0o600)
		got := asNobody()
		want := "call: remote=true: connection from uid 65534 refused: only uid 0 may control this runner"
		if got != want {
			t.Errorf("client said %q, want %q", got, want)
		}
	})
	if n := h.calls.Load(); n != 0 {
		t.Errorf("handler called %d times for another uid", n)
	}
}

func TestResponseJSON(t *testing.T) {
	// zero times and empty fields stay off the wire
	b, err := json.Marshal(Response{OK: true, Status: []Instance{{Name: "web.1", Process: "web", N: 1, State: "stopped"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ok":true,"status":[{"name":"web.1","process":"web","n":1,"state":"stopped","restarts":0,"cpu":0,"rss":0,"port":0}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// A client's Peer is the runner's process (here a helper child that
// listens): its pid, not exited while it runs, exited once it is killed,
// as a zombie its parent has not reaped yet too.
func TestPeerIsTheRunner(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peer pids are read on Linux only")
	}
	path := filepath.Join(shortDir(t), "s.sock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MHRUN_TEST_SOCKET_SERVER="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var c *Conn
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if c, err = Dial(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the helper never listened: %v", err)
		}
	}
	defer c.Close()
	p := c.Peer()
	defer p.Close()
	if p == nil || p.PID != cmd.Process.Pid {
		t.Fatalf("Peer() = %+v, want pid %d", p, cmd.Process.Pid)
	}
	if p.Exited(10 * time.Millisecond) {
		t.Error("Exited while the runner runs")
	}
	cmd.Process.Kill() // not reaped until the deferred Wait: a zombie
	if !p.Exited(5 * time.Second) {
		t.Error("not Exited 5s after a SIGKILL")
	}
	var none *Peer
	if none.Exited(time.Millisecond) {
		t.Error("a nil Peer exited")
	}
}
