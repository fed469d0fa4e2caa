package cli

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mhrun/socket"
)

// savePolicy is the policy the save tests start from: a comment, aligned
// columns, a `*:` line, web from max, worker without scale=.
const savePolicy = "# the formation\n" +
	"*:       grace=1s\n" +
	"web:     scale=max   # the site\n" +
	"worker:  restart=always\n"

// startSaveFormation runs the Procfile web, worker, clock under policy
// ("" for no file) and waits until every instance runs.
func startSaveFormation(t *testing.T, policy string, args ...string) (dir string, r *liveRunner) {
	t.Helper()
	files := map[string]string{"Procfile": "web: exec sleep 1000\nworker: exec sleep 1000\nclock: exec sleep 1000\n"}
	if policy != "" {
		files["Procfile.policy"] = policy
	}
	dir = writeFiles(t, files)
	if policy != "" {
		os.Chmod(filepath.Join(dir, "Procfile.policy"), 0o640)
	}
	r = startMhrun(t, dir, append([]string{"start"}, args...)...)
	waitStatus(t, dir, "every instance running", func(s map[string]socket.Instance) bool {
		if len(s) == 0 {
			return false
		}
		for _, in := range s {
			if in.State != "running" {
				return false
			}
		}
		return true
	})
	t.Cleanup(func() {
		runMhrun(t, dir, "quit")
		r.wait(15 * time.Second)
	})
	return dir, r
}

func readPolicyFile(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "Procfile.policy"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustRun runs mhrun and fails unless it exits 0; it returns stdout.
func mustRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, stderr, code := runMhrun(t, dir, args...)
	if code != 0 {
		t.Fatalf("mhrun %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// countOf is how many instances of proc the running formation has.
func countOf(t *testing.T, dir, proc string) int {
	t.Helper()
	n := 0
	for _, in := range statusOf(t, dir) {
		if in.Process == proc {
			n++
		}
	}
	return n
}

// Scale live, then commit it: scale --save and save write the live scale
// into the policy by the smallest edit, max kept where it came from max,
// and say when there is nothing to write.
func TestSaveScale(t *testing.T) {
	dir, _ := startSaveFormation(t, savePolicy)
	file := filepath.Join(dir, "Procfile.policy")

	out := mustRun(t, dir, "save")
	if want := "Procfile.policy already gives web scale=max, worker scale=1, clock scale=1: nothing to write\n"; out != want {
		t.Errorf("save with nothing changed: %q, want %q", out, want)
	}

	out = mustRun(t, dir, "scale", "web=3", "--save")
	if !strings.Contains(out, "web scaled to 3") || !strings.HasSuffix(out, "saved Procfile.policy: web scale=3 (was max)\n") {
		t.Errorf("scale web=3 --save: %q", out)
	}
	want := strings.Replace(savePolicy, "scale=max   #", "scale=3     #", 1)
	if got := readPolicyFile(t, dir); got != want {
		t.Errorf("after scale web=3 --save:\n%s\nwant:\n%s", got, want)
	}

	// scaled without --save, then saved whole: worker and clock too
	mustRun(t, dir, "scale", "worker=0", "clock=2")
	out = mustRun(t, dir, "save")
	if want := "saved Procfile.policy: worker scale=0 (was 1), clock scale=2 (was 1)\n"; out != want {
		t.Errorf("save: %q, want %q", out, want)
	}
	want = "# the formation\n" +
		"*:       grace=1s\n" +
		"web:     scale=3     # the site\n" +
		"worker:  restart=always scale=0\n" +
		"clock:   scale=2\n"
	if got := readPolicyFile(t, dir); got != want {
		t.Errorf("after save:\n%s\nwant:\n%s", got, want)
	}

	// back to max: max is written, not the count it gives here
	out = mustRun(t, dir, "scale", "web=max", "--save")
	if !strings.HasSuffix(out, "saved Procfile.policy: web scale=max (was 3)\n") {
		t.Errorf("scale web=max --save: %q", out)
	}
	if got := readPolicyFile(t, dir); !strings.Contains(got, "web:     scale=max   # the site\n") {
		t.Errorf("after scale web=max --save:\n%s", got)
	}
	if runtime.NumCPU() != 3 {
		mustRun(t, dir, "scale", "web=3", "--save")
		out = mustRun(t, dir, "scale", "web="+strconv.Itoa(runtime.NumCPU()), "--save")
		if !strings.HasSuffix(out, "saved Procfile.policy: web scale="+strconv.Itoa(runtime.NumCPU())+" (was 3)\n") {
			t.Errorf("a count that max would give is written as the count: %q", out)
		}
	}

	// a scale the file gives already
	out = mustRun(t, dir, "scale", "clock=2", "--save")
	if !strings.HasSuffix(out, "Procfile.policy already gives clock scale=2: nothing to write\n") {
		t.Errorf("scale clock=2 --save: %q", out)
	}

	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after saves: %v, %v; want 0640 kept", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".Procfile.policy.save-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if _, stderr, code := runMhrun(t, dir, "check"); code != 0 {
		t.Errorf("check of the saved policy: %s", stderr)
	}
}

// A formation started without a policy file: save creates it, with a
// line for each process not at the default, in Procfile order.
func TestSaveCreatesPolicy(t *testing.T) {
	dir, _ := startSaveFormation(t, "")
	out := mustRun(t, dir, "save")
	if want := "without Procfile.policy, the default gives web scale=1, worker scale=1, clock scale=1: nothing to write\n"; out != want {
		t.Errorf("save: %q, want %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "Procfile.policy")); err == nil {
		t.Fatal("a policy file was written with nothing to write")
	}
	mustRun(t, dir, "scale", "clock=2", "web=0", "--save")
	if got, want := readPolicyFile(t, dir), "web: scale=0\nclock: scale=2\n"; got != want {
		t.Errorf("created:\n%s\nwant:\n%s", got, want)
	}
	mustRun(t, dir, "scale", "worker=3", "--save")
	if got, want := readPolicyFile(t, dir), "web: scale=0\nworker: scale=3\nclock: scale=2\n"; got != want {
		t.Errorf("then:\n%s\nwant:\n%s", got, want)
	}
}

// -m is the whole formation, so save writes what runs: 0 for a process
// -m left out. save NAME writes that process's alone; a process that
// start NAME… left out is not saved.
func TestSaveNames(t *testing.T) {
	dir, _ := startSaveFormation(t, savePolicy, "-m", "web=2,worker=1")
	mustRun(t, dir, "save", "web")
	if got := readPolicyFile(t, dir); !strings.Contains(got, "web:     scale=2     # the site\n") || strings.Contains(got, "clock") {
		t.Errorf("save web:\n%s", got)
	}
	out := mustRun(t, dir, "save")
	if want := "saved Procfile.policy: clock scale=0 (was 1)\n"; out != want {
		t.Errorf("save: %q, want %q", out, want)
	}

	dir2, _ := startSaveFormation(t, savePolicy, "web")
	_, stderr, code := runMhrun(t, dir2, "save", "worker")
	if code != 1 || stderr != "mhrun: worker does not run in this formation (started without it): nothing to save\n" {
		t.Errorf("save of a process left out: %d %q", code, stderr)
	}
	mustRun(t, dir2, "scale", "web=1", "--save")
	if got := readPolicyFile(t, dir2); got != strings.Replace(savePolicy, "scale=max   #", "scale=1     #", 1) {
		t.Errorf("save in a formation of web alone:\n%s", got)
	}
}

// Bad input gets one line and changes nothing: not the file, not the
// live scale.
func TestSaveRefuses(t *testing.T) {
	dir, _ := startSaveFormation(t, savePolicy)
	file := filepath.Join(dir, "Procfile.policy")
	refused := func(what, wantErr string, args ...string) {
		t.Helper()
		before := readPolicyFile(t, dir)
		webs := countOf(t, dir, "web")
		out, stderr, code := runMhrun(t, dir, args...)
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, wantErr) || out != "" {
			t.Errorf("%s: %s: exit %d, stdout %q, stderr %q; want one line with %q", what, strings.Join(args, " "), code, out, stderr, wantErr)
		}
		if got := readPolicyFile(t, dir); got != before {
			t.Errorf("%s: the file changed:\n%s", what, got)
		}
		if n := countOf(t, dir, "web"); n != webs {
			t.Errorf("%s: web went from %d to %d instances", what, webs, n)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".Procfile.policy.save-*")); len(left) > 0 {
			t.Errorf("%s: temporary files left: %v", what, left)
		}
	}

	refused("unknown process", `unknown process "wbe" (did you mean "web"?)`, "save", "wbe")
	refused("unknown process", `unknown process "wbe" (did you mean "web"?)`, "scale", "wbe=4", "--save")
	refused("all=", "all= is for -m", "scale", "all=2", "--save")

	// edited since the formation started
	edited := savePolicy + "clock: optional\n"
	os.WriteFile(file, []byte(edited), 0o640)
	refused("changed on disk", "mhrun: Procfile.policy changed on disk since the formation started: nothing written, nothing scaled (", "scale", "web=1", "--save")
	refused("changed on disk", "mhrun: Procfile.policy changed on disk since the formation started: nothing written (", "save")
	os.Remove(file)
	if _, stderr, _ := runMhrun(t, dir, "save"); !strings.Contains(stderr, "Procfile.policy was removed since the formation started") {
		t.Errorf("save of a removed file: %q", stderr)
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("a removed policy file was written again")
	}
	os.WriteFile(file, []byte(savePolicy), 0o640)

	// read-only
	os.Chmod(file, 0o444)
	refused("read-only", "mhrun: Procfile.policy is read-only (mode 0444): nothing written, nothing scaled; make it writable (chmod u+w Procfile.policy) to save into it", "scale", "web=1", "--save")
	os.Chmod(file, 0o640)

	// locked by another program (flock, as another save holds it)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	refused("locked", "mhrun: Procfile.policy is locked by another program", "scale", "web=1", "--save")
	f.Close()

	// locked with a POSIX lock, which names its holder
	lockFcntl(t, file, func() {
		refused("fcntl-locked", "Procfile.policy is locked by another program (pid ", "save")
	})

	// immutable (chattr +i), where the file system and the user allow it
	if exec.Command("chattr", "+i", file).Run() == nil {
		t.Cleanup(func() { exec.Command("chattr", "-i", file).Run() })
		refused("immutable", "Procfile.policy is immutable or append-only (see lsattr): nothing written, nothing scaled", "scale", "web=1", "--save")
		exec.Command("chattr", "-i", file).Run()
	}

	// after all that, a save works
	if out := mustRun(t, dir, "scale", "web=1", "--save"); !strings.HasSuffix(out, "saved Procfile.policy: web scale=1 (was max)\n") {
		t.Errorf("scale --save after the refusals: %q", out)
	}
}

// lockFcntl holds a POSIX write lock on file, from another process (a
// lock of this process's own would not conflict with its children's
// check), while fn runs.
func lockFcntl(t *testing.T, file string, fn func()) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Log("no python3: the POSIX lock is not tried")
		return
	}
	cmd := exec.Command(py, "-c", `import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(30)`, file)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 7)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("the lock holder said %q, %v", buf, err)
	}
	fn()
}

// Two saves at once take turns on the file's lock: both scales end up in
// it, and the runner knows the file the last one wrote.
func TestSaveConcurrent(t *testing.T) {
	dir, _ := startSaveFormation(t, savePolicy)
	var wg sync.WaitGroup
	errs := make([]string, 2)
	for i, item := range []string{"worker=2", "clock=3"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, stderr, code := runMhrun(t, dir, "scale", item, "--save"); code != 0 {
				errs[i] = stderr
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Errorf("a concurrent save failed: %s", e)
		}
	}
	got := readPolicyFile(t, dir)
	if !strings.Contains(got, "worker:  restart=always scale=2\n") || !strings.Contains(got, "clock:   scale=3\n") {
		t.Errorf("after two saves at once:\n%s", got)
	}
	out := mustRun(t, dir, "save")
	if !strings.Contains(out, "nothing to write") {
		t.Errorf("save after them: %q", out)
	}
}

// A policy file that is a symbolic link stays one: the file it names is
// written.
func TestSaveThroughSymlink(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":         "web: exec sleep 1000\n",
		"shared/web.rules": "web: restart=always\n",
	})
	if err := os.Symlink(filepath.Join("shared", "web.rules"), filepath.Join(dir, "Procfile.policy")); err != nil {
		t.Fatal(err)
	}
	r := startMhrun(t, dir, "start")
	waitStatus(t, dir, "web.1 running", func(s map[string]socket.Instance) bool { return s["web.1"].State == "running" })
	t.Cleanup(func() { runMhrun(t, dir, "quit"); r.wait(15 * time.Second) })
	mustRun(t, dir, "scale", "web=2", "--save")
	if fi, err := os.Lstat(filepath.Join(dir, "Procfile.policy")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("Procfile.policy is no longer a link: %v, %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "shared", "web.rules")); string(b) != "web: restart=always scale=2\n" {
		t.Errorf("the linked file: %q", b)
	}
}
