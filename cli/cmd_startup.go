package cli

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"mhrun/export"
	"mhrun/formation"
)

// systemUnitDir is where a system unit is written by default.
const systemUnitDir = "/etc/systemd/system"

// isRoot reports whether mhrun runs as root; tests replace it to take the
// non-root path on a machine where they run as root.
var isRoot = func() bool { return os.Geteuid() == 0 }

// StartupCmd writes a systemd unit that runs `mhrun start -D` for this
// project at boot, as PM2's startup does for its daemon.
//
// It does not run systemctl: enabling a unit is a change to the machine
// the user should see and make (and may want to review the unit first, or
// install it with their own tooling), so it prints the commands instead.
// The formation is validated first, so a broken Procfile fails now rather
// than at boot, and every path in the unit is absolute.
type StartupCmd struct {
	ProjectFlags
	MetricsFlag
	User    bool   `help:"Write a unit for your user manager (systemctl --user) in ~/.config/systemd/user; it starts at boot only after loginctl enable-linger."`
	Print   bool   `help:"Print the unit on stdout and write nothing."`
	App     string `placeholder:"NAME" help:"Unit name: mhrun-NAME.service (default: the project dir's name)."`
	LogDir  string `placeholder:"DIR" help:"The runner's log dir, where runner.pid is written too (default: .mhrun/logs in the project dir, as start -D)."`
	UnitDir string `placeholder:"DIR" help:"Write the unit here instead (default: /etc/systemd/system, or the user unit dir with --user)."`
}

// Run validates the formation, builds the unit and writes or prints it.
func (c *StartupCmd) Run(app *App) error {
	f, err := c.load(nil)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fmt.Errorf("find mhrun's own binary for the unit's ExecStart: %w", err)
	}
	logDir := c.LogDir
	if logDir == "" {
		logDir = defaultLogDir(f.Dir) // as start -D
	}
	if logDir, err = filepath.Abs(logDir); err != nil {
		return fmt.Errorf("--log-dir %s: %w", c.LogDir, err)
	}

	o := export.StartupOptions{
		App:      c.App,
		Dir:      f.Dir,
		Mhrun:    exe,
		Args:     c.startArgs(f.Dir),
		UserUnit: c.User,
		LogDir:   logDir,
		Path:     unitPath(os.Getenv("PATH"), filepath.Dir(exe)),
		// The processes stop in reverse after= order, each within its
		// grace (two for a balanced one: drain, then stop): their sum
		// bounds the graceful stop; at least systemd's 90s.
		StopTimeout: max(90*time.Second, stopBound(f)+10*time.Second),
	}
	switch {
	case c.User: // the user manager runs it as its own user: no User=
	case isRoot():
		if u := os.Getenv("SUDO_USER"); u != "" && u != "root" {
			o.User = u // sudo mhrun startup: the formation runs as who asked
		}
	default:
		u, err := user.Current()
		if err != nil {
			return fmt.Errorf("find your user name for User=: %w (run with sudo, or use --user)", err)
		}
		o.User = u.Username
		if !c.Print && c.UnitDir == "" {
			return fmt.Errorf("writing %s needs root: run sudo env PATH=\"$PATH\" %s (the unit will run as %s with this PATH), or use --user or --print",
				systemUnitDir, shellJoin(append([]string{exe, "startup"}, c.startupArgs(f.Dir, logDir)...)), o.User)
		}
	}
	name, unit, err := export.Startup(o)
	if err != nil {
		return err
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		fmt.Fprintf(app.Stderr, "mhrun: warning: %s is a temporary build (go run, go test) that will vanish: for a lasting unit, go install mhrun and run that one's startup\n", exe)
	}
	if c.Print {
		_, err := app.Stdout.Write(unit)
		return err
	}

	dir := c.UnitDir
	if dir == "" {
		dir, err = defaultUnitDir(c.User)
		if err != nil {
			return err
		}
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write the unit: %w (pass a writable --unit-dir, or --print)", err)
	}
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		return fmt.Errorf("write the unit: %w (pass a writable --unit-dir, or --print)", err)
	}
	as := ""
	if o.User != "" {
		as = " as " + o.User
	}
	systemctl := "systemctl"
	if c.User {
		systemctl = "systemctl --user"
	}
	fmt.Fprintf(app.Stdout, "wrote %s: mhrun start -D in %s%s, logs in %s\n", path, f.Dir, as, logDir)
	if c.User {
		fmt.Fprintf(app.Stdout, "start it now and at every login (mhrun does not run systemctl for you):\n")
	} else {
		fmt.Fprintf(app.Stdout, "start it now and at every boot (mhrun does not run systemctl for you):\n")
	}
	fmt.Fprintf(app.Stdout, "  %s daemon-reload && %s enable --now %s\n", systemctl, systemctl, name)
	if c.User {
		fmt.Fprintf(app.Stdout, "  loginctl enable-linger %s   # once: your user manager then starts at boot, without a login\n", currentUser())
	}
	fmt.Fprintf(app.Stdout, "remove it with: %s disable --now %s && rm %s\n", systemctl, name, shellJoin([]string{path}))
	return nil
}

// startArgs are the `mhrun start` words that give the runner the formation
// these flags describe, every path made absolute against the project dir
// (as formation.Load reads them).
func (c *StartupCmd) startArgs(dir string) []string {
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(dir, p)
	}
	var args []string
	if c.Procfile != "" {
		args = append(args, "-f", abs(c.Procfile))
	}
	if c.Policy != "" {
		args = append(args, "--policy", abs(c.Policy))
	}
	for _, e := range c.Env {
		args = append(args, "-e", abs(e))
	}
	for _, m := range c.Formation {
		args = append(args, "-m", m)
	}
	if c.Port != 0 {
		args = append(args, "-p", strconv.Itoa(c.Port))
	}
	if c.Metrics != "" {
		args = append(args, "--metrics", c.Metrics)
	}
	if c.EnvOverride {
		args = append(args, "--env-override")
	}
	return args
}

// startupArgs repeat this command's own flags, resolved, for the sudo hint.
func (c *StartupCmd) startupArgs(dir, logDir string) []string {
	args := append([]string{"-d", dir}, c.startArgs(dir)...)
	if c.App != "" {
		args = append(args, "--app", c.App)
	}
	if c.LogDir != "" {
		args = append(args, "--log-dir", logDir)
	}
	return args
}

// unitPath is PATH= of the unit: the caller's PATH, so the Procfile's
// commands find what they find in a shell, with mhrun's own dir added so
// a process can run mhrun; systemd's default when there is none.
func unitPath(path, exeDir string) string {
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	// Each dir once, absolute ones only: a relative entry (".") would be
	// looked up from the unit's working dir, as root for a system unit.
	var dirs []string
	for _, d := range append(filepath.SplitList(path), exeDir) {
		if filepath.IsAbs(d) && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return strings.Join(dirs, string(filepath.ListSeparator))
}

// defaultUnitDir is /etc/systemd/system, or the user manager's unit dir.
func defaultUnitDir(userUnit bool) (string, error) {
	if !userUnit {
		return systemUnitDir, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "systemd", "user"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the user unit dir: %w (set HOME, or pass --unit-dir)", err)
	}
	return filepath.Join(home, ".config", "systemd", "user"), nil
}

// currentUser is the login name for the linger hint, else $USER.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "$USER"
}

// shellJoin quotes words for a command line a user can paste.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		if w != "" && !strings.ContainsFunc(w, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-=,:+@%", r))
		}) {
			q[i] = w
		} else {
			q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// stopBound is the longest a graceful stop of the formation can take: the
// processes stop one after another at worst, each within its grace (a
// balanced one's drain runs inside it).
func stopBound(f *formation.Formation) time.Duration {
	var d time.Duration
	for _, p := range f.Processes {
		d += p.Policy.Grace
	}
	return d
}
