package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mhrun/socket"
)

// detachedEnv marks the runner that `mhrun start -D` started in the
// background: it runs the formation as the foreground start would.
const detachedEnv = "MHRUN_DETACHED"

// detach starts this same command again without -D, in a new session with
// its stdio away from the terminal, and returns once its control socket
// answers: the formation is up. If the runner ends first, its reason is
// the error. Before returning it writes the runner's pid to
// logDir/runner.pid, which the unit of `mhrun startup` names as PIDFile=:
// systemd reads it once this process exits.
func detach(app *App, abs, sock, logDir string) error {
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
	var args []string
	for _, a := range os.Args[1:] {
		if a != "-D" && a != "--detach" {
			args = append(args, a)
		}
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), detachedEnv+"=1", "MHRUN_LOG_DIR="+logDir)
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
			cmd.Process.Release()
			return nil
		}
	}
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
