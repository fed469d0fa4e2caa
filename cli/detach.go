package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mhrun/formation"
	"mhrun/logfile"
	"mhrun/runner"
	"mhrun/socket"
)

// detach starts this same command again as the background runner
// (--detached-runner), in a new session with its stdio away from the
// terminal, and returns once its control socket answers: the formation is
// up. With ready set (--wait) it then waits until every instance is ready
// (readyWait.wait). If the runner ends first, its reason is the error.
// Before returning it writes the runner's pid to logDir/runner.pid, which
// the unit of `mhrun startup` names as PIDFile=: systemd reads it once
// this process exits.
func detach(app *App, abs, sock, logDir string, ready *readyWait) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find mhrun's own binary to detach: %w", err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("log dir %s: %w (pass a writable --log-dir)", logDir, err)
	}
	errPath := filepath.Join(logDir, "runner.err")
	errFile, err := os.OpenFile(errPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("runner error log: %w (pass a writable --log-dir)", err)
	}
	defer errFile.Close()
	start, _ := errFile.Seek(0, 2)
	cmd := exec.Command(exe, runnerArgs(app.Args, logDir)...)
	cmd.Dir, _ = os.Getwd()
	cmd.Stdout, cmd.Stderr = errFile, errFile // the merged output goes to the log files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the background runner: %w", err)
	}
	ended := make(chan error, 1)
	go func() { ended <- cmd.Wait() }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case <-ended:
			return fmt.Errorf("the background runner ended at once: %s (full log: %s)", lastLine(errPath, start), errPath)
		case <-deadline:
			return fmt.Errorf("the background runner (pid %d) did not answer on %s within 60s: see %s", cmd.Process.Pid, sock, errPath)
		case <-tick.C:
			conn, err := socket.Dial(sock)
			if err != nil {
				continue
			}
			conn.Close()
			if err := writePidFile(logDir, cmd.Process.Pid); err != nil {
				return fmt.Errorf("the formation runs (pid %d) but %w (stop it with mhrun quit; pass a writable --log-dir)", cmd.Process.Pid, err)
			}
			fmt.Fprintf(app.Stdout, "formation running in the background in %s (pid %d)\n  socket %s\n  logs   %s\n  stop it with: mhrun quit\n", abs, cmd.Process.Pid, sock, logDir)
			if ready != nil {
				if err := ready.wait(app, sock, logDir, ended); err != nil {
					return err
				}
			}
			cmd.Process.Release()
			return nil
		}
	}
}

// runnerArgs are the background runner's arguments: this command's, less
// -D, plus --detached-runner and the log dir (before a "--", after which
// nothing is a flag). Arguments, not the environment, which the
// formation's processes would inherit.
func runnerArgs(args []string, logDir string) []string {
	var out []string
	ours := []string{"--detached-runner", "--log-dir=" + logDir}
	for i, a := range args {
		if a == "--" {
			return append(append(out, ours...), args[i:]...)
		}
		if a != "-D" && a != "--detach" {
			out = append(out, a)
		}
	}
	return append(out, ours...)
}

// readyWait is what `start -D --wait` waits for.
type readyWait struct {
	f       *formation.Formation // which processes are optional
	timeout time.Duration
}

// readyPoll is how often --wait asks the runner for its instances' states.
const readyPoll = 100 * time.Millisecond

// wait polls the runner's status until every instance is ready: running
// (its ready= check passed), a one-shot that finished, a job waiting for
// its tick, or a singleton in standby (another runner holds its lock). An
// instance that gives up fails the wait at once, unless it is optional
// (then it is reported and the wait goes on); so does the runner's end,
// with its reason. Past the timeout it fails naming what is not ready,
// and the formation runs on.
func (w *readyWait) wait(app *App, sock, logDir string, ended <-chan error) error {
	t0 := time.Now()
	deadline := time.NewTimer(w.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	noted := map[string]bool{}
	var pending []string
	for {
		if rows, err := runnerStatus(context.Background(), sock); err == nil {
			var failed string
			pending, failed = w.check(rows, func(note string) {
				if !noted[note] {
					noted[note] = true
					fmt.Fprintf(app.Stderr, "mhrun: %s\n", note)
				}
			})
			if failed != "" {
				return fmt.Errorf("%s; the formation stops (its log: %s)", failed, filepath.Join(logDir, "mhrun.log"))
			}
			if len(pending) == 0 {
				fmt.Fprintf(app.Stdout, "every instance is ready (%s)\n", time.Since(t0).Round(time.Millisecond))
				return nil
			}
		}
		select {
		case err := <-ended:
			if err == nil {
				fmt.Fprintln(app.Stdout, "every process finished cleanly: the formation has ended")
				return nil
			}
			how := "the runner " + err.Error()
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() > 0 {
				how = fmt.Sprintf("the runner exited with code %d", ee.ExitCode())
			}
			return fmt.Errorf("%s: the formation stopped before it was ready (%s)", lastEvent(logDir), how)
		case <-deadline.C:
			return fmt.Errorf("not ready after %s: %s; the formation runs on (mhrun status, mhrun logs, mhrun quit)", w.timeout, strings.Join(pending, ", "))
		case <-tick.C:
		}
	}
}

// check sorts status rows: pending is what is not ready yet ("web.1
// (starting)"), failed the first instance that gave up without being
// optional; note reports what is settled but not running (an optional
// instance that gave up, one left stopped).
func (w *readyWait) check(rows []socket.Instance, note func(string)) (pending []string, failed string) {
	for _, row := range rows {
		why := row.Reason
		if why == "" {
			why = row.LastExit
		}
		switch runner.State(row.State) {
		case runner.StateRunning, runner.StateExited, runner.StateScheduled, runner.StateStandby:
		case runner.StateErrored:
			// "web.1 gave up (restart=never): its last run exited with code 3"
			msg := row.Name + " " + row.Reason
			if row.LastExit != "" {
				msg += ": its last run " + row.LastExit
			}
			if p := w.f.Process(row.Process); p != nil && p.Policy.Optional {
				note(msg + "; " + row.Process + " is optional")
				continue
			}
			if failed == "" {
				failed = msg
			}
		case runner.StateStopped:
			note(fmt.Sprintf("%s is stopped (%s)", row.Name, why))
		default:
			if why != "" {
				pending = append(pending, fmt.Sprintf("%s (%s: %s)", row.Name, row.State, why))
			} else {
				pending = append(pending, fmt.Sprintf("%s (%s)", row.Name, row.State))
			}
		}
	}
	return pending, failed
}

// runnerStatus asks the runner at sock for its instances, by ctx's
// deadline if it has one.
func runnerStatus(ctx context.Context, sock string) ([]socket.Instance, error) {
	conn, err := socket.Dial(sock)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	resp, err := socket.Call(conn, socket.Request{Cmd: socket.CmdStatus})
	return resp.Status, err
}

// lastEvent is the runner's last event that stopped the formation (a
// process that gave up), or its last event, from the log files.
func lastEvent(logDir string) string {
	last := ""
	logfile.Backward(logDir, func(s string) bool {
		l, ok := logfile.ParseLine(s)
		if !ok || l.Name != logfile.CombinedName {
			return true
		}
		if last == "" {
			last = l.Text
		}
		if strings.HasSuffix(l.Text, ": stopping the formation") {
			last = strings.TrimSuffix(l.Text, ": stopping the formation")
			return false
		}
		return true
	})
	if last == "" {
		return "see " + filepath.Join(logDir, "mhrun.log")
	}
	return last
}

// writePidFile writes pid and a newline to dir/runner.pid through a
// temporary file renamed over it, so a reader never sees half of it.
func writePidFile(dir string, pid int) error {
	path := filepath.Join(dir, "runner.pid")
	tmp, err := os.CreateTemp(dir, ".runner.pid.*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	_, err = tmp.WriteString(strconv.Itoa(pid) + "\n")
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// lastLine is the last line written to path after offset, for an error.
func lastLine(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "no message"
	}
	defer f.Close()
	f.Seek(offset, 0)
	last := "no message"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = strings.TrimPrefix(l, "mhrun: ")
		}
	}
	return last
}
