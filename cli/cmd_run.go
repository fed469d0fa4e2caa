package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// RunCmd runs one command with the formation's environment (foreman run).
type RunCmd struct {
	ProjectFlags
	Command []string `arg:"" passthrough:"" name:"command" help:"The command and its arguments, e.g. mhrun run bin/rails console."`
}

// Run starts the command with stdio attached and passes its exit code on.
// Its environment is the real one, the env files (which win only with
// --env-override) and PORT of the Procfile's first process (or -p).
func (c *RunCmd) Run(app *App) error {
	f, err := c.load(nil)
	if err != nil {
		return err
	}
	if len(c.Command) == 0 {
		return fmt.Errorf("name a command to run, e.g. mhrun run env")
	}
	env := f.Env(f.Processes[0], 1, "")
	// a one-off is not an instance
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PS=") })
	cmd := exec.Command(c.Command[0], c.Command[1:]...)
	cmd.Env, cmd.Dir = env, f.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, app.Stdout, app.Stderr
	// Ctrl-C reaches the command through the terminal; mhrun waits for it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return &exitError{code: 127, err: fmt.Errorf("%s: command not found (give a program on PATH, or a path to one)", c.Command[0])}
		}
		return &exitError{code: 126, err: fmt.Errorf("run %s: %w", c.Command[0], err)}
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM { // not from the terminal: pass it on
				cmd.Process.Signal(s)
			}
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &exitError{code: 128 + int(ws.Signal())}
		}
		return &exitError{code: ee.ExitCode()}
	}
	return err
}
