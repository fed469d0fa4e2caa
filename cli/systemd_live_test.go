package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"mhrun/socket"
)

// dumpHelper is a Procfile program for the live systemd tests: it writes
// its argv, PORT, PS, pid and parent's pid to $MHRUN_TEST_OUT/$PS.json,
// says READY=1 when it has a NOTIFY_SOCKET, and runs until a signal ends
// it, dying by that very signal as a C program would, after writing its
// number to $PS.signal ("once": exit 0).
func dumpHelper() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	ps := os.Getenv("PS")
	b, _ := json.Marshal(dumped{Argv: os.Args[1:], Port: os.Getenv("PORT"), PS: ps, Pid: os.Getpid(), Ppid: os.Getppid()})
	path := filepath.Join(os.Getenv("MHRUN_TEST_OUT"), ps+".json")
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		os.Exit(3)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		os.Exit(3)
	}
	if len(os.Args) > 1 && os.Args[1] == "once" {
		os.Exit(0)
	}
	if addr := os.Getenv("NOTIFY_SOCKET"); addr != "" {
		if c, err := net.Dial("unixgram", addr); err == nil { // Go reads a leading @ as abstract
			c.Write([]byte("READY=1"))
			c.Close()
		}
	}
	s := (<-sigs).(syscall.Signal)
	os.WriteFile(filepath.Join(os.Getenv("MHRUN_TEST_OUT"), ps+".signal"), []byte(strconv.Itoa(int(s))), 0o644)
	// Go's runtime would turn SIGQUIT into a stack dump and exit 2; a
	// shell in this same process dies of the signal itself (or exits 5,
	// which the tests would see).
	syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -" + strconv.Itoa(int(s)) + " $$; exit 5"}, os.Environ())
	os.Exit(4)
}

type dumped struct {
	Argv []string `json:"argv"`
	Port string   `json:"port"`
	PS   string   `json:"ps"`
	Pid  int      `json:"pid"`
	Ppid int      `json:"ppid"`
}

// userManager is a systemd user manager (systemd --user) of the test's
// own. It runs on a machine not booted with systemd: in a private mount
// namespace where /run/systemd/system exists, and in a cgroup namespace
// rooted at fresh child cgroups of the test's own in every hierarchy, so
// that what systemd does to "its" cgroups (it moves every process of its
// root cgroup into init.scope, and makes slices in any controller) stays
// inside them instead of moving the machine's processes.
type userManager struct {
	t         *testing.T
	pid       int
	xdg, home string
	unitDir   string
}

// confine is run as `sh -c confine sh ID SYSTEMD UNIT (DIR MOUNT)…`: it
// moves itself into a new child cgroup ID of each DIR (its own cgroup in
// a hierarchy mounted at MOUNT), enters new cgroup and mount namespaces,
// binds each child over its hierarchy's mount, hides /run behind a tmpfs
// holding /run/systemd/system, and execs systemd --user with UNIT as its
// default unit: its pid is the manager's. Core dumps are off, so a unit
// stopped by SIGQUIT ends the same on every machine.
const confine = `set -ef
id=$1 systemd=$2 unit=$3
shift 3
i=0
for a in "$@"; do
	i=$((i + 1))
	if [ $((i % 2)) = 1 ]; then
		mkdir "$a/$id"
		echo $$ > "$a/$id/cgroup.procs"
	fi
done
exec unshare -C -m sh -ef -c '
	id=$1 systemd=$2 unit=$3
	shift 3
	while [ $# -gt 0 ]; do
		mount --bind "$1/$id" "$2"
		shift 2
	done
	mount -t tmpfs tmpfs /run
	mkdir -p /run/systemd/system
	ulimit -c 0
	exec "$systemd" --user --unit="$unit"' sh "$id" "$systemd" "$unit" "$@"`

// ownCgroups returns, for every cgroup hierarchy this process is in and
// that is mounted, the dir of its cgroup there and the mount point, as
// confine takes them: DIR MOUNT DIR MOUNT …
func ownCgroups(t *testing.T) []string {
	t.Helper()
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	type mount struct{ root, point string }
	mounts := map[string]mount{} // "0::" for cgroup2, else the v1 hierarchy's sorted controller list
	for _, line := range strings.Split(string(info), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			mounts["0::"] = mount{f[3], f[4]}
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(g[2], ",") {
				switch o {
				case "rw", "ro", "relatime", "noatime", "nosuid", "nodev", "noexec", "clone_children", "xattr", "nsdelegate":
				default:
					ctrls = append(ctrls, o)
				}
			}
			slices.Sort(ctrls)
			mounts[strings.Join(ctrls, ",")] = mount{f[3], f[4]}
		}
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err)
	}
	var args []string
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		key := "0::"
		if parts[1] != "" {
			ctrls := strings.Split(parts[1], ",")
			slices.Sort(ctrls)
			key = strings.Join(ctrls, ",")
		}
		m, ok := mounts[key]
		if !ok || key == "cpuset" {
			// Not mounted: systemd cannot touch it. cpuset: systemd
			// leaves that v1 hierarchy alone, and a new cpuset cgroup
			// takes no process before its cpus and mems are set.
			continue
		}
		rel, ok := strings.CutPrefix(parts[2], strings.TrimSuffix(m.root, "/"))
		if !ok {
			t.Skipf("cgroup %s is outside its mount's root %s", parts[2], m.root)
		}
		args = append(args, filepath.Join(m.point, rel), m.point)
	}
	return args
}

// cgroupProcs lists the pids in dir's cgroups, dir's own included.
func cgroupProcs(dir string) []int {
	var pids []int
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "cgroup.procs" {
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		return nil
	})
	return pids
}

// removeCgroups ends what is left in the test's cgroups (every process in
// them is the test's: the manager and its units) and removes them,
// deepest first; a cgroup dir goes with rmdir, its files with it.
func removeCgroups(t *testing.T, dirs []string) {
	deadline := time.Now().Add(10 * time.Second)
	for _, dir := range dirs {
		for pids := cgroupProcs(dir); len(pids) > 0; pids = cgroupProcs(dir) {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			if time.Now().After(deadline) {
				t.Errorf("processes %v left in %s", pids, dir)
				break
			}
			time.Sleep(10 * time.Millisecond) // the kernel empties a cgroup as the killed exit
		}
		var sub []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		slices.Reverse(sub)
		for _, p := range sub {
			if err := os.Remove(p); err != nil {
				t.Errorf("cgroup left behind: %v", err)
			}
		}
	}
}

// startUserManager starts the manager, or skips the test where this
// machine cannot run one (not root, no systemd, unshare or cgroups).
func startUserManager(t *testing.T) *userManager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cgroup and mount namespaces for systemd --user need root")
	}
	systemd := ""
	for _, p := range []string{"/lib/systemd/systemd", "/usr/lib/systemd/systemd"} {
		if _, err := os.Stat(p); err == nil {
			systemd = p
		}
	}
	for _, tool := range []string{"unshare", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			systemd = ""
		}
	}
	if systemd == "" {
		t.Skip("no systemd, systemctl or unshare here: units not run under a live systemd")
	}
	pairs := ownCgroups(t)
	if len(pairs) == 0 {
		t.Skip("no cgroup hierarchy mounted here for systemd to use")
	}
	id := fmt.Sprintf("mhrun-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	var dirs []string
	for i := 0; i < len(pairs); i += 2 {
		dirs = append(dirs, filepath.Join(pairs[i], id))
	}

	m := &userManager{t: t, xdg: t.TempDir(), home: t.TempDir()}
	if err := os.Chmod(m.xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	m.unitDir = filepath.Join(m.home, ".config", "systemd", "user")
	// The manager's default unit: nothing, where default.target would
	// start whatever the distribution enables for every user.
	if err := os.MkdirAll(m.unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.unitDir, "mhrun-test.target"), []byte("[Unit]\nDescription=mhrun test manager\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "systemd.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("sh", append([]string{"-c", confine, "sh", id, systemd, "mhrun-test.target"}, pairs...)...)
	cmd.Env = []string{"XDG_RUNTIME_DIR=" + m.xdg, "HOME=" + m.home, "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig: a test binary killed (go test -timeout, ^C) takes the
	// manager down, which stops its units.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start systemd --user: %v", err)
	}
	m.pid = cmd.Process.Pid
	ended := make(chan struct{})
	go func() { cmd.Wait(); close(ended) }()
	t.Cleanup(func() {
		m.ctl("exit")
		select {
		case <-ended:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-ended
		}
		removeCgroups(t, dirs)
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := m.ctl("show", "-p", "Version"); err == nil {
			// What the units need: the test binary is mhrun (and a child
			// of the race detector should not sleep a second at exit).
			m.must("set-environment", "MHRUN_TEST_MAIN=1", "GORACE=atexit_sleep_ms=50")
			return m
		}
		select {
		case <-ended:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("systemd --user ended at once (root, systemd and unshare are here, so it should run): %q", b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd --user started but does not answer systemctl within 20s")
		}
	}
}

// ctl runs systemctl --user against this manager.
func (m *userManager) ctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "systemctl", append([]string{"--user"}, args...)...)
	cmd.Env = []string{"XDG_RUNTIME_DIR=" + m.xdg, "HOME=" + m.home, "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("systemctl --user %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// must runs systemctl --user and fails the test on an error.
func (m *userManager) must(args ...string) string {
	m.t.Helper()
	out, err := m.ctl(args...)
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// props returns the named properties of a unit.
func (m *userManager) props(unit string, names ...string) map[string]string {
	m.t.Helper()
	out := m.must(append([]string{"show", unit}, "-p", strings.Join(names, ","))...)
	p := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			p[k] = v
		}
	}
	return p
}

// until polls the properties of a unit until ok accepts them, and
// returns them; systemd has no call that waits for a state.
func (m *userManager) until(unit, what string, ok func(map[string]string) bool, names ...string) map[string]string {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := m.props(unit, names...)
		if ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s: not %s within 30s: %v", unit, what, p)
		}
		time.Sleep(20 * time.Millisecond) // polling systemd's answer, with a deadline
	}
}

// settled waits for a stopping unit to settle (systemctl stop waits for
// the named units' jobs, not for those the stop pulled in: PartOf=) and
// returns its state and result.
func (m *userManager) settled(unit string) map[string]string {
	m.t.Helper()
	return m.until(unit, "stopped", func(p map[string]string) bool {
		return p["ActiveState"] == "inactive" || p["ActiveState"] == "failed"
	}, "ActiveState", "Result")
}

// waitDump waits, through w watching its dir, for path to exist and
// decodes it.
func waitDump(t *testing.T, w *fsnotify.Watcher, path string) dumped {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil {
			var d dumped
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return d
		}
		select {
		case <-w.Events:
		case err := <-w.Errors:
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("%s was not written within 30s", path)
		}
	}
}

// The units of mhrun export systemd, run by a live systemd: every
// instance starts with the argv mhrun would give it (quoting, %, $, \),
// its own PORT and PS, as the main process of its unit; ready=notify is
// accepted from it; a timer runs the job; the stop signal from anyone but
// systemd is a crash that restart=on-failure restarts; and a stop by the
// policy's stop signal leaves every unit's result "success".
func TestSystemdLiveExport(t *testing.T) {
	m := startUserManager(t)
	out := t.TempDir()
	exe := os.Args[0]
	dir := writeFiles(t, map[string]string{
		"Procfile": fmt.Sprintf("web: %s \"a b\" 'c\"d' 100%% $PORT '$HOME' back\\\\slash\nworker: %s worker\ntick: %s once\n", exe, exe, exe),
		"Procfile.policy": "web: scale=2 port=8080\nworker: after=web ready=notify stop-signal=QUIT\n" +
			"tick: schedule=\"@every 1s\"\n",
		".env": "MHRUN_TEST_HELPER=dump\nMHRUN_TEST_OUT=" + out + "\n",
	})
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(out); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runMhrun(t, dir, "export", "systemd", m.unitDir, "--app", "live"); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	m.must("daemon-reload")
	m.must("start", "live.target")

	for n, port := range []string{"8080", "8081"} {
		ps := "web." + strconv.Itoa(n+1)
		d := waitDump(t, w, filepath.Join(out, ps+".json"))
		want := []string{"a b", `c"d`, "100%", port, "$HOME", `back\slash`}
		if !slices.Equal(d.Argv, want) || d.Port != port || d.PS != ps {
			t.Errorf("%s ran with argv %q PORT %s PS %s; want %q PORT %s", ps, d.Argv, d.Port, d.PS, want, port)
		}
		if d.Ppid != m.pid {
			t.Errorf("%s's parent is %d, not systemd (%d): the shell did not exec it", ps, d.Ppid, m.pid)
		}
		if p := m.props("live-web@"+strconv.Itoa(n+1)+".service", "MainPID", "ActiveState"); p["MainPID"] != strconv.Itoa(d.Pid) || p["ActiveState"] != "active" {
			t.Errorf("live-web@%d: %v, want the program (pid %d) active as the main process", n+1, p, d.Pid)
		}
	}
	worker := waitDump(t, w, filepath.Join(out, "worker.1.json"))
	waitDump(t, w, filepath.Join(out, "tick.1.json"))
	// Type=notify: the start job of the worker ends once READY=1 came.
	m.must("start", "live-worker@1.service")
	if p := m.props("live-worker@1.service", "ActiveState", "SubState"); p["ActiveState"] != "active" || p["SubState"] != "running" {
		t.Errorf("worker (ready=notify) is %v", p)
	}

	// SIGQUIT from someone else: a crash, restarted (on-failure).
	if err := syscall.Kill(worker.Pid, syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	m.until("live-worker@1.service", "restarted after a SIGQUIT it did not send", func(p map[string]string) bool {
		return p["NRestarts"] == "1" && p["ActiveState"] == "active" && p["MainPID"] != "0" && p["MainPID"] != strconv.Itoa(worker.Pid)
	}, "NRestarts", "ActiveState", "MainPID")

	os.Remove(filepath.Join(out, "worker.1.signal")) // the crash's
	m.must("stop", "live.target", "live-tick.timer")
	// A unit that failed stays loaded with its Result; one that ended
	// clean may be unloaded, and shows a fresh unit's: so the signal each
	// program got is its own record.
	for _, tt := range []struct {
		unit, ps string
		sig      syscall.Signal
	}{{"live-web@1.service", "web.1", syscall.SIGTERM}, {"live-web@2.service", "web.2", syscall.SIGTERM}, {"live-worker@1.service", "worker.1", syscall.SIGQUIT}} {
		if p := m.settled(tt.unit); p["ActiveState"] != "inactive" || p["Result"] != "success" {
			t.Errorf("%s after stop: %v, want inactive with result success", tt.unit, p)
		}
		if b, err := os.ReadFile(filepath.Join(out, tt.ps+".signal")); err != nil || string(b) != strconv.Itoa(int(tt.sig)) {
			t.Errorf("%s was stopped by signal %q (%v), want %d (%v)", tt.ps, b, err, tt.sig, tt.sig)
		}
	}
}

// The unit of mhrun startup --user, run by a live systemd: start -D comes
// up under the PIDFile's pid, `mhrun status` reaches it, a killed runner
// is started again under its new pid, and a stop ends the formation
// gracefully through mhrun quit with the unit's result "success".
func TestSystemdLiveStartup(t *testing.T) {
	m := startUserManager(t)
	dir := writeFiles(t, map[string]string{"Procfile": "sleeper: sleep 1000\n"})
	if _, stderr, code := runMhrun(t, dir, "startup", "--user", "--app", "live", "--unit-dir", m.unitDir); code != 0 {
		t.Fatalf("startup: exit %d: %s", code, stderr)
	}
	m.must("daemon-reload")
	m.must("start", "mhrun-live.service")

	pidFile := filepath.Join(dir, ".mhrun", "logs", "runner.pid")
	pid := pidIn(t, pidFile)
	if p := m.props("mhrun-live.service", "MainPID", "ActiveState"); p["MainPID"] != strconv.Itoa(pid) || p["ActiveState"] != "active" {
		t.Errorf("mhrun-live.service: %v, want the runner %d active as the main process", p, pid)
	}
	waitStatus(t, dir, "sleeper.1 running", func(s map[string]socket.Instance) bool { return s["sleeper.1"].State == "running" })

	// A runner that dies is started again (Restart=on-failure), and its
	// new pid is the unit's main process.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, pid, 10*time.Second)
	p := m.until("mhrun-live.service", "started again", func(p map[string]string) bool {
		return p["ActiveState"] == "active" && p["MainPID"] != "0" && p["MainPID"] != strconv.Itoa(pid)
	}, "MainPID", "ActiveState")
	pid = pidIn(t, pidFile)
	if strconv.Itoa(pid) != p["MainPID"] {
		t.Errorf("after the restart runner.pid holds %d, the unit's main process is %s", pid, p["MainPID"])
	}
	s := waitStatus(t, dir, "sleeper.1 running again", func(s map[string]socket.Instance) bool { return s["sleeper.1"].State == "running" })
	child := s["sleeper.1"].PID

	m.must("stop", "mhrun-live.service")
	if p := m.settled("mhrun-live.service"); p["ActiveState"] != "inactive" || p["Result"] != "success" {
		t.Errorf("mhrun-live.service after stop: %v", p)
	}
	log, err := os.ReadFile(filepath.Join(dir, ".mhrun", "logs", "mhrun.log"))
	if err != nil || !strings.Contains(string(log), "quit request: stopping the formation") {
		t.Errorf("the runner was not stopped by mhrun quit (%v):\n%s", err, log)
	}
	waitExit(t, pid, 10*time.Second)
	waitExit(t, child, 10*time.Second)
}
