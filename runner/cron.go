package runner

import (
	"time"

	"github.com/robfig/cron/v3"

	"mhrun/formation"
	"mhrun/policy"
)

// cronJob is a process's cron-restart schedule; its timer reports to the
// supervisor, which restarts the running instances and arms the next tick.
type cronJob struct {
	proc  *formation.Process
	sched cron.Schedule
}

// armCron schedules the job's next tick.
func (r *Runner) armCron(j *cronJob) {
	d := time.Until(j.sched.Next(time.Now()))
	time.AfterFunc(d, func() {
		select {
		case r.crons <- j:
		case <-r.done:
		}
	})
}

// startCrons arms every cron-restart of the formation; the policy parser
// has validated the specs already.
func (r *Runner) startCrons() {
	for _, p := range r.f.Processes {
		if p.Policy.CronRestart == "" || p.Scale == 0 {
			continue
		}
		sched, err := policy.ParseSchedule(p.Policy.CronRestart)
		if err != nil {
			r.out.Event("%s: cron-restart %q: %v", p.Name, p.Policy.CronRestart, err)
			continue
		}
		r.armCron(&cronJob{proc: p, sched: sched})
	}
}

// onCron restarts the running instances of the job's process gracefully;
// such restarts never count as failures.
func (r *Runner) onCron(j *cronJob) {
	if r.stopping {
		return
	}
	for _, in := range r.insts {
		if in.proc == j.proc && in.state == StateRunning {
			r.out.Event("%s: cron-restart (%s), restarting", in.name, j.proc.Policy.CronRestart)
			r.stopInstance(in, "cron-restart")
		}
	}
	r.armCron(j)
}
