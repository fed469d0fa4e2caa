package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mhrun/attach"
	"mhrun/balance"
	"mhrun/formation"
	"mhrun/logfile"
	"mhrun/output"
	"mhrun/policy"
	"mhrun/proctree"
	"mhrun/socket"
)

// Requests from the control socket reach the supervisor as messages with a
// reply channel; the supervisor answers from the state it owns. Streams
// (logs -f, connect) then run on the connection's goroutine, through the
// logbook and the instance's hub, which have locks of their own.

// request is one control request waiting for the supervisor.
type request struct {
	req   socket.Request
	reply chan answer
}

// answer is the supervisor's reply; hub and keep serve the streams.
type answer struct {
	resp socket.Response
	hub  *attach.Hub       // attach: the instance's terminal
	name string            // attach: the instance
	keep func(string) bool // logs: which names to show
}

// control is the socket.Handler the runner gives its server.
type control struct{ r *Runner }

// ask hands a request to the supervisor and waits for its answer.
func (r *Runner) ask(ctx context.Context, req socket.Request) (answer, bool) {
	q := request{req: req, reply: make(chan answer, 1)}
	if r.o.answered != nil {
		defer func(t0 time.Time) { r.o.answered(req.Cmd, time.Since(t0)) }(time.Now())
	}
	select {
	case r.requests <- q:
	case <-r.loopDone:
		return answer{}, false
	case <-ctx.Done():
		return answer{}, false
	}
	// The supervisor answers every request it took, a reload when it ends
	// (stopAll ends one too): waiting for that beats a race with ctx, which
	// quit itself cancels.
	return <-q.reply, true
}

// Serve answers one request on c.
func (h control) Serve(ctx context.Context, req socket.Request, c *socket.Conn) {
	a, ok := h.r.ask(ctx, req)
	if !ok && req.Cmd == socket.CmdQuit { // the supervisor is done: what is left is the runner's exit
		h.r.serveQuit(ctx, c, socket.Response{OK: true, Stream: true, Message: "the formation is already stopping"})
		return
	}
	if !ok {
		c.Reply(socket.Response{Error: "the formation is stopping"})
		return
	}
	if !a.resp.OK {
		c.Reply(a.resp)
		return
	}
	switch req.Cmd {
	case socket.CmdLogs:
		h.r.serveLogs(ctx, c, req, a.keep)
	case socket.CmdAttach:
		h.r.serveAttach(ctx, c, req, a.hub, a.name)
	case socket.CmdQuit:
		h.r.serveQuit(ctx, c, a.resp)
	case socket.CmdStatus:
		h.r.stats.fill(a.resp.Status)
		c.Reply(a.resp)
	default:
		c.Reply(a.resp)
	}
}

// handle is the supervisor's side of a request.
func (r *Runner) handle(req socket.Request) answer {
	fail := func(format string, args ...any) answer {
		return answer{resp: socket.Response{Error: fmt.Sprintf(format, args...)}}
	}
	ok := func(format string, args ...any) answer {
		return answer{resp: socket.Response{OK: true, Message: fmt.Sprintf(format, args...)}}
	}
	if r.stopping && req.Cmd != socket.CmdStatus && req.Cmd != socket.CmdLogs && req.Cmd != socket.CmdAttach && req.Cmd != socket.CmdQuit {
		return fail("the formation is stopping")
	}
	switch req.Cmd {
	case socket.CmdStatus:
		return answer{resp: socket.Response{OK: true, Status: r.status()}}
	case socket.CmdQuit: // answered on the connection until the formation has stopped (serveQuit)
		resp := socket.Response{OK: true, Stream: true, Message: "stopping the formation", StopWithin: r.stopBound()}
		if r.stopping {
			resp.Message = "the formation is already stopping" // a second interrupt would kill
		} else {
			r.interrupt("quit request")
		}
		return answer{resp: resp}
	case socket.CmdScale:
		if r.reload != nil {
			return fail("a reload of %s is under way: scale when it is done", r.reload.proc)
		}
		msg, err := r.scale(req.Args)
		if err != nil {
			return fail("%v", err)
		}
		return ok("%s", msg)
	case socket.CmdRestart, socket.CmdStop, socket.CmdStart:
		msg, err := r.command(req.Cmd, req.Args)
		if err != nil {
			return fail("%v", err)
		}
		return ok("%s", msg)
	case socket.CmdSignal:
		msg, err := r.sendSignal(req.Args)
		if err != nil {
			return fail("%v", err)
		}
		return ok("%s", msg)
	case socket.CmdLogs:
		keep, err := r.nameFilter(req.Args)
		if err != nil {
			return fail("%v", err)
		}
		return answer{resp: socket.Response{OK: true, Stream: true}, keep: keep}
	case socket.CmdAttach:
		if len(req.Args) != 1 {
			return fail("connect takes one instance, e.g. web or web.2")
		}
		target := req.Args[0]
		if !strings.Contains(target, ".") {
			target += ".1"
		}
		ins, err := r.resolve([]string{target})
		if err != nil {
			return fail("%v", err)
		}
		if ins[0].proc.Policy.Pipes {
			return fail("%s has output=pipes: no terminal to connect to; follow its output with `mhrun logs -f %s`, or set output=pty", ins[0].name, ins[0].name)
		}
		return answer{resp: socket.Response{OK: true, Stream: true}, hub: ins[0].hub, name: ins[0].name}
	case socket.CmdSave:
		return r.save(req.Args)
	}
	return fail("unknown command %q (want status, scale, restart, stop, start, signal, reload, logs, attach, quit or save)", req.Cmd)
}

// save answers mhrun save, which writes the policy file itself: without
// args, what it needs (the file, the sum of what the formation read, the
// live scales); with OLD NEW, the news that it replaced the file whose
// sum was OLD by one whose sum is NEW, taken only while the sum is OLD,
// so that the next save compares the disk with what the last one wrote.
func (r *Runner) save(args []string) answer {
	f := r.f
	switch len(args) {
	case 0:
		s := &socket.Save{Policy: f.PolicyFile, Sum: f.PolicySum, Procfile: f.AllNames, Processes: []socket.Scale{}}
		for _, p := range f.Processes {
			s.Processes = append(s.Processes, socket.Scale{Name: p.Name, Scale: p.Scale, Max: p.FromMax})
		}
		return answer{resp: socket.Response{OK: true, Save: s}}
	case 2:
		if args[0] != f.PolicySum {
			return answer{resp: socket.Response{Error: "the policy file was saved by another client meanwhile"}}
		}
		f.PolicySum = args[1]
		return answer{resp: socket.Response{OK: true, Message: "noted"}}
	}
	return answer{resp: socket.Response{Error: "save takes no arguments, or the sums of the policy file before and after a write"}}
}

// status is one row per instance, from the supervisor's state only: the
// CPU and RSS of each tree are read from /proc on the connection's
// goroutine (statusSampler.fill), never in the loop.
func (r *Runner) status() []socket.Instance {
	stats := map[string]map[string]balance.Stats{}
	out := make([]socket.Instance, 0, len(r.insts))
	for _, in := range r.insts {
		row := socket.Instance{
			Name: in.name, Process: in.proc.Name, N: in.n, State: string(in.state),
			Restarts: in.restarts, LastExit: in.lastExit, Reason: in.reason,
			Port: in.proc.Port(r.f.BasePort, in.n), Next: in.next,
		}
		if in.proc.Policy.Schedule == "" {
			row.Next = time.Time{}
		}
		if in.run != nil {
			row.Port = in.run.port
			row.Conns, row.Served = r.poolStats(in, stats)
		}
		if in.hasProcess() && !in.run.exited {
			row.PID, row.Started = in.run.pid, in.run.started
		}
		row.Ready = in.state == StateRunning && in.run.ready
		row.Balanced = r.balancer(in) != nil
		out = append(out, row)
	}
	return out
}

// statusSampler fills in the CPU% and RSS of status rows. CPU% is over
// the time since the last status of the same process (since its start
// for the first), so that top's refreshes show the present.
type statusSampler struct {
	mu   sync.Mutex
	s    proctree.Sampler
	last map[int]cpuMark // by pid, the processes of the last status
}

type cpuMark struct {
	at  time.Time
	cpu time.Duration
}

// fill reads every row's tree once and sets its RSS and CPU%.
func (ss *statusSampler) fill(rows []socket.Instance) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var roots []int
	for _, row := range rows {
		if row.PID > 0 {
			roots = append(roots, row.PID)
		}
	}
	if len(roots) == 0 {
		return
	}
	samples := ss.s.Sample(roots)
	now := time.Now()
	next := make(map[int]cpuMark, len(roots))
	for i := range rows {
		row := &rows[i]
		s, ok := samples[row.PID]
		if row.PID == 0 || !ok {
			continue
		}
		row.RSS = s.RSS
		row.CPUTime = s.CPU.Seconds()
		since, was := row.Started, time.Duration(0)
		if m, ok := ss.last[row.PID]; ok {
			since, was = m.at, m.cpu
		}
		if d := now.Sub(since); d > 0 {
			row.CPU = 100 * float64(s.CPU-was) / float64(d)
		}
		next[row.PID] = cpuMark{now, s.CPU}
	}
	ss.last = next
}

// resolve turns names (web, web.2) into instances, with errors that say
// what exists.
func (r *Runner) resolve(args []string) ([]*instance, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("name a process or an instance, e.g. web or web.2")
	}
	var out []*instance
	for _, a := range args {
		name, num, hasNum := strings.Cut(a, ".")
		p := r.f.Process(name)
		if p == nil {
			return nil, unknownProcess(a, r.f.Names())
		}
		var of []*instance
		for _, in := range r.insts {
			if in.proc == p && !in.removed {
				of = append(of, in)
			}
		}
		if !hasNum {
			if len(of) == 0 {
				return nil, fmt.Errorf("%s has no instances (scale 0): mhrun scale %s=1 starts one", name, name)
			}
			out = append(out, of...)
			continue
		}
		n, err := strconv.Atoi(num)
		i := slices.IndexFunc(of, func(in *instance) bool { return in.n == n })
		if err != nil || i < 0 {
			return nil, fmt.Errorf("no instance %s: %s", a, instancesOf(name, len(of)))
		}
		out = append(out, of[i])
	}
	return out, nil
}

func instancesOf(name string, n int) string {
	switch n {
	case 0:
		return name + " has no instances (scale 0)"
	case 1:
		return name + " has instance 1 only"
	}
	return fmt.Sprintf("%s has instances 1–%d", name, n)
}

// unknownProcess is the error for NAME or NAME.N whose process does not exist.
func unknownProcess(a string, names []string) error {
	name, _, _ := strings.Cut(a, ".")
	return formation.UnknownProcess(name, names)
}

// nameFilter is which lines `logs NAME…` shows: a process's instances, an
// instance, and always mhrun's own events about them.
func (r *Runner) nameFilter(args []string) (func(string) bool, error) {
	if len(args) == 0 {
		return func(string) bool { return true }, nil
	}
	want := map[string]bool{}
	for _, a := range args {
		name, _, hasNum := strings.Cut(a, ".")
		if r.f.Process(name) == nil {
			return nil, unknownProcess(a, r.f.Names())
		}
		if hasNum {
			if _, err := r.resolve([]string{a}); err != nil {
				return nil, err
			}
		}
		want[a] = true
	}
	return func(n string) bool {
		if want[n] {
			return true
		}
		p, _, _ := strings.Cut(n, ".")
		return want[p]
	}, nil
}

// command is restart, stop or start on processes or instances.
func (r *Runner) command(cmd socket.Command, args []string) (string, error) {
	ins, err := r.resolve(args)
	if err != nil {
		return "", err
	}
	var done []string
	for _, in := range ins {
		var did bool
		switch cmd {
		case socket.CmdRestart:
			did = r.requestRestart(in)
		case socket.CmdStop:
			did = r.requestStop(in)
		case socket.CmdStart:
			did = r.requestStart(in)
		}
		if did {
			done = append(done, in.name)
		}
	}
	if len(done) == 0 {
		return "", fmt.Errorf("%s already running: mhrun restart %s restarts it", strings.Join(args, ", "), strings.Join(args, " "))
	}
	past := map[socket.Command]string{socket.CmdRestart: "restarting", socket.CmdStop: "stopping", socket.CmdStart: "starting"}[cmd]
	return past + " " + strings.Join(done, ", "), nil
}

// sendSignal is `mhrun signal NAME[.N]… SIG`.
func (r *Runner) sendSignal(args []string) (string, error) {
	if len(args) < 2 {
		return "", fmt.Errorf("want targets then a signal, e.g. mhrun signal web.2 HUP")
	}
	sig, name, err := policy.ParseSendSignal(args[len(args)-1])
	if err != nil {
		return "", err
	}
	ins, err := r.resolve(args[:len(args)-1])
	if err != nil {
		return "", err
	}
	var sent []string
	for _, in := range ins {
		if in.hasProcess() {
			in.run.signal(sig)
			sent = append(sent, in.name)
		}
	}
	if len(sent) == 0 {
		return "", fmt.Errorf("no running instance among %s", strings.Join(args[:len(args)-1], ", "))
	}
	return fmt.Sprintf("sent %s to %s", name, strings.Join(sent, ", ")), nil
}

// scale is `mhrun scale web=4 worker=0`: new instances start with their
// own PORT; scaling down stops the highest-numbered gracefully.
func (r *Runner) scale(args []string) (string, error) {
	if len(args) == 0 {
		return "", fmt.Errorf("want NAME=N, e.g. mhrun scale web=4")
	}
	want, err := formation.ParseScale(args)
	if err != nil {
		return "", err
	}
	type change struct {
		p       *formation.Process
		n       int
		fromMax bool
	}
	var changes []change
	for _, a := range args {
		for _, item := range strings.Split(a, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(item), "=")
			if name == "" {
				continue
			}
			p := r.f.Process(name)
			if p == nil {
				return "", unknownProcess(name, r.f.Names())
			}
			n := want[name]
			fromMax := n == policy.ScaleMax
			if fromMax {
				n = runtime.NumCPU()
			}
			if err := policy.CheckScale(name, p.Policy, n); err != nil {
				return "", err
			}
			if last := p.Port(r.f.BasePort, n); n > 0 && last > 65535 {
				return "", fmt.Errorf("%s.%d would get PORT %d, past 65535", name, n, last)
			}
			changes = append(changes, change{p, n, fromMax})
		}
	}
	var msgs []string
	for _, c := range changes {
		msg, err := r.scaleTo(c.p, c.n)
		if err != nil {
			return strings.Join(append(msgs, err.Error()), "; "), err
		}
		c.p.FromMax = c.fromMax // what mhrun save writes: max, or the count
		msgs = append(msgs, msg)
	}
	return strings.Join(msgs, "; "), nil
}

// scaleTo sets a process's instance count.
func (r *Runner) scaleTo(p *formation.Process, n int) (string, error) {
	var of []*instance
	last := -1
	for i, in := range r.insts {
		if in.proc == p && !in.removed {
			of = append(of, in)
			last = i
		}
	}
	if last < 0 { // none yet: after the instances of the processes before it
		last = len(r.insts) - 1
		for i, in := range r.insts {
			if in.proc.Index > p.Index {
				last = i - 1
				break
			}
		}
	}
	cur := len(of)
	if n > cur {
		for _, in := range r.insts {
			if in.proc == p && in.removed && in.n <= n {
				return "", fmt.Errorf("%s is still stopping after a scale down: scale up again once it is gone", in.name)
			}
		}
	}
	p.Scale = n
	switch {
	case n > cur:
		var names []string
		added := make([]*instance, 0, n-cur)
		for k := cur + 1; k <= n; k++ {
			in := &instance{proc: p, n: k, name: p.Instance(k), color: p.Index, hub: attach.New()}
			in.stream = r.out.Stream(in.name, in.color)
			added = append(added, in)
			names = append(names, in.name)
		}
		r.insts = slices.Insert(r.insts, last+1, added...)
		for _, in := range added {
			if p.Policy.Schedule != "" {
				in.state = StateScheduled
			} else {
				r.launch(in)
			}
		}
		r.out.Event("%s scaled to %d: %s added", p.Name, n, strings.Join(names, ", "))
		return fmt.Sprintf("%s scaled to %d (%s started)", p.Name, n, strings.Join(names, ", ")), nil
	case n < cur:
		var names []string
		for k := cur; k > n; k-- {
			in := of[k-1]
			in.removed = true
			names = append(names, in.name)
			if in.hasProcess() {
				r.stopInstance(in, "")
			} else {
				in.gen++
				in.state = StateStopped
				r.remove(in)
			}
		}
		r.out.Event("%s scaled to %d: stopping %s", p.Name, n, strings.Join(names, ", "))
		return fmt.Sprintf("%s scaled to %d (%s stopping)", p.Name, n, strings.Join(names, ", ")), nil
	}
	return fmt.Sprintf("%s already has %d", p.Name, n), nil
}

// remove forgets an instance scaled away (or replaced by a reload) once
// it has no process.
func (r *Runner) remove(in *instance) {
	in.release()
	if !in.shared {
		in.hub.Close(in.name + " was scaled away")
		in.stream.Flush()
	}
	if in.run != nil {
		in.run.close()
	}
	r.insts = slices.DeleteFunc(r.insts, func(x *instance) bool { return x == in })
	if rl := r.reload; rl != nil && in == rl.old {
		r.reloadRemoved(in)
	}
}

// serveLogs sends the recent lines, then, with -f, the new ones until the
// client leaves or the formation stops. The recent lines come from memory
// and, when it holds fewer than asked, from the log files before them;
// either way the same lines are shown (shown), in the files' format.
func (r *Runner) serveLogs(ctx context.Context, c *socket.Conn, req socket.Request, keep func(string) bool) {
	n := req.Lines // the client sends its -n, 100 by default; 0 means none
	if n < 0 {
		n = 0
	}
	show := shown(keep)
	h, sub := r.logs.recent(n, show, req.Follow)
	if sub != nil {
		defer r.logs.unfollow(sub)
	}
	if c.Reply(socket.Response{OK: true, Stream: true}) != nil {
		return
	}
	var b []byte
	send := func(t time.Time, name string, stderr bool, text []byte) error {
		b = logfile.AppendLine(b[:0], t, time.Local, name, stderr, text)
		return c.WriteFrame(socket.FrameData, append(b, '\n'))
	}
	if len(h.lines) < n && r.o.LogDir != "" {
		older, err := olderLines(r.o.LogDir, n-len(h.lines), h, show)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.WriteFrame(socket.FrameNotice, []byte(fmt.Sprintf("older lines not read: %v", err)))
		}
		for _, l := range older {
			if send(l.Time, l.Name, l.Stderr, []byte(l.Text)) != nil {
				return
			}
		}
	}
	for _, l := range h.lines {
		if send(l.Time, l.Name, l.Stderr, l.Text) != nil {
			return
		}
	}
	if sub == nil {
		c.WriteFrame(socket.FrameEnd, []byte("end of recent output"))
		return
	}
	left := make(chan struct{})
	go func() { // the client leaves by closing or a detach frame
		defer close(left)
		for {
			if _, _, err := c.ReadFrame(); err != nil {
				return
			}
		}
	}()
	for {
		select {
		case l, ok := <-sub.c:
			if !ok {
				c.WriteFrame(socket.FrameEnd, []byte("the formation stopped"))
				return
			}
			if d := r.logs.takeDropped(sub); d > 0 {
				c.WriteFrame(socket.FrameNotice, []byte(fmt.Sprintf("%d lines dropped: this client did not keep up", d)))
			}
			if !show(l.Name, l.Text) {
				continue
			}
			if send(l.Time, l.Name, l.Stderr, l.Text) != nil {
				return
			}
		case <-left:
			return
		case <-ctx.Done():
			c.WriteFrame(socket.FrameEnd, []byte("the formation stopped"))
			return
		}
	}
}

// olderLines reads the combined log in dir backwards for the last n lines
// that show accepts among those older than every line memory holds (h),
// oldest first: a quiet process's lines are found however much its
// neighbours wrote since. The files stamp lines to the millisecond, so of
// the lines of oldest's millisecond the newest h.sameMilli are memory's.
func olderLines(dir string, n int, h held, show func(string, []byte) bool) ([]logfile.Line, error) {
	var out []logfile.Line
	skip := h.sameMilli
	err := logfile.Backward(dir, func(s string) bool {
		l, ok := logfile.ParseLine(s)
		if !ok {
			return true
		}
		if h.count > 0 {
			if l.Time.After(h.oldest) {
				return true
			}
			if l.Time.Equal(h.oldest) && skip > 0 {
				skip--
				return true
			}
		}
		if show(l.Name, []byte(l.Text)) {
			out = append(out, l)
		}
		return len(out) < n
	})
	slices.Reverse(out)
	return out, err
}

// shown is which lines `logs NAME…` shows: those of the processes and
// instances keep names, and mhrun's events about them. An event names its
// instance or process first ("web.2 exited with code 1", "web.2: restart
// 3 in 4s", "web scaled to 2"), or is a reload's ("reload of web: …").
func shown(keep func(string) bool) func(name string, text []byte) bool {
	return func(name string, text []byte) bool {
		if keep(name) {
			return true
		}
		if name != output.EventName {
			return false
		}
		text = bytes.TrimPrefix(text, []byte("reload of "))
		first, _, _ := bytes.Cut(text, []byte(" "))
		return keep(strings.TrimSuffix(string(first), ":"))
	}
}

// quitReport is how often a quit client hears what is still stopping.
const quitReport = 3 * time.Second

// serveQuit keeps a quit client's connection while the formation stops:
// every quitReport what is still stopping, then, once the supervisor is
// done and the runner shuts its socket (ctx), how the formation ended. The
// runner exits right after; the client waits for its pid.
func (r *Runner) serveQuit(ctx context.Context, c *socket.Conn, resp socket.Response) {
	if c.Reply(resp) != nil {
		return
	}
	t0 := time.Now()
	tick := time.NewTicker(quitReport)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			msg := r.stillStopping(ctx, time.Since(t0).Round(time.Second))
			if c.WriteFrame(socket.FrameNotice, []byte(msg)) != nil {
				return // the client left (quit --no-wait, Ctrl-C)
			}
		case <-ctx.Done():
			msg := "the formation stopped"
			select {
			case <-r.loopDone: // r.code is final
				if r.code != 0 {
					msg = fmt.Sprintf("the formation stopped: a process gave up, the runner exits with code %d", r.code)
				}
			default:
			}
			c.WriteFrame(socket.FrameEnd, []byte(msg))
			return
		}
	}
}

// stillStopping says what a stop of the formation still waits for: the
// instances stopping, then those whose turn comes after them (after=).
func (r *Runner) stillStopping(ctx context.Context, d time.Duration) string {
	a, ok := r.ask(ctx, socket.Request{Cmd: socket.CmdStatus})
	if !ok {
		return fmt.Sprintf("still stopping after %s: processes that outlived their instances, the log files", d)
	}
	var now, then []string
	for _, row := range a.resp.Status {
		switch State(row.State) {
		case StateStopping:
			now = append(now, row.Name)
		case StateRunning, StateStarting:
			then = append(then, row.Name)
		}
	}
	msg := fmt.Sprintf("still stopping after %s", d)
	if len(now) > 0 {
		msg += ": " + strings.Join(now, ", ")
	}
	if len(then) > 0 {
		msg += "; waiting their turn: " + strings.Join(then, ", ")
	}
	return msg
}

// stopBound is the longest a stop of the formation may take: every
// process's grace in turn (a balanced one's drain runs inside it) and the
// wait for its killed processes to vanish, then the sweep of what
// outlived its instance.
func (r *Runner) stopBound() time.Duration {
	var d, longest time.Duration
	for _, p := range r.f.Processes {
		g := p.Policy.Grace // once, balanced or not: the drain runs inside it
		d += g + killWait
		longest = max(longest, g)
	}
	return d + longest
}

// serveAttach bridges a client's terminal and an instance's pty.
func (r *Runner) serveAttach(ctx context.Context, c *socket.Conn, req socket.Request, h *attach.Hub, name string) {
	recent, sub, ok := h.Attach()
	if !ok {
		c.Reply(socket.Response{Error: name + " is gone"})
		return
	}
	defer h.Detach(sub)
	if c.Reply(socket.Response{OK: true, Stream: true, Message: "attached to " + name}) != nil {
		return
	}
	h.Resize(req.Cols, req.Rows)
	if len(recent) > 0 && c.WriteFrame(socket.FrameData, recent) != nil {
		return
	}
	left := make(chan struct{})
	go func() {
		defer close(left)
		for {
			typ, p, err := c.ReadFrame()
			if err != nil || typ == socket.FrameDetach {
				return
			}
			switch typ {
			case socket.FrameData:
				if !h.Input(p) {
					c.WriteFrame(socket.FrameNotice, []byte(name+" is not running: keys dropped"))
				}
			case socket.FrameResize:
				if cols, rows, err := socket.ParseResize(p); err == nil {
					h.Resize(cols, rows)
				}
			}
		}
	}()
	for {
		select {
		case p, ok := <-sub.Data():
			if !ok {
				for msg := range sub.Notices() {
					c.WriteFrame(socket.FrameEnd, []byte(msg))
					return
				}
				c.WriteFrame(socket.FrameEnd, []byte("the formation stopped"))
				return
			}
			if c.WriteFrame(socket.FrameData, p) != nil {
				return
			}
		case msg, ok := <-sub.Notices():
			if ok {
				c.WriteFrame(socket.FrameNotice, []byte(msg))
			}
		case <-left:
			return
		case <-ctx.Done():
			c.WriteFrame(socket.FrameEnd, []byte("the formation stopped"))
			return
		}
	}
}
