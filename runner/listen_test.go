package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mhrun/formation"
	"mhrun/policy"
)

// The "fd3" helper serves HTTP on the socket it inherits as fd 3, as a
// socket-activated server does: it checks LISTEN_FDS=1, LISTEN_FDNAMES
// and that LISTEN_PID is its own pid (as sd_listen_fds does), and that
// $PORT is the socket's port; "/" answers "PS PID". On SIGTERM it shuts
// down gracefully: it stops accepting and lets requests in flight finish.
func init() {
	if os.Getenv("MHRUN_TEST_HELPER") != "fd3" {
		return
	}
	fail := func(format string, args ...any) {
		fmt.Printf("fd3: "+format+"\n", args...)
		os.Exit(1)
	}
	if v := os.Getenv("LISTEN_FDS"); v != "1" {
		fail("LISTEN_FDS=%q, want 1", v)
	}
	if v, want := os.Getenv("LISTEN_PID"), strconv.Itoa(os.Getpid()); v != want {
		fail("LISTEN_PID=%q, want my pid %s", v, want)
	}
	if v := os.Getenv("LISTEN_FDNAMES"); v != "web" {
		fail("LISTEN_FDNAMES=%q, want web", v)
	}
	f := os.NewFile(listenFD, "web")
	ln, err := net.FileListener(f)
	if err != nil {
		fail("%v", err)
	}
	f.Close()
	if port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port); os.Getenv("PORT") != port {
		fail("PORT=%q, the socket is on %s", os.Getenv("PORT"), port)
	}
	answer := os.Getenv("PS") + " " + strconv.Itoa(os.Getpid())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, answer) })}
	busy := trackBusy(srv)
	served := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() {
		<-sig
		// Shutdown closes a connection it accepted but has not read a
		// request from yet, unanswered: on a shared socket the other
		// instances take the new ones, so stop accepting, answer what
		// was accepted, then shut down (closing the idle ones).
		srv.SetKeepAlivesEnabled(false)
		ln.Close()
		<-served // each connection it accepted is counted by then
		busy.wait()
		srv.Shutdown(context.Background())
		os.Exit(0)
	}()
	fmt.Println("serving on fd 3")
	srv.Serve(ln)
	close(served)
	select {} // the signal's goroutine exits
}

// busyConns counts a server's connections that are new or active.
type busyConns struct {
	mu   sync.Mutex
	n    int
	zero *sync.Cond
}

func trackBusy(srv *http.Server) *busyConns {
	b := &busyConns{}
	b.zero = sync.NewCond(&b.mu)
	was := map[net.Conn]bool{} // busy
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		b.mu.Lock()
		defer b.mu.Unlock()
		now := st == http.StateNew || st == http.StateActive
		switch {
		case now && !was[c]:
			b.n++
		case !now && was[c]:
			b.n--
		}
		if now {
			was[c] = true
		} else {
			delete(was, c)
		}
		if b.n == 0 {
			b.zero.Broadcast()
		}
	}
	return b
}

// wait waits until no connection is new or active.
func (b *busyConns) wait() {
	b.mu.Lock()
	for b.n > 0 {
		b.zero.Wait()
	}
	b.mu.Unlock()
}

// runSocket runs "web: CMD" with socket=PORT on a free port and the
// policy line's keys, scaled to scale, and waits until it runs.
func runSocket(t *testing.T, cmd, pol string, scale int) *cluster {
	t.Helper()
	_, port := freePorts(t, 0, 2)
	dir := t.TempDir()
	files := map[string]string{
		"Procfile":        "web: " + cmd + "\nidle: exec sleep 1000\n",
		"Procfile.policy": fmt.Sprintf("web: scale=%d socket=%d %s\n", scale, port, pol),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := formation.Load(formation.Options{Dir: dir, BasePort: 5000, Environ: []string{"PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shortTempDir(t), "s")
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		code, _ := Run(ctx, f, Options{Stdout: r.out, Socket: sock, Control: true})
		r.done <- code
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	c := &cluster{running: r, f: f, sock: sock, lb: port}
	c.waitRunning(t, scale)
	return c
}

// get asks the socket for "/" on a new connection and returns the answer.
func (c *cluster) get() (string, error) {
	client := http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(c.lb) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = errors.New(resp.Status)
	}
	return string(b), err
}

// reqLoad is clients asking c in a loop, each on a new connection, until
// stop; it counts the answers by who answered, and the failures.
type reqLoad struct {
	mu       sync.Mutex
	by       map[string]int
	failed   []error
	served   atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
	answered chan struct{} // gets a value after each answer, if nobody waits it is dropped
}

func startLoad(c *cluster, clients int) *reqLoad {
	l := &reqLoad{by: map[string]int{}, stop: make(chan struct{}), answered: make(chan struct{})}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				a, err := c.get()
				l.mu.Lock()
				if err != nil {
					l.failed = append(l.failed, fmt.Errorf("%s: %w", phase.Load(), err))
				} else {
					l.by[a]++
				}
				l.mu.Unlock()
				l.served.Add(1)
				select {
				case l.answered <- struct{}{}:
				default:
				}
			}
		}()
	}
	return l
}

// waitFor waits, answer by answer, until cond holds over the answers so far.
func (l *reqLoad) waitFor(t *testing.T, what string, cond func(by map[string]int) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		ok := cond(l.by)
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-l.answered:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("%s: not after 20s; answers so far %v, failed %v", what, l.by, l.failed)
		}
	}
}

func (l *reqLoad) end(t *testing.T) map[string]int {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if len(l.failed) > 0 {
		t.Errorf("%d of %d requests failed: %v", len(l.failed), l.served.Load(), l.failed)
	}
	return l.by
}

// phase names what the test is doing, for the failures a load records.
var phase atomic.Value

// answeringPids are the pids that answered.
func answeringPids(by map[string]int) map[string]bool {
	pids := map[string]bool{}
	for a := range by {
		pids[a[strings.LastIndex(a, " ")+1:]] = true
	}
	return pids
}

// The kernel spreads connections over the instances that accept on the
// shared socket; a reload under continuous requests replaces them with
// none failed; scale up and down keeps the socket, and the new instances
// accept on it.
func TestSharedSocket(t *testing.T) {
	c := runSocket(t, "MHRUN_TEST_HELPER=fd3 exec "+os.Args[0], "grace=5s", 3)
	phase.Store("start")
	l := startLoad(c, 6)
	l.waitFor(t, "requests reaching several instances", func(by map[string]int) bool { return len(answeringPids(by)) >= 2 })
	before := c.waitRunning(t, 3)

	for i := range 2 {
		phase.Store(fmt.Sprint("reload", i))
		if resp := call(t, c.sock, "reload", "web"); resp.Error != "" || !strings.Contains(resp.Message, "web reloaded: web.1, web.2, web.3 replaced") {
			t.Fatalf("reload %d: %+v\n%s", i+1, resp, c.out.String())
		}
	}
	after := c.waitRunning(t, 3)
	for name, row := range after {
		if row.PID == before[name].PID {
			t.Errorf("%s has pid %d after two reloads, as before", name, row.PID)
		}
		if row.Port != c.lb {
			t.Errorf("%s on $PORT %d, want the socket's %d", name, row.Port, c.lb)
		}
	}
	newPid := func(by map[string]int) bool {
		for _, row := range after {
			if answeringPids(by)[strconv.Itoa(row.PID)] {
				return true
			}
		}
		return false
	}
	l.waitFor(t, "a replacement answering", newPid)

	phase.Store("scale1")
	if resp := call(t, c.sock, "scale", "web=1"); resp.Error != "" {
		t.Fatalf("scale web=1: %+v", resp)
	}
	c.waitRunning(t, 1)
	phase.Store("scale3")
	if resp := call(t, c.sock, "scale", "web=3"); resp.Error != "" {
		t.Fatalf("scale web=3: %+v", resp)
	}
	rows := c.waitRunning(t, 3)
	fresh := strconv.Itoa(rows["web.3"].PID)
	l.waitFor(t, "web.3, started by scale, answering", func(by map[string]int) bool { return answeringPids(by)[fresh] })
	by := l.end(t)
	t.Logf("%d requests over %d instances", l.served.Load(), len(answeringPids(by)))

	// with no instance at all, a connection waits in the socket's backlog
	// and is answered once one starts
	if resp := call(t, c.sock, "scale", "web=0"); resp.Error != "" {
		t.Fatalf("scale web=0: %+v", resp)
	}
	c.waitRunning(t, 0)
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.lb))
	if err != nil {
		t.Fatalf("a connection with no instance running: %v (mhrun holds the socket: it should wait)", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if resp := call(t, c.sock, "scale", "web=1"); resp.Error != "" {
		t.Fatalf("scale web=1: %+v", resp)
	}
	got, err := io.ReadAll(conn)
	if err != nil || !strings.Contains(string(got), "200 OK") || !strings.Contains(string(got), "web.1 ") {
		t.Errorf("the waiting connection got %q, %v; want web.1's answer", got, err)
	}
	if strings.Contains(c.out.String(), "fd3: ") {
		t.Errorf("a helper refused its environment:\n%s", c.out.String())
	}
}

// A Node server on the inherited socket: server.listen({fd: 3}).
func TestSharedSocketNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on $PATH")
	}
	app := filepath.Join(t.TempDir(), "app.js")
	const js = `const http = require('http');
if (process.env.LISTEN_PID !== String(process.pid)) { console.log('LISTEN_PID ' + process.env.LISTEN_PID + ' is not ' + process.pid); process.exit(1); }
const server = http.createServer((req, res) => res.end(process.env.PS + ' ' + process.pid));
server.listen({fd: 3}, () => console.log('serving on fd 3'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`
	if err := os.WriteFile(app, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	c := runSocket(t, "exec "+node+" "+app, "ready=log:serving", 2)
	l := startLoad(c, 4)
	l.waitFor(t, "requests reaching both node instances", func(by map[string]int) bool { return len(answeringPids(by)) >= 2 })
	if resp := call(t, c.sock, "reload", "web"); resp.Error != "" {
		t.Fatalf("reload: %+v\n%s", resp, c.out.String())
	}
	after := c.waitRunning(t, 2)
	l.waitFor(t, "a replacement answering", func(by map[string]int) bool {
		return answeringPids(by)[strconv.Itoa(after["web.1"].PID)] || answeringPids(by)[strconv.Itoa(after["web.2"].PID)]
	})
	l.end(t)
}

// The shell sets LISTEN_PID to its own pid, which is the program's when
// the command is exec'd; check says when it is not.
func TestSocketScript(t *testing.T) {
	for _, c := range []struct {
		cmd   string
		execd bool
	}{
		{"node app.js", true},
		{"exec node app.js", true},
		{"FOO=1 exec node app.js", true},
		{"FOO=1 node app.js", false},
		{"cd web && node app.js", false},
		{"cd web && exec node app.js", true},
		{"cd web; PORT=1 exec node app.js", true},
		{"exec node app.js &", false},
		{"(exec node app.js)", false},
		{"node app.js | tee log", false},
	} {
		if got := execd(c.cmd); got != c.execd {
			t.Errorf("execd(%q) = %v, want %v", c.cmd, got, c.execd)
		}
		script := SocketScript("web", c.cmd)
		out, err := exec.Command("/bin/sh", "-c", strings.Replace(script, c.cmd, `sh -c 'echo "$LISTEN_PID $$ $LISTEN_FDS $LISTEN_FDNAMES"'`, 1)).Output()
		if err != nil {
			t.Fatalf("%q: %v", script, err)
		}
		f := strings.Fields(string(out))
		if len(f) != 4 || f[2] != "1" || f[3] != "web" {
			t.Errorf("%q printed %q", script, out)
		}
	}
	p := &formation.Process{Name: "web", Command: "cd web && node app.js", Policy: policy.Policy{Socket: 8080}}
	lines := DescribeSocket(p, "")
	if len(lines) != 2 || !strings.Contains(lines[0], "mhrun listens on 127.0.0.1:8080") || !strings.Contains(lines[1], "LISTEN_PID is the shell's pid") {
		t.Errorf("DescribeSocket: %q", lines)
	}
	p.Command, p.Policy.SocketHost = "node app.js", "0.0.0.0"
	if lines := DescribeSocket(p, ""); len(lines) != 1 || !strings.Contains(lines[0], "0.0.0.0:8080") {
		t.Errorf("DescribeSocket: %q", lines)
	}
}

// A socket= port that another program holds: mhrun says so and starts
// nothing.
func TestSharedSocketPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: exec sleep 1000\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Procfile.policy"), []byte(fmt.Sprintf("web: socket=%d\n", port)), 0o644)
	f, err := formation.Load(formation.Options{Dir: dir, BasePort: 5000, Environ: []string{"PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	code, err := Run(context.Background(), f, Options{Stdout: out})
	want := "(free the port, or change socket= in the policy)"
	if code != 1 || err == nil || !strings.HasPrefix(err.Error(), "socket web: ") || !strings.Contains(err.Error(), "address already in use") || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Run = %d, %v; want 1 and socket web: ... address already in use %s", code, err, want)
	}
	if strings.Contains(out.String(), "web.1") {
		t.Errorf("web started:\n%s", out.String())
	}
}

// Starting an instance leaves the shared socket non-blocking: exec takes
// each extra file's descriptor through File.Fd, which makes a file Go
// polls blocking, and the flag is the socket's, shared with the instances
// already serving (an event loop's accept would then block). The file
// socketFile makes is not one Go polls, so exec leaves the flag alone;
// the listener's own File, as a control, does not.
func TestSharedSocketStaysNonBlocking(t *testing.T) {
	nonblocking := func(f *os.File) bool {
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var fl int
		rc.Control(func(fd uintptr) { fl, _ = unix.FcntlInt(fd, unix.F_GETFL, 0) })
		return fl&unix.O_NONBLOCK != 0
	}
	start := func(f *os.File) {
		cmd := exec.Command("true")
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
	}
	for _, ours := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tl := ln.(*net.TCPListener)
		var f *os.File
		if ours {
			f, err = socketFile(tl, "web")
		} else {
			f, err = tl.File()
		}
		tl.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !nonblocking(f) {
			t.Fatalf("ours=%v: the socket is blocking before any start", ours)
		}
		start(f)
		if got := nonblocking(f); got != ours {
			t.Errorf("ours=%v: non-blocking after a start: %v", ours, got)
		}
		f.Close()
	}
}
