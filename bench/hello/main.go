// Command hello is the cluster benchmark's web server: it answers every
// HTTP request on 127.0.0.1:$PORT with "hello from PID\n" (so a load
// loop can tell which instance answered), but /events, a Server-Sent
// Events stream of an event every 100 ms; on SIGTERM or SIGINT it shuts
// down gracefully: it stops listening, ends its event streams, closes
// idle keep-alive connections and lets requests in flight finish, for at
// most 5 s.
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
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
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
