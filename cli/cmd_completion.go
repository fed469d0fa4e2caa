package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"

	"mhrun/procfile"
)

// CompletionCmd prints the script that makes a shell complete mhrun.
//
// The shell runs mhrun itself to complete a word (with COMP_LINE set, as
// bash's `complete -C` does): commands and flags come from the CLI's own
// definition (kongplete), process names from the Procfile of the project
// dir (-d, or the current dir), and NAME.N instances from the running
// formation, asked over its socket with a short deadline and silent when
// none runs.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"The shell: bash, zsh or fish."`
}

// completionAsk is how long completing waits for a running formation.
const completionAsk = 300 * time.Millisecond

// Run prints the script for the shell.
func (c *CompletionCmd) Run(app *App) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find mhrun's own binary for the script: %w", err)
	}
	bin := shellQuote(exe)
	var script string
	switch c.Shell {
	case "bash":
		script = fmt.Sprintf("complete -o default -C %s mhrun\n", bin)
	case "zsh":
		script = fmt.Sprintf("autoload -U +X bashcompinit && bashcompinit\ncomplete -o default -C %s mhrun\n", bin)
	case "fish":
		script = fmt.Sprintf(`function __complete_mhrun
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    %s
end
complete -f -c mhrun -a "(__complete_mhrun)"
`, bin)
	}
	_, err = fmt.Fprint(app.Stdout, script)
	return err
}

// shellQuote quotes s for sh, bash, zsh and fish alike.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// completing answers a shell's completion request when COMP_LINE is set
// and reports whether it did.
func completing(parser *kong.Kong) bool {
	if os.Getenv("COMP_LINE") == "" {
		return false
	}
	done := false
	kongplete.Complete(parser,
		kongplete.WithPredictor("process", complete.PredictFunc(func(a complete.Args) []string {
			return processNames(projectOf(a))
		})),
		kongplete.WithPredictor("instance", complete.PredictFunc(func(a complete.Args) []string {
			dir := projectOf(a)
			return append(processNames(dir), runningInstances(dir)...)
		})),
		kongplete.WithPredictor("scale", complete.PredictFunc(func(a complete.Args) []string {
			var items []string
			for _, n := range processNames(projectOf(a)) {
				items = append(items, n+"=")
			}
			return items
		})),
		kongplete.WithExitFunc(func(int) { done = true }),
		kongplete.WithErrorHandler(func(error) {}),
	)
	return done
}

// projectOf is the project dir a command line names with -d or --dir.
func projectOf(a complete.Args) string {
	for i, w := range a.Completed {
		switch {
		case (w == "-d" || w == "--dir") && i+1 < len(a.Completed):
			return a.Completed[i+1]
		case strings.HasPrefix(w, "--dir="):
			return strings.TrimPrefix(w, "--dir=")
		}
	}
	return "."
}

// processNames are the Procfile's names in dir, or none.
func processNames(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, "Procfile"))
	if err != nil {
		return nil
	}
	entries, err := procfile.Parse(bytes.NewReader(data), "Procfile")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	return names
}

// runningInstances are the NAME.N of the formation running in dir, or none.
func runningInstances(dir string) []string {
	path, _, err := socketPath(dir, os.Getenv("MHRUN_SOCKET"))
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionAsk)
	defer cancel()
	rows, err := runnerStatus(ctx, path)
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Name)
	}
	slices.Sort(names)
	return names
}
