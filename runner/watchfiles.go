package runner

import (
	"time"

	"mhrun/watch"
)

// watchDebounce is how long matching changes must be quiet before a
// restart: an editor's save or a checkout is one burst, one restart.
const watchDebounce = 300 * time.Millisecond

// startWatch watches the project for the processes with watch= globs; nil
// when none has any.
func (r *Runner) startWatch() (*watch.Watcher, error) {
	globs := map[string][]string{}
	for _, p := range r.f.Processes {
		if len(p.Policy.Watch) > 0 && p.Scale > 0 {
			globs[p.Name] = p.Policy.Watch
		}
	}
	if len(globs) == 0 {
		return nil, nil
	}
	return watch.New(r.f.Dir, globs, watchDebounce)
}

// onWatch restarts a process whose watched files changed: running
// instances gracefully, and ones that crashed, gave up or finished at once
// with their failure count cleared, so that a fix brings them back.
func (r *Runner) onWatch(name string) {
	if r.stopping {
		return
	}
	for _, in := range r.insts {
		if in.proc.Name != name {
			continue
		}
		switch in.state {
		case StateRunning, StateStarting:
			r.out.Event("%s: watched files changed, restarting", in.name)
			r.stopInstance(in, "watch")
		case StateBackoff, StateErrored, StateExited:
			r.out.Event("%s: watched files changed, starting again", in.name)
			in.gen++
			in.inRow = 0
			r.launch(in) // its singleton lock and its after= wait, as at first
		}
	}
}
