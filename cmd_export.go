package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"mhrun/export"
)

// ExportCmd writes the formation for an engine that spans boots or
// machines. Only systemd is built so far.
type ExportCmd struct {
	ProjectFlags
	Format  string `arg:"" enum:"systemd" help:"The engine: systemd (kubernetes is not built yet)."`
	Out     string `arg:"" name:"dir" help:"Where to write the files (created if missing)."`
	App     string `help:"Name of the app's units (default: the project dir's name)."`
	User    string `help:"User= of the services."`
	Workdir string `help:"WorkingDirectory= of the services (default: the project dir)."`
	Restart bool   `name:"systemd-254" help:"Use RestartSteps= and RestartMaxDelaySec= for backoff (systemd 254 or later)."`
}

// Run writes the files and prints what it wrote and what it could not map.
func (c *ExportCmd) Run(app *App) error {
	f, err := c.load(nil)
	if err != nil {
		return err
	}
	files, warnings, err := export.Systemd(f, export.SystemdOptions{App: c.App, User: c.User, WorkDir: c.Workdir, NewRestartKeys: c.Restart})
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(c.Out, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("export to %s: %w (pass a writable dir)", c.Out, err)
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return fmt.Errorf("export to %s: %w (pass a writable dir)", c.Out, err)
		}
		fmt.Fprintln(app.Stdout, path)
	}
	for _, w := range warnings {
		fmt.Fprintf(app.Stderr, "mhrun: warning: %s\n", w)
	}
	return nil
}
