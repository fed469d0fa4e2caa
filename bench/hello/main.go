// Command hello is the cluster benchmark's web server: it answers every
// HTTP request on 127.0.0.1:$PORT with "hello from PID\n" (so a load
// loop can tell which instance answered), but /events, a Server-Sent
// Events stream of an event every 100 ms; on SIGTERM or SIGINT it shuts
// down gracefully: it stops listening, ends its event streams, closes
// idle keep-alive connections and lets requests in flight finish, for at
// most 5 s.
//
// With LISTEN_FDS=1 (mhrun's socket=, or systemd) it serves the socket
// it inherits as fd 3 instead, and shuts down as a server on a shared
// socket must: the other instances take the new connections, so it stops
// accepting, answers every connection it accepted (http.Server.Shutdown
// alone would close one whose request it has not read yet, unanswered),
// answers each keep-alive connection's next request with Connection:
// close (for up to 1 s; closing an idle one at once, as Shutdown and
// SetKeepAlivesEnabled(false) do, races with the client's next request),
// then shuts down.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

func run() int {
	port := os.Getenv("PORT")
	if _, err := strconv.Atoi(port); err != nil {
		fmt.Fprintf(os.Stderr, "hello: PORT=%q is not a port number\n", port)
		return 2
	}
	body := []byte(fmt.Sprintf("hello from %d\n", os.Getpid()))
	ending, end := context.WithCancel(context.Background())
	var closing atomic.Bool // shutting down: every answer closes its connection
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if closing.Load() {
				w.Header().Set("Connection", "close")
			}
			if r.URL.Path == "/events" {
				events(ending, w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	srv.RegisterOnShutdown(end) // Shutdown waits for handlers, and streams never end by themselves
	shared := os.Getenv("LISTEN_FDS") == "1"
	var conns *connCount
	var ln net.Listener
	var err error
	if shared {
		if pid := os.Getenv("LISTEN_PID"); pid != strconv.Itoa(os.Getpid()) {
			fmt.Fprintf(os.Stderr, "hello: LISTEN_PID=%s is not my pid %d\n", pid, os.Getpid())
			return 2
		}
		f := os.NewFile(3, "listen")
		ln, err = net.FileListener(f)
		f.Close()
		conns = countConns(srv)
	} else {
		ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hello: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		fmt.Fprintf(os.Stderr, "hello: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if shared {
		end()
		closing.Store(true)
		ln.Close()
		<-served // every connection accepted is counted by then
		conns.wait(sctx, time.Second)
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "hello: shutdown: %v\n", err)
		return 1
	}
	return 0
}

// events streams "data: PID N" every 100 ms until the client goes or the
// server ends.
func events(ending context.Context, w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		fmt.Fprintf(w, "data: %d %d\n\n", os.Getpid(), n)
		w.(http.Flusher).Flush()
		select {
		case <-tick.C:
		case <-ending.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

// connCount counts a server's open connections, and those new or active.
type connCount struct {
	mu         sync.Mutex
	open, busy int
	state      map[net.Conn]http.ConnState
	changed    chan struct{} // closed and replaced at each change
}

func countConns(srv *http.Server) *connCount {
	c := &connCount{state: map[net.Conn]http.ConnState{}, changed: make(chan struct{})}
	srv.ConnState = func(conn net.Conn, st http.ConnState) {
		c.mu.Lock()
		defer c.mu.Unlock()
		busy := func(s http.ConnState) bool { return s == http.StateNew || s == http.StateActive }
		old, had := c.state[conn]
		if had && busy(old) {
			c.busy--
		}
		if !had {
			c.open++
		}
		switch st {
		case http.StateClosed, http.StateHijacked:
			c.open--
			delete(c.state, conn)
		default:
			c.state[conn] = st
			if busy(st) {
				c.busy++
			}
		}
		close(c.changed)
		c.changed = make(chan struct{})
	}
	return c
}

// wait waits until no connection is new or active, and until every
// connection has closed or idle has passed (each keep-alive connection's
// next request is answered with Connection: close); or until ctx ends.
func (c *connCount) wait(ctx context.Context, idle time.Duration) {
	deadline := time.NewTimer(idle)
	defer deadline.Stop()
	passed := false
	for {
		c.mu.Lock()
		done := c.busy == 0 && (c.open == 0 || passed)
		ch := c.changed
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			passed = true
		case <-ctx.Done():
			return
		}
	}
}
