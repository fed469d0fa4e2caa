package runner

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"mhrun/formation"
	"mhrun/output"
	"mhrun/policy"
)

// scheduleFunc is a cron.Schedule from a function.
type scheduleFunc func(time.Time) time.Time

func (f scheduleFunc) Next(t time.Time) time.Time { return f(t) }

func TestNextTick(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	daily, err := policy.ParseSchedule("CRON_TZ=UTC 0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		sched interface{ Next(time.Time) time.Time }
		want  time.Time
		ok    bool
	}{
		{"daily", daily, time.Date(2026, 3, 2, 3, 0, 0, 0, time.UTC), true},
		{"zero", scheduleFunc(func(time.Time) time.Time { return time.Time{} }), time.Time{}, false},
		{"now", scheduleFunc(func(t time.Time) time.Time { return t }), time.Time{}, false},
		{"past", scheduleFunc(func(t time.Time) time.Time { return t.Add(-time.Hour) }), time.Time{}, false},
		{"later", scheduleFunc(func(t time.Time) time.Time { return t.Add(time.Second) }), now.Add(time.Second), true},
	} {
		got, ok := nextTick(c.sched, now)
		if !got.Equal(c.want) || ok != c.ok {
			t.Errorf("%s: nextTick = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// Regression: a schedule whose Next was the zero time (February 30) was
// armed for a tick in the past, so it fired at once and forever: a job
// logged "tick skipped" with "next run 0001-01-01" in a loop and a
// cron-restart restarted its process in a tight loop. Now the schedule is
// stopped with one event and never fires.
func TestRegressionCronWithoutNextTimeStops(t *testing.T) {
	for _, job := range []bool{true, false} {
		var buf bytes.Buffer
		p := &formation.Process{Name: "digest", Scale: 1, Policy: policy.Default()}
		if job {
			p.Policy.Schedule = "0 0 30 2 *"
		} else {
			p.Policy.CronRestart = "0 0 30 2 *"
		}
		clk := newFakeClock()
		in := &instance{proc: p, n: 1, name: "digest.1", next: clk.Now()}
		r := &Runner{
			out:   output.New(&buf, output.Options{NameWidth: 8}),
			insts: []*instance{in},
			crons: make(chan *cronJob, 1),
			done:  make(chan struct{}),
			clock: clk,
		}
		r.armCron(&cronJob{proc: p, job: job, sched: scheduleFunc(func(time.Time) time.Time { return time.Time{} })})
		// armed for no time at all, it can never fire
		if armed := clk.pending(); len(armed) != 0 {
			t.Errorf("job=%v: a schedule without a next time armed timers %v", job, armed)
		}
		close(r.done)
		r.out.Close()
		out := buf.String()
		if n := strings.Count(out, "has no next time"); n != 1 {
			t.Errorf("job=%v: %d events about the schedule, want 1:\n%s", job, n, out)
		}
		if !strings.Contains(out, `digest: schedule "0 0 30 2 *" has no next time: it is stopped`) {
			t.Errorf("job=%v: event does not name the process and spec:\n%s", job, out)
		}
		if job && !in.next.IsZero() {
			t.Errorf("the job's next run is %v, want none", in.next)
		}
	}
}
