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
		fmt.Printf("%s: migrations up to date (GREETING=%q)\n", os.Getenv("PS"), os.Getenv("GREETING"))
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

// web serves a page naming the instance that answered, on $PORT.
func web(ctx context.Context) error {
	addr := "127.0.0.1:" + os.Getenv("PORT")
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s from %s (pid %d)\n", os.Getenv("GREETING"), os.Getenv("PS"), os.Getpid())
	})}
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
