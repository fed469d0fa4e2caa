package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when a test advances it, for tests
// whose children and sockets are real, so that testing/synctest, whose
// clock stands still while a goroutine waits in a system call, cannot
// drive them. The test waits, on the real clock, for the code under test
// to arm the timer it expects (waitTimer: an event, not a guess), then
// advances to it: the timers due fire in order, a NewTimer's by a send on
// its channel, an AfterFunc's f in a goroutine of its own, as time's do.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	armed   []*fakeTimer
	changed chan struct{} // closed, and replaced, when a timer is armed
}

// fakeStart is where a fakeClock's time begins: a quarter of a second past
// a whole one, so that a cron tick, always on a whole second, is never
// "now".
var fakeStart = time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.Local)

func newFakeClock() *fakeClock {
	return &fakeClock{now: fakeStart, changed: make(chan struct{})}
}

type fakeTimer struct {
	c   *fakeClock
	due time.Time
	f   func()         // AfterFunc's
	ch  chan time.Time // NewTimer's
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) (timer, <-chan time.Time) {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arm(t, d)
	return t, t.ch
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) timer {
	t := &fakeTimer{c: c, f: f}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arm(t, d)
	return t
}

// arm sets t to fire d from now; one due already fires at once.
func (c *fakeClock) arm(t *fakeTimer, d time.Duration) {
	t.due = c.now.Add(d)
	if d <= 0 {
		c.fire(t)
		return
	}
	c.armed = append(c.armed, t)
	close(c.changed)
	c.changed = make(chan struct{})
}

// disarm takes t off the armed timers and drops a value it sent and
// nobody took, as Stop and Reset do since Go 1.23; it reports whether t
// was armed.
func (c *fakeClock) disarm(t *fakeTimer) bool {
	i := slices.Index(c.armed, t)
	if i >= 0 {
		c.armed = slices.Delete(c.armed, i, i+1)
	}
	if t.ch != nil {
		select {
		case <-t.ch:
		default:
		}
	}
	return i >= 0
}

func (c *fakeClock) fire(t *fakeTimer) {
	if t.f != nil {
		go t.f()
		return
	}
	select {
	case t.ch <- c.now:
	default:
	}
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.c.disarm(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.c.disarm(t)
	t.c.arm(t, d)
	return was
}

// advance moves the clock d on, firing every timer due on the way at its
// due time, earliest first.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.armed {
			if !t.due.After(end) && (next == nil || t.due.Before(next.due)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		c.disarm(next)
		c.now = next.due
		c.fire(next)
	}
	c.now = end
}

// pending is how far off each armed timer is, soonest first.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.armed {
		out = append(out, t.due.Sub(c.now))
	}
	slices.Sort(out)
	return out
}

// waitTimer waits until a timer is armed to fire between lo and hi from
// now, and returns how far off the soonest such is; the test fails if none is within 10
// seconds of real time.
func (c *fakeClock) waitTimer(t testing.TB, lo, hi time.Duration) time.Duration {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		found := false
		var soonest time.Duration
		for _, tm := range c.armed {
			if d := tm.due.Sub(c.now); d >= lo && d <= hi && (!found || d < soonest) {
				found, soonest = true, d
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if found {
			return soonest
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no timer armed %s to %s from now; armed: %v", lo, hi, c.pending())
		}
	}
}

// step waits for a timer between lo and hi from now, advances the clock
// to it and returns how far that was.
func (c *fakeClock) step(t testing.TB, lo, hi time.Duration) time.Duration {
	t.Helper()
	d := c.waitTimer(t, lo, hi)
	c.advance(d)
	return d
}

func TestFakeClock(t *testing.T) {
	c := newFakeClock()
	ran := make(chan string, 10)
	after := func(d time.Duration, name string) timer {
		return c.AfterFunc(d, func() { ran <- name })
	}
	tm, fired := c.NewTimer(time.Second)
	after(3*time.Second, "c")
	after(2*time.Second, "b")
	stopped := after(2*time.Second, "stopped")
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop of an armed AfterFunc did not report true once")
	}
	if got := c.pending(); fmt.Sprint(got) != "[1s 2s 3s]" {
		t.Errorf("pending %v, want [1s 2s 3s]", got)
	}
	c.advance(999 * time.Millisecond)
	select {
	case <-fired:
		t.Fatal("fired before its time")
	default:
	}
	c.advance(time.Millisecond)
	if at := <-fired; !at.Equal(fakeStart.Add(time.Second)) {
		t.Errorf("fired at %v, want a second on", at)
	}
	// a Reset drops what the timer sent and nobody took
	tm.Reset(0)
	if tm.Reset(time.Second) {
		t.Error("Reset of a timer that fired reported it armed")
	}
	select {
	case <-fired:
		t.Fatal("a value from before the Reset")
	default:
	}
	// the timer and b are both due at 2s: step goes there, no further
	if d := c.step(t, 0, time.Hour); d != time.Second {
		t.Errorf("step went %s, want 1s to the nearest timer", d)
	}
	<-fired
	if name := <-ran; name != "b" {
		t.Errorf("%s ran at 2s, want b", name)
	}
	c.advance(time.Hour)
	if name := <-ran; name != "c" {
		t.Errorf("%s ran, want c", name)
	}
	if c.Now() != fakeStart.Add(time.Hour+2*time.Second) {
		t.Errorf("now %v", c.Now())
	}
	if len(c.pending()) != 0 || len(ran) != 0 {
		t.Errorf("pending %v; %d more ran (the stopped one?)", c.pending(), len(ran))
	}

	// waitTimer waits for a timer that another goroutine arms later
	go func() { c.AfterFunc(5*time.Minute, func() {}) }()
	if d := c.waitTimer(t, time.Minute, time.Hour); d != 5*time.Minute {
		t.Errorf("waitTimer = %s", d)
	}
}

func TestWithTimeoutFake(t *testing.T) {
	c := newFakeClock()
	ctx, cancel := withTimeout(t.Context(), c, time.Minute)
	defer cancel()
	c.advance(time.Minute - 1)
	if ctx.Err() != nil {
		t.Fatal("ended early")
	}
	c.advance(1)
	<-ctx.Done()
	if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cause %v, want %v", err, context.DeadlineExceeded)
	}
	ctx, cancel = withTimeout(t.Context(), c, time.Minute)
	cancel()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cause %v, want %v", err, context.Canceled)
	}
	if len(c.pending()) != 0 {
		t.Errorf("the timeout's timer is still armed after cancel: %v", c.pending())
	}
}
