package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mhrun/formation"
	"mhrun/policy"
	"mhrun/socket"
)

// SaveCmd writes the running formation's live scale into its policy file,
// as `mhrun scale NAME=N --save` does for the processes it scales.
//
// What is written: for each process saved, scale= with its live count, or
// max when the count came from max (scale=max, -m NAME=max, all=max, a
// live scale NAME=max). Nothing is written where the file already gives
// that scale, by the process's own line, by `*:` or by the default of 1,
// and nothing is ever removed: a process scaled back to what `*:` or the
// default gives keeps its own scale= with the new value. The edit is
// policy.SetScales's: the smallest, comments and alignment kept. The live
// formation is what runs, -m included: after `mhrun start -m web=2` every
// other process runs 0 times, and `mhrun save` writes scale=0 for each;
// `mhrun save web` writes web's alone. A process left out of the formation
// by `mhrun start NAME…` is not saved.
//
// The runner writes no file: it says which file it read, the sum of what
// it read and the live scales; this command writes the file, atomically (a
// temporary file beside it, then a rename; mode and owner kept), and tells
// the runner the sum of what it wrote. It refuses, and changes nothing,
// when the file on disk is not the one the formation runs (edited, created
// or removed since the formation started, or since the last save), when
// it is read-only, immutable or locked by another program, or when a name
// is not a process of the running formation. With --save, scale checks
// all of that before it scales.
type SaveCmd struct {
	ControlFlags
	Names []string `arg:"" optional:"" name:"name" predictor:"process" help:"Save only these processes (default: every process of the running formation)."`
}

// Run saves the live scale of the processes named, or of all.
func (c *SaveCmd) Run(app *App) error {
	return saveScale(app, &c.ControlFlags, c.Names, nil)
}

// saveLockWait is how long a save waits for another program's lock on the
// policy file (another save, most likely) before it gives up.
const saveLockWait = 2 * time.Second

// saveScale saves the live scale of names (nil: every live process) into
// the policy file; with scale, it first checks that it can, then scales
// and saves the processes scale names.
func saveScale(app *App, cf *ControlFlags, names []string, scale *socket.Request) error {
	nothing := "nothing written"
	if scale != nil {
		nothing = "nothing written, nothing scaled"
	}
	info, err := cf.saveInfo()
	if err != nil {
		return err
	}
	if scale == nil {
		if err := checkSaveNames(info, names); err != nil {
			return err
		}
	}
	path := info.Policy
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // a link to a shared policy: the file it names is written
	}
	name := displayPath(info.Policy)
	pf, err := lockPolicy(app.Ctx, path, name, nothing)
	if err != nil {
		return err
	}
	defer pf.close()
	// Asked again under the lock: a save that held it has told the runner.
	if info, err = cf.saveInfo(); err != nil {
		return err
	}
	if err := pf.check(info.Sum, nothing); err != nil {
		return err
	}
	if err := pf.writable(nothing); err != nil {
		return err
	}
	if scale != nil {
		resp, err := cf.call(*scale)
		if err != nil {
			return err
		}
		fmt.Fprintln(app.Stdout, resp.Message)
		if info, err = cf.saveInfo(); err != nil {
			return fmt.Errorf("scaled, but not saved: %w", err)
		}
		nothing = "scaled, but nothing written"
	}

	set := map[string]int{}
	var saved []string
	for _, p := range info.Processes {
		if names != nil && !slices.Contains(names, p.Name) {
			continue
		}
		set[p.Name] = p.Scale
		if p.Max {
			set[p.Name] = policy.ScaleMax
		}
		saved = append(saved, p.Name)
	}
	out, err := policy.SetScales(pf.data, name, info.Procfile, set)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, nothing)
	}
	if bytes.Equal(out, pf.data) {
		gives := name + " already gives"
		if !pf.exists {
			gives = "without " + name + ", the default gives"
		}
		fmt.Fprintf(app.Stdout, "%s %s: nothing to write\n", gives, scaleList(saved, set, nil))
		return nil
	}
	was, _ := fileScales(pf.data, name, info.Procfile)
	if err := pf.replace(out, nothing); err != nil {
		return err
	}
	resp, err := cf.call(socket.Request{Cmd: socket.CmdSave, Args: []string{info.Sum, formation.PolicySum(out)}})
	if err == nil && !resp.OK {
		err = errors.New(resp.Error)
	}
	if err != nil {
		return fmt.Errorf("wrote %s, but the runner did not take note (%v): the next save will find it changed; restart the formation to run it", name, err)
	}
	var changed []string
	for _, n := range saved {
		if was[n] != set[n] {
			changed = append(changed, n)
		}
	}
	fmt.Fprintf(app.Stdout, "saved %s: %s\n", name, scaleList(changed, set, was))
	return nil
}

// saveInfo asks the runner what a save needs.
func (c *ControlFlags) saveInfo() (*socket.Save, error) {
	resp, err := c.call(socket.Request{Cmd: socket.CmdSave})
	if err != nil {
		return nil, err
	}
	if resp.Save == nil {
		return nil, errors.New("the runner sent no policy file to save into: is it an older mhrun? restart the formation")
	}
	return resp.Save, nil
}

// checkSaveNames refuses a name that is not a process of the running
// formation.
func checkSaveNames(info *socket.Save, names []string) error {
	live := make([]string, len(info.Processes))
	for i, p := range info.Processes {
		live[i] = p.Name
	}
	for _, n := range names {
		switch {
		case slices.Contains(live, n):
		case slices.Contains(info.Procfile, n):
			return fmt.Errorf("%s does not run in this formation (started without it): nothing to save", n)
		default:
			return formation.UnknownProcess(n, live)
		}
	}
	return nil
}

// scaleList is "web scale=4 (was 2), worker scale=max" for names; was
// nil leaves out the old values.
func scaleList(names []string, set, was map[string]int) string {
	items := make([]string, len(names))
	for i, n := range names {
		items[i] = n + " scale=" + scaleString(set[n])
		if was != nil {
			items[i] += " (was " + scaleString(was[n]) + ")"
		}
	}
	return strings.Join(items, ", ")
}

func scaleString(n int) string {
	if n == policy.ScaleMax {
		return "max"
	}
	return fmt.Sprint(n)
}

// fileScales is the scale the policy data gives each process.
func fileScales(data []byte, name string, procfile []string) (map[string]int, error) {
	f, err := policy.Parse(bytes.NewReader(data), name)
	if err != nil {
		return nil, err
	}
	pols, err := f.Resolve(procfile)
	if err != nil {
		return nil, err
	}
	m := make(map[string]int, len(pols))
	for n, p := range pols {
		m[n] = p.Scale
	}
	return m, nil
}

// displayPath is p relative to the working directory when it is under it.
func displayPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return rel
	}
	return p
}

// policyFile is the policy file a save holds locked while it compares,
// writes and tells the runner.
type policyFile struct {
	path, name string
	lock       *os.File // the file, flocked; nil when there is none
	fi         fs.FileInfo
	exists     bool
	data       []byte
	temp       *os.File // the replacement, flocked too
	placed     bool     // temp is the policy file now
}

// lockPolicy takes an exclusive flock on the policy file at path (name
// in messages), waiting up to saveLockWait for another holder; a file that
// does not exist is not locked.
func lockPolicy(ctx context.Context, path, name, nothing string) (*policyFile, error) {
	pf := &policyFile{path: path, name: name}
	deadline := time.Now().Add(saveLockWait)
	for {
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return pf, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w (%s)", name, unwrapPath(err), nothing)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			fi, ferr := f.Stat()
			now, serr := os.Stat(path)
			if ferr == nil && serr == nil && os.SameFile(fi, now) {
				pf.lock, pf.fi, pf.exists = f, fi, true
				return pf, nil
			}
			f.Close() // replaced while we waited: lock the new one
			continue
		}
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w (%s)", name, err, nothing)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is locked by another program (another mhrun save?): %s; try again once it is done", name, nothing)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// check reads the file and refuses when it is not the one whose sum the
// runner holds ("" for none).
func (pf *policyFile) check(sum, nothing string) error {
	const what = "changed on disk since the formation started"
	const fix = "restart the formation to run the file as it is, or undo that edit, then save again"
	switch {
	case !pf.exists && sum == "":
		return nil
	case !pf.exists:
		return fmt.Errorf("%s was removed since the formation started: %s (%s)", pf.name, nothing, fix)
	case sum == "":
		return fmt.Errorf("%s was created since the formation started, which runs without it: %s (%s)", pf.name, nothing, fix)
	}
	if !pf.fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: %s", pf.name, nothing)
	}
	data, err := formation.ReadFile(pf.path)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, nothing)
	}
	if p := posixLock(pf.lock); p != "" {
		return fmt.Errorf("%s is locked by %s: %s; try again once it is done", pf.name, p, nothing)
	}
	if formation.PolicySum(data) != sum {
		return fmt.Errorf("%s %s: %s (%s)", pf.name, what, nothing, fix)
	}
	pf.data = data
	return nil
}

// posixLock names the holder of a POSIX (fcntl) lock on f that a write
// would conflict with, or "".
func posixLock(f *os.File) string {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil || lk.Type == unix.F_UNLCK {
		return ""
	}
	return fmt.Sprintf("another program (pid %d)", lk.Pid)
}

// writable refuses a file that its owner made read-only, that this user
// may not write, that is immutable or on a read-only file system, and a
// directory where no file can be made, the temporary one the save then
// writes.
func (pf *policyFile) writable(nothing string) error {
	if pf.exists {
		mode := pf.fi.Mode().Perm()
		if mode&0o222 == 0 {
			return fmt.Errorf("%s is read-only (mode %04o): %s; make it writable (chmod u+w %s) to save into it", pf.name, mode, nothing, pf.name)
		}
		switch err := unix.Access(pf.path, unix.W_OK); {
		case errors.Is(err, unix.EPERM):
			return fmt.Errorf("%s is immutable or append-only (see lsattr): %s", pf.name, nothing)
		case errors.Is(err, unix.EROFS):
			return fmt.Errorf("%s is on a read-only file system: %s", pf.name, nothing)
		case err != nil:
			return fmt.Errorf("%s is not writable by this user (mode %04o): %s", pf.name, mode, nothing)
		}
	}
	dir, base := filepath.Split(pf.path)
	t, err := os.CreateTemp(dir, "."+base+".save-*")
	if err != nil {
		return fmt.Errorf("cannot write beside %s: %w (%s)", pf.name, unwrapPath(err), nothing)
	}
	pf.temp = t
	unix.Flock(int(t.Fd()), unix.LOCK_EX) // a save that opens it once it is renamed in waits
	return nil
}

// replace writes data to the temporary file and puts it in the policy
// file's place: a rename over it, or a link where there was none (which
// fails if one was made meanwhile). The mode and owner are the old file's.
func (pf *policyFile) replace(data []byte, nothing string) error {
	t := pf.temp
	fail := func(err error) error {
		return fmt.Errorf("write %s: %w (%s)", pf.name, unwrapPath(err), nothing)
	}
	if _, err := t.Write(data); err != nil {
		return fail(err)
	}
	mode := os.FileMode(0o644)
	if pf.exists {
		mode = pf.fi.Mode().Perm()
		if st, ok := pf.fi.Sys().(*unix.Stat_t); ok && (int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid()) {
			t.Chown(int(st.Uid), int(st.Gid)) // as root, for the file's owner; else it stays ours
		}
	}
	if err := t.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := t.Sync(); err != nil {
		return fail(err)
	}
	if pf.exists {
		if err := os.Rename(t.Name(), pf.path); err != nil {
			return fail(err)
		}
	} else {
		err := os.Link(t.Name(), pf.path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s was created meanwhile: %s", pf.name, nothing)
		}
		if err != nil {
			return fail(err)
		}
		os.Remove(t.Name())
	}
	pf.placed = true // and locked until close, after the runner has been told
	if d, err := os.Open(filepath.Dir(pf.path)); err == nil {
		d.Sync() // the rename lasts a crash
		d.Close()
	}
	return nil
}

// close removes a temporary file not put in place and lets the locks go.
func (pf *policyFile) close() {
	if pf.temp != nil {
		if !pf.placed {
			os.Remove(pf.temp.Name())
		}
		pf.temp.Close()
	}
	if pf.lock != nil {
		pf.lock.Close()
	}
}

// unwrapPath drops the op and path of a *fs.PathError, which messages
// name already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
