package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"mhrun/formation"
	"mhrun/socket"
)

// ScaleCmd changes the scale of a running formation; with --save it also
// writes the new scale into the policy file, as mhrun save does.
type ScaleCmd struct {
	ControlFlags
	Items []string `arg:"" name:"name=n" predictor:"scale" help:"New scale per process, e.g. web=4 worker=0 (N may be max)."`
	Save  bool     `help:"Also write the new scale into Procfile.policy (as mhrun save NAME… does); checked before it scales: nothing changes when the file cannot be saved."`
}

// Run asks the runner and prints what it did.
func (c *ScaleCmd) Run(app *App) error {
	req := socket.Request{Cmd: socket.CmdScale, Args: c.Items}
	if !c.Save {
		return c.simple(app, req)
	}
	want, err := formation.ParseScale(c.Items)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	if len(names) == 0 {
		return errors.New("want NAME=N, e.g. mhrun scale web=4 --save")
	}
	return saveScale(app, &c.ControlFlags, names, &req)
}

// RestartCmd restarts processes or instances of a running formation.
type RestartCmd struct {
	ControlFlags
	Names []string `arg:"" name:"name" predictor:"instance" help:"Processes (web) or instances (web.2)."`
}

// Run asks the runner and prints what it did.
func (c *RestartCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: socket.CmdRestart, Args: c.Names})
}

// StopCmd stops processes or instances of a running formation; they stay
// stopped until started again.
type StopCmd struct {
	ControlFlags
	Names []string `arg:"" name:"name" predictor:"instance" help:"Processes (web) or instances (web.2)."`
}

// Run asks the runner and prints what it did.
func (c *StopCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: socket.CmdStop, Args: c.Names})
}

// SignalCmd sends a signal to processes or instances.
type SignalCmd struct {
	ControlFlags
	Args []string `arg:"" name:"name… signal" predictor:"instance" help:"Processes or instances, then the signal, e.g. web.2 HUP."`
}

// Run asks the runner and prints what it did.
func (c *SignalCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: socket.CmdSignal, Args: c.Args})
}

// QuitCmd stops the whole formation gracefully and waits until the runner
// has exited, so that a new one can start at once.
type QuitCmd struct {
	ControlFlags
	NoWait  bool          `help:"Return once the runner has begun the stop, without waiting for it to end."`
	Timeout time.Duration `placeholder:"DURATION" help:"Give up waiting after this long (default: the longest the stop may take by the formation's grace= values, plus 10s)."`
}

// quitMargin is what the wait allows beyond the runner's own bound on the
// stop: the log files' last flush and the guard's end, as the runner exits.
const quitMargin = 10 * time.Second

// Run asks the runner to stop, then follows the stop to its end: the
// runner tells what is still stopping every few seconds (printed on
// stderr), then how the formation ended; then its process exits.
func (c *QuitCmd) Run(app *App) error {
	if c.Timeout < 0 {
		return fmt.Errorf("--timeout=%s: want a duration >= 0, e.g. 2m", c.Timeout)
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	runner := conn.Peer() // now, while it surely lives
	defer runner.Close()
	resp, err := socket.Call(conn, socket.Request{Cmd: socket.CmdQuit})
	if err != nil {
		return err
	}
	fmt.Fprintln(app.Stdout, resp.Message)
	if c.NoWait || !resp.Stream {
		return nil
	}
	limit := c.Timeout
	if limit == 0 {
		limit = resp.StopWithin + quitMargin
	}
	deadline := time.Now().Add(limit)
	conn.SetDeadline(deadline)
	var end, still string
	for end == "" {
		typ, p, err := conn.ReadFrame()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return c.late(limit, still, runner)
		}
		if err != nil {
			// the connection ended before the stop: did the runner die?
			if runner.Exited(time.Second) {
				return fmt.Errorf("the runner (pid %d) died before the formation had stopped: killed, or it crashed; its guard stops what it left", runner.PID)
			}
			return fmt.Errorf("lost the runner's connection before the formation had stopped: %v", err)
		}
		switch typ {
		case socket.FrameNotice:
			still = string(p)
			fmt.Fprintf(app.Stderr, "mhrun: %s\n", p)
		case socket.FrameEnd:
			end = string(p)
		}
	}
	// every instance has stopped; the runner closes its log files and exits
	switch {
	case runner != nil:
		if !runner.Exited(time.Until(deadline)) {
			return fmt.Errorf("%s, but the runner (pid %d) has not exited after %s", end, runner.PID, limit)
		}
	default: // its pid unknown: the end of the connection is as near as it gets
		for {
			if _, _, err := conn.ReadFrame(); err != nil {
				break
			}
		}
	}
	fmt.Fprintln(app.Stdout, end)
	return nil
}

// late is the error of a wait that ran out.
func (c *QuitCmd) late(limit time.Duration, still string, runner *socket.Peer) error {
	who := "the runner"
	if runner != nil {
		who = fmt.Sprintf("the runner (pid %d)", runner.PID)
	}
	if still == "" {
		still = "no word from the runner"
	}
	return fmt.Errorf("gave up waiting after %s (%s): %s goes on stopping; see mhrun status, or wait longer with --timeout", limit, still, who)
}

// simple sends one request and prints the runner's message.
func (c *ControlFlags) simple(app *App, req socket.Request) error {
	resp, err := c.call(req)
	if err != nil {
		return err
	}
	if resp.Message != "" {
		fmt.Fprintln(app.Stdout, resp.Message)
	}
	return nil
}

// ReloadCmd replaces a balanced or shared-socket process's instances one
// at a time without refusing a connection.
type ReloadCmd struct {
	ControlFlags
	Name string `arg:"" name:"name" predictor:"process" help:"A process with balance=PORT or socket=PORT."`
}

// Run asks for the reload and waits until it is done or aborted.
func (c *ReloadCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: socket.CmdReload, Args: []string{c.Name}})
}
