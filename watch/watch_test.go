package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// These tests use real files and real inotify. A delivery is awaited with a
// generous deadline; only "nothing arrives" needs a fixed wait, 2×debounce.
const (
	testDebounce = 100 * time.Millisecond
	deadline     = 5 * time.Second
)

func start(t *testing.T, dir string, globs map[string][]string) *Watcher {
	t.Helper()
	return startWith(t, dir, globs, testDebounce)
}

func startWith(t *testing.T, dir string, globs map[string][]string, debounce time.Duration) *Watcher {
	t.Helper()
	w, err := New(dir, globs, debounce)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, dir, rel string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdirs(t *testing.T, dir string, rels ...string) {
	t.Helper()
	for _, rel := range rels {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// expect waits for want on C.
func expect(t *testing.T, w *Watcher, want string) {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	select {
	case got, ok := <-w.C():
		if !ok {
			t.Fatalf("C closed, want %q", want)
		}
		if got != want {
			t.Fatalf("C delivered %q, want %q", got, want)
		}
	case <-timer.C:
		t.Fatalf("no %q on C within %v", want, deadline)
	}
}

// expectNone checks that nothing arrives on C within 2×debounce.
func expectNone(t *testing.T, w *Watcher) {
	t.Helper()
	timer := time.NewTimer(2 * w.debounce)
	defer timer.Stop()
	select {
	case got := <-w.C():
		t.Fatalf("C delivered %q, want nothing", got)
	case <-timer.C:
	}
}

func watchList(w *Watcher) []string {
	return w.fs.(*fsnotify.Watcher).WatchList()
}

func TestWriteDeliversOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkdirs(t, dir, "cmd/x")
	w := start(t, dir, map[string][]string{"worker": {"*.go"}})
	write(t, dir, "cmd/x/main.go")
	expect(t, w, "worker")
	expectNone(t, w)
}

func TestBurstDeliversOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkdirs(t, dir, "app/models", "app/views")
	// Longer than elsewhere: a gap of one debounce between two writes of
	// the burst, on a loaded machine, would rightly deliver twice.
	w := startWith(t, dir, map[string][]string{"web": {"app/**/*.rb"}}, 300*time.Millisecond)
	for i := range 20 {
		write(t, dir, fmt.Sprintf("app/models/m%d.rb", i%5))
	}
	// An editor's atomic save: temp file, rename over the original, chmod.
	write(t, dir, "app/views/.v.rb.swp")
	write(t, dir, "app/views/v.rb.tmp")
	if err := os.Rename(filepath.Join(dir, "app/views/v.rb.tmp"), filepath.Join(dir, "app/views/v.rb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "app/views/v.rb"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, w, "web")
	expectNone(t, w)
}

func TestNonMatchingDeliversNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkdirs(t, dir, "docs", "lib")
	w := start(t, dir, map[string][]string{"web": {"app/**/*.rb"}, "worker": {"*.go"}})
	write(t, dir, "README.md")
	write(t, dir, "docs/x.txt")
	write(t, dir, "lib/x.rb")        // outside app/
	write(t, dir, "lib/main.go.txt") // not *.go
	mkdirs(t, dir, "lib/fake.go")    // a directory: nothing inside matches
	expectNone(t, w)
	write(t, dir, "lib/main.go") // the watcher still works
	expect(t, w, "worker")
}

func TestIgnoredDeliversNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkdirs(t, dir, ".git/objects/ab", "node_modules/pkg/lib", ".mhrun", "web/node_modules/x", "src")
	w := start(t, dir, map[string][]string{"all": {"*", "**/*"}})

	for _, p := range watchList(w) {
		rel, _ := filepath.Rel(w.root, p)
		if inIgnoredDir(filepath.ToSlash(rel)) {
			t.Errorf("watching %s, inside an ignored directory", p)
		}
	}

	for _, rel := range []string{
		".git/HEAD", ".git/objects/ab/cdef", ".git/index.lock",
		"node_modules/pkg/lib/index.js", "web/node_modules/x/y.js",
		"src/node_modules/new/z.js", // created after New
		".mhrun/state", ".mhrun.sock", ".mhrun.sock.lock",
		"src/main.go~", "src/.main.go.swp", "src/.main.go.swx", "src/4913", "src/.#main.go",
	} {
		write(t, dir, rel)
	}
	expectNone(t, w)
	write(t, dir, "src/main.go") // the watcher still works
	expect(t, w, "all")
}

func TestNewDirectoryIsWatched(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := start(t, dir, map[string][]string{"worker": {"*.go"}})
	// Created at once, before the watcher can see the directories appear.
	write(t, dir, "new/deep/er/x.go")
	expect(t, w, "worker")
	// And watched from then on.
	write(t, dir, "new/deep/er/y.go")
	expect(t, w, "worker")
	expectNone(t, w)
}

func TestTwoProcessesEachGetTheirOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mkdirs(t, dir, "app/models", "cmd/w")
	w := start(t, dir, map[string][]string{
		"web":    {"app/**/*.rb", "config/*.yml"},
		"worker": {"*.go"},
	})
	write(t, dir, "app/models/user.rb")
	expect(t, w, "web")
	expectNone(t, w)

	write(t, dir, "cmd/w/main.go")
	expect(t, w, "worker")
	expectNone(t, w)

	write(t, dir, "config/db.yml")
	write(t, dir, "cmd/w/main.go")
	var got []string
	for range 2 {
		select {
		case name := <-w.C():
			got = append(got, name)
		case <-time.After(deadline):
			t.Fatalf("got %v, want web and worker", got)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"web", "worker"}) {
		t.Fatalf("got %v, want web and worker", got)
	}
	expectNone(t, w)
}

func TestMovedAndRemovedDirectories(t *testing.T) {
	t.Parallel()
	dir, outside := t.TempDir(), t.TempDir()
	mkdirs(t, dir, "a/sub", "gone/sub")
	w := start(t, dir, map[string][]string{"worker": {"*.go"}})

	// Moved within the tree: watched under its new name, sub-directories too.
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	write(t, dir, "b/sub/x.go")
	expect(t, w, "worker")

	// Moved out of the tree: no longer reported.
	if err := os.Rename(filepath.Join(dir, "b"), filepath.Join(outside, "b")); err != nil {
		t.Fatal(err)
	}
	write(t, outside, "b/sub/y.go")
	expectNone(t, w)

	// Removed: dropped from the watch list.
	if err := os.RemoveAll(filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	for stop := time.Now().Add(deadline); ; {
		stale := []string{"a", "a/sub", "b", "b/sub", "gone", "gone/sub"}
		if !slices.ContainsFunc(watchList(w), func(p string) bool {
			rel, _ := filepath.Rel(w.root, p)
			return slices.Contains(stale, filepath.ToSlash(rel))
		}) {
			break
		}
		if time.Now().After(stop) {
			t.Fatalf("still watching %v", watchList(w))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestThousandsOfDirectories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 3000
	for i := range n {
		mkdirs(t, dir, fmt.Sprintf("d%02d/e%03d", i/100, i%100))
	}
	began := time.Now()
	w := start(t, dir, map[string][]string{"worker": {"*.go"}})
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("New took %v for %d directories", took, n)
	}
	if got, want := len(watchList(w)), n+n/100+1; got != want {
		t.Errorf("watching %d directories, want %d", got, want)
	}
	write(t, dir, "d29/e099/main.go")
	expect(t, w, "worker")
}

func TestUnreadableDirectoryIsSkipped(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every directory")
	}
	t.Parallel()
	dir := t.TempDir()
	mkdirs(t, dir, "private/x", "src")
	if err := os.Chmod(filepath.Join(dir, "private"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "private"), 0o755) })
	w := start(t, dir, map[string][]string{"worker": {"*.go"}})
	write(t, dir, "src/main.go")
	expect(t, w, "worker")
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir, "file")
	for _, tt := range []struct{ dir, want string }{
		{filepath.Join(dir, "missing"), "watch " + filepath.Join(dir, "missing") + ": "},
		{filepath.Join(dir, "file"), "watch " + filepath.Join(dir, "file") + ": not a directory"},
	} {
		w, err := New(tt.dir, map[string][]string{"p": {"*"}}, testDebounce)
		if err == nil {
			w.Close()
			t.Errorf("New(%q) succeeded, want an error", tt.dir)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("New(%q) = %q, want it to start with %q", tt.dir, err, tt.want)
		}
	}
}

func TestLimitErrorSaysWhatToRaise(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{syscall.ENOSPC, "watch proj: too many watched directories (raise fs.inotify.max_user_watches)"},
		{fmt.Errorf("couldn't initialize inotify: %w", syscall.EMFILE), "watch proj: too many open files (raise fs.inotify.max_user_instances or ulimit -n)"},
		{syscall.EACCES, "watch proj: permission denied"},
	} {
		err := limitError("proj", tt.err)
		if err.Error() != tt.want {
			t.Errorf("limitError(%v) = %q, want %q", tt.err, err, tt.want)
		}
		if !errors.Is(err, tt.err) && !errors.Is(err, errors.Unwrap(tt.err)) {
			t.Errorf("limitError(%v) does not wrap it", tt.err)
		}
	}
}

// Not parallel: it counts goroutines.
func TestCloseStopsGoroutinesAndClosesC(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	w, err := New(dir, map[string][]string{"worker": {"*.go"}}, testDebounce)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "main.go") // leave a burst pending and a name unread
	write(t, dir, "x.go")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case _, ok := <-w.C():
		if ok {
			t.Fatal("C delivered after Close, want it closed")
		}
	case <-time.After(deadline):
		t.Fatal("C not closed after Close")
	}
	for stop := time.Now().Add(deadline); runtime.NumGoroutine() > before; {
		if time.Now().After(stop) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
