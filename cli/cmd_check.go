package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"mhrun/formation"
	"mhrun/policy"
	"mhrun/runner"
)

// CheckCmd validates the project's files and prints the formation it would run.
type CheckCmd struct {
	ProjectFlags
	JSON bool `help:"Print the formation as JSON."`
}

// Run loads everything, reports every problem found, or prints the formation.
func (c *CheckCmd) Run(app *App) error {
	f, err := c.load(nil)
	if err != nil {
		return err
	}
	missing := f.MissingPrograms()
	if c.JSON {
		err = printCheckJSON(app.Stdout, f, missing)
	} else {
		err = printCheck(app.Stdout, f)
	}
	// After the formation, where a long table would not push them away.
	printProgramWarnings(app.Stderr, missing)
	return err
}

// printProgramWarnings prints a warning line for each process whose
// program is not found or not executable (f.MissingPrograms()): check
// and start print them, and go on, since the PATH and files a start
// meets may differ from what they see.
func printProgramWarnings(w io.Writer, missing []formation.MissingProgram) {
	for _, m := range missing {
		fmt.Fprintf(w, "mhrun: warning: %s\n", m)
	}
}

// checkView is the JSON shape of `mhrun check --json`.
type checkView struct {
	Dir        string        `json:"dir"`
	Procfile   string        `json:"procfile"`
	PolicyFile string        `json:"policy_file"`
	HasPolicy  bool          `json:"has_policy"` // false: there is no policy_file, every process has the defaults
	EnvFiles   []string      `json:"env_files"`
	BasePort   int           `json:"base_port"`
	Processes  []processView `json:"processes"`
	// Warnings are the lines printed to stderr too: programs not found.
	Warnings []string `json:"warnings"`
}

type processView struct {
	Name      string            `json:"name"`
	Command   string            `json:"command"`
	Scale     int               `json:"scale"`
	Instances []instanceView    `json:"instances"`
	Policy    map[string]string `json:"policy"`
	// Env is the process's own environment, env.NAME=value in the policy.
	Env map[string]string `json:"env"`
}

type instanceView struct {
	Name       string `json:"name"`
	Port       int    `json:"port"`
	ReloadPort int    `json:"reload_port,omitempty"` // a balanced instance's replacement, see DescribeCluster
}

func printCheckJSON(w io.Writer, f *formation.Formation, missing []formation.MissingProgram) error {
	v := checkView{Dir: f.Dir, Procfile: f.Procfile, PolicyFile: f.PolicyFile, HasPolicy: f.HasPolicy, EnvFiles: f.EnvFiles, BasePort: f.BasePort, Processes: []processView{}, Warnings: []string{}}
	for _, m := range missing {
		v.Warnings = append(v.Warnings, m.String())
	}
	for _, p := range f.Processes {
		pv := processView{Name: p.Name, Command: p.Command, Scale: p.Scale, Instances: []instanceView{}, Policy: map[string]string{}, Env: map[string]string{}}
		for _, kv := range p.Policy.EnvVars() {
			pv.Env[kv.Key] = kv.Value
		}
		for n := 1; n <= p.Scale; n++ {
			iv := instanceView{Name: p.Instance(n), Port: p.Port(f.BasePort, n)}
			if p.Policy.Socket > 0 {
				iv.Port = p.Policy.Socket // every instance's $PORT: the shared socket's
			}
			if p.Policy.Balance > 0 {
				iv.ReloadPort = runner.ReplacementPort(f, p, n)
			}
			pv.Instances = append(pv.Instances, iv)
		}
		for _, kv := range effective(p) {
			pv.Policy[kv.Key] = kv.Value
		}
		v.Processes = append(v.Processes, pv)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printCheck(w io.Writer, f *formation.Formation) error {
	env := "none"
	if len(f.EnvFiles) > 0 {
		env = strings.Join(f.EnvFiles, ", ")
	}
	pol := f.PolicyFile
	if !f.HasPolicy {
		pol = "none (no " + f.PolicyFile + ": every process gets the defaults)"
	}
	processes := "processes"
	if len(f.Processes) == 1 {
		processes = "process"
	}
	fmt.Fprintf(w, "valid: %d %s from %s, policy %s, env %s, base port %d\n\n",
		len(f.Processes), processes, f.Procfile, pol, env, f.BasePort)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tINSTANCES\tPORTS\tCOMMAND")
	for _, p := range f.Processes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, instances(p), ports(f, p), p.Command)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\neffective policy (defaults applied):")
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, p := range f.Processes {
		var items []string
		for _, kv := range effective(p) {
			switch kv.Value {
			case "":
			case "yes": // a flag that is on
				items = append(items, kv.Key)
			default:
				items = append(items, kv.Key+"="+quote(kv.Value))
			}
		}
		for _, kv := range p.Policy.EnvVars() {
			items = append(items, "env."+kv.Key+"="+quote(kv.Value))
		}
		fmt.Fprintf(tw, "%s:\t%s\n", p.Name, strings.Join(items, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first := true
	for _, p := range f.Processes {
		for _, line := range append(runner.DescribeCluster(f, p, ""), runner.DescribeSocket(p, "")...) {
			if first {
				fmt.Fprintln(w, "\ncluster mode:")
				first = false
			}
			fmt.Fprintln(w, line)
		}
	}
	first = true
	for _, p := range f.Processes {
		if !p.Policy.Pipes {
			continue
		}
		if first {
			fmt.Fprintln(w, "\noutput=pipes (stdout and stderr are two pipes, not a terminal):")
			first = false
		}
		fmt.Fprintf(w, "%s: stderr lines are marked with ! (%s ! text), stdout lines with | as usual, in the output, the log files and mhrun logs; "+
			"mhrun connect is refused (no terminal to attach to); the program sees no terminal, so it may print no colours and buffer its stdout\n",
			p.Name, p.Instance(1))
	}
	return nil
}

// effective is p's policy in policy syntax, with the scale that -m set.
func effective(p *formation.Process) []policy.KeyValue {
	kvs := p.Policy.Fields()
	for i := range kvs {
		if kvs[i].Key == "scale" {
			kvs[i].Value = strconv.Itoa(p.Scale)
		}
	}
	return kvs
}

func instances(p *formation.Process) string {
	switch p.Scale {
	case 0:
		return "none (scale 0)"
	case 1:
		return p.Instance(1)
	}
	return p.Instance(1) + ".." + p.Instance(p.Scale)
}

func ports(f *formation.Formation, p *formation.Process) string {
	switch p.Scale {
	case 0:
		return "-"
	case 1:
		if p.Policy.Socket > 0 {
			return fmt.Sprintf("%d (shared)", p.Policy.Socket)
		}
		return fmt.Sprint(p.Port(f.BasePort, 1))
	}
	if p.Policy.Socket > 0 {
		return fmt.Sprintf("%d (shared)", p.Policy.Socket)
	}
	return fmt.Sprintf("%d-%d", p.Port(f.BasePort, 1), p.Port(f.BasePort, p.Scale))
}

func quote(v string) string {
	if strings.ContainsAny(v, " \t\"") {
		return fmt.Sprintf("%q", v)
	}
	return v
}
