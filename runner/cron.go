package runner

import (
	"time"

	"github.com/robfig/cron/v3"

	"mhrun/formation"
	"mhrun/policy"
)

// cronJob is a process's schedule= (a job: a run at each tick) or its
// cron-restart=; its timer reports to the supervisor, which acts and arms
// the next tick.
type cronJob struct {
	proc  *formation.Process
	sched cron.Schedule
	job   bool // schedule=, not cron-restart=
	next  time.Time
}

// armCron schedules the next tick and tells the job's instances when. A
// schedule with no next time (the cron library returns the zero time when
// it finds none within five years) is stopped with one event, never armed
// for a tick in the past: that would fire at once and forever. The policy
// parser refuses such specs, so this is a guard, not a path.
func (r *Runner) armCron(j *cronJob) {
	now := r.clock.Now()
	next, ok := nextTick(j.sched, now)
	j.next = next
	if j.job {
		for _, in := range r.insts {
			if in.proc == j.proc {
				in.next = next
			}
		}
	}
	if !ok {
		spec := j.proc.Policy.CronRestart
		if j.job {
			spec = j.proc.Policy.Schedule
		}
		r.out.Event("%s: schedule %q has no next time: it is stopped (fix the spec; mhrun check refuses it)", j.proc.Name, spec)
		return
	}
	r.clock.AfterFunc(next.Sub(now), func() {
		select {
		case r.crons <- j:
		case <-r.done:
		}
	})
}

// nextTick is sched's next time after now, and false when there is none:
// the zero time, or one not after now, which a correct schedule never gives.
func nextTick(sched cron.Schedule, now time.Time) (time.Time, bool) {
	next := sched.Next(now)
	if next.IsZero() || !next.After(now) {
		return time.Time{}, false
	}
	return next, true
}

// startCrons arms every schedule= and cron-restart= of the formation; the
// policy parser has validated the specs already. Times are in the local
// zone unless the spec sets CRON_TZ=.
func (r *Runner) startCrons() {
	for _, p := range r.f.Processes { // scale 0 too: a live scale up may come
		for _, c := range []struct {
			spec string
			job  bool
		}{{p.Policy.Schedule, true}, {p.Policy.CronRestart, false}} {
			if c.spec == "" {
				continue
			}
			sched, err := policy.ParseSchedule(c.spec)
			if err != nil {
				r.out.Event("%s: schedule %q: %v", p.Name, c.spec, err)
				continue
			}
			r.armCron(&cronJob{proc: p, sched: sched, job: c.job})
		}
	}
}

// onCron acts on a tick: a job runs, a cron-restart restarts the running
// instances gracefully (never counted as a failure).
func (r *Runner) onCron(j *cronJob) {
	if r.stopping {
		return
	}
	for _, in := range r.insts {
		if in.proc != j.proc {
			continue
		}
		switch {
		case j.job && in.hasProcess():
			r.out.Event("%s is still running: tick skipped", in.name)
		case j.job && in.state == StateScheduled:
			if ok, err := r.acquire(in); err != nil || !ok {
				r.out.Event("%s: tick skipped, its singleton lock is held elsewhere", in.name)
				continue
			}
			r.start(in)
		case !j.job && in.state == StateRunning:
			r.out.Event("%s: cron-restart (%s), restarting", in.name, j.proc.Policy.CronRestart)
			r.stopInstance(in, "cron-restart")
		}
	}
	r.armCron(j)
}

// jobExited puts a job back to wait for its next tick: its exit never stops
// the formation, and a failure is shown, not retried.
func (r *Runner) jobExited(in *instance, run *run, what string, code int) {
	run.close()
	in.release()
	in.state = StateScheduled
	next := "none (its schedule is stopped)"
	if !in.next.IsZero() {
		next = in.next.Format("2006-01-02 15:04:05")
	}
	if code == 0 {
		in.reason = ""
		r.out.Event("%s %s, next run %s", in.name, what, next)
		return
	}
	in.reason = "last run failed"
	r.out.Event("%s failed: %s, next run %s", in.name, what, next)
}
