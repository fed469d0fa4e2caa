package runner

import (
	"context"
	"time"
)

// clock is the supervisor's time: what its policy waits on. A restart's
// backoff, the standby poll, a stop's grace, cron ticks, how long a run
// lasted (stable=, and whether an exit 127 came at once) and the ready
// check (ready-timeout, and the spacing and the bound of a probe's tries)
// all read it. What only watches the system keeps the real clock: the
// memory reads, the polls for a run's leftovers to be gone, a drain's
// settle (balance), the quiet time of watched files (watch), the sweep at
// the end.
//
// Tests give Run a fake clock through Options.clock, and step it to the
// timer they expect, so that a backoff of an hour or a grace that must
// run out costs them nothing while the children and sockets stay real;
// under testing/synctest the real clock is the bubble's fake one.
type clock interface {
	Now() time.Time
	// NewTimer is time.NewTimer: the timer, and the channel it fires on.
	NewTimer(d time.Duration) (timer, <-chan time.Time)
	// AfterFunc is time.AfterFunc: f runs in a goroutine of its own.
	AfterFunc(d time.Duration, f func()) timer
}

// timer is what the supervisor does with a timer of its clock; a
// *time.Timer is one.
type timer interface {
	Reset(d time.Duration) bool
	Stop() bool
}

// realClock is the time package's clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) (timer, <-chan time.Time) {
	t := time.NewTimer(d)
	return t, t.C
}

func (realClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }

// withTimeout is context.WithTimeout on clock c: ctx's cause is
// context.DeadlineExceeded once d has passed on c, context.Canceled once
// cancel is called. Read the outcome with context.Cause, which is the same
// for both clocks.
func withTimeout(ctx context.Context, c clock, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := c.(realClock); ok {
		return context.WithTimeout(ctx, d)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	t := c.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() { t.Stop(); cancel(context.Canceled) }
}
