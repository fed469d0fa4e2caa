package runner

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"mhrun/balance"
	"mhrun/policy"
)

// Cluster mode. A process with balance=PORT has mhrun listen on that port
// and spread connections over its ready instances, each on its own
// private $PORT. An instance joins the pool when it is ready (a tcp check
// on its port when it has no ready= of its own) and leaves it before it is
// stopped: its open connections are drained, for at most its grace, before
// the stop signal. Restarts, scale and reload all go through the pool.

// drained is a drain's end for a run that is being stopped.
type drained struct {
	inst *instance
	run  *run
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
		b, err := balance.Listen(net.JoinHostPort(host, strconv.Itoa(p.Policy.Balance)), p.Policy.Sticky)
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

// portFor is the $PORT of a new run: foreman's, or a free one for a
// replacement that runs beside the instance it replaces.
func (r *Runner) portFor(in *instance) (int, error) {
	if !in.fresh {
		return in.proc.Port(r.f.BasePort, in.n), nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port for %s: %w", in.name, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// joinPool puts a ready instance's run in its process's pool.
func (r *Runner) joinPool(in *instance) {
	if b := r.balancer(in); b != nil && in.run != nil {
		b.Add(in.run.id, net.JoinHostPort("127.0.0.1", strconv.Itoa(in.run.port)))
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

// drainThenSignal takes a pooled run out of the pool and sends the stop
// signal once its open connections have closed or its grace ran out; it
// reports whether it took over the signal.
func (r *Runner) drainThenSignal(in *instance) bool {
	b := r.balancer(in)
	run := in.run
	if b == nil || run == nil || !run.pooled {
		return false
	}
	run.pooled = false
	grace := in.proc.Policy.Grace
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		b.Drain(ctx, run.id)
		select {
		case r.drains <- drained{in, run}:
		case <-r.done:
		}
	}()
	return true
}

// onDrained sends the stop signal to a run whose connections are drained.
func (r *Runner) onDrained(d drained) {
	in := d.inst
	if in.run != d.run || in.state != StateStopping || in.killed || d.run.exited {
		return // its leader exited meanwhile: onExit stops what is left
	}
	in.deadline = time.Now().Add(in.proc.Policy.Grace)
	in.run.stop(parseSignal(in.proc.Policy.StopSignal), nil)
	r.armKill()
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
