// Command demo is the tiny program behind the repo's demo formation: a web
// server, a chatty worker, a one-shot and a job, needing nothing but Go.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	var err error
	switch mode {
	case "web":
		err = web(ctx)
	case "worker":
		err = worker(ctx)
	case "once":
		fmt.Printf("migrations up to date; the web says %q (%s)\n", greeting(), greetingSource())
	case "report":
		fmt.Printf("nightly report at %s: all good\n", time.Now().Format(time.TimeOnly))
	default:
		err = fmt.Errorf("unknown mode %q: want web, worker, once or report", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// defaultGreeting is what the web says without GREETING: the demo needs
// no .env (.env.example shows how to set one).
const defaultGreeting = "hello"

// greeting is GREETING from the environment (.env, -e files, the shell),
// else defaultGreeting.
func greeting() string {
	if g := os.Getenv("GREETING"); g != "" {
		return g
	}
	return defaultGreeting
}

// greetingSource says where greeting() came from.
func greetingSource() string {
	if os.Getenv("GREETING") != "" {
		return "GREETING from the environment"
	}
	return "the default: copy .env.example to .env to change it"
}

// hello answers with the greeting and the instance that answered.
func hello(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s from %s (pid %d)\n", greeting(), os.Getenv("PS"), os.Getpid())
}

// web serves a page naming the instance that answered, on $PORT.
func web(ctx context.Context) error {
	addr := "127.0.0.1:" + os.Getenv("PORT")
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(hello)}
	go func() {
		<-ctx.Done()
		fmt.Println("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	fmt.Printf("listening on http://%s\n", addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// worker prints a coloured tick every two seconds until stopped.
func worker(ctx context.Context) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		fmt.Printf("\x1b[32mtick %d\x1b[0m: %s doing some work\n", n, os.Getenv("PS"))
		select {
		case <-ctx.Done():
			fmt.Println("worker stopping")
			return nil
		case <-t.C:
		}
	}
}
