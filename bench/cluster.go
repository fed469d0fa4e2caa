//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The cluster benchmark runs a balanced process under mhrun: Procfile
// "web: exec HELLO" (bench/hello, a Go HTTP server answering "hello from
// PID") and Procfile.policy "web: scale=2 balance=LB", so that mhrun
// listens on 127.0.0.1:LB and spreads connections over web.1 and web.2,
// each on its own $PORT (foreman's, from a base given with -p). Ports are
// chosen below the kernel's ephemeral range (32768 and up), so that no
// client connection holds one by chance.
//
//   - Throughput: wrk -t2 -c64 against the balancer, and, taking turns
//     with it, two wrk -t1 -c32 at once, one against each instance's own
//     port (the same threads, connections and duration in all), and the
//     proxy floor (bench/proxyfloor: a bare io.Copy proxy in front of the
//     same two instances), the three taking turns.
//   - Reload: a load loop (load.go: 8 goroutines, keep-alive off) through
//     the balancer while "mhrun reload web" replaces the two instances,
//     against the same loop for as long with no reload.
//   - Reload under streams: 32 Server-Sent Events streams (hello's
//     /events) held open through the balancer while "mhrun reload web"
//     runs; the app ends its streams when it gets SIGTERM, so the reload
//     takes about as long as that, not the grace.

const (
	wrkThreads = 2
	wrkConns   = 64
)

// cluster is a running mhrun formation with one balanced process, web.
type cluster struct {
	*sleepers
	lb   int // the balancer's port
	base int // -p
}

// url is the balancer's.
func (c *cluster) url() string { return "http://127.0.0.1:" + strconv.Itoa(c.lb) + "/" }

// freeBase picks ports below the ephemeral range: a base whose base and
// base+1 are free (web.1, web.2), and base+100 and base+101 (their
// replacements in a reload: the Procfile has one process), and a free
// balancer port base+50.
func freeBase() (base, lb int, err error) {
	free := func(p int) bool {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	for range 100 {
		base = 20000 + rand.IntN(10000)
		if free(base) && free(base+1) && free(base+100) && free(base+101) && free(base+50) {
			return base, base + 50, nil
		}
	}
	return 0, 0, errors.New("no free ports between 20000 and 30050 after 100 tries")
}

// startCluster starts mhrun with "web: COMMAND" scaled to 2 behind a
// balancer, in tag's dir, and waits until both instances are running
// (ready: their ports accept) and a request through the balancer is
// answered.
func (b *bench) startCluster(tag, command string) (*cluster, error) {
	base, lb, err := freeBase()
	if err != nil {
		return nil, err
	}
	f, err := b.startFormation(tag, 0, "web: "+command+"\n", fmt.Sprintf("web: scale=2 balance=%d\n", lb), "-p", strconv.Itoa(base))
	if err != nil {
		return nil, err
	}
	c := &cluster{sleepers: f, lb: lb, base: base}
	rows, err := b.waitWeb(c, "web.1 and web.2 running")
	if err != nil {
		c.kill()
		return nil, err
	}
	c.sleeps = pidsOf(rows) // stop waits for them, kill kills them by pid
	if err := b.waitServed(c.url(), c.exited); err != nil {
		c.kill()
		return nil, fmt.Errorf("%w; mhrun's stderr: %s", err, tail(c.errPath))
	}
	return c, nil
}

// waitWeb waits until c's web has exactly two rows, both running with a
// pid and a port, and returns them.
func (b *bench) waitWeb(c *cluster, what string) ([]statusRow, error) {
	var web []statusRow
	err := b.waitStatus(c.sleepers, what, func(rows []statusRow) bool {
		web = webRows(rows)
		return len(web) == 2 && !slices.ContainsFunc(web, func(r statusRow) bool {
			return r.State != "running" || r.PID == 0 || r.Port == 0
		})
	})
	return web, err
}

func webRows(rows []statusRow) []statusRow {
	return slices.DeleteFunc(slices.Clone(rows), func(r statusRow) bool { return r.Process != "web" })
}

func pidsOf(rows []statusRow) []int {
	var out []int
	for _, r := range rows {
		out = append(out, r.PID)
	}
	return out
}

func portsOf(rows []statusRow) []int {
	var out []int
	for _, r := range rows {
		out = append(out, r.Port)
	}
	return out
}

// waitServed polls url, 20 ms apart, until it answers 200, for up to 10 s.
func (b *bench) waitServed(url string, exited <-chan struct{}) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for {
		kind, _ := get(b.ctx, client, url)
		if kind == "" {
			return nil
		}
		last = kind
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answered after 10s (last: %s)", url, last)
		}
		select {
		case <-exited:
			return fmt.Errorf("the server exited before %s was answered", url)
		default:
		}
		if err := b.pause(20 * time.Millisecond); err != nil {
			return err
		}
	}
}

// instanceURLs are the URLs of rows' own ports.
func instanceURLs(rows []statusRow) []string {
	var out []string
	for _, p := range portsOf(rows) {
		out = append(out, "http://127.0.0.1:"+strconv.Itoa(p)+"/")
	}
	return out
}

// wrkTarget is one thing wrk loads: one URL, or several at once.
type wrkTarget struct {
	name           string
	urls           []string
	threads, conns int // 0: wrkThreads, wrkConns
	cpu            int // a pid whose CPU time is read over each run, or 0
}

// wrkRounds loads each target in turn, cfg.wrkRuns rounds, and returns
// each target's reports in the order given. Without wrk on $PATH it
// returns nil and prints how to install it.
func (b *bench) wrkRounds(targets []wrkTarget) ([][]wrkResult, error) {
	c := b.cfg
	out := make([][]wrkResult, len(targets))
	for range c.wrkRuns {
		for i, t := range targets {
			if err := b.pause(settle); err != nil {
				return nil, err
			}
			threads, conns := cmp(t.threads, wrkThreads), cmp(t.conns, wrkConns)
			busy := newBusy()
			c0, _ := cpuClock(t.cpu)
			r, err := b.wrk(t.urls, threads, conns, c.wrkFor)
			if err != nil {
				return nil, err
			}
			if t.cpu > 0 {
				c1, _ := cpuClock(t.cpu)
				r.cpu = c1 - c0
			}
			b.logf("  %-40s %s; machine busy %.0f%%", fmt.Sprintf("%s, -c%d:", t.name, conns), r, busy.percent())
			out[i] = append(out[i], r)
		}
	}
	return out, nil
}

// haveWrk reports whether wrk is on $PATH, and says what to do if not.
func (b *bench) haveWrk(what string) bool {
	if _, err := exec.LookPath("wrk"); err != nil {
		fmt.Fprintf(b.log, "%s: wrk is not on $PATH, so the throughput figures are skipped; install it with: %s\n", what, wrkInstall)
		return false
	}
	return true
}

// wrkSummary is the median over rounds of one target's reports.
type wrkSummary struct {
	rps           float64
	p50, p99      time.Duration
	cpuPerReq     time.Duration // of wrkTarget.cpu
	errors, non2x int64         // over every round
}

func summarize(rs []wrkResult) wrkSummary {
	var s wrkSummary
	var rps []float64
	var p50, p99, cpu []time.Duration
	for _, r := range rs {
		rps = append(rps, r.rps)
		p50 = append(p50, r.p50)
		p99 = append(p99, r.p99)
		if r.requests > 0 {
			cpu = append(cpu, r.cpu/time.Duration(r.requests))
		}
		s.errors += r.errors
		s.non2x += r.non2xx
	}
	slices.Sort(rps)
	if n := len(rps); n > 0 {
		s.rps = rps[n/2]
		if n%2 == 0 {
			s.rps = (rps[n/2-1] + rps[n/2]) / 2
		}
	}
	s.p50, s.p99, s.cpuPerReq = median(p50), median(p99), median(cpu)
	return s
}

func durMs2(d time.Duration) string { return fmt.Sprintf("%.3f ms", ms(d)) }

func reqs(f float64) string { return fmt.Sprintf("%.0f req/s", f) }

// wrkSpec describes the wrk runs in a figure's name.
func (b *bench) wrkSpec() string {
	return fmt.Sprintf("wrk -t%d -c%d -d%s, median of %d", wrkThreads, wrkConns, b.cfg.wrkFor, b.cfg.wrkRuns)
}

// clusterBench runs the balancer throughput and the reload under load on
// the Go hello server.
func (b *bench) clusterBench() ([]row, error) {
	hello, err := b.helper("hello")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.log, "cluster: bench/hello ×2 behind mhrun's balancer\n")
	c, err := b.startCluster("cluster", "exec "+shQuote(hello))
	if err != nil {
		return nil, err
	}
	defer c.kill()
	sc, err := b.startSocketCluster("socket", "exec "+shQuote(hello), "")
	if err != nil {
		return nil, err
	}
	defer sc.kill()
	const name = "cluster, Go hello ×2"
	var rows []row
	if b.haveWrk("cluster") {
		web, err := b.waitWeb(c, "web.1 and web.2 running")
		if err != nil {
			return nil, err
		}
		floor, floorURL, err := b.startProxyFloor(web)
		if err != nil {
			return nil, err
		}
		defer floor.kill()
		res, err := b.wrkRounds([]wrkTarget{
			{name: "direct (two wrk, one per instance)", urls: instanceURLs(web)},
			{name: "through mhrun's balancer", urls: []string{c.url()}, cpu: c.pid},
			{name: "through the proxy floor", urls: []string{floorURL}, cpu: floor.pid},
			{name: "one instance direct", urls: instanceURLs(web)[:1], threads: 1, conns: 1},
			{name: "through mhrun's balancer", urls: []string{c.url()}, threads: 1, conns: 1},
			{name: "on mhrun's shared socket", urls: []string{sc.url()}, cpu: sc.pid},
		})
		floor.kill()
		if err != nil {
			return nil, err
		}
		rows = append(rows, throughputCompareRows(name, b.wrkSpec(), res[0], res[1])...)
		rows = append(rows, proxyFloorRows(res[0], res[1], res[2])...)
		rows = append(rows, socketThroughputRows("", b.wrkSpec(), res[0], res[5])...)
		d, l := summarize(res[3]), summarize(res[4])
		rows = append(rows,
			row{"", "one connection (wrk -t1 -c1; baseline: one instance direct): p50 latency, median", durMs2(d.p50), durMs2(l.p50), fmt.Sprintf("%+.3f ms", ms(l.p50-d.p50)), "", ""},
			row{"", "one connection: p99 latency, median", durMs2(d.p99), durMs2(l.p99), fmt.Sprintf("%+.3f ms", ms(l.p99-d.p99)), "< +1 ms", met(l.p99-d.p99 < time.Millisecond)},
			row{"", "one connection: requests/s, median", reqs(d.rps), reqs(l.rps), fmt.Sprintf("%.0f%%", 100*l.rps/d.rps), "", ""},
		)
	} else {
		rows = append(rows, row{name, "balancer throughput", "", "skipped: no wrk (" + wrkInstall + ")", "", "", ""})
	}
	rl, err := b.reloadUnderLoad(c)
	if err != nil {
		return rows, err
	}
	n := name
	if len(rows) > 0 {
		n = ""
	}
	rows = append(rows, rl.rows(n, "`mhrun reload web`")...)
	st, err := b.reloadUnderStreams(c)
	if err != nil {
		return rows, err
	}
	rows = append(rows, st.rows()...)
	if b.haveWrk("cluster") {
		ka, err := b.reloadUnderWrk(c.url(), b.mhrunReload(c))
		if err != nil {
			return rows, err
		}
		web, err := b.waitWeb(c, "web.1 and web.2 running after the reload")
		if err != nil {
			return rows, err
		}
		c.sleeps = append(c.sleeps, pidsOf(web)...)
		b.logf("  after it: %v", web)
		rows = append(rows, ka.rows("", "`mhrun reload web`")...)
	}
	if _, err := c.stop(); err != nil {
		return rows, err
	}
	sr, err := b.socketReloadRows(sc, "shared socket, Go hello ×2")
	rows = append(rows, sr...)
	if err != nil {
		return rows, err
	}
	if _, err := sc.stop(); err != nil {
		return rows, err
	}
	return rows, nil
}

// startProxyFloor starts bench/proxyfloor on a free port below the
// ephemeral range, in front of web's two instances, and waits until a
// request through it is answered. It returns the floor (kill stops it)
// and its URL.
func (b *bench) startProxyFloor(web []statusRow) (*sleepers, string, error) {
	bin, err := b.helper("proxyfloor")
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	dir, err := b.runDir("proxyfloor-run") // b.tmp/proxyfloor is the binary
	if err != nil {
		return nil, "", err
	}
	args := []string{"-listen", "127.0.0.1:" + strconv.Itoa(port)}
	for _, p := range portsOf(web) {
		args = append(args, "-backend", "127.0.0.1:"+strconv.Itoa(p))
	}
	f, err := b.launch("proxy floor", dir, 0, b.command(bin, args...))
	if err != nil {
		return nil, "", err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	if err := b.waitServed(url, f.exited); err != nil {
		f.kill()
		return nil, "", fmt.Errorf("proxy floor: %w; its stderr: %s", err, tail(f.errPath))
	}
	b.logf("  proxy floor: pid %d, %s → %v", f.pid, url, portsOf(web))
	return f, url, nil
}

// freePort picks a free port between 20000 and 30000, below the
// ephemeral range.
func freePort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(10000)
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, errors.New("no free port between 20000 and 30000 after 100 tries")
}

// proxyFloorRows compare the balancer with the proxy floor, both under
// the same wrk load in the same rounds as direct.
func proxyFloorRows(direct, lb, floor []wrkResult) []row {
	d, l, f := summarize(direct), summarize(lb), summarize(floor)
	return []row{
		{"", "proxy floor (bench/proxyfloor: accept, dial an instance round robin, io.Copy both ways, nothing else), the same wrk load, in the same rounds: requests/s, median (baseline column: the floor)",
			reqs(f.rps), reqs(l.rps), fmt.Sprintf("%.2f×", l.rps/f.rps), "", ""},
		{"", "proxy floor: its share of direct; p99 latency, median; its own CPU per request, median; wrk socket errors / non-2xx, all runs",
			fmt.Sprintf("%.0f%% of direct; %s; %s; %d / %d", 100*f.rps/d.rps, durMs(f.p99), usec(f.cpuPerReq), f.errors, f.non2x),
			fmt.Sprintf("%.0f%% of direct; %s; %s", 100*l.rps/d.rps, durMs(l.p99), usec(l.cpuPerReq)), "", "", ""},
	}
}

// mhrunReload makes the command "mhrun reload web" for c.
func (b *bench) mhrunReload(c *cluster) func(context.Context) *exec.Cmd {
	return func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, b.mhrun, "reload", "web", "-d", c.dir)
	}
}

// kaReload is a reload under wrk's keep-alive connections.
type kaReload struct {
	took time.Duration
	wrk  wrkResult
}

// kaFor is how long wrk runs in reloadUnderWrk; the reload starts 2 s in.
const kaFor = 15 * time.Second

func (k kaReload) rows(name, who string) []row {
	return []row{
		{name, fmt.Sprintf("reload of 2 instances under wrk -t%d -c%d -d%s (keep-alive), reload 2 s in: wrk socket errors / non-2xx, of requests", wrkThreads, wrkConns, kaFor),
			"", fmt.Sprintf("%d / %d of %d", k.wrk.errors, k.wrk.non2xx, k.wrk.requests), "", "", ""},
		{"", fmt.Sprintf("reload command under keep-alive load, exec → exit (%s)", who), "", secs(k.took), "", "", ""},
	}
}

// reloadUnderWrk runs wrk against url for kaFor and, 2 s in, the reload
// that cmd makes, to its end: a keep-alive connection stays on its
// instance until one side closes it; the old instance gets its stop
// signal once out of the pool, and what the clients see when it closes
// their connections is up to the app (hello closes the idle ones).
func (b *bench) reloadUnderWrk(url string, cmd func(context.Context) *exec.Cmd) (kaReload, error) {
	var k kaReload
	fmt.Fprintf(b.log, "  reload under wrk -c%d -d%s, keep-alive, reload 2 s in\n", wrkConns, kaFor)
	type res struct {
		r   wrkResult
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := b.wrk([]string{url}, wrkThreads, wrkConns, kaFor)
		done <- res{r, err}
	}()
	var rerr error
	if err := b.pause(2 * time.Second); err == nil {
		ctx, cancel := context.WithTimeout(b.ctx, kaFor)
		cmd := cmd(ctx)
		if cmd.Env == nil {
			cmd.Env = b.env
		}
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		k.took = time.Since(t0)
		cancel()
		if err != nil {
			rerr = fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	w := <-done
	k.wrk = w.r
	b.logf("  reload took %.3f s; wrk: %s", k.took.Seconds(), k.wrk)
	return k, cmp(rerr, w.err)
}

// sseStreams is how many event streams reloadUnderStreams holds open.
const sseStreams = 32

// streamed is a reload with event streams open through the balancer.
type streamed struct {
	took             time.Duration // exec of the reload command → its exit
	clean, cut, left int           // the streams: ended by the app, ended otherwise, still open 10 s after
}

func (s streamed) rows() []row {
	return []row{
		{"", fmt.Sprintf("reload of 2 instances with %d SSE streams open through the balancer (grace 5s; the app ends its streams on SIGTERM): reload command, exec → exit", sseStreams), "", secs(s.took), "", "", ""},
		{"", "its streams: ended by the app / cut / still open 10 s after", "", fmt.Sprintf("%d / %d / %d", s.clean, s.cut, s.left), "", "", ""},
	}
}

// reloadUnderStreams opens sseStreams event streams through the balancer,
// runs "mhrun reload web" with them open, and counts how they ended.
func (b *bench) reloadUnderStreams(c *cluster) (streamed, error) {
	var s streamed
	fmt.Fprintf(b.log, "  reload with %d SSE streams open\n", sseStreams)
	ends := make(chan error, sseStreams)
	var conns []net.Conn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for range sseStreams {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(c.lb), 5*time.Second)
		if err != nil {
			return s, err
		}
		conns = append(conns, conn)
		conn.SetDeadline(time.Now().Add(time.Minute))
		io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: bench\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return s, fmt.Errorf("event stream: %w", err)
		}
		first, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.HasPrefix(first, "data: ") {
			return s, fmt.Errorf("event stream's first event: %q, %v", first, err)
		}
		go func() {
			_, err := io.Copy(io.Discard, resp.Body) // nil at the stream's clean end
			ends <- err
		}()
	}
	if err := b.pause(500 * time.Millisecond); err != nil {
		return s, err
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	cmd := b.mhrunReload(c)(ctx)
	if cmd.Env == nil {
		cmd.Env = b.env
	}
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	s.took = time.Since(t0)
	if err != nil {
		return s, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	wait := time.NewTimer(10 * time.Second)
	defer wait.Stop()
	for s.clean+s.cut < sseStreams && s.left == 0 {
		select {
		case err := <-ends:
			if err == nil {
				s.clean++
			} else {
				s.cut++
			}
		case <-wait.C:
			s.left = sseStreams - s.clean - s.cut
		}
	}
	web, err := b.waitWeb(c, "web.1 and web.2 running after the reload with streams")
	if err != nil {
		return s, err
	}
	c.sleeps = pidsOf(web)
	b.logf("  reload with %d streams took %.3f s; streams ended by the app %d, cut %d, left open %d", sseStreams, s.took.Seconds(), s.clean, s.cut, s.left)
	return s, nil
}

// throughputCompareRows are the rows of direct against balanced.
func throughputCompareRows(name, spec string, direct, lb []wrkResult) []row {
	d, l := summarize(direct), summarize(lb)
	share := l.rps / d.rps
	added := l.p99 - d.p99
	return []row{
		{name, "requests/s through the balancer (baseline: the two instances direct, two wrk at once, half the connections each), " + spec,
			reqs(d.rps), reqs(l.rps), fmt.Sprintf("%.0f%%", 100*share), "≥ 90%", met(share >= 0.9)},
		{"", "p99 latency at 64 connections (direct: the mean of the two wrk's p99), median", durMs(d.p99), durMs(l.p99), fmt.Sprintf("%+.2f ms", ms(added)), "< +1 ms", met(added < time.Millisecond)},
		{"", "mhrun's own CPU per request through the balancer (its CPU clock over the run ÷ requests), median", "", usec(l.cpuPerReq), "", "", ""},
		{"", "wrk socket errors / non-2xx responses, all runs", fmt.Sprintf("%d / %d", d.errors, d.non2x), fmt.Sprintf("%d / %d", l.errors, l.non2x), "", "0", met(l.errors == 0 && l.non2x == 0)},
	}
}

// reloaded is one reload under load and its control run.
type reloaded struct {
	took    time.Duration // exec of the reload command → its exit
	msg     string        // its answer
	load    loaded        // the load around it
	control loaded        // the same load for as long, no reload
}

func (r reloaded) rows(name, who string) []row {
	return []row{
		{name, fmt.Sprintf("reload of 2 instances under load (%d clients, keep-alive off): requests failed (baseline: the same load, no reload)", loadWorkers),
			fmt.Sprintf("%d of %d", r.control.failed, r.control.done+r.control.failed), fmt.Sprintf("%d of %d", r.load.failed, r.load.done+r.load.failed), "", "0", met(r.load.failed == 0)},
		{"", "requests/s over the load", fmt.Sprintf("%.0f", float64(r.control.done)/r.control.took.Seconds()), fmt.Sprintf("%.0f", float64(r.load.done)/r.load.took.Seconds()), "", "", ""},
		{"", fmt.Sprintf("reload command, exec → exit (%s)", who), "", secs(r.took), "", "", ""},
	}
}

// reloadUnderLoad runs "mhrun reload web" with the load loop going
// through the balancer (1 s of load before, 1 s after), then the same
// loop for as long without a reload, and checks that both instances were
// replaced.
func (b *bench) reloadUnderLoad(c *cluster) (reloaded, error) {
	before, err := b.waitWeb(c, "web.1 and web.2 running")
	if err != nil {
		return reloaded{}, err
	}
	fmt.Fprintf(b.log, "  reload: %d clients through the balancer, mhrun reload web after 1 s\n", loadWorkers)
	r, err := b.reloadRun(c.url(), b.mhrunReload(c))
	after, werr := b.waitWeb(c, "web.1 and web.2 running after the reload")
	if werr == nil {
		c.sleeps = append(c.sleeps, pidsOf(after)...)
	}
	if err != nil {
		return r, err
	}
	if werr != nil {
		return r, werr
	}
	for _, a := range after {
		if slices.Contains(pidsOf(before), a.PID) || slices.Contains(portsOf(before), a.Port) {
			return r, fmt.Errorf("after the reload %s has pid %d port %d, as before it: %v", a.Name, a.PID, a.Port, before)
		}
	}
	b.logf("  before: %v; after: %v", before, after)
	if !allGone(pidsOf(before)) {
		return r, fmt.Errorf("the replaced instances %v are still running after the reload", pidsOf(before))
	}
	c.sleeps = pidsOf(after)
	return r, b.controlRun(c.url(), &r)
}

// ansi matches the colour codes pm2 prints even to a pipe.
var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// reloadRun runs the command cmd makes (a reload) with the load loop
// going against url, 1 s of load before it and 1 s after.
func (b *bench) reloadRun(url string, cmd func(context.Context) *exec.Cmd) (reloaded, error) {
	var r reloaded
	busy := newBusy()
	var err error
	r.load, err = b.load(url, time.Second, time.Second, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
		defer cancel()
		cmd := cmd(ctx)
		if cmd.Env == nil {
			cmd.Env = b.env
		}
		t0 := time.Now()
		out, err := cmd.CombinedOutput()
		r.took = time.Since(t0)
		r.msg = strings.TrimSpace(ansi.ReplaceAllString(string(out), ""))
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, r.msg)
		}
		return nil
	})
	b.logf("  reload said: %s", r.msg)
	b.logf("  reload took %.3f s; load: %s; machine busy %.0f%%", r.took.Seconds(), r.load, busy.percent())
	return r, err
}

// controlRun is the load loop against url for as long as r's load, with
// no reload.
func (b *bench) controlRun(url string, r *reloaded) error {
	var err error
	r.control, err = b.load(url, r.load.took, 0, nil)
	b.logf("  the same load, no reload: %s", r.control)
	return err
}

// helper builds bench/NAME into the temp dir once and returns its path.
func (b *bench) helper(name string) (string, error) {
	out := filepath.Join(b.tmp, name)
	if b.built[name] {
		return out, nil
	}
	if err := b.build(out, "./bench/"+name); err != nil {
		return "", err
	}
	b.built[name] = true
	return out, nil
}
