package cli

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"mhrun/socket"
)

// testExe is the mhrun the tests run, as `mhrun startup` names it.
func testExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// mhrun startup --print prints a unit naming the absolute project dir, this
// mhrun and every given file made absolute, and writes nothing.
func TestStartupPrint(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: sleep 1000\n",
		"Procfile.policy": "web: grace=100s balance=4400\n",
		"conf/prod.env":   "A=1\n",
	})
	stdout, stderr, code := runMhrun(t, filepath.Dir(dir), "startup", "--print", "-d", filepath.Base(dir),
		"--app", "print-test", "-e", "conf/prod.env", "-m", "web=2", "-p", "6000", "--metrics", "127.0.0.1:9464")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	exe := testExe(t)
	for _, line := range []string{
		"[Service]\nType=forking\n",
		"PIDFile=" + filepath.Join(dir, ".mhrun", "logs", "runner.pid") + "\n",
		"WorkingDirectory=" + dir + "\n",
		"ExecStart='" + exe + "' start -D -d '" + dir + "' --log-dir '" + filepath.Join(dir, ".mhrun", "logs") + "'" +
			" '-e' '" + filepath.Join(dir, "conf", "prod.env") + "' '-m' 'web=2' '-p' '6000' '--metrics' '127.0.0.1:9464'\n",
		"ExecStop=-'" + exe + "' quit -d '" + dir + "'\n",
		"WantedBy=multi-user.target\n",
		"TimeoutStopSec=110s\n", // the grace once for a balanced process (its drain runs inside it), plus 10s
	} {
		if !strings.Contains(stdout, line) {
			t.Errorf("unit lacks %q:\n%s", line, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(systemUnitDir, "mhrun-print-test.service")); err == nil {
		t.Errorf("--print wrote %s", filepath.Join(systemUnitDir, "mhrun-print-test.service"))
	}
}

// --unit-dir writes DIR/mhrun-APP.service and prints the next commands;
// with --user the unit is for the user manager and the linger hint is given.
func TestStartupUnitDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "web: sleep 1000\n"})
	units := filepath.Join(t.TempDir(), "units")
	stdout, stderr, code := runMhrun(t, dir, "startup", "--unit-dir", units, "--app", "shop", "--log-dir", "logs")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	path := filepath.Join(units, "mhrun-shop.service")
	unit, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"wrote " + path, "systemctl daemon-reload && systemctl enable --now mhrun-shop.service", "mhrun does not run systemctl"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("output lacks %q:\n%s", s, stdout)
		}
	}
	if !strings.Contains(string(unit), "PIDFile="+filepath.Join(dir, "logs", "runner.pid")+"\n") {
		t.Errorf("relative --log-dir not made absolute:\n%s", unit)
	}
	printed, _, _ := runMhrun(t, dir, "startup", "--print", "--app", "shop", "--log-dir", "logs")
	if printed != string(unit) {
		t.Errorf("written unit differs from --print:\n%s\n---\n%s", unit, printed)
	}

	stdout, stderr, code = runMhrun(t, dir, "startup", "--user", "--unit-dir", units, "--app", "shop-user")
	if code != 0 {
		t.Fatalf("--user: exit %d: %s", code, stderr)
	}
	unit, err = os.ReadFile(filepath.Join(units, "mhrun-shop-user.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "WantedBy=default.target\n") || strings.Contains(string(unit), "User=") {
		t.Errorf("user unit:\n%s", unit)
	}
	for _, s := range []string{"systemctl --user daemon-reload && systemctl --user enable --now mhrun-shop-user.service", "loginctl enable-linger "} {
		if !strings.Contains(stdout, s) {
			t.Errorf("--user output lacks %q:\n%s", s, stdout)
		}
	}
}

// A broken Procfile fails now, in one line, not at boot; nothing is written.
func TestStartupBrokenProcfile(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "web sleep 1000\n"})
	units := filepath.Join(t.TempDir(), "units")
	stdout, stderr, code := runMhrun(t, dir, "startup", "--unit-dir", units)
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "mhrun: Procfile:1: not a process line") {
		t.Errorf("exit %d, stderr %q, stdout %q; want exit 1 and one line naming Procfile:1", code, stderr, stdout)
	}
	if _, err := os.Stat(units); err == nil {
		t.Errorf("%s written for a broken formation", units)
	}
}

// Without root, a system unit is refused in one line that says how to get
// one; --print and --user still work, and the unit runs as the caller.
// The test runs as root here, so it takes the non-root path through isRoot.
func TestStartupNotRoot(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "web: sleep 1000\n"})
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 { // the real thing, when it can be had
		_, stderr, code := runMhrun(t, dir, "startup")
		if code != 1 || !strings.Contains(stderr, "needs root") {
			t.Errorf("as uid %d: exit %d %q", os.Geteuid(), code, stderr)
		}
	}
	defer func(f func() bool) { isRoot = f }(isRoot)
	isRoot = func() bool { return false }

	_, stderr, code := runIn(t, "startup", "-d", dir, "--app", "shop")
	want := `mhrun: writing /etc/systemd/system needs root: run sudo env PATH="$PATH" ` + testExe(t) + " startup -d " + dir +
		" --app shop (the unit will run as " + me.Username + " with this PATH), or use --user or --print\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr:\n%q\nwant:\n%q", code, stderr, want)
	}
	if _, err := os.Stat(filepath.Join(systemUnitDir, "mhrun-shop.service")); err == nil {
		t.Errorf("a unit was written in %s without root", systemUnitDir)
	}
	stdout, stderr, code := runIn(t, "startup", "-d", dir, "--print")
	if code != 0 || !strings.Contains(stdout, "\nUser="+me.Username+"\n") {
		t.Errorf("--print without root: exit %d %q, want User=%s:\n%s", code, stderr, me.Username, stdout)
	}
	stdout, stderr, code = runIn(t, "startup", "-d", dir, "--print", "--user")
	if code != 0 || strings.Contains(stdout, "User=") || !strings.Contains(stdout, "WantedBy=default.target") {
		t.Errorf("--user --print without root: exit %d %q:\n%s", code, stderr, stdout)
	}

	// as root through sudo the unit runs as the user who asked; as root
	// itself, as root
	isRoot = func() bool { return true }
	t.Setenv("SUDO_USER", "deploy")
	if stdout, _, _ := runIn(t, "startup", "-d", dir, "--print"); !strings.Contains(stdout, "\nUser=deploy\n") {
		t.Errorf("under sudo: no User=deploy:\n%s", stdout)
	}
	t.Setenv("SUDO_USER", "")
	if stdout, _, _ := runIn(t, "startup", "-d", dir, "--print"); strings.Contains(stdout, "User=") {
		t.Errorf("as root: a User= line:\n%s", stdout)
	}
}

// The unit's own commands work as systemd runs them: ExecStart= in
// WorkingDirectory= with only the unit's Environment= returns once the
// formation answers, PIDFile= then names the live runner in the project
// dir, and ExecStop= (with $MAINPID, as systemd sets it) returns only once
// that runner has exited, its process gone with it.
func TestStartupUnitRunsAsSystemdWould(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "sleeper: exec sleep 1000\n"})
	unitText, stderr, code := runMhrun(t, dir, "startup", "--print", "--app", "e2e")
	if code != 0 {
		t.Fatalf("startup --print: exit %d: %s", code, stderr)
	}
	unit := parseUnit(t, unitText)
	workDir, pidFile := unit.one(t, "WorkingDirectory"), unit.one(t, "PIDFile")
	if workDir != dir {
		t.Fatalf("WorkingDirectory=%s, want %s", workDir, dir)
	}
	// systemd gives the unit its Environment= and little else; the socket
	// is the project's own, .mhrun.sock in this test's private dir
	env := []string{"MHRUN_TEST_MAIN=1"} // makes the test binary mhrun
	for _, e := range unit["Environment"] {
		env = append(env, unquoteEnv(t, e))
	}

	// systemd reaps the processes of its units; so does the test, standing
	// in for it (the init of a container may reap nothing), else the
	// runner would stay a zombie that `kill -0 $MAINPID` still finds
	var was int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&was)), 0, 0, 0); err != nil {
		t.Fatalf("PR_GET_CHILD_SUBREAPER: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, uintptr(was), 0, 0, 0)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // TimeoutStartSec=
	defer cancel()
	_, argv := execWords(t, unit.one(t, "ExecStart"))
	start := exec.CommandContext(ctx, argv[0], argv[1:]...)
	start.Dir, start.Env = workDir, env
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("ExecStart %q: %v\n%s", argv, err, out)
	}
	// Type=forking: ExecStart has returned, so the formation answers and
	// PIDFile= is whole
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("PIDFile after ExecStart returned: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSuffix(string(b), "\n"))
	if err != nil || pid <= 1 {
		t.Fatalf("PIDFile %s holds %q", pidFile, b)
	}
	reaped := make(chan struct{})
	go func() { // the runner is the test's now that its parent has exited
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
				break
			}
		}
		close(reaped)
	}()
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL) // the test failed before ExecStop ended it
		<-reaped
	})
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("PIDFile pid %d: %v", pid, err)
	}
	if cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err != nil || cwd != dir {
		t.Errorf("runner %d works in %q (%v), want %s", pid, cwd, err, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, ".mhrun.sock")); err != nil {
		t.Errorf("the runner's socket is not the project's own: %v", err)
	}
	s := waitStatus(t, dir, "sleeper.1 running", func(s map[string]socket.Instance) bool { return s["sleeper.1"].State == "running" })
	child := s["sleeper.1"].PID

	for _, line := range unit["ExecStop"] {
		ignore, argv := execWords(t, line)
		stop := exec.CommandContext(ctx, argv[0], argv[1:]...)
		stop.Dir, stop.Env = workDir, append(env, "MAINPID="+strconv.Itoa(pid))
		if out, err := stop.CombinedOutput(); err != nil && !ignore {
			t.Fatalf("ExecStop %q: %v\n%s", argv, err, out)
		}
	}
	// the last ExecStop= returned: the runner must have exited already
	// (reaped, or a zombie the test's reaper goroutine has not run for yet:
	// quit now returns once the runner has exited, so the loop on kill -0
	// may end without a single sleep)
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
		select {
		case <-reaped:
		default:
			t.Errorf("ExecStop returned while the runner %d still ran", pid)
		}
	}
	waitExit(t, pid, 10*time.Second)
	waitExit(t, child, 10*time.Second)
}

// unitFile is a unit's settings: key → values in order.
type unitFile map[string][]string

func parseUnit(t *testing.T, text string) unitFile {
	t.Helper()
	u := unitFile{}
	for _, l := range strings.Split(text, "\n") {
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "[") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("unit line %q", l)
		}
		u[k] = append(u[k], v)
	}
	return u
}

// one is the single value of key, with systemd's %% specifier escape undone.
func (u unitFile) one(t *testing.T, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Fatalf("%s= appears %d times, want once", key, len(u[key]))
	}
	return strings.ReplaceAll(u[key][0], "%%", "%")
}

// execWords splits an Exec line as systemd does for the quoting execQuote
// writes: words split at spaces, '…' quotes with C escapes, then "%%" and
// "$$" undone; a leading "-" on the first word means a failure is ignored.
func execWords(t *testing.T, line string) (ignore bool, argv []string) {
	t.Helper()
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case !quoted && c == ' ':
			if inWord {
				argv = append(argv, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'':
			quoted, inWord = !quoted, true
		case quoted && c == '\\':
			i++
			if i == len(line) {
				t.Fatalf("exec line ends in a backslash: %q", line)
			}
			switch line[i] {
			case 'n':
				w.WriteByte('\n')
			case 't':
				w.WriteByte('\t')
			case 'x':
				n, err := strconv.ParseUint(line[i+1:i+3], 16, 8)
				if err != nil {
					t.Fatalf("bad \\x escape in %q", line)
				}
				w.WriteByte(byte(n))
				i += 2
			default:
				w.WriteByte(line[i]) // \\ and \'
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in exec line %q", line)
	}
	if inWord {
		argv = append(argv, w.String())
	}
	if len(argv) == 0 {
		t.Fatalf("empty exec line")
	}
	if ignore = strings.HasPrefix(argv[0], "-"); ignore {
		argv[0] = argv[0][1:]
	}
	for i, a := range argv {
		argv[i] = strings.NewReplacer("%%", "%", "$$", "$").Replace(a)
	}
	if !filepath.IsAbs(argv[0]) {
		t.Fatalf("exec line %q: %q is not an absolute path", line, argv[0])
	}
	return ignore, argv
}

// unquoteEnv undoes envQuote and the specifier escape of an Environment= value.
func unquoteEnv(t *testing.T, v string) string {
	t.Helper()
	if strings.HasPrefix(v, `"`) {
		if !strings.HasSuffix(v, `"`) || len(v) < 2 {
			t.Fatalf("Environment=%s: unterminated quote", v)
		}
		v = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(v[1 : len(v)-1])
	}
	return strings.ReplaceAll(v, "%%", "%")
}

// The unit's PATH keeps the caller's dirs once each, drops relative ones,
// and adds mhrun's own dir.
func TestStartupUnitPath(t *testing.T) {
	for _, tt := range []struct{ path, exe, want string }{
		{"/usr/local/go/bin:/usr/bin:/usr/local/go/bin:.::bin", "/opt/mhrun", "/usr/local/go/bin:/usr/bin:/opt/mhrun"},
		{"/usr/bin:/opt/mhrun", "/opt/mhrun", "/usr/bin:/opt/mhrun"},
		{"", "/opt/mhrun", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/mhrun"},
	} {
		if got := unitPath(tt.path, tt.exe); got != tt.want {
			t.Errorf("unitPath(%q, %q) = %q, want %q", tt.path, tt.exe, got, tt.want)
		}
	}
}
