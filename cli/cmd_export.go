package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"mhrun/export"
)

// ExportCmd writes the formation for an engine that spans boots or
// machines: `mhrun export systemd DIR` or `mhrun export kubernetes DIR`.
type ExportCmd struct {
	Systemd    ExportSystemdCmd    `cmd:"" help:"Write a target, a templated service per process and timers for jobs."`
	Kubernetes ExportKubernetesCmd `cmd:"" aliases:"k8s" help:"Write Deployments, Services, CronJobs, Jobs and a ConfigMap of the env files."`
}

// ExportFlags are shared by every engine.
type ExportFlags struct {
	ProjectFlags
	Out string `arg:"" name:"dir" help:"Where to write the files (created if missing)."`
	App string `help:"Name prefix of what is written (default: the project dir's name)."`
}

// ExportSystemdCmd is `mhrun export systemd DIR`.
type ExportSystemdCmd struct {
	ExportFlags
	User    string `help:"User= of the services."`
	Workdir string `help:"WorkingDirectory= of the services (default: the project dir)."`
	Restart bool   `name:"systemd-254" help:"Use RestartSteps= and RestartMaxDelaySec= for backoff (systemd 254 or later)."`
}

// Run writes the units.
func (c *ExportSystemdCmd) Run(app *App) error {
	f, err := c.load(nil)
	if err != nil {
		return err
	}
	files, warnings, err := export.Systemd(f, export.SystemdOptions{App: c.App, User: c.User, WorkDir: c.Workdir, NewRestartKeys: c.Restart})
	if err != nil {
		return err
	}
	return c.write(app, files, warnings)
}

// ExportKubernetesCmd is `mhrun export kubernetes DIR`.
type ExportKubernetesCmd struct {
	ExportFlags
	Image     string `placeholder:"IMAGE" help:"Image of the containers, one holding the project (default: APP:latest)."`
	Namespace string `placeholder:"NS" help:"Namespace of every object (default: none, so kubectl's current one)."`
	Workdir   string `placeholder:"DIR" help:"workingDir of the containers, where the project is in the image (default: the image's WORKDIR)."`
}

// Run writes the manifests.
func (c *ExportKubernetesCmd) Run(app *App) error {
	f, err := c.load(nil)
	if err != nil {
		return err
	}
	files, warnings, err := export.Kubernetes(f, export.KubernetesOptions{App: c.App, Image: c.Image, Namespace: c.Namespace, WorkDir: c.Workdir})
	if err != nil {
		return err
	}
	return c.write(app, files, warnings)
}

// write puts files under the target dir, lists each path written and
// prints what could not be mapped as warnings.
func (c *ExportFlags) write(app *App, files map[string][]byte, warnings []string) error {
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
