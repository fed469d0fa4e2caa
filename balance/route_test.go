package balance

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// --- sticky by instance ---

// fromAddr dials the balancer from a loopback source address of its own
// (127.0.1.i), so that a test has many client addresses.
func fromAddr(t testing.TB, i int) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i))}, Timeout: 5 * time.Second}
	tr := &http.Transport{DisableKeepAlives: true, DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// mapClients asks b once from each of n client addresses and returns
// which backend answered each.
func mapClients(t *testing.T, b *Balancer, n int) map[int]string {
	t.Helper()
	m := map[int]string{}
	for i := 1; i <= n; i++ {
		got, err := get(fromAddr(t, i), b)
		if err != nil {
			t.Fatalf("client 127.0.1.%d: %v", i, err)
		}
		m[i] = got
	}
	return m
}

// A sticky client keeps its instance across restarts of any instance: the
// hash is on the instance (web.2), not on the run (web.2#7). Issue 14,
// item 2: after a restart of web.1, clients of web.2 moved.
func TestStickyKeepsInstanceAcrossRestarts(t *testing.T) {
	b := start(t, true)
	web := map[string]*httpBackend{}
	for i, name := range []string{"web.1", "web.2", "web.3"} {
		web[name] = newHTTPBackend(t, name, nil)
		b.Add(fmt.Sprintf("%s#%d", name, i+1), name, web[name].addr())
	}
	const clients = 100
	before := mapClients(t, b, clients)
	count := map[string]int{}
	for _, v := range before {
		count[v]++
	}
	for name := range web {
		if count[name] < 15 {
			t.Fatalf("%s got %d of %d clients: %v", name, count[name], clients, count)
		}
	}

	// web.2 restarts: out of the pool, then its next run joins.
	b.Remove("web.2#2")
	during := mapClients(t, b, clients)
	for i, was := range before {
		if was != "web.2" && during[i] != was {
			t.Errorf("client %d of %s moved to %s while web.2 restarted", i, was, during[i])
		}
		if during[i] == "web.2" {
			t.Errorf("client %d still on web.2 while it was out of the pool", i)
		}
	}
	b.Add("web.2#4", "web.2", web["web.2"].addr())
	after := mapClients(t, b, clients)
	for i, was := range before {
		if after[i] != was {
			t.Errorf("client %d was on %s, after web.2's restart on %s", i, was, after[i])
		}
	}

	// A reload: web.2's replacement joins beside it under the same key and
	// takes its clients over at once; nobody else moves.
	rep := newHTTPBackend(t, "web.2 replacement", nil)
	b.Add("web.2#5", "web.2", rep.addr())
	reloading := mapClients(t, b, clients)
	b.Remove("web.2#4")
	reloaded := mapClients(t, b, clients)
	for i, was := range before {
		want := was
		if was == "web.2" {
			want = "web.2 replacement"
		}
		if reloading[i] != want || reloaded[i] != want {
			t.Errorf("client %d was on %s; during the reload on %s, after it on %s; want %s", i, was, reloading[i], reloaded[i], want)
		}
	}
}

// --- settle ---

func TestSettle(t *testing.T) {
	b := start(t, false)
	b.Add("A", "a", rawBackend(t, echo))
	ctx := context.Background()

	// no connection: at once
	t0 := time.Now()
	if n := b.Settle(ctx, "A", time.Second); n != 0 || time.Since(t0) > 100*time.Millisecond {
		t.Fatalf("Settle without connections = %d after %v", n, time.Since(t0))
	}

	// a connection just handed over: waits for it to be settle old
	b.Add("A", "a", rawBackend(t, echo))
	c := roundTrip(t, b)
	t0 = time.Now()
	if n := b.Settle(ctx, "A", 300*time.Millisecond); n != 1 {
		t.Fatalf("Settle with one connection open = %d", n)
	}
	if d := time.Since(t0); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("Settle with a fresh connection took %v, want about 300ms", d)
	}
	if b.Open("A") != 1 {
		t.Errorf("Open = %d, want 1", b.Open("A"))
	}

	// an old connection (a stream): at once, with it open
	b.Add("A", "a", rawBackend(t, echo))
	time.Sleep(50 * time.Millisecond)
	t0 = time.Now()
	if n := b.Settle(ctx, "A", 10*time.Millisecond); n != 1 || time.Since(t0) > 100*time.Millisecond {
		t.Errorf("Settle with an old connection = %d after %v", n, time.Since(t0))
	}

	// a fresh one that closes: as it closes
	c.Close()
	eventually(t, "the connection to close", func() bool { return b.Open("A") == 0 })
	b.Add("A", "a", rawBackend(t, echo))
	c = roundTrip(t, b)
	go func() { time.Sleep(50 * time.Millisecond); c.Close() }()
	t0 = time.Now()
	if n := b.Settle(ctx, "A", 5*time.Second); n != 0 || time.Since(t0) > 2*time.Second {
		t.Errorf("Settle with a closing connection = %d after %v", n, time.Since(t0))
	}
}

// --- routing by a header or a cookie ---

// keyedClient is one connection to the balancer that sends requests one
// after the other (keep-alive) with raw bytes.
type keyedClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialKeyed(t *testing.T, b *Balancer) *keyedClient {
	t.Helper()
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &keyedClient{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends a GET with the extra header lines and returns the body.
func (k *keyedClient) do(headers ...string) string {
	k.t.Helper()
	req := "GET / HTTP/1.1\r\nHost: x\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(k.c, req+"\r\n"); err != nil {
		k.t.Fatal(err)
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		k.t.Fatal(err)
	}
	return string(body)
}

func keyed(t *testing.T, m Mode, names ...string) (*Balancer, map[string]*httpBackend) {
	b := startMode(t, m)
	bs := map[string]*httpBackend{}
	for i, name := range names {
		bs[name] = newHTTPBackend(t, name, nil)
		b.Add(fmt.Sprintf("%s#%d", name, i+1), name, bs[name].addr())
	}
	return b, bs
}

// Behind a local proxy every connection is from 127.0.0.1 and carries
// requests of many clients: each request goes where its header says, on
// one client connection.
func TestHeaderRoutesEveryRequest(t *testing.T) {
	names := []string{"web.1", "web.2", "web.3"}
	b, _ := keyed(t, Mode{Sticky: true, Header: "X-Forwarded-For"}, names...)
	k := dialKeyed(t, b)
	seen := map[string]bool{}
	for i := range 60 {
		ip := fmt.Sprintf("203.0.113.%d", i%20)
		got := k.do("x-forwarded-for: " + ip) // any case
		if want := stickyPick(ip, names); got != want {
			t.Fatalf("request %d for %s answered by %s, want %s", i, ip, got, want)
		}
		seen[got] = true
	}
	if len(seen) != 3 {
		t.Errorf("answered by %v, want all three", seen)
	}
	// without the header: the client address
	if got, want := k.do(), stickyPick("127.0.0.1", names); got != want {
		t.Errorf("request without the header answered by %s, want %s (the address's)", got, want)
	}
	if s := b.Stats(); s["web.1#1"].Open+s["web.2#2"].Open+s["web.3#3"].Open != 1 {
		t.Errorf("one client connection holds %v", s)
	}
}

// A request without the cookie goes to the least busy instance; the
// cookie the instance sets is learnt, and the client's later requests go
// there, whatever the cookie's hash, across restarts of that instance.
func TestCookieLearntFromSetCookie(t *testing.T) {
	b := startMode(t, Mode{Sticky: true, Cookie: "sid"})
	names := []string{"web.1", "web.2", "web.3"}
	addr := map[string]string{}
	n := 0
	for _, name := range names {
		hb := newHTTPBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
			if _, err := r.Cookie("sid"); err != nil {
				n++
				http.SetCookie(w, &http.Cookie{Name: "sid", Value: fmt.Sprintf("s%d", n), Path: "/", HttpOnly: true})
			}
			io.WriteString(w, name)
		})
		addr[name] = hb.addr()
		b.Add(name+"#1", name, hb.addr())
	}
	type session struct{ cookie, home string }
	var sessions []session
	homes := map[string]int{}
	for range 30 {
		k := dialKeyed(t, b)
		io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var sid string
		for _, c := range resp.Cookies() {
			if c.Name == "sid" {
				sid = c.Value
			}
		}
		if sid == "" {
			t.Fatalf("no sid set: %v", resp.Header)
		}
		sessions = append(sessions, session{sid, string(body)})
		homes[string(body)]++
		k.c.Close()
	}
	if len(homes) != 3 {
		t.Errorf("new sessions went to %v, want all three", homes)
	}
	check := func(when string) {
		t.Helper()
		k := dialKeyed(t, b) // one connection for every session: a proxy's
		for _, s := range sessions {
			if got := k.do("Cookie: theme=dark; sid=" + s.cookie); got != s.home {
				t.Fatalf("%s: session %s answered by %s, want %s", when, s.cookie, got, s.home)
			}
		}
	}
	check("at first")
	b.Remove("web.2#1")
	b.Add("web.2#2", "web.2", addr["web.2"])
	check("after web.2 restarted")
}

// Bytes pass unchanged both ways, through keep-alive, pipelining, chunked
// bodies with extensions and trailers, bare LF line ends, interim
// responses, HEAD and bodiless statuses, and a backend switch in between.
func TestRoutedBytesUnchanged(t *testing.T) {
	type exchange struct {
		req, resp string
	}
	exchanges := []exchange{
		{"GET /a HTTP/1.1\r\nHost: x\r\nX-Key: k1\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"},
		{"POST /b HTTP/1.1\r\nhost: x\r\nx-key: k1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer-A: 1\r\n\r\n",
			"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\n"},
		{"PUT /c HTTP/1.1\nHost: x\nX-Key: k1\nContent-Length: 3\nExpect: 100-continue\n\nxyz",
			"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		{"HEAD /d HTTP/1.1\r\nHost: x\r\nX-Key: k1\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"},
		{"GET /e HTTP/1.1\r\nHost: x\r\nX-Key: k1\r\n\r\n",
			"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"},
		{"DELETE /f HTTP/1.1\r\nHost: x\r\nX-Key: k1\r\n\r\n",
			"HTTP/1.1 204 No Content\r\n\r\n"},
	}
	// Each backend reads the requests it gets, in order, and answers each
	// with the response of the same exchange; it records the bytes.
	type got struct {
		mu    sync.Mutex
		bytes bytes.Buffer
	}
	backend := func(rec *got) string {
		return rawBackend(t, func(c net.Conn) {
			br := bufio.NewReader(io.TeeReader(c, writerFunc(func(p []byte) {
				rec.mu.Lock()
				rec.bytes.Write(p)
				rec.mu.Unlock()
			})))
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				req.Body.Close()
				for _, e := range exchanges {
					if strings.Contains(e.req, req.URL.Path+" ") {
						io.WriteString(c, e.resp)
					}
				}
			}
		})
	}
	var recA, recB got
	b := startMode(t, Mode{Sticky: true, Header: "X-Key"})
	b.Add("A#1", "A", backend(&recA))
	b.Add("B#1", "B", backend(&recB))
	// two keys, one on each backend
	keys := map[string]string{}
	for i := 0; len(keys) < 2; i++ {
		k := fmt.Sprintf("k%d", i)
		if _, ok := keys[stickyPick(k, []string{"A", "B"})]; !ok {
			keys[stickyPick(k, []string{"A", "B"})] = k
		}
	}

	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var sentA, sentB, want strings.Builder
	// all of them pipelined: first to A, then to B, then A again
	var all strings.Builder
	for _, be := range []string{"A", "B", "A"} {
		for _, e := range exchanges {
			req := strings.ReplaceAll(e.req, "k1", keys[be])
			all.WriteString(req)
			if be == "A" {
				sentA.WriteString(req)
			} else {
				sentB.WriteString(req)
			}
			want.WriteString(e.resp)
		}
	}
	go io.WriteString(c, all.String())
	resp := make([]byte, want.Len())
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatalf("responses: %v; got %q", err, resp)
	}
	if string(resp) != want.String() {
		t.Errorf("responses changed:\n got %q\nwant %q", resp, want.String())
	}
	eventually(t, "every request to reach its backend", func() bool {
		recA.mu.Lock()
		defer recA.mu.Unlock()
		recB.mu.Lock()
		defer recB.mu.Unlock()
		return recA.bytes.Len() >= sentA.Len() && recB.bytes.Len() >= sentB.Len()
	})
	if recA.bytes.String() != sentA.String() {
		t.Errorf("A got\n%q\nwant\n%q", recA.bytes.String(), sentA.String())
	}
	if recB.bytes.String() != sentB.String() {
		t.Errorf("B got\n%q\nwant\n%q", recB.bytes.String(), sentB.String())
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// A switch to another backend waits for the answers of the current one:
// a slow answer from A comes before a quick one from B.
func TestRoutedSwitchKeepsOrder(t *testing.T) {
	b := startMode(t, Mode{Sticky: true, Header: "X-Key"})
	slow := newHTTPBackend(t, "A", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, "A")
	})
	quick := newHTTPBackend(t, "B", nil)
	b.Add("A#1", "A", slow.addr())
	b.Add("B#1", "B", quick.addr())
	var kA, kB string
	for i := 0; kA == "" || kB == ""; i++ {
		k := fmt.Sprint(i)
		if stickyPick(k, []string{"A", "B"}) == "A" {
			kA = k
		} else {
			kB = k
		}
	}
	k := dialKeyed(t, b)
	io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: x\r\nX-Key: "+kA+"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nX-Key: "+kB+"\r\n\r\n")
	for _, want := range []string{"A", "B"} {
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != want {
			t.Fatalf("got %q, want %q", body, want)
		}
	}
}

// What is not HTTP/1.x goes by the client address, unread: TLS's first
// bytes at once, a protocol whose server speaks first after HeadTimeout.
func TestRoutedFallsBackToAddress(t *testing.T) {
	b := startMode(t, Mode{Sticky: true, Header: "X-Forwarded-For"})
	b.HeadTimeout = 100 * time.Millisecond
	b.Add("E#1", "E", rawBackend(t, func(c net.Conn) {
		io.WriteString(c, "220 banner\n")
		echo(c)
	}))
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	t0 := time.Now()
	if l, err := br.ReadString('\n'); err != nil || l != "220 banner\n" {
		t.Fatalf("banner %q, %v", l, err)
	}
	if d := time.Since(t0); d < 80*time.Millisecond || d > 2*time.Second {
		t.Errorf("banner after %v, want after HeadTimeout (100ms)", d)
	}

	// TLS: a ClientHello's first bytes, passed on at once
	c2, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'}
	c2.Write(hello)
	got := make([]byte, len("220 banner\n")+len(hello))
	if _, err := io.ReadFull(c2, got); err != nil || !bytes.Equal(got[len("220 banner\n"):], hello) {
		t.Fatalf("echo %q, %v", got, err)
	}
}

// A backend that closes an idle keep-alive connection (its idle timeout,
// its shutdown) does not end the client's: the next request goes on.
func TestRoutedBackendIdleClose(t *testing.T) {
	b := startMode(t, Mode{Sticky: true, Header: "X-Key"})
	var mu sync.Mutex
	conns := 0
	b.Add("A#1", "A", rawBackend(t, func(c net.Conn) {
		mu.Lock()
		conns++
		mu.Unlock()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA")
		time.Sleep(20 * time.Millisecond)
		// and close, idle, as a keep-alive timeout does
	}))
	k := dialKeyed(t, b)
	for i := range 5 {
		if got := k.do("X-Key: 1"); got != "A" {
			t.Fatalf("request %d: %q", i, got)
		}
		time.Sleep(60 * time.Millisecond)
	}
	if conns != 5 {
		t.Errorf("%d backend connections for 5 requests, each closed idle", conns)
	}
	eventually(t, "idle connections released", func() bool { return b.Open("A#1") == 1 || b.Open("A#1") == 0 })
}

// A backend out of the pool loses a keyed client's connection at its next
// request, not at the client's end: a drain of keep-alive clients is
// quick.
func TestRoutedLeavesRemovedBackend(t *testing.T) {
	names := []string{"web.1", "web.2"}
	b, _ := keyed(t, Mode{Sticky: true, Header: "X-Key"}, names...)
	var key string
	for i := 0; key == ""; i++ {
		if stickyPick(fmt.Sprint(i), names) == "web.1" {
			key = fmt.Sprint(i)
		}
	}
	k := dialKeyed(t, b)
	if got := k.do("X-Key: " + key); got != "web.1" {
		t.Fatalf("got %s", got)
	}
	if b.Open("web.1#1") != 1 {
		t.Fatalf("web.1 open = %d", b.Open("web.1#1"))
	}
	b.Remove("web.1#1")
	if got := k.do("X-Key: " + key); got != "web.2" {
		t.Fatalf("after web.1 left: %s", got)
	}
	eventually(t, "web.1 released", func() bool { return b.Open("web.1#1") == 0 })
}

// Big bodies both ways, chunked or not, an HTTP/1.0 exchange that ends
// with the connection, and many clients over few kept-alive connections
// while instances restart: no request fails, and each key's requests go
// to its instance whenever that instance is in the pool.
func TestRoutedUnderLoad(t *testing.T) {
	names := []string{"web.1", "web.2", "web.3"}
	b := startMode(t, Mode{Sticky: true, Header: "X-Key"})
	addrs := map[string]string{}
	for _, name := range names {
		hb := newHTTPBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			if r.URL.Path == "/big" {
				w.Write(bytes.Repeat([]byte("x"), 3<<20))
			}
			fmt.Fprintf(w, "%s %d", name, n)
		})
		addrs[name] = hb.addr()
		b.Add(name+"#0", name, hb.addr())
	}

	// HTTP/1.0, no keep-alive: the answer ends with the connection
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.0\r\nX-Key: a\r\n\r\n")
	all, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.HasSuffix(all, []byte(stickyPick("a", names)+" 0")) {
		t.Fatalf("HTTP/1.0: %q, %v", all, err)
	}

	tr := &http.Transport{MaxConnsPerHost: 2, MaxIdleConnsPerHost: 2}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var restarting sync.Mutex // guards out and gen
	out, gen := "", 0         // the instance out of the pool; pool changes so far
	state := func() (string, int) {
		restarting.Lock()
		defer restarting.Unlock()
		return out, gen
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				key := fmt.Sprintf("client-%d-%d", w, i%7)
				var body io.Reader = strings.NewReader(strings.Repeat("y", 1000*i))
				path := "/"
				if i%20 == 19 {
					path = "/big"
				}
				if i%3 == 0 {
					body = io.MultiReader(body) // no length: chunked
				}
				req, _ := http.NewRequest("POST", "http://"+b.Addr().String()+path, body)
				req.Header.Set("X-Key", key)
				gone, g0 := state()
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					errs <- err
					return
				}
				fields := strings.Fields(string(got[max(0, len(got)-40):]))
				if len(fields) < 2 {
					errs <- fmt.Errorf("answer %q", got[max(0, len(got)-40):])
					return
				}
				who, n := fields[len(fields)-2], fields[len(fields)-1]
				who = who[strings.LastIndexByte(who, 'x')+1:]
				if n != fmt.Sprint(1000*i) {
					errs <- fmt.Errorf("%s: backend read %s bytes, want %d", key, n, 1000*i)
					return
				}
				if _, g1 := state(); gone == "" && g0 == g1 && who != stickyPick(key, names) {
					errs <- fmt.Errorf("%s answered by %s, want %s", key, who, stickyPick(key, names))
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	restarted := make(chan int)
	go func() {
		ids := map[string]string{}
		for _, name := range names {
			ids[name] = name + "#0"
		}
		i := 0
		defer func() { restarted <- i }()
		for i = 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			name := names[i%3]
			restarting.Lock()
			out, gen = name, gen+1
			b.Remove(ids[name])
			restarting.Unlock()
			time.Sleep(10 * time.Millisecond)
			restarting.Lock()
			ids[name] = fmt.Sprintf("%s#%d", name, i)
			b.Add(ids[name], name, addrs[name])
			out, gen = "", gen+1
			restarting.Unlock()
		}
	}()
	wg.Wait()
	close(stop)
	if n := <-restarted; n < 5 {
		t.Errorf("only %d restarts during the load", n)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tr.CloseIdleConnections()
	eventually(t, "the three runs in the pool, no connection open", func() bool {
		st := b.Stats()
		for _, s := range st {
			if s.Open != 0 {
				return false
			}
		}
		return len(st) == 3
	})
}
