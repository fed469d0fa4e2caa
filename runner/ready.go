package runner

// A run's ready check, wired into the supervisor: what it needs set up
// before the run starts, the goroutine that waits for it within the
// ready-timeout (on the supervisor's clock), and the supervisor's answer
// to its result. The checks themselves are in probe.go.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"mhrun/policy"
	"mhrun/socket"
)

// readyEvent is a ready check's result for one run.
type readyEvent struct {
	inst *instance
	run  *run
	err  error
}

// prepareReady sets up what a ready check needs before the run starts: the
// notify socket (NOTIFY_SOCKET in its env) or the output tee for log:.
func (r *Runner) prepareReady(in *instance, run *run) error {
	if in.proc.Policy.Schedule != "" {
		return nil
	}
	switch rd := r.readyOf(in); rd.Kind {
	case policy.ReadyNotify:
		if err := os.MkdirAll(socket.RuntimeDir(), 0o700); err != nil {
			return fmt.Errorf("runtime dir for the notify socket: %w", err)
		}
		ns, err := newNotifySocket(socket.RuntimeDir())
		if err != nil {
			return err
		}
		run.notify = ns
		run.cmd.Env = append(run.cmd.Env, "NOTIFY_SOCKET="+ns.Path())
	case policy.ReadyLog:
		run.matcher = newLogMatcher(rd.Pattern)
	}
	return nil
}

// checkReady runs the instance's ready check in a goroutine that reports
// to the supervisor; it ends at ready-timeout or when the run ends.
func (r *Runner) checkReady(in *instance, run *run) {
	rd := r.readyOf(in)
	ctx, cancel := withTimeout(context.Background(), r.clock, in.proc.Policy.ReadyTimeout)
	run.cancel = cancel
	port := run.port
	env := run.cmd.Env
	go func() {
		var err error
		switch rd.Kind {
		case policy.ReadyNotify:
			err = waitClosed(ctx, run.notify.Ready())
		case policy.ReadyLog:
			err = waitClosed(ctx, run.matcher.Matched())
		default:
			var pids []int
			err = probeReady(ctx, r.clock, rd, port, r.f.Dir, env, func(cmd *exec.Cmd) error {
				err := r.startProbe(cmd)
				if err == nil {
					pids = append(pids, cmd.Process.Pid)
				}
				return err
			})
			r.forget(pids) // every try has been waited for by now
			for _, pid := range pids {
				r.guard.forget(pid)
			}
		}
		select {
		case r.ready <- readyEvent{in, run, err}:
		case <-r.done:
		}
	}()
}

// waitClosed waits for c to close, or for ctx to end (its cause).
func waitClosed(ctx context.Context, c <-chan struct{}) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// startProbe starts an exec: probe's process where the orphan reaper
// leaves it to its own Wait.
func (r *Runner) startProbe(cmd *exec.Cmd) error {
	return r.register(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
}

// forget drops pids from the ones the orphan reaper leaves alone.
func (r *Runner) forget(pids []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pid := range pids {
		delete(r.known, pid)
	}
}

// onReady moves a starting instance to running, or, when its check timed
// out, stops it as a failed start under its restart policy.
func (r *Runner) onReady(e readyEvent) {
	in := e.inst
	if e.run != in.run || in.state != StateStarting {
		return // the run ended or is stopping: the check no longer matters
	}
	e.run.cancel()
	if e.err == nil {
		r.out.Event("%s is ready (%s)", in.name, r.readyOf(in))
		r.markReady(in)
		return
	}
	if errors.Is(e.err, context.DeadlineExceeded) {
		r.out.Event("%s not ready after %s (%s): a failed start", in.name, in.proc.Policy.ReadyTimeout, r.readyOf(in))
	} else {
		r.out.Event("%s: ready check failed: %v", in.name, e.err)
	}
	in.lastExit = "not ready in time"
	if rl := r.reload; rl != nil && in == rl.rep {
		r.abortReload(in.name + "'s replacement was not ready after " + in.proc.Policy.ReadyTimeout.String())
		return
	}
	r.failStart(in)
}
