package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"mhrun/pm2"
)

// ImportCmd writes a Procfile and a policy from another runner's files.
type ImportCmd struct {
	PM2 ImportPM2Cmd `cmd:"" name:"pm2" help:"From a PM2 ecosystem file (JSON, YAML, or .js/.cjs/.mjs run by node)."`
}

// ImportPM2Cmd is `mhrun import pm2 FILE`.
type ImportPM2Cmd struct {
	File        string `arg:"" name:"file" help:"The ecosystem file, e.g. ecosystem.config.js."`
	Dir         string `short:"d" placeholder:"DIR" help:"Write into DIR (default: the ecosystem file's dir); relative paths in the file are taken from it."`
	Env         string `placeholder:"NAME" help:"Merge each app's env_NAME over its env, as pm2 start FILE --env NAME."`
	EnvInPolicy bool   `help:"Put every variable on the policy's lines (env.NAME=) and write no .env."`
	Force       bool   `help:"Overwrite a Procfile, Procfile.policy or .env that exists."`
	Print       bool   `help:"Print what would be written, and write nothing."`
}

// Run imports the file and writes (or prints) the result. Warnings, one
// per key that did not carry over as it was, go to stderr either way.
// Nothing is written unless every file can be: each goes to a temporary
// file beside it first, then all are renamed into place.
func (c *ImportPM2Cmd) Run(app *App) error {
	res, err := pm2.Import(c.File, pm2.Options{Env: c.Env, EnvInPolicy: c.EnvInPolicy, Dir: c.Dir})
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(app.Stderr, "mhrun: warning: %s\n", w)
	}
	files := []struct{ name, body string }{
		{"Procfile", res.Procfile},
		{"Procfile.policy", res.Policy},
		{".env", res.DotEnv},
	}
	if c.Print {
		for _, f := range files {
			if f.body != "" {
				fmt.Fprintf(app.Stdout, "==> %s <==\n%s\n", filepath.Join(res.Dir, f.name), f.body)
			}
		}
		return nil
	}
	var exist []string
	for _, f := range files {
		if f.body == "" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(res.Dir, f.name)); err == nil {
			exist = append(exist, f.name)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(exist) > 0 && !c.Force {
		return fmt.Errorf("%s already in %s: pass --force to overwrite, or --print to see what would be written", strings.Join(exist, ", "), res.Dir)
	}
	var temps []string
	defer func() {
		for _, t := range temps {
			if t != "" { // not renamed into place
				os.Remove(t)
			}
		}
	}()
	var written []string
	for _, f := range files {
		if f.body == "" {
			continue
		}
		t, err := os.CreateTemp(res.Dir, "."+f.name+".import-*")
		if err != nil {
			return fmt.Errorf("write %s: %w (nothing was written)", filepath.Join(res.Dir, f.name), err)
		}
		temps = append(temps, t.Name())
		_, err = t.WriteString(f.body)
		if cerr := t.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(t.Name(), 0o644)
		}
		if err != nil {
			return fmt.Errorf("write %s: %w (nothing was written)", filepath.Join(res.Dir, f.name), err)
		}
		written = append(written, f.name)
	}
	for i, name := range written {
		if err := os.Rename(temps[i], filepath.Join(res.Dir, name)); err != nil {
			return fmt.Errorf("write %s: %w (written before it: %s)", filepath.Join(res.Dir, name), err, strings.Join(written[:i], ", "))
		}
		temps[i] = ""
	}
	fmt.Fprintf(app.Stdout, "wrote %s in %s (%d processes, %d warnings): see mhrun check\n",
		strings.Join(written, ", "), res.Dir, len(res.Apps), len(res.Warnings))
	return nil
}
