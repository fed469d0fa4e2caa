package runner

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mhrun/balance"
	"mhrun/formation"
	"mhrun/output"
	"mhrun/socket"
)

// The "sse" helper is an HTTP server on 127.0.0.1:$PORT: "/" answers
// $PS, "/events" is a Server-Sent Events stream, an event every 50 ms.
// On SIGTERM it ends its streams and shuts down, as an app with a
// graceful shutdown does (Node's server.close(), Go's Shutdown); with
// MHRUN_TEST_HOLD set it ignores SIGTERM and holds its streams open.
func init() {
	if os.Getenv("MHRUN_TEST_HELPER") != "sse" {
		return
	}
	hold := os.Getenv("MHRUN_TEST_HOLD") != ""
	if hold {
		signal.Ignore(syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	stop := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, os.Getenv("PS")) })
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(w, "data: %s %d\n\n", os.Getenv("PS"), i)
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})
	srv := &http.Server{Handler: mux}
	fmt.Println("listening")
	if !hold {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		go func() {
			<-sig
			fmt.Println("got TERM: ending the streams")
			close(stop)
			srv.Shutdown(context.Background())
			os.Exit(0)
		}()
	}
	srv.Serve(ln)
	select {} // Shutdown's goroutine exits once the streams are done
}

// freePorts finds a base port whose first n ports, and the replacement
// ports 100·procs above them, are free, and a free balancer port.
func freePorts(t *testing.T, n, procs int) (base, lb int) {
	t.Helper()
	free := func(p int) bool {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	for range 200 {
		base = 20000 + rand.IntN(9000)
		lb = base + 50
		ok := free(lb)
		for i := range n {
			ok = ok && free(base+i) && free(base+i+100*procs)
		}
		if ok {
			return base, lb
		}
	}
	t.Fatal("no free ports")
	return 0, 0
}

// cluster is a formation with a control socket, run in the background.
type cluster struct {
	*running
	f    *formation.Formation
	sock string
	lb   int
}

// runCluster runs "web: CMD" with the policy line's keys and balance=LB
// on a free base port; the Procfile has one more process, so replacement
// ports are base+200 and up.
func runCluster(t *testing.T, cmd, pol string, scale int) *cluster {
	t.Helper()
	return runClusterOn(t, nil, cmd, pol, scale)
}

// runClusterOn is runCluster on the fake clock clk, or the real one if
// clk is nil. On a fake clock, give web a ready check that needs no
// clock (ready=log:), or its tcp probe waits for steps nobody takes.
func runClusterOn(t *testing.T, clk *fakeClock, cmd, pol string, scale int) *cluster {
	t.Helper()
	base, lb := freePorts(t, scale, 2)
	dir := t.TempDir()
	files := map[string]string{
		"Procfile":        "web: " + cmd + "\nidle: exec sleep 1000\n",
		"Procfile.policy": fmt.Sprintf("web: scale=%d balance=%d %s\n", scale, lb, pol),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := formation.Load(formation.Options{Dir: dir, BasePort: base, Environ: []string{"PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shortTempDir(t), "s")
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	o := Options{Stdout: r.out, Socket: sock, Control: true}
	sigs := make(chan os.Signal, 1)
	if clk != nil {
		o.clock, o.Signals = clk, sigs
	}
	go func() {
		code, _ := Run(ctx, f, o)
		r.done <- code
	}()
	t.Cleanup(func() {
		cancel()
		if clk != nil { // a second interrupt: no grace on a clock nobody moves
			sigs <- syscall.SIGINT
		}
		<-r.done
	})
	c := &cluster{running: r, f: f, sock: sock, lb: lb}
	c.waitRunning(t, scale)
	return c
}

// waitRunning waits until n web instances are running, and returns the
// status rows of web.
func (c *cluster) waitRunning(t *testing.T, n int) map[string]socket.Instance {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rows := map[string]socket.Instance{}
		running := 0
		var status []socket.Instance
		if conn, err := socket.Dial(c.sock); err == nil { // not yet at the start
			resp, err := socket.Call(conn, socket.Request{Cmd: socket.CmdStatus})
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			status = resp.Status
		}
		for _, row := range status {
			if row.Process == "web" {
				rows[row.Name] = row
				if row.State == string(StateRunning) {
					running++
				}
			}
		}
		if running == n && len(rows) == n {
			return rows
		}
		if time.Now().After(deadline) {
			t.Fatalf("web not %d running: %+v\n%s", n, rows, c.out.String())
		}
		time.Sleep(20 * time.Millisecond) // status has no event to wait on
	}
}

// stream opens an SSE stream through the balancer and reads its first
// event; done gets the error that ended the stream (nil for a clean end).
func (c *cluster) stream(t *testing.T, done chan<- error) string {
	t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(c.lb))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() {
		t.Fatalf("no first event: %v", sc.Err())
	}
	first := sc.Text()
	go func() {
		for sc.Scan() {
		}
		done <- sc.Err()
	}()
	return first
}

// A stop of a balanced instance with open streams: it leaves the pool, gets
// its stop signal at once, not after its grace, and its streams end as the
// app ends them. Issue 14, item 4: the signal waited for the grace.
func TestDrainSignalsOnceOutOfPool(t *testing.T) {
	c := runCluster(t, "MHRUN_TEST_HELPER=sse exec "+os.Args[0], "grace=4s", 1)
	ends := make(chan error, 3)
	for range 3 {
		c.stream(t, ends)
	}
	time.Sleep(300 * time.Millisecond) // the streams are older than the settle
	t0 := time.Now()
	call(t, c.sock, "stop", "web")
	waitFor(t, c.out, "web.1 stopped")
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("stop with 3 streams open took %v; the app ends them on SIGTERM", d)
	}
	for range 3 {
		select {
		case err := <-ends:
			if err != nil {
				t.Errorf("stream ended with %v, want its clean end", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a stream did not end")
		}
	}
	out := c.out.String()
	for _, want := range []string{"web.1 left the pool with 3 connections open: SIGTERM sent", "web.1  | got TERM: ending the streams"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "killing it") {
		t.Errorf("killed:\n%s", out)
	}
}

// An app that holds its streams past the grace is killed one grace after
// it left the pool, not two: the SIGKILL is armed for the grace counted
// from the stop request, however long the drain took to settle (here the
// clock moves 400ms while it settles, before or after its end).
func TestDrainGraceRunsOnce(t *testing.T) {
	clk := newFakeClock()
	c := runClusterOn(t, clk, "MHRUN_TEST_HELPER=sse MHRUN_TEST_HOLD=1 exec "+os.Args[0], "grace=1s ready=log:listening", 1)
	ends := make(chan error, 2)
	c.stream(t, ends)
	c.stream(t, ends)
	call(t, c.sock, "stop", "web") // answered once web.1 left the pool
	clk.advance(400 * time.Millisecond)
	waitFor(t, c.out, "web.1 left the pool with 2 connections open: SIGTERM sent")
	call(t, c.sock, "status") // the supervisor is past the drain's end: its SIGKILL is armed
	clk.step(t, 600*time.Millisecond, 600*time.Millisecond)
	waitFor(t, c.out, "web.1 still running after grace 1s: killing it")
	waitFor(t, c.out, "web.1 stopped")
}

// reportOpen counts a run's open connections as it is killed.
func TestReportOpen(t *testing.T) {
	b, err := balance.Listen("127.0.0.1:0", balance.Mode{})
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve()
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	b.Add("web.1#1", "web.1", ln.Addr().String())
	for range 3 {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	for b.Open("web.1#1") != 3 {
		time.Sleep(5 * time.Millisecond) // the balancer has no event for it
	}
	out := &syncBuffer{}
	o := output.New(out, output.Options{NameWidth: 5})
	p := &formation.Process{Name: "web"}
	r := &Runner{out: o, balancers: map[string]*balance.Balancer{"web": b}}
	r.reportOpen(&instance{proc: p, name: "web.1", run: &run{id: "web.1#1"}})
	r.reportOpen(&instance{proc: p, name: "web.2", run: &run{id: "web.2#2"}})
	o.Close()
	if got, want := out.String(), "mhrun | web.1: 3 connections still open, cut by the kill\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A reload under open streams takes about the time the app needs to end
// them, not a grace (or two) per instance; replacements run on the
// instances' replacement ports, and the next reload takes them back.
// Issue 14, items 4 and 8.
func TestReloadUnderStreams(t *testing.T) {
	c := runCluster(t, "MHRUN_TEST_HELPER=sse exec "+os.Args[0], "grace=5s", 2)
	base := c.f.BasePort
	ends := make(chan error, 4)
	for range 4 {
		c.stream(t, ends)
	}
	t0 := time.Now()
	resp := call(t, c.sock, "reload", "web")
	took := time.Since(t0)
	if resp.Error != "" || !strings.Contains(resp.Message, "web reloaded: web.1, web.2 replaced") {
		t.Fatalf("reload: %+v\n%s", resp, c.out.String())
	}
	t.Logf("reload of 2 instances with 4 streams open: %v", took)
	if took > 4*time.Second {
		t.Errorf("reload with streams open took %v, want about the time the app takes to end them", took)
	}
	for range 4 {
		select {
		case err := <-ends:
			if err != nil {
				t.Errorf("stream ended with %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a stream did not end")
		}
	}
	rows := c.waitRunning(t, 2)
	for n := 1; n <= 2; n++ {
		name := fmt.Sprintf("web.%d", n)
		if want := base + n - 1 + 200; rows[name].Port != want {
			t.Errorf("%s after a reload on port %d, want %d (base %d + 100 × 2 processes)", name, rows[name].Port, want, base)
		}
		if want := ReplacementPort(c.f, c.f.Process("web"), n); rows[name].Port != want {
			t.Errorf("%s on %d, ReplacementPort says %d", name, rows[name].Port, want)
		}
	}
	// a restart keeps the port it is on
	call(t, c.sock, "restart", "web.1")
	c.out.waitFor(t, "web.1 restarted", func(o string) bool { return strings.Count(o, "web.1  | listening") == 3 })
	if rows = c.waitRunning(t, 2); rows["web.1"].Port != base+200 {
		t.Errorf("web.1 after a restart on %d, want %d", rows["web.1"].Port, base+200)
	}
	// the next reload goes back to the foreman ports
	if resp := call(t, c.sock, "reload", "web"); resp.Error != "" {
		t.Fatalf("second reload: %+v", resp)
	}
	rows = c.waitRunning(t, 2)
	for n := 1; n <= 2; n++ {
		name := fmt.Sprintf("web.%d", n)
		if rows[name].Port != base+n-1 {
			t.Errorf("%s after a second reload on port %d, want %d", name, rows[name].Port, base+n-1)
		}
	}
}

// A replacement port taken by another program aborts the reload before
// anything starts: a ready check there would be answered by that program.
func TestReloadPortTaken(t *testing.T) {
	c := runCluster(t, "MHRUN_TEST_HELPER=sse exec "+os.Args[0], "grace=2s", 1)
	port := ReplacementPort(c.f, c.f.Process("web"), 1)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	before := c.waitRunning(t, 1)
	conn, err := socket.Dial(c.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = socket.Call(conn, socket.Request{Cmd: socket.CmdReload, Args: []string{"web"}})
	if want := fmt.Sprintf("reload of web aborted: web.1's replacement port %d is in use by another program", port); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("reload with its port taken: %v, want %q", err, want)
	}
	if after := c.waitRunning(t, 1); after["web.1"].PID != before["web.1"].PID {
		t.Errorf("web.1 replaced: %+v", after)
	}
}

func TestReplacementPort(t *testing.T) {
	f := &formation.Formation{BasePort: 5000, Processes: []*formation.Process{
		{Name: "web", Index: 0}, {Name: "worker", Index: 1}, {Name: "api", Index: 2},
	}}
	f.Processes[2].Policy.Port = 8080
	for _, c := range []struct {
		p, n, want int
	}{{0, 1, 5300}, {0, 2, 5301}, {1, 1, 5400}, {2, 1, 8380}, {2, 3, 8382}} {
		if got := ReplacementPort(f, f.Processes[c.p], c.n); got != c.want {
			t.Errorf("%s.%d: %d, want %d", f.Processes[c.p].Name, c.n, got, c.want)
		}
	}
	// a formation of some processes (start web) knows their places
	only := &formation.Formation{BasePort: 5000, Processes: []*formation.Process{{Name: "api", Index: 2}}}
	if got := ReplacementPort(only, only.Processes[0], 1); got != 5500 {
		t.Errorf("api.1 alone: %d, want 5500", got)
	}
	f.BasePort = 65300
	if got := ReplacementPort(f, f.Processes[0], 1); got != 0 {
		t.Errorf("past 65535: %d, want 0", got)
	}
}

func TestDescribeCluster(t *testing.T) {
	f := &formation.Formation{BasePort: 5000, Processes: []*formation.Process{
		{Name: "web", Index: 0, Scale: 2}, {Name: "tunnel", Index: 1, Scale: 1},
	}}
	web := f.Processes[0]
	if got := DescribeCluster(f, web, ""); got != nil {
		t.Errorf("unbalanced: %q", got)
	}
	web.Policy.Balance, web.Policy.Sticky, web.Policy.StickyKey = 4321, true, "header:CF-Connecting-IP"
	got := strings.Join(DescribeCluster(f, web, ""), "\n")
	for _, want := range []string{
		"web: mhrun listens on 127.0.0.1:4321 and spreads connections over the ready instances, sticky on the CF-Connecting-IP header, read from every request",
		"web: a reload's replacements run on 5200-5201, and the next reload back on 5000-5001",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}
