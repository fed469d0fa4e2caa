//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The shared-socket runs (issue 16, item 1) sit in the cluster and pm2
// benchmarks, beside the balancer and PM2, under the same wrk load in the
// same rounds: a second formation runs the same server with
// "web: scale=2 socket=PORT", so that mhrun listens on PORT and hands the
// socket to both instances as fd 3, and the kernel spreads connections
// over them (bench/hello and the node app serve fd 3 when LISTEN_FDS=1).
// Then 5 reloads in a row ("mhrun reload web" ×5) run under the load loop
// (keep-alive off) and under wrk (keep-alive on), counting failures.

// socketReloads is how many reloads in a row run under load.
const socketReloads = 5

// startSocketCluster starts mhrun with "web: COMMAND" scaled to 2 on a
// shared socket on a free port, with the policy's other keys pol (the
// node app's ready=log:listening, so that a reload waits for node to
// listen; hello listens within milliseconds and has none), and waits
// until both instances run and a request to the socket is answered. Its
// lb is the socket's port.
func (b *bench) startSocketCluster(tag, command, pol string) (*cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	f, err := b.startFormation(tag, 0, "web: "+command+"\n", fmt.Sprintf("web: scale=2 socket=%d %s\n", port, pol))
	if err != nil {
		return nil, err
	}
	c := &cluster{sleepers: f, lb: port}
	rows, err := b.waitWeb(c, "web.1 and web.2 running on the shared socket")
	if err != nil {
		c.kill()
		return nil, err
	}
	c.sleeps = pidsOf(rows)
	if err := b.waitServed(c.url(), c.exited); err != nil {
		c.kill()
		return nil, fmt.Errorf("%w; mhrun's stderr: %s", err, tail(c.errPath))
	}
	return c, nil
}

// reloads makes the command that runs "mhrun reload web" n times in a
// row, stopping at the first that fails.
func (b *bench) reloads(c *cluster, n int) func(context.Context) *exec.Cmd {
	return func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, "/bin/sh", "-c", `i=0; while [ $i -lt `+strconv.Itoa(n)+` ]; do "$0" reload web -d "$1" >/dev/null || exit 1; i=$((i+1)); done`, b.mhrun, c.dir)
	}
}

// socketReloadRows runs socketReloads reloads of c under the load loop and
// under wrk (when there is wrk), checks that new instances serve, and
// returns the rows.
func (b *bench) socketReloadRows(c *cluster, name string) ([]row, error) {
	before, err := b.waitWeb(c, "web.1 and web.2 running")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.log, "  shared socket: %d clients, %d× mhrun reload web after 1 s\n", loadWorkers, socketReloads)
	r, err := b.reloadRun(c.url(), b.reloads(c, socketReloads))
	if err != nil {
		return nil, err
	}
	after, err := b.waitWeb(c, "web.1 and web.2 running after the reloads")
	if err != nil {
		return nil, err
	}
	for _, a := range after {
		for _, p := range pidsOf(before) {
			if a.PID == p {
				return nil, fmt.Errorf("after %d reloads %s has pid %d, as before them", socketReloads, a.Name, a.PID)
			}
		}
	}
	c.sleeps = pidsOf(after)
	if err := b.controlRun(c.url(), &r); err != nil {
		return nil, err
	}
	rows := []row{
		{name, fmt.Sprintf("%d reloads of 2 instances in a row on the shared socket under load (%d clients, keep-alive off): requests failed (baseline: the same load, no reload)", socketReloads, loadWorkers),
			fmt.Sprintf("%d of %d", r.control.failed, r.control.done+r.control.failed), fmt.Sprintf("%d of %d", r.load.failed, r.load.done+r.load.failed), "", "0", met(r.load.failed == 0)},
		{"", "requests/s over the load", fmt.Sprintf("%.0f", float64(r.control.done)/r.control.took.Seconds()), fmt.Sprintf("%.0f", float64(r.load.done)/r.load.took.Seconds()), "", "", ""},
		{"", fmt.Sprintf("%d reload commands in a row, exec → exit", socketReloads), "", secs(r.took), "", "", ""},
	}
	// keep-alive on, a strict client: the same reloads under loadKA
	fmt.Fprintf(b.log, "  shared socket: %d keep-alive connections, %d× mhrun reload web after 1 s\n", kaConns, socketReloads)
	var took time.Duration
	busy := newBusy()
	ka, closes, err := b.loadKA("127.0.0.1:"+strconv.Itoa(c.lb), time.Second, time.Second, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
		defer cancel()
		cmd := b.reloads(c, socketReloads)(ctx)
		cmd.Env = b.env
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		took = time.Since(t0)
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	b.logf("  reloads took %.3f s; keep-alive load: %s; %d connections closed by an answer's Connection: close; machine busy %.0f%%", took.Seconds(), ka, closes, busy.percent())
	if err != nil {
		return rows, err
	}
	kaCtl, _, err := b.loadKA("127.0.0.1:"+strconv.Itoa(c.lb), ka.took, 0, nil)
	if err != nil {
		return rows, err
	}
	b.logf("  the same keep-alive load, no reload: %s", kaCtl)
	rows = append(rows,
		row{"", fmt.Sprintf("%d reloads in a row under keep-alive load (%d connections, a strict client: no retry; an answer's Connection: close opens a new connection): requests failed (baseline: the same load, no reload)", socketReloads, kaConns),
			fmt.Sprintf("%d of %d", kaCtl.failed, kaCtl.done+kaCtl.failed), fmt.Sprintf("%d of %d (%d connections handed over by Connection: close)", ka.failed, ka.done+ka.failed, closes), "", "0", met(ka.failed == 0)},
		row{"", "requests/s over the keep-alive load", fmt.Sprintf("%.0f", float64(kaCtl.done)/kaCtl.took.Seconds()), fmt.Sprintf("%.0f", float64(ka.done)/ka.took.Seconds()), "", "", ""},
	)
	if !b.haveWrk("shared socket") {
		return rows, nil
	}
	k, err := b.reloadUnderWrk(c.url(), b.reloads(c, socketReloads))
	if err != nil {
		return rows, err
	}
	if web, err := b.waitWeb(c, "web.1 and web.2 running after the reloads under wrk"); err == nil {
		c.sleeps = append(c.sleeps, pidsOf(web)...)
	}
	return append(rows,
		row{"", fmt.Sprintf("%d reloads in a row under wrk -t%d -c%d -d%s (keep-alive), reloads 2 s in: wrk socket errors / non-2xx, of requests (wrk's own count; the strict client above counts what failed)", socketReloads, wrkThreads, wrkConns, kaFor),
			"", fmt.Sprintf("%d / %d of %d", k.wrk.errors, k.wrk.non2xx, k.wrk.requests), "", "", ""},
		row{"", fmt.Sprintf("%d reload commands under keep-alive load, exec → exit", socketReloads), "", secs(k.took), "", "", ""},
	), nil
}

// socketThroughputRows compare the shared socket with direct (and, for
// the node run, PM2), from the same rounds.
func socketThroughputRows(name, spec string, direct, sock []wrkResult) []row {
	d, s := summarize(direct), summarize(sock)
	share := s.rps / d.rps
	return []row{
		{name, "requests/s on mhrun's shared socket (socket=; baseline: the two instances direct, two wrk at once, half the connections each), " + spec,
			reqs(d.rps), reqs(s.rps), fmt.Sprintf("%.0f%%", 100*share), "≥ 90%", met(share >= 0.9)},
		{"", "shared socket: p50 / p99 latency at 64 connections, median", durMs(d.p50) + " / " + durMs(d.p99), durMs(s.p50) + " / " + durMs(s.p99), fmt.Sprintf("p99 %+.2f ms", ms(s.p99-d.p99)), "", ""},
		{"", "shared socket: mhrun's own CPU per request (its CPU clock over the run ÷ requests), median", "", usec(s.cpuPerReq), "", "", ""},
		{"", "shared socket: wrk socket errors / non-2xx responses, all runs", fmt.Sprintf("%d / %d", d.errors, d.non2x), fmt.Sprintf("%d / %d", s.errors, s.non2x), "", "0", met(s.errors == 0 && s.non2x == 0)},
	}
}

// kaConns is how many keep-alive connections loadKA holds, as wrk's -c.
const kaConns = wrkConns

// loadKA is the load loop with keep-alive on: kaConns connections to
// addr, each sending GET / and reading the answer back to back, and
// opening a new connection only when an answer says Connection: close
// (counted in closes). Unlike wrk, which counts an EOF that follows a
// complete answer as a read error in some cases, and Go's http.Client,
// which retries a request that a reused connection's close cut, it counts
// exactly what a client sees: every request not answered 200 is a
// failure, nothing is retried. It runs as load does: pre, during(), post.
func (b *bench) loadKA(addr string, pre, post time.Duration, during func() error) (l loaded, closes int64, err error) {
	l = loaded{errs: map[string]int64{}, by: map[string]int64{}}
	var mu sync.Mutex
	l.took, err = b.drive(kaConns, pre, post, during, func(ctx context.Context) {
		var done, failed, closed int64
		errs := map[string]int64{}
		var c net.Conn
		var br *bufio.Reader
		fail := func(kind string) {
			if ctx.Err() == nil { // not cut short by the end of the load
				failed++
				errs[kind]++
			}
			if c != nil {
				c.Close()
				c = nil
			}
		}
		for ctx.Err() == nil {
			if c == nil {
				var err error
				if c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr); err != nil {
					c = nil
					fail("dial: " + errKind(err))
					continue
				}
				br = bufio.NewReader(c)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
				fail("write: " + errKind(err))
				continue
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				fail("read: " + errKind(err))
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
				fail("body: " + errKind(err))
				continue
			case resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "hello from "):
				fail(resp.Status)
				continue
			}
			done++
			if resp.Close {
				closed++
				c.Close()
				c = nil
			}
		}
		if c != nil {
			c.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		l.done += done
		l.failed += failed
		closes += closed
		for k, n := range errs {
			l.errs[k] += n
		}
	})
	return l, closes, err
}
