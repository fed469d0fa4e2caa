// Package pm2 turns a PM2 ecosystem file into a Procfile, a Procfile.policy and .env entries.
package pm2

// What Import writes, and the rules it keeps:
//
//   - The Procfile has one process per app, named after the app (made a
//     valid Procfile name, with a warning when that changes it), with the
//     command PM2 would run: interpreter, interpreter arguments, script and
//     arguments, each quoted for /bin/sh; `cd DIR && exec ...` for a cwd.
//   - The policy starts with a "*:" line of what PM2 does where mhrun's
//     default differs in kind: it restarts an app whatever its exit code
//     (restart=always) and stops it with SIGINT (stop-signal=INT). Each
//     app's line has the keys its file sets, in the policy table's order,
//     then its own variables (env.NAME=) sorted by name.
//   - .env holds the variables every app sets to the same value; the
//     others go on the apps' policy lines. PORT never goes to either: it
//     becomes port= (balance= in cluster mode).
//   - Every key of the file either maps to something written, keeps a
//     behaviour mhrun has anyway (watch: false, autorestart: true), or is
//     a warning that says what mhrun does instead. Nothing is dropped
//     silently. A value of the wrong type is an error at its line.
//   - Everything written is accepted by mhrun's own parsers (tests load it
//     with formation.Load, as `mhrun check` does).

import (
	"errors"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"mhrun/formation"
	"mhrun/policy"
	"mhrun/procfile"
)

// Options of Import; the zero value reads the file as `pm2 start FILE`
// would.
type Options struct {
	// Env chooses an environment as `pm2 start FILE --env NAME` does:
	// each app's env_NAME is merged over its env. "" uses env alone.
	Env string
	// EnvInPolicy puts every variable on the policy lines (env.NAME=,
	// on the "*:" line when every app sets it alike) and none in .env.
	EnvInPolicy bool
	// Dir is the project directory the files are for: relative paths in
	// the ecosystem file (script, cwd) are taken relative to it, as PM2
	// takes them relative to where `pm2 start` runs. "" is the ecosystem
	// file's directory.
	Dir string
	// Node is the node program that runs a .js, .cjs or .mjs file (and a
	// .json file that is not strict JSON); "" is node on PATH.
	Node string

	lookPath func(string) (string, error) // exec.LookPath; tests replace it
}

// Result is what Import makes of an ecosystem file.
type Result struct {
	Dir      string // the project directory, absolute: where the files belong
	Procfile string // the text of the Procfile
	Policy   string // the text of Procfile.policy
	DotEnv   string // the text of .env; "" when no variable goes there
	Apps     []App  // the apps, in file order
	Warnings []Warning
}

// App names one app of the file and the process it became.
type App struct {
	PM2  string // its name in the ecosystem file ("" when it had none)
	Name string // its Procfile name
}

// Import reads the PM2 ecosystem file at file: JSON (.json), YAML (.yml,
// .yaml), or JavaScript (.js, .cjs, .mjs), which node runs. A file PM2
// could not start either, or one that says what mhrun cannot write, is an
// ErrorList of every problem, each at its line where the format gives
// one; a file that cannot be read is its *fs.PathError; an extension PM2
// does not read, or a .js file without node, a plain error of one line.
func Import(file string, o Options) (*Result, error) {
	data, err := formation.ReadFile(file)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("ecosystem file %s: %w", file, err)
	}
	dir := o.Dir
	if dir == "" {
		dir = filepath.Dir(abs)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("project dir %s: %w", o.Dir, err)
	}
	return parse(data, file, abs, dir, o)
}

// parse is Import after reading: data is the file's content, abs its
// absolute path (node runs that), dir the project dir.
func parse(data []byte, file, abs, dir string, o Options) (*Result, error) {
	var err error
	var pre []pending
	var root *value
	switch ext := strings.ToLower(filepath.Ext(file)); ext {
	case ".json":
		root, err = decodeJSON(data, file, true)
		if strict := err; err != nil && strings.HasPrefix(msgOf(err), "not valid JSON") {
			// PM2 reads a .json file as a JavaScript expression: comments,
			// unquoted keys and trailing commas are fine there.
			js, nerr := runNode(o.Node, abs, file, "expression", o.Env)
			switch {
			case nerr == nil:
				if root, err = decodeJSON(js, file, false); err == nil {
					pre = append(pre, pending{Warning{File: file, Line: lineOf(strict),
						Msg: "not strict JSON (" + strings.TrimPrefix(msgOf(strict), "not valid JSON: ") + "): read as a JavaScript expression by node, as PM2 reads .json files"}, -1})
				}
			case errors.Is(nerr, errNoNode):
				var e *Error
				if errors.As(err, &e) {
					e.Msg += " (PM2 reads a .json file as JavaScript, comments and all; with node on PATH mhrun would too)"
				}
			}
		}
	case ".yml", ".yaml":
		root, err = decodeYAML(data, file)
	case ".js", ".cjs", ".mjs":
		how := "require"
		if ext == ".mjs" {
			how = "module"
		}
		js, nerr := runNode(o.Node, abs, file, how, o.Env)
		if errors.Is(nerr, errNoNode) {
			return nil, fmt.Errorf("%s: node is not on PATH, and only node can run a %s ecosystem file: install node, or convert the file to JSON (ecosystem.json) and import that", file, ext)
		}
		if nerr != nil {
			return nil, asList(nerr)
		}
		root, err = decodeJSON(js, file, false)
	default:
		return nil, fmt.Errorf("%s: want a PM2 ecosystem file ending in .json, .yml, .yaml, .js, .cjs or .mjs", file)
	}
	if err != nil {
		return nil, asList(err)
	}
	return convert(root, file, dir, o, pre)
}

// lineOf and msgOf return the line and message of an *Error.
func lineOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
}

func msgOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}

// asList makes an *Error an ErrorList of one; other errors stay.
func asList(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return ErrorList{e}
	}
	return err
}

// convert turns the value of a whole ecosystem file into the result.
func convert(root *value, file, dir string, o Options, pre []pending) (*Result, error) {
	r := &reader{file: file, app: -1, warns: pre}
	if o.lookPath == nil {
		o.lookPath = exec.LookPath
	}
	list := r.apps(root)
	if len(r.errs) > 0 {
		return nil, r.errs
	}
	specs := make([]*spec, 0, len(list))
	for i, v := range list {
		if s := r.readApp(v, i); s != nil {
			specs = append(specs, s)
		}
	}
	r.app, r.label = -1, ""
	r.chooseEnv(specs, o.Env)
	if len(r.errs) > 0 {
		r.errs.sort()
		return nil, r.errs
	}
	names := r.names(specs, o.Env)
	if o.Env != "" {
		r.envUsed(specs, names, o.Env)
	}
	b := &builder{reader: r, dir: dir, opts: o, lookPath: o.lookPath}
	procs := make([]*proc, len(specs))
	for i, s := range specs {
		procs[i] = b.build(s, names[i])
	}
	r.app, r.label = -1, ""
	b.checkBalance(procs)
	if len(r.errs) > 0 {
		r.errs.sort()
		return nil, r.errs
	}
	res := &Result{Dir: dir}
	shared := splitEnv(procs, o.EnvInPolicy, r)
	res.Procfile = renderProcfile(procs, file)
	res.Policy = renderPolicy(procs, file, shared, o.EnvInPolicy)
	if !o.EnvInPolicy {
		res.DotEnv = renderDotEnv(shared, file)
	}
	for i, s := range specs {
		res.Apps = append(res.Apps, App{PM2: s.name, Name: names[i]})
	}
	// The file's warnings first, then each app's, in file order.
	order := map[int]int{-1: -1}
	for i, s := range specs {
		order[s.index] = i
	}
	slices.SortStableFunc(r.warns, func(a, b pending) int { return order[a.app] - order[b.app] })
	for _, w := range r.warns {
		if i, ok := order[w.app]; ok && i >= 0 {
			w.App = names[i]
		}
		res.Warnings = append(res.Warnings, w.Warning)
	}
	return res, nil
}

// apps returns the app objects of the file: {apps: [...]}, {apps: {...}},
// a list of apps, or one app, as PM2 reads them.
func (r *reader) apps(root *value) []*value {
	apps := root
	if root.kind == kNull || root.kind == kObject && len(root.obj) == 0 {
		what := "null"
		if root.kind == kObject {
			what = "{}"
		}
		r.fail(root.line, "no apps: the file gives %s; want {\"apps\": [{\"name\": \"web\", \"script\": \"server.js\"}]} (a .js file sets module.exports)", what)
		return nil
	}
	if root.kind == kObject {
		if m := root.get("apps"); m != nil {
			apps = m.val
			for _, t := range root.obj {
				switch {
				case t.key == "apps":
				case topKeys[t.key] != "":
					r.warn(t.line, t.key, topKeys[t.key])
				default:
					msg := "unknown top-level key: PM2 reads apps (and deploy), and ignores it too"
					if keyIndex[t.key] != nil {
						msg = "an app key outside the apps: PM2 ignores it there too"
					}
					r.warn(t.line, t.key, msg)
				}
			}
		}
	}
	switch apps.kind {
	case kArray:
		if len(apps.arr) == 0 {
			r.fail(apps.line, "no apps: want at least one, like {\"apps\": [{\"name\": \"web\", \"script\": \"server.js\"}]}")
		}
		return apps.arr
	case kObject:
		return []*value{apps}
	}
	r.fail(apps.line, "want {\"apps\": [...]} or a list of apps, each an object with a script, not %s", apps.show())
	return nil
}

// readApp reads one app object.
func (r *reader) readApp(v *value, i int) *spec {
	r.app, r.label = i, fmt.Sprintf("apps[%d]", i)
	if v.kind != kObject {
		r.fail(v.line, "want an app: an object with a script, like {\"name\": \"web\", \"script\": \"server.js\"}, not %s", v.show())
		return nil
	}
	if m := v.get("name"); m != nil && m.val.kind == kString && m.val.s != "" {
		r.label = shorten(m.val.s)
	}
	s := &spec{index: i, line: v.line, label: r.label, autostart: true, autorestart: true, envs: map[string][]envVar{}}
	chosen := map[*key]*member{}
	for j := range v.obj {
		m := &v.obj[j]
		if name, ok := strings.CutPrefix(m.key, "env_"); ok {
			if vars, ok := r.readEnvObject(m); ok {
				s.envs[name] = vars
			}
			continue
		}
		k := keyIndex[m.key]
		if k == nil {
			msg := "unknown key: PM2 ignores it too"
			if sug := policy.Suggest(m.key, knownNames); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			}
			r.warn(m.line, m.key, msg)
			continue
		}
		prev := chosen[k]
		switch {
		case prev == nil:
			chosen[k] = m
		case prev.key == m.key:
			r.warn(prev.line, prev.key, fmt.Sprintf("given twice: the one on line %d counts, as in JavaScript", m.line))
			chosen[k] = m
		case prev.key == k.name:
			r.warn(m.line, m.key, fmt.Sprintf("not used: %s says the same, and PM2 takes %s", k.name, k.name))
		default:
			r.warn(prev.line, prev.key, fmt.Sprintf("not used: %s says the same, and PM2 takes %s", m.key, m.key))
			chosen[k] = m
		}
	}
	for i := range keys {
		k := &keys[i]
		if m := chosen[k]; m != nil && k.read != nil {
			k.read(r, s, m)
		}
	}
	if s.script == "" && chosen[keyIndex["script"]] == nil {
		r.fail(v.line, "no script: want \"script\": the program to run, e.g. \"server.js\"")
	}
	return s
}

// chooseEnv checks the chosen environment against the apps, and says
// which env_NAME objects are used.
func (r *reader) chooseEnv(specs []*spec, env string) {
	var all []string
	for _, s := range specs {
		for name := range s.envs {
			if !slices.Contains(all, name) {
				all = append(all, name)
			}
		}
	}
	slices.Sort(all)
	if env == "" {
		if len(all) > 0 {
			r.warn(0, "", fmt.Sprintf("%s not used: env alone is; choose one with --env NAME, as with pm2 start --env NAME", strings.Join(prefixAll("env_", all), ", ")))
		}
		return
	}
	if !slices.Contains(all, env) {
		msg := fmt.Sprintf("environment %q: no app has env_%s", env, env)
		if len(all) > 0 {
			msg += " (the file has " + strings.Join(prefixAll("env_", all), ", ") + ")"
			if sug := policy.Suggest(env, all); sug != "" {
				msg += fmt.Sprintf("; did you mean %q?", sug)
			}
		}
		r.fail(0, "%s", msg)
		return
	}
	for _, s := range specs {
		if _, ok := s.envs[env]; !ok {
			r.app = s.index
			r.warn(s.line, "env_"+env, "not defined for this app: env used alone, as PM2 does")
		}
	}
	r.app = -1
}

// envUsed says which apps the chosen env_NAME was merged for.
func (r *reader) envUsed(specs []*spec, names []string, env string) {
	var users []string
	for i, s := range specs {
		if _, ok := s.envs[env]; ok {
			users = append(users, names[i])
		}
	}
	if len(users) > 0 {
		r.warn(0, "env_"+env, fmt.Sprintf("used over env for %s, as by pm2 start --env %s", strings.Join(users, ", "), env))
	}
}

func prefixAll(prefix string, s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = prefix + v
	}
	return out
}

// names returns a valid, unique Procfile name for each app.
func (r *reader) names(specs []*spec, env string) []string {
	out := make([]string, len(specs))
	taken := map[string]int{}  // name → app index
	given := map[string]bool{} // names apps ask for: no suffix takes one
	for _, s := range specs {
		if s.nameSet {
			given[procName(s.name)] = true
		}
	}
	for i, s := range specs {
		r.app = s.index
		base := s.name
		if !s.nameSet || base == "" {
			// PM2's default: the script's file name less its extension.
			base = path.Base(filepath.ToSlash(s.script))
			if dot := strings.LastIndexByte(base, '.'); dot > 0 {
				base = base[:dot]
			}
		}
		name := procName(base)
		if s.nameSet && name != s.name {
			r.warn(s.nameLine, "name", fmt.Sprintf("%q is %s in the Procfile: a name has letters, digits, _ and - (at most %d)", shorten(s.name), name, procfile.MaxNameLen))
		}
		if s.appendEnvToName && env != "" {
			name = procName(name + "-" + env)
			r.warn(s.appendLine, "append_env_to_name", fmt.Sprintf("the process is %s, as PM2 names it with --env %s", name, env))
		}
		if prev, dup := taken[name]; dup {
			n := 2
			for {
				suffix := fmt.Sprintf("-%d", n)
				cand := name
				if len(cand)+len(suffix) > procfile.MaxNameLen {
					cand = cand[:procfile.MaxNameLen-len(suffix)]
				}
				cand += suffix
				if _, used := taken[cand]; !used && !given[cand] {
					r.warn(s.nameLine, "name", fmt.Sprintf("%s is taken by apps[%d]: this app is %s", name, specs[prev].index, cand))
					name = cand
					break
				}
				n++
			}
		}
		taken[name] = i
		out[i] = name
	}
	r.app = -1
	return out
}

// procName makes s a Procfile name: each run of other characters becomes
// "-", at most procfile.MaxNameLen long; "app" when nothing is left.
func procName(s string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if wordByte(c) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteByte(c)
		} else {
			dash = true
		}
	}
	name := b.String()
	if len(name) > procfile.MaxNameLen {
		name = name[:procfile.MaxNameLen]
	}
	if name == "" {
		return "app"
	}
	return name
}

// checkBalance keeps one balancer per port: two apps in cluster mode on
// one port would be an error of the policy.
func (b *builder) checkBalance(procs []*proc) {
	first := map[int]string{}
	for _, p := range procs {
		port := p.pol.Balance
		if port == 0 {
			continue
		}
		if other, ok := first[port]; ok {
			b.app = p.spec.index
			b.warn(p.spec.clusterLine, "exec_mode", fmt.Sprintf("%s balances port %d already: balance left out for this app", other, port))
			b.app = -1
			p.pol.Balance, p.pol.Ready = 0, policy.Ready{}
			continue
		}
		first[port] = p.name
	}
}
