package main

import (
	"fmt"

	"mhrun/socket"
)

// ScaleCmd changes the scale of a running formation.
type ScaleCmd struct {
	ControlFlags
	Items []string `arg:"" name:"name=n" help:"New scale per process, e.g. web=4 worker=0 (N may be max)."`
}

// Run asks the runner and prints what it did.
func (c *ScaleCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: "scale", Args: c.Items})
}

// RestartCmd restarts processes or instances of a running formation.
type RestartCmd struct {
	ControlFlags
	Names []string `arg:"" name:"name" help:"Processes (web) or instances (web.2)."`
}

// Run asks the runner and prints what it did.
func (c *RestartCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: "restart", Args: c.Names})
}

// StopCmd stops processes or instances of a running formation; they stay
// stopped until started again.
type StopCmd struct {
	ControlFlags
	Names []string `arg:"" name:"name" help:"Processes (web) or instances (web.2)."`
}

// Run asks the runner and prints what it did.
func (c *StopCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: "stop", Args: c.Names})
}

// SignalCmd sends a signal to processes or instances.
type SignalCmd struct {
	ControlFlags
	Args []string `arg:"" name:"name… signal" help:"Processes or instances, then the signal, e.g. web.2 HUP."`
}

// Run asks the runner and prints what it did.
func (c *SignalCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: "signal", Args: c.Args})
}

// QuitCmd stops the whole formation gracefully.
type QuitCmd struct {
	ControlFlags
}

// Run asks the runner to stop.
func (c *QuitCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: "quit"})
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

// ReloadCmd replaces a balanced process's instances one at a time without
// refusing a connection.
type ReloadCmd struct {
	ControlFlags
	Name string `arg:"" name:"name" help:"A process with balance=PORT."`
}

// Run asks for the reload and waits until it is done or aborted.
func (c *ReloadCmd) Run(app *App) error {
	return c.simple(app, socket.Request{Cmd: "reload", Args: []string{c.Name}})
}
