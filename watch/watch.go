// Package watch restarts processes when files matching their watch globs change.
//
// One goroutine owns everything after New returns: fsnotify's Events and
// Errors channels, the set of watched directories, the per-process debounce
// deadlines (driven by a single timer set to the earliest one) and the queue
// of names ready for C. It never blocks on a slow reader of C: a name waits in
// the queue, once, while further bursts for it fold into that one delivery.
package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher watches a project dir for changes to files matching each process's
// globs.
type Watcher struct {
	root     string // absolute, symlinks resolved
	names    []string
	globs    map[string][]string
	debounce time.Duration
	fs       fsWatcher

	c    chan string
	done chan struct{}
	wg   sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// Owned by New until the loop starts, then by the loop alone.
	dirs    map[string]bool      // absolute paths with an inotify watch
	pending map[string]time.Time // process → when its burst counts as quiet
	ready   []string             // names waiting to be received from c
}

// fsWatcher is the part of *fsnotify.Watcher the loop uses; tests of the
// debounce logic substitute a fake.
type fsWatcher interface {
	Add(name string) error
	Remove(name string) error
	Close() error
}

// New starts watching dir recursively for the given process → globs. Events
// for a process are coalesced: C() delivers a process name once its matching
// changes have been quiet for debounce (e.g. 300ms). Ignores .git,
// node_modules, and mhrun's own files (.mhrun.sock*, .mhrun/ dir); also
// ignores editor temp/backup files (*~, .*.swp, .*.swx, 4913, .#*) as
// triggers. New directories created later are watched too; removed ones are
// dropped.
//
// A subdirectory that cannot be watched (no permission, gone meanwhile) is
// skipped; New fails if dir itself cannot be watched or the inotify limits
// are reached, since a silently half-watched tree would look like a bug.
func New(dir string, globs map[string][]string, debounce time.Duration) (*Watcher, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch %s: not a directory", dir)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, limitError(dir, err)
	}
	w := newWatcher(abs, globs, debounce, fw)
	if err := w.addTree(abs, false, time.Time{}); err != nil {
		fw.Close()
		return nil, limitError(dir, err)
	}
	w.start(fw.Events, fw.Errors)
	return w, nil
}

func newWatcher(root string, globs map[string][]string, debounce time.Duration, fw fsWatcher) *Watcher {
	w := &Watcher{
		root:     root,
		globs:    make(map[string][]string, len(globs)),
		debounce: debounce,
		fs:       fw,
		c:        make(chan string),
		done:     make(chan struct{}),
		dirs:     make(map[string]bool),
		pending:  make(map[string]time.Time),
	}
	for name, gs := range globs {
		w.names = append(w.names, name)
		w.globs[name] = slices.Clone(gs)
	}
	slices.Sort(w.names)
	return w
}

func (w *Watcher) start(events <-chan fsnotify.Event, errs <-chan error) {
	w.wg.Add(1)
	go w.loop(events, errs)
}

// C delivers names of processes to restart, one per quiet burst. It is
// closed by Close.
func (w *Watcher) C() <-chan string { return w.c }

// Close stops the watcher and its goroutine, closing C. It is safe to call
// more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.done)
		w.wg.Wait()
		if err := w.fs.Close(); err != nil {
			w.closeErr = fmt.Errorf("close watcher: %w", err)
		}
	})
	return w.closeErr
}

func (w *Watcher) loop(events <-chan fsnotify.Event, errs <-chan error) {
	defer w.wg.Done()
	defer close(w.c)

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	for {
		var out chan<- string
		var head string
		if len(w.ready) > 0 {
			out, head = w.c, w.ready[0]
		}
		select {
		case <-w.done:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			w.handle(ev, time.Now())
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Events were lost (a checkout of thousands of files can
			// overflow the kernel queue): anything may have changed.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				now := time.Now()
				for _, name := range w.names {
					w.pending[name] = now.Add(w.debounce)
				}
			}
		case now := <-timer.C:
			w.flush(now)
		case out <- head:
			w.ready = w.ready[1:]
		}
		// Go 1.23+ timers: Reset and Stop leave no stale tick in timer.C.
		if next, ok := w.next(); ok {
			timer.Reset(time.Until(next))
		} else {
			timer.Stop()
		}
	}
}

// handle applies one fsnotify event: it watches directories that appear,
// forgets ones that go, and starts or extends the burst of every process
// whose globs match the path.
func (w *Watcher) handle(ev fsnotify.Event, now time.Time) {
	rel := w.rel(ev.Name)
	if rel == "" || inIgnoredDir(rel) {
		return
	}
	// Events may still arrive from a directory already dropped (moved out
	// of the tree, under its stale name); they are not in the project.
	if parent := filepath.Dir(ev.Name); parent != w.root && !w.dirs[parent] {
		return
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			// Files may already exist in it (mkdir -p a/b && touch a/b/x,
			// or a directory moved in), so the walk reports them; an empty
			// new directory is no change to react to. There is nobody to
			// tell about a failure here; what could not be watched is
			// skipped.
			_ = w.addTree(ev.Name, true, now)
			return
		}
	}
	if ev.Has(fsnotify.Remove|fsnotify.Rename) && w.dirs[ev.Name] {
		w.dropTree(ev.Name)
	}
	w.touch(rel, now)
}

// touch starts or extends the burst of each process with a glob matching rel.
func (w *Watcher) touch(rel string, now time.Time) {
	if ignoredName(path.Base(rel)) {
		return
	}
	for _, name := range w.names {
		for _, g := range w.globs[name] {
			if Match(g, rel) {
				w.pending[name] = now.Add(w.debounce)
				break
			}
		}
	}
}

// next returns the earliest deadline of a pending burst.
func (w *Watcher) next() (time.Time, bool) {
	var first time.Time
	for _, t := range w.pending {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first, !first.IsZero()
}

// flush moves every process whose burst has been quiet until now to the
// ready queue, unless it is already waiting there.
func (w *Watcher) flush(now time.Time) {
	for _, name := range w.names {
		t, ok := w.pending[name]
		if !ok || t.After(now) {
			continue
		}
		delete(w.pending, name)
		if !slices.Contains(w.ready, name) {
			w.ready = append(w.ready, name)
		}
	}
}

// rel returns the slash-separated path of name below the root, or "" for
// the root itself and anything outside it.
func (w *Watcher) rel(name string) string {
	prefix := w.root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	r, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return ""
	}
	return filepath.ToSlash(r)
}

// addTree watches dir and every directory below it, not entering ignored
// ones. With report set, files found are touched as if just created. It
// fails only when dir is the root, or the inotify watch limit is reached;
// other directories that cannot be read or watched are skipped.
func (w *Watcher) addTree(dir string, report bool, now time.Time) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == w.root {
				return err
			}
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel := w.rel(p)
		if !d.IsDir() {
			if report && rel != "" {
				w.touch(rel, now)
			}
			return nil
		}
		if rel != "" && ignoredDirs[d.Name()] {
			return fs.SkipDir
		}
		if err := w.fs.Add(p); err != nil {
			if p == w.root || errors.Is(err, syscall.ENOSPC) {
				return err
			}
			return fs.SkipDir
		}
		w.dirs[p] = true
		return nil
	})
}

// dropTree forgets dir and every watched directory below it. A directory
// moved elsewhere keeps its inotify watches (under stale names) until
// removed here; a deleted one has lost them already, so errors are moot.
func (w *Watcher) dropTree(dir string) {
	prefix := dir + string(filepath.Separator)
	for p := range w.dirs {
		if p == dir || strings.HasPrefix(p, prefix) {
			delete(w.dirs, p)
			_ = w.fs.Remove(p)
		}
	}
}

// hintError is an error whose message says what to change, wrapping the
// system error so callers can still test it with errors.Is.
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

// limitError names the kernel limit behind an inotify failure.
func limitError(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return &hintError{fmt.Sprintf("watch %s: too many watched directories (raise fs.inotify.max_user_watches)", dir), err}
	case errors.Is(err, syscall.EMFILE):
		return &hintError{fmt.Sprintf("watch %s: too many open files (raise fs.inotify.max_user_instances or ulimit -n)", dir), err}
	}
	return fmt.Errorf("watch %s: %w", dir, err)
}
