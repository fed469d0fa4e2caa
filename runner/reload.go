package runner

import (
	"fmt"
	"slices"
	"strings"

	"mhrun/socket"
)

// A reload replaces a balanced process's instances one at a time: a
// replacement starts beside the old instance on the instance's other port
// (cluster.go), joins the pool once ready under the instance's key, taking
// its sticky clients over, then the old one leaves the pool and is stopped
// (its stop signal once it settled, SIGKILL one grace later), and only then
// does the next one begin. A replacement that fails to become ready, or
// whose port is taken, aborts the reload, and the old instances keep
// serving. The client's answer waits for the end.
type reloading struct {
	proc  string
	queue []*instance // old instances still to replace
	old   *instance   // being replaced
	rep   *instance   // its replacement
	done  []string
	reply chan answer
}

// startReload begins `mhrun reload NAME`.
func (r *Runner) startReload(q request) {
	fail := func(format string, args ...any) {
		q.reply <- answer{resp: socket.Response{Error: fmt.Sprintf(format, args...)}}
	}
	if r.stopping {
		fail("the formation is stopping")
		return
	}
	if len(q.req.Args) != 1 {
		fail("reload takes one process, e.g. mhrun reload web")
		return
	}
	name := q.req.Args[0]
	p := r.f.Process(name)
	switch {
	case p == nil:
		fail("%v", unknownProcess(name, r.f.Names()))
		return
	case r.reload != nil:
		fail("a reload of %s is under way", r.reload.proc)
		return
	case p.Policy.Balance == 0 && p.Policy.Socket == 0:
		fail("%s has no balance=PORT or socket=PORT: a reload keeps serving through mhrun's balancer or its shared socket (add one to the policy, or use mhrun restart %s)", name, name)
		return
	}
	var queue []*instance
	for _, in := range r.insts {
		if in.proc == p && in.state == StateRunning {
			queue = append(queue, in)
		}
	}
	if len(queue) == 0 {
		fail("%s has no running instance to reload", name)
		return
	}
	r.reload = &reloading{proc: name, queue: queue, reply: q.reply}
	r.out.Event("reload of %s: replacing %s one at a time", name, names(queue))
	r.reloadNext()
}

func names(ins []*instance) string {
	var out []string
	for _, in := range ins {
		out = append(out, in.name)
	}
	return strings.Join(out, ", ")
}

// reloadNext starts the next replacement, or ends the reload.
func (r *Runner) reloadNext() {
	rl := r.reload
	for len(rl.queue) > 0 && rl.queue[0].state != StateRunning {
		rl.queue = rl.queue[1:] // crashed or stopped meanwhile: its own restart covers it
	}
	if len(rl.queue) == 0 {
		r.endReload(fmt.Sprintf("%s reloaded: %s replaced, each one ready before the one it replaced was drained", rl.proc, strings.Join(rl.done, ", ")), "")
		return
	}
	old := rl.queue[0]
	rl.queue = rl.queue[1:]
	rep := &instance{proc: old.proc, n: old.n, name: old.name, color: old.color, stream: old.stream, hub: old.hub, fresh: !old.fresh, shared: true}
	port, err := r.portFor(rep)
	if err == nil && r.socketPort(rep) == 0 && !portFree(port) {
		err = fmt.Errorf("%s's replacement port %d is in use by another program (free it, or set port= or -p so that %s's ports are free)", old.name, port, rl.proc)
	}
	if err != nil {
		r.endReload("", fmt.Sprintf("reload of %s aborted: %v; the old instances keep serving", rl.proc, err))
		return
	}
	i := slices.Index(r.insts, old)
	r.insts = slices.Insert(r.insts, i+1, rep)
	rl.old, rl.rep = old, rep
	r.out.Event("reload of %s: starting a replacement for %s", rl.proc, old.name)
	r.start(rep)
}

// reloadReady is the replacement's ready: the old instance leaves.
func (r *Runner) reloadReady(rep *instance) {
	rl := r.reload
	rep.shared = false
	old := rl.old
	old.removed, old.shared = true, true
	r.out.Event("reload of %s: %s's replacement is ready (pid %d), draining the old one", rl.proc, old.name, rep.run.pid)
	if old.hasProcess() {
		r.stopInstance(old, "")
	} else {
		r.remove(old)
	}
}

// reloadRemoved is the old instance gone: on to the next.
func (r *Runner) reloadRemoved(old *instance) {
	rl := r.reload
	rl.done = append(rl.done, old.name)
	rl.old, rl.rep = nil, nil
	r.reloadNext()
}

// abortReload stops a replacement that failed; the old ones keep serving.
func (r *Runner) abortReload(why string) {
	rl := r.reload
	rep := rl.rep
	if rep != nil {
		rep.removed, rep.shared = true, true
		if rep.hasProcess() {
			r.stopInstance(rep, "")
		} else {
			r.remove(rep)
		}
	}
	r.endReload("", fmt.Sprintf("reload of %s aborted: %s; the old instances keep serving", rl.proc, why))
}

func (r *Runner) endReload(msg, errMsg string) {
	rl := r.reload
	r.reload = nil
	if errMsg != "" {
		r.out.Event("%s", errMsg)
		rl.reply <- answer{resp: socket.Response{Error: errMsg}}
		return
	}
	r.out.Event("%s", msg)
	rl.reply <- answer{resp: socket.Response{OK: true, Message: msg}}
}
