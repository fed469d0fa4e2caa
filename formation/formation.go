// Package formation resolves a project's Procfile, policy and env files into
// the formation mhrun runs: processes, their instances and their environment.
package formation

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"mhrun/policy"
)

// DefaultBasePort is foreman's base port when neither -p nor PORT is set.
const DefaultBasePort = 5000

// Options say where the project is and how to run it; zero values are the defaults.
type Options struct {
	Dir         string   // project dir; "" = current dir
	Procfile    string   // "" = Procfile in Dir
	Policy      string   // "" = Procfile.policy beside the Procfile
	EnvFiles    []string // -e files, read after Dir/.env
	Scale       []string // -m values: "web=2,worker=1", "all=0,web=1" (repeatable); see ParseScales for how they combine with scale=
	Only        []string // run only these processes ("" = all)
	BasePort    int      // -p; 0 = from env files, environment, else 5000
	EnvOverride bool     // env files win over the real environment
	Environ     []string // the real environment; nil = os.Environ()
	CPUs        int      // for scale=max; 0 = runtime.NumCPU()
}

// Formation is a resolved, validated formation.
type Formation struct {
	Dir        string `json:"dir"`
	Procfile   string `json:"procfile"`
	PolicyFile string `json:"policy_file"`
	HasPolicy  bool   `json:"has_policy"` // PolicyFile exists; else every process has the defaults
	// PolicySum is the PolicySum of the policy file as Load read it, ""
	// without one: mhrun save compares the file on disk with it, and
	// refuses to write over a file changed since.
	PolicySum string `json:"-"`
	// AllNames is every process of the Procfile in its order, those a
	// start NAME… leaves out too: where a new policy line goes.
	AllNames  []string          `json:"-"`
	EnvFiles  []string          `json:"env_files"`
	BasePort  int               `json:"base_port"`
	FileEnv   map[string]string `json:"-"`
	Environ   []string          `json:"-"`
	Override  bool              `json:"-"`
	Processes []*Process        `json:"processes"`
}

// Process is one Procfile entry with its effective policy.
type Process struct {
	Name    string `json:"name"`
	Command string `json:"command"`
	Index   int    `json:"-"` // position in the Procfile, for PORT and colour
	Scale   int    `json:"scale"`
	// FromMax says Scale is one per CPU because it was asked for as max
	// (scale=max, -m NAME=max or all=max): mhrun save writes max back.
	FromMax bool          `json:"-"`
	Policy  policy.Policy `json:"-"`
}

// Instance names instance n (1-based) of a process: "web.2".
func (p *Process) Instance(n int) string { return p.Name + "." + strconv.Itoa(n) }

// Port is the $PORT of instance n (1-based) given the formation's base port:
// foreman's base + 100·index + (n−1), or the policy's port= + (n−1).
func (p *Process) Port(base, n int) int {
	return InstancePort(base, p.Index, n, p.Policy.Port)
}

// InstancePort is foreman's port assignment: fixed+(n-1) when the policy
// sets port=, else base + 100·procIndex + (n−1).
func InstancePort(base, procIndex, n, fixed int) int {
	if fixed > 0 {
		return fixed + n - 1
	}
	return base + 100*procIndex + n - 1
}

// Load reads and validates everything; the error holds every problem found,
// one per line, each naming file:line where there is one.
func Load(o Options) (*Formation, error) {
	dir := o.Dir
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("project dir %s: %w", dir, err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("project dir %s is not a directory (pass an existing dir to -d)", dir)
	}
	f := &Formation{Dir: abs, Environ: o.Environ, Override: o.EnvOverride}
	if f.Environ == nil {
		f.Environ = os.Environ()
	}
	f.Procfile = inDir(abs, o.Procfile, "Procfile")
	f.PolicyFile = o.Policy
	if f.PolicyFile == "" {
		f.PolicyFile = f.Procfile + ".policy"
	} else {
		f.PolicyFile = inDir(abs, f.PolicyFile, "")
	}

	var errs []error
	entries, perr := readProcfile(display(abs, f.Procfile))
	if perr != nil {
		errs = append(errs, perr)
	}
	pf, policyData, hasPolicy, polErr := readPolicy(display(abs, f.PolicyFile))
	f.HasPolicy = hasPolicy
	if hasPolicy {
		f.PolicySum = PolicySum(policyData)
	}
	if polErr != nil {
		errs = append(errs, polErr)
	}
	if o.Policy != "" && !hasPolicy && polErr == nil {
		// The default's absence means "no policy"; a file asked for by
		// name that is not there is a mistake (a typo, the wrong dir).
		errs = append(errs, fmt.Errorf("%s: no such policy file (name an existing one with --policy, or leave --policy out to give every process the defaults)", display(abs, f.PolicyFile)))
	}

	f.EnvFiles = []string{}
	var required []string
	for _, e := range o.EnvFiles {
		p := display(abs, inDir(abs, e, ""))
		required = append(required, p)
		f.EnvFiles = append(f.EnvFiles, p)
	}
	dotenv := display(abs, filepath.Join(abs, ".env"))
	if _, err := os.Stat(filepath.Join(abs, ".env")); err == nil {
		f.EnvFiles = append([]string{dotenv}, f.EnvFiles...)
	}
	f.FileEnv, err = ReadEnvFiles([]string{dotenv}, required)
	if err != nil {
		errs = append(errs, err)
	}

	if perr == nil && polErr == nil {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name
		}
		f.AllNames = names
		pols, err := pf.Resolve(names)
		if err != nil {
			errs = append(errs, err)
		} else {
			cpus := o.CPUs
			if cpus == 0 {
				cpus = runtime.NumCPU()
			}
			for i, e := range entries {
				p := pols[e.Name]
				f.Processes = append(f.Processes, &Process{Name: e.Name, Command: e.Command, Index: i, Policy: p, Scale: p.Instances(cpus), FromMax: p.Scale == policy.ScaleMax})
			}
			if err := f.applyScale(o.Scale, o.Only, cpus); err != nil {
				errs = append(errs, err)
			}
			if err := f.selectOnly(o.Only); err != nil {
				errs = append(errs, err)
			}
			if err := f.checkSingletons(pf); err != nil {
				errs = append(errs, err)
			}
			if err := f.checkPolicyEnv(pf); err != nil {
				errs = append(errs, err)
			}
		}
	}

	f.BasePort = o.BasePort
	if f.BasePort < 0 || f.BasePort > 65535 {
		errs = append(errs, fmt.Errorf("-p %d: want a port number 1..65535", f.BasePort))
	} else if f.BasePort == 0 {
		f.BasePort, err = basePort(f.FileEnv, f.Environ)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, f.checkPorts(), f.checkExec())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

// inDir resolves p against dir; "" gives def in dir.
func inDir(dir, p, def string) string {
	if p == "" {
		p = def
	}
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// display shortens a path under the working dir for messages ("Procfile:3").
func display(dir, p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

func (f *Formation) selectOnly(only []string) error {
	if len(only) == 0 {
		return nil
	}
	names := f.Names()
	keep := map[string]bool{}
	var errs []error
	for _, n := range only {
		if f.Process(n) == nil {
			errs = append(errs, unknown("process", n, names))
		}
		keep[n] = true
	}
	var ps []*Process
	for _, p := range f.Processes {
		if keep[p.Name] {
			ps = append(ps, p)
		}
	}
	f.Processes = ps
	return errors.Join(errs...)
}

// UnknownProcess is the error for a process name that is not one of
// names: the nearest name as a suggestion, else every name.
func UnknownProcess(name string, names []string) error {
	if s := policy.Suggest(name, names); s != "" {
		return fmt.Errorf("unknown process %q (did you mean %q?)", name, s)
	}
	return fmt.Errorf("unknown process %q (the formation has %s)", name, strings.Join(names, ", "))
}

func unknown(what, name string, names []string) error {
	return fmt.Errorf("%s: %w", what, UnknownProcess(name, names))
}

// basePort is foreman's: PORT from the env files, else from the environment, else 5000.
func basePort(fileEnv map[string]string, environ []string) (int, error) {
	if v, ok := fileEnv["PORT"]; ok {
		return parsePort("PORT in env file", v)
	}
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PORT="); ok {
			return parsePort("PORT in the environment", v)
		}
	}
	return DefaultBasePort, nil
}

func parsePort(where, v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s is %q: want a port number 1..65535", where, v)
	}
	return n, nil
}

func (f *Formation) checkPorts() error {
	for _, p := range f.Processes {
		if p.Scale == 0 {
			continue
		}
		if last := p.Port(f.BasePort, p.Scale); last > 65535 {
			return fmt.Errorf("%s would get PORT %d, past 65535 (lower the base port with -p or set port= in the policy)", p.Instance(p.Scale), last)
		}
	}
	return nil
}

// checkSingletons refuses a singleton= lock path that no start could
// open: one in a directory that does not exist (mhrun does not create
// directories for a path the policy names: a typo would make them, and the
// lock would guard nothing another program agrees on), or one that is a
// directory or another non-regular file. Errors are at the policy line
// that set singleton=.
func (f *Formation) checkSingletons(pf *policy.File) error {
	var errs []error
	for _, p := range f.Processes {
		lock := p.Policy.SingletonPath
		if lock == "" {
			continue
		}
		path := lock
		if !filepath.IsAbs(path) {
			path = filepath.Join(f.Dir, path)
		}
		dir := filepath.Dir(path)
		var msg string
		if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			msg = fmt.Sprintf("directory %s does not exist: create it, or choose a lock file in an existing directory (mhrun does not create it)", dir)
		} else if err != nil {
			msg = fmt.Sprintf("cannot use directory %s: %v", dir, unwrapPath(err))
		} else if !fi.IsDir() {
			msg = fmt.Sprintf("%s is not a directory: choose a lock file in an existing directory", dir)
		} else if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			msg = fmt.Sprintf("%s is a directory: want a lock file path, e.g. %s", path, filepath.Join(path, p.Name+".lock"))
		} else if err == nil && !fi.Mode().IsRegular() {
			msg = fmt.Sprintf("%s is not a regular file: want a lock file path", path)
		}
		if msg != "" {
			errs = append(errs, &policy.SyntaxError{File: pf.Name(), Line: pf.KeyLine(p.Name, "singleton"), Msg: p.Name + ": singleton=" + lock + ": " + msg})
		}
	}
	return errors.Join(errs...)
}

// checkPolicyEnv refuses, at the policy line that sets it, an env.NAME
// value no exec can pass, as the env file reader does (checkValues): a
// NUL byte, or NAME=value over 128 KiB. A `*:` line's error is reported
// once, not once per process.
func (f *Formation) checkPolicyEnv(pf *policy.File) error {
	var list []*policy.SyntaxError
	seen := map[string]bool{}
	for _, p := range f.Processes {
		for _, kv := range p.Policy.EnvVars() {
			key := "env." + kv.Key
			msg := valueProblem(kv.Key, kv.Value, key)
			if msg == "" {
				continue
			}
			e := &policy.SyntaxError{File: pf.Name(), Line: pf.KeyLine(p.Name, key), Msg: msg}
			if !seen[e.Error()] {
				seen[e.Error()] = true
				list = append(list, e)
			}
		}
	}
	slices.SortStableFunc(list, func(a, b *policy.SyntaxError) int { return a.Line - b.Line })
	errs := make([]error, len(list))
	for i, e := range list {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Names lists the processes in Procfile order.
func (f *Formation) Names() []string {
	out := make([]string, len(f.Processes))
	for i, p := range f.Processes {
		out[i] = p.Name
	}
	return out
}

// Process finds a process by name, or nil.
func (f *Formation) Process(name string) *Process {
	for _, p := range f.Processes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// socketActivation names the variables of systemd's socket activation.
// When mhrun itself was started with them (a .socket unit in front of
// mhrun), they describe descriptors handed to mhrun, not to its children:
// no instance inherits them. A socket= instance gets its own (see
// runner/listen.go).
var socketActivation = map[string]bool{"LISTEN_PID": true, "LISTEN_FDS": true, "LISTEN_FDNAMES": true}

// Env is the environment of instance n of p, as "KEY=value" strings, each
// name once. Later sources win:
//
//  1. the real environment (Options.Environ), less systemd's LISTEN_
//     variables (socketActivation);
//  2. the env files, which win over it only with --env-override (else
//     they add the variables it lacks);
//  3. the process's env.NAME=value from the policy, which wins over both,
//     --env-override or not, as `NAME=value cmd` in the Procfile does;
//  4. PORT, PS and MHRUN_SOCKET (when socket is not ""), which are
//     mhrun's: the policy cannot set them.
func (f *Formation) Env(p *Process, n int, socket string) []string {
	m := make(map[string]string, len(f.Environ)+len(f.FileEnv)+3)
	order := make([]string, 0, len(f.Environ)+len(f.FileEnv)+3)
	set := func(k, v string, override bool) {
		if _, ok := m[k]; !ok {
			order = append(order, k)
		} else if !override {
			return
		}
		m[k] = v
	}
	for _, kv := range f.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && !socketActivation[k] {
			set(k, v, true)
		}
	}
	fileKeys := make([]string, 0, len(f.FileEnv))
	for k := range f.FileEnv {
		fileKeys = append(fileKeys, k)
	}
	sort.Strings(fileKeys)
	for _, k := range fileKeys {
		set(k, f.FileEnv[k], f.Override)
	}
	for _, kv := range p.Policy.EnvVars() {
		set(kv.Key, kv.Value, true)
	}
	set("PORT", strconv.Itoa(p.Port(f.BasePort, n)), true)
	set("PS", p.Instance(n), true)
	if socket != "" {
		set("MHRUN_SOCKET", socket, true)
	}
	out := make([]string, len(order))
	for i, k := range order {
		out[i] = k + "=" + m[k]
	}
	return out
}
