package cli

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/term"

	"mhrun/formation"
	"mhrun/logfile"
	"mhrun/policy"
	"mhrun/runner"
	"mhrun/socket"
)

// StartCmd runs the formation in the foreground.
type StartCmd struct {
	ProjectFlags
	Names       []string      `arg:"" optional:"" name:"name" predictor:"process" help:"Run only these processes (default: all)."`
	Timestamps  bool          `help:"Prefix every line with the time."`
	Color       string        `enum:"auto,always,never" default:"auto" help:"Colour prefixes: auto, always or never (auto: only on a terminal without NO_COLOR)."`
	Sample      time.Duration `default:"1s" help:"How often memory= caps are checked."`
	BalanceHost string        `placeholder:"HOST" default:"127.0.0.1" help:"Interface the balance= ports listen on (0.0.0.0 for every one)."`
	Detach      bool          `short:"D" help:"Run in the background: a new session, output to the log files; returns once the formation answers."`
	Wait        bool          `help:"Run in the background (implies -D) and return once every instance is ready: running, a one-shot finished, a job scheduled; fail if one gives up."`
	WaitTimeout time.Duration `default:"1m" placeholder:"DURATION" help:"With --wait: fail if the formation is not ready by then (it runs on)."`
	LogDir      string        `placeholder:"DIR" env:"MHRUN_LOG_DIR" help:"Write log files here (default with -D: .mhrun/logs in the project dir)."`
	LogMaxSize  string        `default:"10M" placeholder:"SIZE" help:"Rotate a log file past this size (K, M, G; whole MB at least 1M)."`
	LogKeep     int           `default:"5" help:"Rotated files kept per log."`
	LogCompress bool          `help:"Gzip rotated log files."`
	MetricsFlag
	Socket string `placeholder:"PATH" env:"MHRUN_SOCKET" help:"Control socket (default: .mhrun.sock in the project dir, or a hashed path under the runtime dir when that is too long)."`

	// DetachedRunner marks the runner that -D starts in the background
	// (an argument, not the environment, so the formation's processes do
	// not inherit it): it never detaches again and writes only to the log
	// files.
	DetachedRunner bool `hidden:"" name:"detached-runner"`
}

// Run starts every instance and supervises them until the formation stops;
// on a formation that runs already, it starts the named processes in it.
func (c *StartCmd) Run(app *App) error {
	if c.DetachedRunner {
		c.Detach, c.Wait = false, false
	}
	if c.Wait {
		c.Detach = true // as docker compose up --wait
	}
	if c.WaitTimeout <= 0 {
		return fmt.Errorf("--wait-timeout=%s: want a positive duration, e.g. 2m", c.WaitTimeout)
	}
	path, abs, err := socketPath(c.Dir, c.Socket)
	if err != nil {
		return err
	}
	conn, err := socket.Dial(path)
	if err != nil && c.Socket == "" {
		if other, p := dialOther(abs); other != nil {
			conn, path, err = other, p, nil
		}
	}
	if err == nil {
		defer conn.Close()
		if len(c.Names) == 0 {
			return fmt.Errorf("a formation is already running in %s (socket %s): see mhrun status, or name processes to start in it", abs, path)
		}
		resp, err := socket.Call(conn, socket.Request{Cmd: socket.CmdStart, Args: c.Names})
		if err != nil {
			return err
		}
		fmt.Fprintln(app.Stdout, resp.Message)
		return nil
	}
	f, err := c.load(c.Names)
	if err != nil {
		return err
	}
	if !c.DetachedRunner { // -D's foreground process has said it already
		printProgramWarnings(app.Stderr, f.MissingPrograms())
	}
	if c.Detach {
		logDir := c.LogDir
		if logDir == "" {
			logDir = defaultLogDir(f.Dir)
		}
		var ready *readyWait
		if c.Wait {
			ready = &readyWait{f: f, timeout: c.WaitTimeout}
		}
		return detach(app, abs, path, logDir, ready)
	}
	sink, logDir, err := c.openLogs(f)
	if err != nil {
		return err
	}
	if sink != nil {
		defer sink.Close()
	}
	lock, stale, err := socket.AcquireLock(path)
	if err != nil {
		return err
	}
	defer lock.Release()

	sigs := make(chan os.Signal, 4)
	// SIGHUP (a closed terminal, a dropped ssh, tmux kill-session) is a
	// graceful stop like INT and TERM, in the foreground and under -D alike.
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGWINCH)
	defer signal.Stop(sigs)

	out := app.Stdout
	if c.DetachedRunner {
		out = io.Discard // started by -D: the log files have every line
	}
	tty := isTerminal(out)
	color := c.Color == "always" || (c.Color == "auto" && tty && os.Getenv("NO_COLOR") == "")
	opts := runner.Options{
		Stdout:      out,
		Color:       color,
		Timestamps:  c.Timestamps,
		Socket:      path,
		Control:     true,
		BalanceHost: c.BalanceHost,
		LogDir:      logDir,
		Signals:     sigs,
		Subreaper:   true,
		Sample:      c.Sample,
	}
	if exe, err := os.Executable(); err == nil {
		opts.Guard = exe
	}
	if tty {
		fd := int(out.(*os.File).Fd())
		opts.TermSize = func() (int, int, bool) {
			w, h, err := term.GetSize(fd)
			return w, h, err == nil
		}
	}
	if sink != nil {
		opts.Logs = sink
	}
	if stale {
		app.Stderr.Write([]byte("mhrun: removed a stale control socket left by a runner that was killed\n"))
	}
	if c.Sample <= 0 {
		return fmt.Errorf("--sample=%s: want a positive duration, e.g. 1s", c.Sample)
	}
	if c.Metrics != "" {
		stop, err := serveMetrics(c.Metrics, path, app.Stderr)
		if err != nil {
			return err
		}
		defer stop()
	}
	code, err := runner.Run(app.Ctx, f, opts)
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// openLogs opens the log files when they are asked for: --log-dir (set by
// -D for its runner), or log= in the policy, which writes under
// .mhrun/logs too.
func (c *StartCmd) openLogs(f *formation.Formation) (*logfile.Sink, string, error) {
	extra := map[string]string{}
	for _, p := range f.Processes {
		if p.Policy.Log != "" {
			path := p.Policy.Log
			if !filepath.IsAbs(path) {
				path = filepath.Join(f.Dir, path)
			}
			extra[p.Name] = path
		}
	}
	dir := c.LogDir
	if dir == "" && len(extra) == 0 {
		return nil, "", nil
	}
	if dir == "" {
		dir = defaultLogDir(f.Dir)
	}
	size, err := policy.ParseSize(c.LogMaxSize)
	if err != nil {
		return nil, "", fmt.Errorf("--log-max-size=%s: %w", c.LogMaxSize, err)
	}
	if c.LogKeep < 0 {
		return nil, "", fmt.Errorf("--log-keep=%d: want a number of files >= 0", c.LogKeep)
	}
	sink, err := logfile.Open(logfile.Options{Dir: dir, MaxSize: size, Keep: c.LogKeep, Compress: c.LogCompress, Extra: extra})
	if err != nil {
		return nil, "", err
	}
	return sink, dir, nil
}

// defaultLogDir is where start writes log files (and -D its runner.pid,
// which the unit of mhrun startup names) when --log-dir is not given.
func defaultLogDir(projectDir string) string {
	return filepath.Join(projectDir, ".mhrun", "logs")
}
