package cli

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"mhrun/socket"
)

// LogsCmd prints the running formation's recent output, then follows it.
type LogsCmd struct {
	ControlFlags
	Names  []string `arg:"" optional:"" name:"name" predictor:"instance" help:"Only these processes or instances (and mhrun's events about them)."`
	Lines  int      `short:"n" default:"100" help:"How many recent lines: from memory (the last 10,000), then from the log files."`
	Follow bool     `short:"f" help:"Keep printing new lines until Ctrl-C or the formation stops."`
}

// Run streams the lines the runner sends.
func (c *LogsCmd) Run(app *App) error {
	if c.Lines < 0 {
		return fmt.Errorf("-n %d: want a number of lines >= 0", c.Lines)
	}
	ctx, stop := signal.NotifyContext(app.Ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() { // Ctrl-C: leave cleanly
		<-ctx.Done()
		conn.WriteFrame(socket.FrameDetach, nil)
		conn.Close()
	}()
	if _, err := socket.Call(conn, socket.Request{Cmd: socket.CmdLogs, Args: c.Names, Lines: c.Lines, Follow: c.Follow}); err != nil {
		return err
	}
	for {
		typ, p, err := conn.ReadFrame()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("the runner closed the connection: %w", err)
		}
		switch typ {
		case socket.FrameData:
			app.Stdout.Write(p)
		case socket.FrameNotice:
			fmt.Fprintf(app.Stderr, "mhrun: %s\n", p)
		case socket.FrameEnd:
			if c.Follow {
				fmt.Fprintf(app.Stderr, "mhrun: %s\n", p)
			}
			return nil
		}
	}
}
