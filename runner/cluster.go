package runner

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"mhrun/balance"
	"mhrun/formation"
	"mhrun/policy"
)

// Cluster mode. A process with balance=PORT has mhrun listen on that port
// and spread connections over its ready instances, each on its own
// private $PORT. An instance joins the pool when it is ready (a tcp check
// on its port when it has no ready= of its own) and leaves it as its stop
// begins. Restarts, scale and reload all go through the pool.
//
// A stop of a pooled run: it leaves the pool at once (no new connection),
// gets its stop signal as soon as the connections just handed to it have
// had time to be accepted (settle: when none is open, or the newest is
// drainSettle old, at most a quarter of its grace), so that it can end its
// long-lived streams itself (Node's server.close(), Go's Shutdown), and is
// killed when its grace, counted from leaving the pool, runs out: a stop
// takes at most the grace, streams or not.
//
// In the pool, a run is keyed by its instance (web.2): sticky clients are
// hashed onto instances, so only the clients of an instance that leaves
// move, and they come back when it returns. A reload's replacement runs
// beside the run it replaces under the same key, and takes its clients
// over as it joins.
//
// Ports: instance n of a process runs on its foreman port (PORT, as check
// shows it). A reload's replacement runs beside it on the instance's
// other port, ReplacementPort: the foreman port plus 100 × the number of
// processes, the port it would have if the Procfile were listed twice, so
// it is no other process's foreman port. The instance keeps the port it
// is on through restarts, and the next reload takes it back to the first.

// drainSettle is the longest a stopping run's signal waits, after it
// left the pool, for connections just handed to it to be accepted.
const drainSettle = 250 * time.Millisecond

// drained is a pooled run that settled after leaving the pool: its stop
// signal is due.
type drained struct {
	inst  *instance
	run   *run
	since time.Time // when it left the pool: its grace runs from there
	open  int64     // its connections open then
}

// startBalancers listens on every balance= port; host is the interface
// (loopback unless --balance-host widens it).
func (r *Runner) startBalancers(host string) error {
	if host == "" {
		host = "127.0.0.1"
	}
	for _, p := range r.f.Processes {
		if p.Policy.Balance == 0 {
			continue
		}
		b, err := balance.Listen(net.JoinHostPort(host, strconv.Itoa(p.Policy.Balance)), balanceMode(p.Policy))
		if err != nil {
			r.closeBalancers()
			return fmt.Errorf("balance %s: %w (free the port, or change balance= in the policy)", p.Name, err)
		}
		r.balancers[p.Name] = b
		r.balanceWG.Add(1)
		go func() { defer r.balanceWG.Done(); b.Serve() }()
	}
	return nil
}

// balanceMode is how a process's balancer chooses an instance.
func balanceMode(p policy.Policy) balance.Mode {
	m := balance.Mode{Sticky: p.Sticky}
	switch kind, name, _ := strings.Cut(p.StickyKey, ":"); kind {
	case "header":
		m.Header = name
	case "cookie":
		m.Cookie = name
	}
	return m
}

func (r *Runner) closeBalancers() {
	for _, b := range r.balancers {
		b.Close()
	}
	r.balanceWG.Wait()
}

// balancer is the balancer of the instance's process, or nil.
func (r *Runner) balancer(in *instance) *balance.Balancer {
	return r.balancers[in.proc.Name]
}

// readyOf is the instance's ready check: a balanced process without one
// of its own is ready once its port accepts connections.
func (r *Runner) readyOf(in *instance) policy.Ready {
	rd := in.proc.Policy.Ready
	if rd.Kind == policy.ReadyNone && r.balancer(in) != nil {
		rd.Kind = policy.ReadyTCP
	}
	return rd
}

// portFor is the $PORT of a new run: the instance's foreman port, or its
// replacement port while it runs on that one (see above).
func (r *Runner) portFor(in *instance) (int, error) {
	if port := r.socketPort(in); port != 0 {
		return port, nil // socket=: every run on the shared socket's port
	}
	if !in.fresh {
		return in.proc.Port(r.f.BasePort, in.n), nil
	}
	port := ReplacementPort(r.f, in.proc, in.n)
	if port == 0 {
		return 0, fmt.Errorf("%s: its replacement port %d is past 65535 (lower the base port with -p, or port= in the policy)",
			in.name, in.proc.Port(r.f.BasePort, in.n)+replacementOffset(r.f))
	}
	return port, nil
}

// ReplacementPort is the $PORT of a reload's replacement for instance n
// of p: its foreman port plus 100 × the number of processes (the port it
// would get if the Procfile were listed twice), or 0 past 65535. An
// instance alternates between the two ports, one reload after another.
func ReplacementPort(f *formation.Formation, p *formation.Process, n int) int {
	port := p.Port(f.BasePort, n) + replacementOffset(f)
	if port > 65535 {
		return 0
	}
	return port
}

// replacementOffset is 100 × the number of processes in the Procfile (as
// far as f knows it: a formation of some processes only knows their
// places in the Procfile).
func replacementOffset(f *formation.Formation) int {
	n := len(f.Processes)
	for _, p := range f.Processes {
		n = max(n, p.Index+1)
	}
	return 100 * n
}

// portFree reports whether nothing listens on 127.0.0.1:port, so that a
// replacement's ready check cannot be answered by another program.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// joinPool puts a ready instance's run in its process's pool, keyed by
// the instance.
func (r *Runner) joinPool(in *instance) {
	if b := r.balancer(in); b != nil && in.run != nil {
		b.Add(in.run.id, in.name, net.JoinHostPort("127.0.0.1", strconv.Itoa(in.run.port)))
		in.run.pooled = true
	}
}

// leavePool takes a run out of the pool at once (it ended).
func (r *Runner) leavePool(in *instance, run *run) {
	if b := r.balancer(in); b != nil && run.pooled {
		b.Remove(run.id)
		run.pooled = false
	}
}

// drainThenSignal takes a pooled run out of the pool now and leaves its
// stop signal to onDrained, once the run has settled (see above); it
// reports whether it took the signal over. The SIGKILL is due one grace
// after this call.
func (r *Runner) drainThenSignal(in *instance) bool {
	b := r.balancer(in)
	run := in.run
	if b == nil || run == nil || !run.pooled {
		return false
	}
	run.pooled = false
	since := r.clock.Now()
	b.Remove(run.id) // here, on the loop: no new connection from now on
	settle := min(drainSettle, in.proc.Policy.Grace/4)
	go func() {
		open := b.Settle(context.Background(), run.id, settle) // bounded by settle
		select {
		case r.drains <- drained{inst: in, run: run, since: since, open: open}:
		case <-r.done:
		}
	}()
	return true
}

// onDrained sends the stop signal to a run that left the pool and
// settled, and sets its SIGKILL one grace after it left.
func (r *Runner) onDrained(d drained) {
	in := d.inst
	if in.run != d.run || in.state != StateStopping || d.run.killed || d.run.exited {
		return // its leader exited meanwhile: onExit stops what is left
	}
	grace := in.proc.Policy.Grace
	in.deadline = d.since.Add(grace)
	if d.open > 0 {
		r.out.Event("%s left the pool with %s open: SIG%s sent, for it to close them (killed in %s if it has not exited)",
			in.name, plural(int(d.open), "connection"), in.proc.Policy.StopSignal, in.deadline.Sub(r.clock.Now()).Round(time.Millisecond))
	}
	in.run.stop(in.proc.Policy.StopSignalOf(), nil)
	r.armKill()
}

// reportOpen says, as a balanced instance is killed at the end of its
// grace, how many connections it still had open (nothing if none).
func (r *Runner) reportOpen(in *instance) {
	b := r.balancer(in)
	if b == nil || in.run == nil {
		return
	}
	if n := b.Open(in.run.id); n > 0 {
		r.out.Event("%s: %s still open, cut by the kill", in.name, plural(int(n), "connection"))
	}
}

// poolStats are a balanced instance's open connections and served total.
func (r *Runner) poolStats(in *instance, stats map[string]map[string]balance.Stats) (open, served int64) {
	b := r.balancer(in)
	if b == nil || in.run == nil {
		return 0, 0
	}
	m, ok := stats[in.proc.Name]
	if !ok {
		m = b.Stats()
		stats[in.proc.Name] = m
	}
	s := m[in.run.id]
	return s.Open, s.Served
}

// DescribeCluster says how a balanced process is served, for mhrun check:
// where the balancer listens, how it chooses, and the replacement ports.
// host is --balance-host ("" for 127.0.0.1). It returns nothing for a
// process without balance=.
func DescribeCluster(f *formation.Formation, p *formation.Process, host string) []string {
	pol := p.Policy
	if pol.Balance == 0 {
		return nil
	}
	if host == "" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(pol.Balance))
	m := balanceMode(pol)
	var how string
	switch {
	case m.Header != "":
		how = fmt.Sprintf("sticky on the %s header, read from every request (HTTP/1.x, heads up to 8 KiB), so that clients behind a proxy or tunnel on this host keep their instance; a request without it, and a connection that is not HTTP/1.x (TLS, HTTP/2, nothing sent within 1s), go by the client address", m.Header)
	case m.Cookie != "":
		how = fmt.Sprintf("sticky on the %s cookie, read from every request (HTTP/1.x, heads up to 8 KiB): a request carrying one goes to the instance that set it, a new session to the least busy instance; a connection that is not HTTP/1.x goes by the client address", m.Cookie)
	case m.Sticky:
		how = "sticky on the client address (behind a proxy or tunnel on this host every client is 127.0.0.1: key on a header, sticky=header:X-Forwarded-For)"
	default:
		how = "least connections"
	}
	lines := []string{fmt.Sprintf("%s: mhrun listens on %s and spreads connections over the ready instances, %s", p.Name, addr, how)}
	if p.Scale > 0 {
		first, last := ReplacementPort(f, p, 1), ReplacementPort(f, p, p.Scale)
		ports := strconv.Itoa(first)
		if p.Scale > 1 {
			ports += "-" + strconv.Itoa(last)
		}
		if first == 0 || last == 0 {
			ports = "past 65535: mhrun reload " + p.Name + " would fail (lower -p or port=)"
		}
		lines = append(lines, fmt.Sprintf("%s: a reload's replacements run on %s, and the next reload back on %s", p.Name, ports, portRange(f, p)))
	}
	return lines
}

// portRange is a process's foreman ports, as check shows them.
func portRange(f *formation.Formation, p *formation.Process) string {
	if p.Scale == 1 {
		return strconv.Itoa(p.Port(f.BasePort, 1))
	}
	return fmt.Sprintf("%d-%d", p.Port(f.BasePort, 1), p.Port(f.BasePort, p.Scale))
}
