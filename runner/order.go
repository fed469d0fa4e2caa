package runner

import (
	"mhrun/formation"
	"mhrun/policy"
)

// after= ordering. A process starts once every instance of each process
// it names is ready; a dependency with restart=never is a one-shot (a
// release phase, a migration) and counts as ready only once it has exited
// 0; a job, or a process outside this run, is no wait. A process stops
// before the ones it starts after.

// waitingFor lists the processes p still waits for.
func (r *Runner) waitingFor(p *formation.Process) []string {
	var out []string
	for _, name := range p.Policy.After {
		for _, in := range r.insts {
			if in.proc.Name == name && in.proc.Policy.Schedule == "" && !depReady(in) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// failedDependency names a process p waits for that will never be ready:
// one of its instances gave up or was stopped.
func (r *Runner) failedDependency(p *formation.Process) string {
	for _, name := range p.Policy.After {
		for _, in := range r.insts {
			if in.proc.Name == name && in.proc.Policy.Schedule == "" && (in.state == StateErrored || in.state == StateStopped) {
				return name
			}
		}
	}
	return ""
}

// hasLiveDependents reports whether a process that starts after p still
// has a process running: p must outlive it when the formation stops.
func (r *Runner) hasLiveDependents(p *formation.Process) bool {
	for _, in := range r.insts {
		if !in.hasProcess() {
			continue
		}
		for _, name := range in.proc.Policy.After {
			if name == p.Name {
				return true
			}
		}
	}
	return false
}

// advance starts the waiting instances whose dependencies are ready, and
// gives up on those whose dependencies never will be.
func (r *Runner) advance() {
	if r.stopping {
		return
	}
	for _, in := range r.insts {
		if in.state != StateWaiting {
			continue
		}
		if dep := r.failedDependency(in.proc); dep != "" {
			in.state = StateStopped
			in.reason = "not started: " + dep + " will not be ready"
			r.out.Event("%s not started: %s gave up or stopped", in.name, dep)
			continue
		}
		if len(r.waitingFor(in.proc)) == 0 {
			r.launch(in)
		}
	}
}

// depReady reports whether an instance counts as ready for its dependents.
func depReady(in *instance) bool {
	if in.state == StateExited {
		return true
	}
	return in.state == StateRunning && in.run.ready && in.proc.Policy.Restart != policy.RestartNever
}
