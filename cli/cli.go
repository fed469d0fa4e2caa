// Package cli is mhrun's command line: one file per command, each a kong
// command struct whose Run does the work; Run parses and dispatches.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X mhrun/cli.version=…".
var version = "0.1.0-dev"

// CLI is every registered command; only commands that work are here.
type CLI struct {
	Start      StartCmd      `cmd:"" help:"Run the formation (or the named processes) in the foreground."`
	Status     StatusCmd     `cmd:"" help:"Show every instance of the running formation."`
	Connect    ConnectCmd    `cmd:"" help:"Attach this terminal to an instance (Ctrl-] detaches)."`
	Top        TopCmd        `cmd:"" help:"A live full-screen view of the running formation: CPU, memory, keys to restart, stop or connect."`
	Logs       LogsCmd       `cmd:"" help:"Print the running formation's recent output (-f follows)."`
	Scale      ScaleCmd      `cmd:"" help:"Change the scale of processes live, e.g. web=4 worker=0 (--save writes it into Procfile.policy)."`
	Save       SaveCmd       `cmd:"" help:"Write the running formation's live scale into Procfile.policy (PM2's save)."`
	Restart    RestartCmd    `cmd:"" help:"Restart processes or instances of the running formation."`
	Stop       StopCmd       `cmd:"" help:"Stop processes or instances of the running formation."`
	Reload     ReloadCmd     `cmd:"" help:"Replace a balanced or socket= process's instances one at a time, without dropping a connection."`
	Signal     SignalCmd     `cmd:"" help:"Send a signal to processes or instances, e.g. web.2 HUP."`
	Quit       QuitCmd       `cmd:"" help:"Stop the running formation gracefully."`
	Run        RunCmd        `cmd:"" help:"Run one command with the formation's environment (foreman run)."`
	Check      CheckCmd      `cmd:"" help:"Validate the Procfile, policy and env files and print the formation."`
	Export     ExportCmd     `cmd:"" help:"Write the formation as systemd units and timers, or as Kubernetes manifests."`
	Startup    StartupCmd    `cmd:"" help:"Write a systemd unit that starts this project's formation at boot (PM2's startup)."`
	Import     ImportCmd     `cmd:"" help:"Write a Procfile and Procfile.policy from a PM2 ecosystem file: mhrun import pm2 ecosystem.config.js."`
	Version    VersionCmd    `cmd:"" help:"Print mhrun's version."`
	Completion CompletionCmd `cmd:"" help:"Print a shell's completion script: eval \"$(mhrun completion bash)\" (or zsh, fish)."`
}

// App is what every command's Run receives: where to print, and a context
// that tests cancel to stop a command.
type App struct {
	Args   []string // the command line Run was given, without the program name
	Ctx    context.Context
	Stdout io.Writer
	Stderr io.Writer
}

// exitError carries an exit code other than 1 for an error already explained.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// Run parses args, runs one command and turns its error into a message and
// an exit code; it is the only place that decides exit codes.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cli CLI
	exited, exitCode := false, 0
	parser, err := kong.New(&cli,
		kong.Name("mhrun"),
		kong.Description("Run a Procfile formation under a policy (see Procfile.policy)."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exited, exitCode = true, code }),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "mhrun: %v\n", err)
		return 2
	}
	if completing(parser) {
		return 0
	}
	kctx, err := parser.Parse(args)
	if exited {
		return exitCode
	}
	if err != nil {
		fmt.Fprintf(stderr, "mhrun: %v (see mhrun --help)\n", err)
		return 2
	}
	err = kctx.Run(&App{Args: args, Ctx: ctx, Stdout: stdout, Stderr: stderr})
	return report(err, stderr)
}

// report prints err, one "mhrun: " line per line of it, and gives its exit code.
func report(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := strings.TrimSpace(err.Error()); msg != "" {
		for _, line := range strings.Split(msg, "\n") {
			fmt.Fprintf(stderr, "mhrun: %s\n", line)
		}
	}
	return code
}
