//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The pm2 benchmark sets mhrun's cluster mode beside PM2's, on the same
// Node hello-world (nodeApp: http.createServer on $PORT, or on fd 3 under
// socket=, closing gracefully on SIGINT or SIGTERM), two instances each,
// in the same run:
//
//   - mhrun: "web: exec node app.js" with "web: scale=2 balance=LB", as
//     in the cluster benchmark;
//   - PM2: "pm2 start app.js -i 2" (cluster mode: Node's cluster module,
//     the master accepting and handing connections to the workers), with
//     PM2_HOME in the temp dir;
//   - the same two node instances of mhrun's, loaded directly.
//
// wrk loads the three in turn (as in the cluster benchmark), then each
// runner reloads under the load loop: "mhrun reload web", "pm2 reload app".
// PM2 is the one on $PATH (or -pm2), or else npm installs pm2@latest into
// the temp dir (when npm exists; a failed install skips the benchmark).
// At the end "pm2 kill", then its daemon and every worker seen are killed
// by pid, should they be left.

const nodeApp = `const http = require('http');
const body = 'hello from ' + process.pid + '\n';
const shared = process.env.LISTEN_FDS === '1';
let closing = false;
const server = http.createServer((req, res) => {
  const head = {'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body)};
  if (closing) head['Connection'] = 'close';
  res.writeHead(200, head);
  res.end(body);
});
const up = () => console.log('listening');
if (shared) server.listen({fd: 3}, up); // mhrun's socket=: the socket it hands over
else server.listen(Number(process.env.PORT), '127.0.0.1', up);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (!shared) return server.close(() => process.exit(0));
    // On a shared socket the other instances take the new connections:
    // stop accepting, and answer each keep-alive connection's next
    // request with Connection: close. http's close() would also close
    // the idle ones at once, racing with their clients' next request.
    closing = true;
    require('net').Server.prototype.close.call(server, () => process.exit(0));
    setTimeout(() => server.closeIdleConnections(), 1000).unref();
  });
}
`

// pm2 is a PM2 install and its daemon.
type pm2 struct {
	b       *bench
	bin     string
	version string
	home    string   // PM2_HOME
	env     []string // for every pm2 command: PM2_HOME and PORT set
	pids    []int    // every worker seen, and the daemon
}

// findPM2 returns a pm2 binary: -pm2, pm2 on $PATH, or npm's install of
// pm2@latest into the temp dir. note says why there is none.
func (b *bench) findPM2() (bin, note string) {
	if b.cfg.pm2 != "" {
		return b.cfg.pm2, ""
	}
	if p, err := exec.LookPath("pm2"); err == nil {
		return p, ""
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", "no pm2 on $PATH and no npm to install it with (give one with -pm2, or install Node and npm)"
	}
	dir := filepath.Join(b.tmp, "pm2")
	fmt.Fprintf(b.log, "pm2: npm install pm2@latest --prefix %s\n", dir)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "pm2@latest", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Env = b.env
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("npm install pm2@latest failed (%v): %s", err, lastLine(out))
	}
	b.logf("  npm install took %.1f s", time.Since(t0).Seconds())
	return filepath.Join(dir, "node_modules", ".bin", "pm2"), ""
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// run runs a pm2 command to its end, for at most a minute.
func (p *pm2) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(p.b.ctx, time.Minute)
	defer cancel()
	cmd := p.command(ctx, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("pm2 %s: %v: %s", strings.Join(args, " "), err, tailString(string(out)))
	}
	return string(out), nil
}

func (p *pm2) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = p.env
	return cmd
}

func tailString(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 1000 {
		s = s[len(s)-1000:]
	}
	return s
}

// workers are the pids of app's workers that pm2 jlist shows online; it
// remembers them for the cleanup.
func (p *pm2) workers() ([]int, error) {
	out, err := p.run("jlist")
	if err != nil {
		return nil, err
	}
	if i := strings.IndexByte(out, '['); i > 0 {
		out = out[i:]
	}
	var list []struct {
		PID int `json:"pid"`
		PM2 struct {
			Status string `json:"status"`
		} `json:"pm2_env"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("pm2 jlist: %w: %.300q", err, out)
	}
	var pids []int
	for _, w := range list {
		if w.PID > 0 {
			p.seen(w.PID)
			if w.PM2.Status == "online" {
				pids = append(pids, w.PID)
			}
		}
	}
	return pids, nil
}

func (p *pm2) seen(pid int) {
	if !slices.Contains(p.pids, pid) {
		p.pids = append(p.pids, pid)
	}
}

// daemon is the pid in PM2_HOME/pm2.pid, or 0.
func (p *pm2) daemon() int {
	b, err := os.ReadFile(filepath.Join(p.home, "pm2.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// kill is "pm2 kill", then SIGKILL by pid to the daemon and every worker
// seen that is left.
func (p *pm2) kill() {
	if d := p.daemon(); d > 0 {
		p.seen(d)
	}
	if _, err := p.run("kill"); err != nil {
		fmt.Fprintf(p.b.log, "pm2: %v\n", err)
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !slices.ContainsFunc(p.pids, func(pid int) bool { return !gone(pid) }) {
			break
		}
	}
	left := slices.DeleteFunc(slices.Clone(p.pids), gone)
	if len(left) > 0 {
		fmt.Fprintf(p.b.log, "pm2: %v still running after pm2 kill, killing them\n", left)
	}
	for _, pid := range p.pids {
		if !gone(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	reap(p.pids) // the daemon and its workers are this process's orphans (it is their subreaper)
}

// pm2Bench runs the side by side.
func (b *bench) pm2Bench() ([]row, error) {
	const name = "PM2 side by side, node hello ×2"
	skip := func(why string) ([]row, error) {
		fmt.Fprintf(b.log, "pm2: skipped: %s\n", why)
		return []row{{name, "skipped", "", why, "", "", ""}}, nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return skip("no node on $PATH")
	}
	bin, note := b.findPM2()
	if bin == "" {
		return skip(note)
	}
	dir, err := b.runDir("pm2app")
	if err != nil {
		return nil, err
	}
	app := filepath.Join(dir, "app.js")
	if err := os.WriteFile(app, []byte(nodeApp), 0o644); err != nil {
		return nil, err
	}
	_, port, err := freeBase()
	if err != nil {
		return nil, err
	}
	p := &pm2{b: b, bin: bin, home: filepath.Join(dir, "pm2home")}
	p.env = append(slices.Clone(b.env), "PM2_HOME="+p.home, "PORT="+strconv.Itoa(port))
	if v, err := p.run("--version"); err == nil {
		p.version = lastLine([]byte(v))
	}
	defer p.kill()
	nv, _ := exec.Command(node, "--version").Output()
	fmt.Fprintf(b.log, "pm2: PM2 %s (%s) and mhrun, each with 2 instances of a node %s hello-world\n", p.version, bin, strings.TrimSpace(string(nv)))

	c, err := b.startCluster("cluster-node", "exec "+shQuote(node)+" "+shQuote(app))
	if err != nil {
		return nil, err
	}
	defer c.kill()
	sc, err := b.startSocketCluster("socket-node", "exec "+shQuote(node)+" "+shQuote(app), "ready=log:listening")
	if err != nil {
		return nil, err
	}
	defer sc.kill()
	if _, err := p.run("start", app, "-i", "2", "--name", "app"); err != nil {
		return nil, err
	}
	pmURL := "http://127.0.0.1:" + strconv.Itoa(port) + "/"
	if err := b.waitServed(pmURL, nil); err != nil {
		return nil, fmt.Errorf("pm2: %w", err)
	}
	before, err := p.workers()
	if err != nil {
		return nil, err
	}
	if len(before) != 2 {
		return nil, fmt.Errorf("pm2 jlist: %d workers online, want 2", len(before))
	}
	b.logf("  PM2 daemon pid %d, workers %v, port %d", p.daemon(), before, port)

	var rows []row
	if b.haveWrk("pm2") {
		web, err := b.waitWeb(c, "web.1 and web.2 running")
		if err != nil {
			return nil, err
		}
		res, err := b.wrkRounds([]wrkTarget{
			{name: "node direct (two wrk, one per instance)", urls: instanceURLs(web)},
			{name: "node through mhrun's balancer", urls: []string{c.url()}, cpu: c.pid},
			{name: "node in PM2 cluster mode", urls: []string{pmURL}, cpu: p.daemon()},
			{name: "node on mhrun's shared socket", urls: []string{sc.url()}, cpu: sc.pid},
		})
		if err != nil {
			return nil, err
		}
		d, m, pm := summarize(res[0]), summarize(res[1]), summarize(res[2])
		spec := b.wrkSpec()
		rows = append(rows,
			row{name, "requests/s (baseline: PM2 cluster mode), " + spec, reqs(pm.rps), reqs(m.rps), ratio2(m.rps, pm.rps), "", ""},
			row{"", "p99 latency, median", durMs(pm.p99), durMs(m.p99), fmt.Sprintf("%+.2f ms", ms(m.p99-pm.p99)), "", ""},
			row{"", "the same two node instances direct (two wrk at once): requests/s, p99", "", fmt.Sprintf("%s, %s", reqs(d.rps), durMs(d.p99)),
				fmt.Sprintf("mhrun %.0f%%, PM2 %.0f%% of direct", 100*m.rps/d.rps, 100*pm.rps/d.rps), "", ""},
			row{"", "the runner's own CPU per request (mhrun; PM2's daemon, the cluster master), median", usec(pm.cpuPerReq), usec(m.cpuPerReq), "", "", ""},
			row{"", "wrk socket errors / non-2xx responses, all runs", fmt.Sprintf("%d / %d", pm.errors, pm.non2x), fmt.Sprintf("%d / %d", m.errors, m.non2x), "", "0", met(m.errors == 0 && m.non2x == 0)},
		)
		s := summarize(res[3])
		rows = append(rows,
			row{"shared socket, node hello ×2", "requests/s on mhrun's shared socket (socket=; baseline: PM2 cluster mode), " + spec, reqs(pm.rps), reqs(s.rps), ratio2(s.rps, pm.rps), "> 1×", met(s.rps > pm.rps)},
			row{"", "p50 / p99 latency, median (baseline: PM2)", durMs(pm.p50) + " / " + durMs(pm.p99), durMs(s.p50) + " / " + durMs(s.p99), fmt.Sprintf("p99 %+.2f ms", ms(s.p99-pm.p99)), "", ""},
		)
		rows = append(rows, socketThroughputRows("", spec, res[0], res[3])...)
	} else {
		rows = append(rows, row{name, "throughput", "", "skipped: no wrk (" + wrkInstall + ")", "", "", ""})
	}

	mr, err := b.reloadUnderLoad(c)
	if err != nil {
		return rows, err
	}
	fmt.Fprintf(b.log, "  reload: %d clients against PM2's port, pm2 reload app after 1 s\n", loadWorkers)
	pr, err := b.reloadRun(pmURL, func(ctx context.Context) *exec.Cmd { return p.command(ctx, "reload", "app") })
	if err != nil {
		return rows, err
	}
	after, err := p.workers()
	if err != nil {
		return rows, err
	}
	b.logf("  PM2 workers before %v, after %v", before, after)
	if len(after) != 2 || slices.ContainsFunc(after, func(pid int) bool { return slices.Contains(before, pid) }) {
		return rows, fmt.Errorf("pm2 reload app: workers %v before, %v after; want 2 new ones", before, after)
	}
	if err := b.controlRun(pmURL, &pr); err != nil {
		return rows, err
	}
	var mk, pk kaReload
	if b.haveWrk("pm2") {
		if mk, err = b.reloadUnderWrk(c.url(), b.mhrunReload(c)); err != nil {
			return rows, err
		}
		if web, err := b.waitWeb(c, "web.1 and web.2 running after the reload"); err == nil {
			c.sleeps = append(c.sleeps, pidsOf(web)...)
		}
		if pk, err = b.reloadUnderWrk(pmURL, func(ctx context.Context) *exec.Cmd { return p.command(ctx, "reload", "app") }); err != nil {
			return rows, err
		}
		p.workers()
	}
	if _, err := c.stop(); err != nil {
		return rows, err
	}
	sr, err := b.socketReloadRows(sc, "")
	if err != nil {
		return append(rows, sr...), err
	}
	if _, err := sc.stop(); err != nil {
		return rows, err
	}
	n := name
	if len(rows) > 0 {
		n = ""
	}
	rows = append(rows,
		row{n, fmt.Sprintf("reload of 2 instances under load (%d clients, keep-alive off): requests failed (baseline: PM2's `pm2 reload app`)", loadWorkers),
			fmt.Sprintf("%d of %d", pr.load.failed, pr.load.done+pr.load.failed), fmt.Sprintf("%d of %d", mr.load.failed, mr.load.done+mr.load.failed), "", "0", met(mr.load.failed == 0)},
		row{"", "the same load, no reload: requests failed", fmt.Sprintf("%d of %d", pr.control.failed, pr.control.done+pr.control.failed), fmt.Sprintf("%d of %d", mr.control.failed, mr.control.done+mr.control.failed), "", "", ""},
		row{"", "requests/s over the reload's load", fmt.Sprintf("%.0f", float64(pr.load.done)/pr.load.took.Seconds()), fmt.Sprintf("%.0f", float64(mr.load.done)/mr.load.took.Seconds()), "", "", ""},
		row{"", "reload command, exec → exit (`pm2 reload app`, `mhrun reload web`)", secs(pr.took), secs(mr.took), ratio(mr.took, pr.took), "", ""},
		row{"", fmt.Sprintf("reload under wrk -t%d -c%d -d%s (keep-alive), reload 2 s in: wrk socket errors / non-2xx, of requests", wrkThreads, wrkConns, kaFor),
			fmt.Sprintf("%d / %d of %d", pk.wrk.errors, pk.wrk.non2xx, pk.wrk.requests), fmt.Sprintf("%d / %d of %d", mk.wrk.errors, mk.wrk.non2xx, mk.wrk.requests), "", "", ""},
		row{"", "reload command under keep-alive load, exec → exit", secs(pk.took), secs(mk.took), ratio(mk.took, pk.took), "", ""},
	)
	if len(sr) > 0 {
		sr[0].bench = "shared socket, node hello ×2"
	}
	return append(rows, sr...), nil
}

func usec(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

func ratio2(a, b float64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
