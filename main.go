// Command mhrun runs a Procfile formation under a policy: foreman's
// simplicity with PM2's staying power, in one binary. It only wires: the
// commands are in cli/, the supervisor in runner/.
package main

import (
	"context"
	"os"

	"mhrun/cli"
	"mhrun/runner"
)

func main() {
	if tok, ok := runner.GuardToken(); ok { // started by a runner as its guard
		os.Exit(runner.GuardMain(os.Stdin, tok, os.Stderr))
	}
	// Commands that run for long (start) take SIGINT and SIGTERM themselves.
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
