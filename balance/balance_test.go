package balance

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// --- helpers ---

// modes are the balancer's modes a test of the proxy runs under: least
// connections, and the two that read requests.
var modes = []struct {
	name string
	m    Mode
}{
	{"least-connections", Mode{}},
	{"header", Mode{Sticky: true, Header: "X-Forwarded-For"}},
	{"cookie", Mode{Sticky: true, Cookie: "sid"}},
}

// forModes runs test under every mode.
func forModes(t *testing.T, test func(*testing.T, Mode)) {
	for _, md := range modes {
		t.Run(md.name, func(t *testing.T) { test(t, md.m) })
	}
}

// start listens on a free port, serves, and closes at the end of the test,
// checking that Serve returned nil.
func start(t testing.TB, sticky bool) *Balancer {
	t.Helper()
	return startMode(t, Mode{Sticky: sticky})
}

// startMode is start with a mode.
func startMode(t testing.TB, m Mode) *Balancer {
	t.Helper()
	b, err := Listen("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve() }()
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return b
}

// httpBackend answers every request with its id and counts them.
type httpBackend struct {
	id   string
	srv  *httptest.Server
	hits atomic.Int64
}

func newHTTPBackend(t testing.TB, id string, h http.HandlerFunc) *httpBackend {
	t.Helper()
	hb := &httpBackend{id: id}
	hb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hb.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, id)
	}))
	t.Cleanup(hb.srv.Close)
	return hb
}

func (hb *httpBackend) addr() string { return hb.srv.Listener.Addr().String() }

// pool starts n HTTP backends "b0".."b(n-1)" and adds them all to b.
func pool(t testing.TB, b *Balancer, n int) []*httpBackend {
	t.Helper()
	var bs []*httpBackend
	for i := range n {
		hb := newHTTPBackend(t, fmt.Sprintf("b%d", i), nil)
		b.Add(hb.id, hb.id, hb.addr())
		bs = append(bs, hb)
	}
	return bs
}

// noKeepAlive is a client that opens a new connection per request.
func noKeepAlive(t testing.TB) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func get(c *http.Client, b *Balancer) (string, error) {
	resp, err := c.Get("http://" + b.Addr().String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(body), nil
}

// eventually polls cond until it holds, failing after 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// rawBackend listens on a free port and runs serve for every connection.
// At the test's end it closes the connections still open, so that a
// failure cannot hang the cleanup.
func rawBackend(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func echo(c net.Conn) { io.Copy(c, c) }

// roundTrip dials the balancer and echoes one byte, so the connection to the
// backend is known to be up when it returns.
func roundTrip(t testing.TB, b *Balancer) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("echo through balancer: %v", err)
	}
	return c
}

// --- spreading ---

func TestSpreadsOverAllBackends(t *testing.T) {
	b := start(t, false)
	bs := pool(t, b, 4)
	c := noKeepAlive(t)

	var wg sync.WaitGroup
	var failures atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := get(c, b); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of 400 requests failed", n)
	}
	for _, hb := range bs {
		if n := hb.hits.Load(); n < 50 {
			t.Errorf("%s served %d of 400 requests, want at least 50", hb.id, n)
		}
	}
}

func TestLeastConnectionsAvoidsBusyBackend(t *testing.T) {
	b := start(t, false)
	a := newHTTPBackend(t, "A", nil)
	b.Add("A", "A", a.addr())

	// Two keep-alive connections held open on A, the only backend so far.
	for range 2 {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "A" {
			t.Fatalf("held connection answered by %q, want A", body)
		}
	}
	if s := b.Stats()["A"]; s.Open != 2 || s.Served != 2 {
		t.Fatalf("A stats = %+v, want 2 open, 2 served", s)
	}

	others := pool(t, b, 3)
	c := noKeepAlive(t)
	for range 30 {
		got, err := get(c, b)
		if err != nil {
			t.Fatal(err)
		}
		if got == "A" {
			t.Fatal("busy backend A got a new connection")
		}
	}
	for _, hb := range others {
		if hb.hits.Load() == 0 {
			t.Errorf("%s got no request", hb.id)
		}
	}
}

// --- leaving the pool ---

func TestRemovedBackendGetsNoRequests(t *testing.T) {
	b := start(t, false)
	bs := pool(t, b, 4)
	b.Remove("b0")
	if _, ok := b.Stats()["b0"]; ok {
		t.Error("removed backend without connections still in Stats")
	}
	c := noKeepAlive(t)
	for range 100 {
		if _, err := get(c, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := bs[0].hits.Load(); n != 0 {
		t.Fatalf("removed backend served %d requests", n)
	}
}

func TestDeadBackendInPoolIsRetried(t *testing.T) {
	b := start(t, false)
	bs := pool(t, b, 4)
	bs[0].srv.Listener.Close() // killed, but the runner has not removed it yet

	c := noKeepAlive(t)
	failures := 0
	for range 200 {
		if _, err := get(c, b); err != nil {
			failures++
		}
	}
	if failures != 0 {
		t.Fatalf("%d of 200 requests failed", failures)
	}
	var served int64
	for id, s := range b.Stats() {
		served += s.Served
		if id == "b0" && s.Served != 0 {
			t.Errorf("dead backend counted %d served", s.Served)
		}
	}
	if served != 200 {
		t.Errorf("served in total = %d, want 200", served)
	}
}

func TestAllBackendsDeadClosesClient(t *testing.T) {
	b := start(t, false)
	for _, hb := range pool(t, b, 2) {
		hb.srv.Listener.Close()
	}
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read = %d, %v; want EOF", n, err)
	}
}

func TestEmptyPoolWaitsForBackend(t *testing.T) {
	b := start(t, false)
	done := make(chan error, 1)
	go func() {
		got, err := get(noKeepAlive(t), b)
		if err == nil && got != "late" {
			err = fmt.Errorf("answered by %q, want late", got)
		}
		done <- err
	}()
	eventually(t, "the client to be accepted", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.conns) == 1
	})
	late := newHTTPBackend(t, "late", nil)
	b.Add("late", "late", late.addr())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestEmptyPoolGivesUp(t *testing.T) {
	b, err := Listen("127.0.0.1:0", Mode{})
	if err != nil {
		t.Fatal(err)
	}
	b.WaitForBackend = 50 * time.Millisecond
	go b.Serve()
	defer b.Close()

	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v, want EOF after WaitForBackend", err)
	}
}

// --- sticky ---

func TestStickyKeepsBackend(t *testing.T) {
	b := start(t, true)
	bs := pool(t, b, 4)
	ids := []string{"b0", "b1", "b2", "b3"}
	c := noKeepAlive(t)

	want := stickyPick("127.0.0.1", ids)
	expect := func(want string, n int) {
		t.Helper()
		for range n {
			got, err := get(c, b)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("sticky client answered by %s, want %s", got, want)
			}
		}
	}
	expect(want, 50)

	// Removing another backend does not move the client.
	other := ids[0]
	if other == want {
		other = ids[1]
	}
	b.Remove(other)
	expect(want, 20)

	// Its own backend dying (still in the pool) sends it to the next best one.
	rest := []string{}
	for _, id := range ids {
		if id != other && id != want {
			rest = append(rest, id)
		}
	}
	for _, hb := range bs {
		if hb.id == want {
			hb.srv.Listener.Close()
		}
	}
	next := stickyPick("127.0.0.1", rest)
	expect(next, 20)

	// Removing it for good keeps the client on that same next best one.
	b.Remove(want)
	expect(next, 20)
}

// stickyPick is the backend key a sticky client keyed on key goes to, among
// backends in the pool with keys in the order added: pickLocked's choice.
func stickyPick(key string, keys []string) string {
	b := &Balancer{}
	for _, k := range keys {
		b.pool = append(b.pool, &backend{id: k, key: k})
	}
	if be := b.pickLocked(want{hash: key}, nil); be != nil {
		return be.key
	}
	return ""
}

func TestStickyMovesOnlyRemovedKeys(t *testing.T) {
	ids := []string{"web.1#1", "web.2#2", "web.3#3", "web.4#4"}
	const keys = 20000
	before := map[string]string{}
	count := map[string]int{}
	for i := range keys {
		k := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		before[k] = stickyPick(k, ids)
		count[before[k]]++
	}
	for _, id := range ids {
		if share := float64(count[id]) / keys; share < 0.22 || share > 0.28 {
			t.Errorf("%s got %.1f%% of keys, want about 25%%", id, 100*share)
		}
	}

	removed := ids[1]
	rest := []string{ids[0], ids[2], ids[3]}
	moved := map[string]int{}
	for k, was := range before {
		now := stickyPick(k, rest)
		if was != removed && now != was {
			t.Fatalf("key %s moved from %s to %s though %s was removed", k, was, now, removed)
		}
		if was == removed {
			moved[now]++
		}
	}
	for _, id := range rest {
		if share := float64(moved[id]) / float64(count[removed]); share < 0.28 || share > 0.39 {
			t.Errorf("%s took %.1f%% of the moved keys, want about a third", id, 100*share)
		}
	}

	// Adding an id moves keys only onto it.
	more := append(append([]string{}, ids...), "web.5#9")
	for k, was := range before {
		if now := stickyPick(k, more); now != was && now != "web.5#9" {
			t.Fatalf("key %s moved from %s to %s when web.5#9 was added", k, was, now)
		}
	}
	if stickyPick("x", nil) != "" {
		t.Error(`a pick from an empty pool != ""`)
	}
}

// --- long-lived streams ---

func TestSSEStreamsInOrder(t *testing.T) { forModes(t, testSSEStreamsInOrder) }

func testSSEStreamsInOrder(t *testing.T, m Mode) {
	t.Parallel()
	const events = 40 // one per 50 ms: 2 s
	b := startMode(t, m)
	hb := newHTTPBackend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := range events {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-tick.C:
			case <-r.Context().Done():
				return
			}
		}
	})
	b.Add(hb.id, hb.id, hb.addr())

	resp, err := noKeepAlive(t).Get("http://" + b.Addr().String() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	next := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if want := fmt.Sprintf("data: %d", next); line != want {
			t.Fatalf("got %q, want %q", line, want)
		}
		next++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if next != events {
		t.Fatalf("got %d events, want %d", next, events)
	}
}

func TestUpgradeEchoBothWays(t *testing.T) { forModes(t, testUpgradeEchoBothWays) }

func testUpgradeEchoBothWays(t *testing.T, m Mode) {
	t.Parallel()
	b := startMode(t, m)
	hb := newHTTPBackend(t, "ws", func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(conn, rw.Reader) // rw.Reader holds whatever came with the request
	})
	b.Add(hb.id, hb.id, hb.addr())

	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %s, want 101", resp.Status)
	}

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		msg := fmt.Sprintf("message %d\n", i)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d messages: %v", i, err)
		}
		if got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
		<-tick.C
	}
}

func TestHalfCloseGetsFullResponse(t *testing.T) { forModes(t, testHalfCloseGetsFullResponse) }

func testHalfCloseGetsFullResponse(t *testing.T, m Mode) {
	b := startMode(t, m)
	// The backend answers only once it has read the whole request, to its
	// end: that end reaches it only if the balancer passes the half-close on.
	addr := rawBackend(t, func(c net.Conn) {
		req, err := io.ReadAll(c)
		if err != nil {
			return
		}
		c.Write(bytes.Repeat(req, 1<<20/len(req)+1))
	})
	b.Add("raw", "raw", addr)

	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "PING 0123456789\n"
	io.WriteString(c, req)
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat(req, 1<<20/len(req)+1); string(got) != want {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
}

// --- drain and counters ---

func TestDrain(t *testing.T) {
	b := start(t, false)
	b.Add("A", "A", rawBackend(t, echo))

	c1 := roundTrip(t, b)
	c2 := roundTrip(t, b)
	c3 := roundTrip(t, b)
	if s := b.Stats()["A"]; s != (Stats{Open: 3, Served: 3}) {
		t.Fatalf("stats = %+v, want 3 open, 3 served", s)
	}
	c1.Close()
	c2.Close()
	eventually(t, "two connections to close", func() bool { return b.Stats()["A"].Open == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.Drain(ctx, "A"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain with a connection open = %v, want deadline exceeded", err)
	}
	if s, ok := b.Stats()["A"]; !ok || s != (Stats{Open: 1, Served: 3}) {
		t.Fatalf("draining stats = %+v, %v; want 1 open, 3 served", s, ok)
	}

	drained := make(chan error, 1)
	go func() { drained <- b.Drain(context.Background(), "A") }()
	// The open connection still works while it drains.
	c3.Write([]byte("y"))
	if _, err := io.ReadFull(c3, make([]byte, 1)); err != nil {
		t.Fatalf("draining connection: %v", err)
	}
	c3.Close()
	select {
	case err := <-drained:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the last connection closed")
	}
	if _, ok := b.Stats()["A"]; ok {
		t.Error("drained backend still in Stats")
	}
	if err := b.Drain(context.Background(), "A"); err != nil {
		t.Errorf("Drain of a gone backend = %v", err)
	}
}

func TestStatsExact(t *testing.T) {
	b := start(t, false)
	b.Add("A", "A", rawBackend(t, echo))
	b.Add("B", "B", rawBackend(t, echo))

	const n = 50
	var wg sync.WaitGroup
	conns := make([]net.Conn, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i] = roundTrip(t, b)
		}()
	}
	wg.Wait()
	want := map[string]Stats{"A": {Open: n / 2, Served: n / 2}, "B": {Open: n / 2, Served: n / 2}}
	if got := b.Stats(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("with %d held connections: stats = %v, want %v", n, got, want)
	}
	for _, c := range conns {
		c.Close()
	}
	want = map[string]Stats{"A": {Open: 0, Served: n / 2}, "B": {Open: 0, Served: n / 2}}
	eventually(t, "every connection to close", func() bool { return fmt.Sprint(b.Stats()) == fmt.Sprint(want) })
}

// --- shutdown ---

func TestCloseLeaksNoGoroutines(t *testing.T) {
	echoAddr := rawBackend(t, echo)
	base := runtime.NumGoroutine()

	b, err := Listen("127.0.0.1:0", Mode{})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve() }()
	b.Add("A", "A", echoAddr)
	var held []net.Conn
	for range 10 {
		held = append(held, roundTrip(t, b))
	}
	// One more client waits on an empty pool.
	b.Remove("A")
	waiting, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	eventually(t, "the waiting client to be accepted", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.conns) == 2*10+1
	})

	t0 := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("held connection after Close: %v, want EOF", err)
		}
	}
	eventually(t, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base })
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// --- benchmark ---

// BenchmarkProxy compares HTTP GETs through the balancer with GETs straight
// to the backend, on reused (keep-alive) and on new connections.
func BenchmarkProxy(bm *testing.B) {
	b := start(bm, false)
	hb := newHTTPBackend(bm, "A", nil)
	b.Add("A", "A", hb.addr())
	routed := startMode(bm, Mode{Sticky: true, Header: "X-Forwarded-For"})
	routed.Add("A", "A", hb.addr())
	for _, keep := range []bool{true, false} {
		for _, via := range []struct{ name, addr string }{
			{"direct", hb.addr()},
			{"balancer", b.Addr().String()},
			{"balancer-header", routed.Addr().String()},
		} {
			name := via.name + "/keepalive"
			if !keep {
				name = via.name + "/newconn"
			}
			bm.Run(name, func(bm *testing.B) {
				tr := &http.Transport{DisableKeepAlives: !keep}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				url := "http://" + via.addr + "/"
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("X-Forwarded-For", "203.0.113.9")
				for bm.Loop() {
					resp, err := c.Do(req)
					if err != nil {
						bm.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}
