package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"mhrun/metrics"
	"mhrun/socket"
)

// MetricsFlag is start's and startup's --metrics.
type MetricsFlag struct {
	Metrics string `placeholder:"ADDR" help:"Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (loopback unless ADDR names another interface)."`
}

// serveMetrics listens on addr before the formation starts (a port in use
// fails the start, nothing run) and serves the runner's figures, asked
// over its control socket at sock on each scrape. stop shuts it down.
func serveMetrics(addr, sock string, stderr io.Writer) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: want HOST:PORT, e.g. 127.0.0.1:9464", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w (pick a free port, e.g. 127.0.0.1:9464)", addr, errors.Unwrap(err))
	}
	if !loopback(host) {
		fmt.Fprintf(stderr, "mhrun: --metrics %s listens beyond loopback: whoever reaches it reads the formation's names, states and figures\n", addr)
	}
	srv := &http.Server{Handler: metrics.Handler(func(ctx context.Context) ([]socket.Instance, error) { return runnerStatus(ctx, sock) }), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() { srv.Close() }, nil
}

// loopback reports whether host (of HOST:PORT) is a loopback interface.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
