package watch

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
)

// These tests drive the loop with fake events in a synctest bubble, so the
// debounce timing is exact rather than hoped for.

type fakeFS struct{}

func (fakeFS) Add(string) error    { return nil }
func (fakeFS) Remove(string) error { return nil }
func (fakeFS) Close() error        { return nil }

type fakeRun struct {
	w      *Watcher
	events chan fsnotify.Event
	errs   chan error
}

func startFake(t *testing.T, debounce time.Duration, globs map[string][]string) *fakeRun {
	r := &fakeRun{
		w:      newWatcher("/proj", globs, debounce, fakeFS{}),
		events: make(chan fsnotify.Event),
		errs:   make(chan error),
	}
	r.w.start(r.events, r.errs)
	t.Cleanup(func() { r.w.Close() })
	return r
}

func (r *fakeRun) write(rel string) {
	r.events <- fsnotify.Event{Name: "/proj/" + rel, Op: fsnotify.Write}
}

// received returns what C delivers once every goroutine in the bubble is
// blocked, without advancing time.
func (r *fakeRun) received() []string {
	var got []string
	for {
		synctest.Wait()
		select {
		case name := <-r.w.C():
			got = append(got, name)
		default:
			return got
		}
	}
}

func wantReceived(t *testing.T, r *fakeRun, want ...string) {
	t.Helper()
	got := r.received()
	if len(got) != len(want) {
		t.Fatalf("at %v: received %q, want %q", time.Now(), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("at %v: received %q, want %q", time.Now(), got, want)
		}
	}
}

func TestDebounceDeliversWhenQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startFake(t, 300*time.Millisecond, map[string][]string{"p": {"*.go"}})
		r.write("a.go")
		time.Sleep(299 * time.Millisecond)
		wantReceived(t, r)
		time.Sleep(time.Millisecond)
		wantReceived(t, r, "p")
		time.Sleep(time.Hour)
		wantReceived(t, r)
	})
}

func TestDebounceBurstExtends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startFake(t, 300*time.Millisecond, map[string][]string{"p": {"*.go"}})
		// A save every 200ms for two seconds never goes quiet for 300ms.
		for range 10 {
			r.write("a.go")
			time.Sleep(200 * time.Millisecond)
			wantReceived(t, r)
		}
		time.Sleep(100 * time.Millisecond)
		wantReceived(t, r, "p")
	})
}

func TestDebounceSlowReaderGetsOneName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startFake(t, 300*time.Millisecond, map[string][]string{"p": {"*.go"}, "q": {"*.rb"}})
		// Two separate bursts for p while nobody reads C: one restart is
		// enough, since the second would follow the first at once.
		r.write("a.go")
		time.Sleep(time.Second)
		r.write("b.go")
		r.write("c.rb")
		time.Sleep(time.Second)
		wantReceived(t, r, "p", "q")
	})
}

func TestDebounceProcessesAreIndependent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startFake(t, 300*time.Millisecond, map[string][]string{"p": {"*.go"}, "q": {"*.rb"}})
		r.write("a.go")
		time.Sleep(200 * time.Millisecond)
		r.write("a.rb")
		time.Sleep(100 * time.Millisecond)
		wantReceived(t, r, "p") // q's burst is not over yet
		time.Sleep(200 * time.Millisecond)
		wantReceived(t, r, "q")
	})
}

func TestDebounceOverflowRestartsEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := startFake(t, 300*time.Millisecond, map[string][]string{"p": {"*.go"}, "q": {"*.rb"}})
		r.errs <- fsnotify.ErrEventOverflow
		time.Sleep(300 * time.Millisecond)
		wantReceived(t, r, "p", "q")
	})
}
