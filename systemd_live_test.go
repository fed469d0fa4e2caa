package main

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
// it, dying by that very signal as a C program would ("once": exit 0).
func dumpHelper() {
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
		if c, err := net.Dial("unixgram", strings.Replace(addr, "@", "\x00", 1)); err == nil {
			c.Write([]byte("READY=1"))
			c.Close()
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	s := (<-sigs).(syscall.Signal)
	// Go's runtime would turn SIGQUIT into a stack dump and exit 2; a
	// shell in this same process dies of the signal itself.
	syscall.Exec("/bin/sh", []string{"sh", "-c", "kill -" + strconv.Itoa(int(s)) + " $$"}, os.Environ())
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
// rooted at fresh child cgroups of the test's own, so that what systemd
// does to "its" cgroups (it moves every process of its root cgroup into
// init.scope) stays inside them instead of moving the machine's processes.
type userManager struct {
	t         *testing.T
	pid       int
	xdg, home string
	unitDir   string
}

// confine is the shell that puts itself into a child cgroup named $1 of
// each of its cgroups that systemd uses, enters a new cgroup and mount
// namespace with those children bind-mounted over the hierarchies, hides
// /run behind a tmpfs holding /run/systemd/system, and execs systemd ($2)
// --user: its pid is the manager's.
const confine = `set -e
id=$1; systemd=$2; binds=
while IFS=: read -r num ctrl path; do
	case "$ctrl" in
	name=systemd) dir=/sys/fs/cgroup/systemd ;;
	"") dir=/sys/fs/cgroup/unified; [ -d $dir ] || dir=/sys/fs/cgroup ;;
	memory|pids|cpu) dir=/sys/fs/cgroup/$ctrl ;;
	*) continue ;;
	esac
	[ -d "$dir" ] || continue
	mkdir "${dir}${path%/}/$id"
	echo $$ > "${dir}${path%/}/$id/cgroup.procs"
	binds="$binds ${dir}${path%/}/$id:$dir"
done < /proc/self/cgroup
exec unshare -C -m sh -c '
	set -e
	for b in $1; do mount --bind "${b%%:*}" "${b#*:}"; done
	mount -t tmpfs tmpfs /run
	mkdir -p /run/systemd/system
	exec "$0" --user' "$systemd" "$binds"`

// cgroupDirs are the cgroups confine makes for id, from the test's own.
func cgroupDirs(t *testing.T, id string) []string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err)
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		dir := ""
		switch parts[1] {
		case "name=systemd":
			dir = "/sys/fs/cgroup/systemd"
		case "":
			dir = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(dir); err != nil {
				dir = "/sys/fs/cgroup"
			}
		case "memory", "pids", "cpu":
			dir = "/sys/fs/cgroup/" + parts[1]
		default:
			continue
		}
		if _, err := os.Stat(dir); err == nil {
			dirs = append(dirs, filepath.Join(dir, parts[2], id))
		}
	}
	return dirs
}

// removeCgroups removes dir and the cgroups systemd made below it, deepest
// first; cgroup dirs go with rmdir, their files with them.
func removeCgroups(t *testing.T, dir string) {
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
	id := fmt.Sprintf("mhrun-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	dirs := cgroupDirs(t, id)
	if len(dirs) == 0 {
		t.Skip("no cgroup hierarchy systemd could use here")
	}
	m := &userManager{t: t, xdg: t.TempDir(), home: t.TempDir()}
	if err := os.Chmod(m.xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	m.unitDir = filepath.Join(m.home, ".config", "systemd", "user")
	logPath := filepath.Join(t.TempDir(), "systemd.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command("sh", "-c", confine, "confine", id, systemd)
	cmd.Env = []string{"XDG_RUNTIME_DIR=" + m.xdg, "HOME=" + m.home, "PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("start systemd --user: %v", err)
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
		for _, d := range dirs {
			removeCgroups(t, d)
		}
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
			t.Skipf("systemd --user does not run here: %s", b)
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

// settled waits for a stopping unit to settle (systemctl stop waits for
// the named units' jobs, not for those the stop pulled in: PartOf=) and
// returns its ActiveState and Result.
func (m *userManager) settled(unit string) map[string]string {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := m.props(unit, "ActiveState", "Result")
		switch p["ActiveState"] {
		case "inactive", "failed":
			return p
		}
		if time.Now().After(deadline) {
			m.t.Errorf("%s has not stopped within 30s", unit)
			return p
		}
		time.Sleep(20 * time.Millisecond) // systemd has no wait-for-state call; poll its answer
	}
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
// accepted from it; a timer runs the job; and a stop by the policy's stop
// signal leaves every unit's result "success".
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
	waitDump(t, w, filepath.Join(out, "worker.1.json"))
	waitDump(t, w, filepath.Join(out, "tick.1.json"))
	// Type=notify: the start job of the worker ends once READY=1 came.
	if _, err := m.ctl("start", "live-worker@1.service"); err != nil {
		t.Fatal(err)
	}
	if p := m.props("live-worker@1.service", "ActiveState", "SubState"); p["ActiveState"] != "active" || p["SubState"] != "running" {
		t.Errorf("worker (ready=notify) is %v", p)
	}

	m.must("stop", "live.target", "live-tick.timer")
	for _, unit := range []string{"live-web@1.service", "live-web@2.service", "live-worker@1.service"} {
		if p := m.settled(unit); p["ActiveState"] != "inactive" || p["Result"] != "success" {
			t.Errorf("%s after stop: %v", unit, p)
		}
	}
}

// The unit of mhrun startup --user, run by a live systemd: start -D comes
// up under the PIDFile's pid, `mhrun status` reaches it, a killed runner
// is started again, and a stop ends the formation gracefully with the
// unit's result "success".
func TestSystemdLiveStartup(t *testing.T) {
	m := startUserManager(t)
	dir := writeFiles(t, map[string]string{"Procfile": "sleeper: sleep 1000\n"})
	if _, stderr, code := runMhrun(t, dir, "startup", "--user", "--app", "live", "--unit-dir", m.unitDir); code != 0 {
		t.Fatalf("startup: exit %d: %s", code, stderr)
	}
	m.must("daemon-reload")
	m.must("start", "mhrun-live.service")

	pid := readPid(t, filepath.Join(dir, ".mhrun", "logs", "runner.pid"))
	if p := m.props("mhrun-live.service", "MainPID", "ActiveState"); p["MainPID"] != strconv.Itoa(pid) || p["ActiveState"] != "active" {
		t.Errorf("mhrun-live.service: %v, want the runner %d active as the main process", p, pid)
	}
	waitStatus(t, dir, "sleeper.1 running", func(s map[string]socket.Instance) bool { return s["sleeper.1"].State == "running" })

	// A runner that dies is started again (Restart=on-failure, 2s later),
	// and its new pid is the unit's main process.
	syscall.Kill(pid, syscall.SIGKILL)
	waitExit(t, pid, 10*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := m.props("mhrun-live.service", "MainPID", "ActiveState")
		if p["ActiveState"] == "active" && p["MainPID"] != "0" && p["MainPID"] != strconv.Itoa(pid) {
			if again := readPid(t, filepath.Join(dir, ".mhrun", "logs", "runner.pid")); strconv.Itoa(again) != p["MainPID"] {
				t.Errorf("after the restart runner.pid holds %d, the unit's main process is %s", again, p["MainPID"])
			}
			pid, _ = strconv.Atoi(p["MainPID"])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed runner was not started again within 30s: %v", p)
		}
		time.Sleep(50 * time.Millisecond) // systemd has no wait-for-state call; poll its answer
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
