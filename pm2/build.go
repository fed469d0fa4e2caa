package pm2

// Building: a spec becomes a process, its command line and its policy.
// Here the keys meet: the port (port, env PORT) decides between port= and
// balance=, cwd moves the command and the relative paths, autorestart
// turns cron_restart into a schedule.

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"mhrun/policy"
	"mhrun/procfile"
	"mhrun/watch"
)

// proc is one process to write.
type proc struct {
	spec    *spec
	name    string
	command string
	pol     policy.Policy
	env     []envVar // its variables, in file order
}

// starPolicy is the policy of the "*:" line: PM2's behaviour where it
// differs from mhrun's defaults in kind, not only in timing.
func starPolicy() policy.Policy {
	p := policy.Default()
	p.Restart = policy.RestartAlways
	p.StopSignal = "INT"
	return p
}

// builder holds what building needs beyond one spec.
type builder struct {
	*reader
	dir      string // project dir, absolute
	opts     Options
	lookPath func(string) (string, error)
}

// build turns s into a process named name.
func (b *builder) build(s *spec, name string) *proc {
	p := &proc{spec: s, name: name, pol: starPolicy()}
	b.app = s.index
	b.label = name

	env, port, portLine := b.environment(s)
	p.env = env

	cwd := b.cwd(s)
	p.command = b.command(s, cwd, &p.env)

	pol := &p.pol
	// How many.
	switch {
	case !s.autostart:
		pol.Scale = 0
		b.warn(s.autostartLine, "autostart", fmt.Sprintf("scale=0: %s is in the formation but not started; `mhrun scale %s=1` starts it", name, name))
	case s.instancesMax:
		pol.Scale = policy.ScaleMax
	case s.instancesSet && s.instances < 0:
		pol.Scale = policy.ScaleMax
		b.warn(s.instancesLine, "instances", fmt.Sprintf("%d means the CPUs less %d in PM2; mhrun has no such count: scale=max (one per CPU); set scale=N for this host by hand", s.instances, -s.instances))
	case s.instancesSet:
		pol.Scale = s.instances
	}

	// Port and cluster mode.
	if s.cluster && s.executeCommand {
		s.cluster = false
		b.warn(s.clusterLine, "exec_mode", "cluster mode not used: execute_command makes it fork mode, as in PM2")
	}
	if s.cluster {
		if port > 0 {
			pol.Balance = port
			pol.Ready = policy.Ready{Kind: policy.ReadyTCP}
			b.warn(s.clusterLine, "exec_mode", fmt.Sprintf("cluster mode: mhrun listens on %d (balance=%d) and spreads connections over the instances, each of which must listen on its own $PORT (not on %d); ready=tcp waits for it, as PM2 waits for 'listening'", port, port, port))
		} else {
			b.warn(s.clusterLine, "exec_mode", "cluster mode without a port (port, or PORT in env): the instances run, but nothing spreads connections over them; add balance=PORT to the policy, and make the app listen on $PORT")
		}
	} else if port > 0 {
		pol.Port = port
		if s.instancesSet && !s.instancesMax && port+s.instances-1 > 65535 {
			b.fail(portLine, "PORT %d with %d instances: instance %d would get port %d, past 65535", port, s.instances, s.instances, port+s.instances-1)
		}
		if pol.Scale == policy.ScaleMax && port > 65535-255 {
			b.warn(portLine, "PORT", fmt.Sprintf("port=%d with scale=max: on a host with more than %d CPUs the last instances would get ports past 65535, and mhrun check refuses that", port, 65535-port+1))
		}
		if (s.instancesMax || s.instances > 1) && s.incrementVar != "PORT" {
			b.warn(portLine, "PORT", fmt.Sprintf("port=%d: instance N listens on %d+N-1, not all on %d as under PM2 in fork mode", port, port, port))
		}
	}

	// Restarts.
	if s.autorestartSet && !s.autorestart {
		pol.Restart = policy.RestartNever
	}
	if len(s.stopExitCodes) > 0 {
		var other []string
		for _, c := range s.stopExitCodes {
			if c != 0 {
				other = append(other, strconv.Itoa(c))
			}
		}
		if slices.Contains(s.stopExitCodes, 0) && pol.Restart == policy.RestartAlways {
			pol.Restart = policy.RestartOnFailure
		}
		if len(other) > 0 {
			b.warn(s.stopCodesLine, "stop_exit_codes", fmt.Sprintf("mhrun cannot exempt exit code %s from restarts: restart=on-failure restarts every non-zero exit, restart=never none", strings.Join(other, ", ")))
		}
	}
	if s.maxRestartsSet {
		pol.MaxRestarts = s.maxRestarts
	}
	if s.minUptime.set {
		pol.Stable = s.minUptime.d
	}
	switch {
	case s.expBackoff.set:
		lo, hi := s.expBackoff.d, 15*time.Second
		pol.BackoffMin, pol.BackoffMax = lo, max(lo, hi)
		if s.restartDelay.set {
			b.warn(s.restartDelay.line, "restart_delay", "not used: exp_backoff_restart_delay wins over it, as in PM2")
		}
	case s.restartDelay.set:
		pol.BackoffMin, pol.BackoffMax = s.restartDelay.d, s.restartDelay.d
	}
	if s.memory > 0 {
		pol.Memory = s.memory
	}
	if s.cron != "" {
		if pol.Restart == policy.RestartNever {
			pol.Schedule = s.cron
			b.warn(s.cronLine, "cron_restart", fmt.Sprintf("with autorestart false, a job: schedule=%q starts it at each tick; PM2 also ran it once at start, mhrun does not (`mhrun run` it by hand if needed)", s.cron))
			if pol.Balance != 0 {
				b.warn(s.clusterLine, "exec_mode", "a scheduled job serves no port: balance left out")
				pol.Balance, pol.Ready = 0, policy.Ready{}
			}
		} else {
			pol.CronRestart = s.cron
		}
	}

	// Stopping and readiness.
	if s.killTimeout.set {
		pol.Grace = s.killTimeout.d
	}
	if s.killSignal != "" {
		pol.StopSignal = s.killSignal
	}
	if s.waitReady {
		switch {
		case pol.Ready.Kind != policy.ReadyNone:
			b.warn(s.waitReadyLine, "wait_ready", "mhrun has no IPC channel for process.send('ready'): ready=tcp waits for the instance's $PORT instead (ready=notify, sd_notify's READY=1, is how a program says it)")
		case port > 0 && pol.Schedule == "":
			pol.Ready = policy.Ready{Kind: policy.ReadyTCP}
			b.warn(s.waitReadyLine, "wait_ready", "mhrun has no IPC channel for process.send('ready'): ready=tcp waits for the instance's $PORT instead (ready=notify, sd_notify's READY=1, is how a program says it)")
		default:
			b.warn(s.waitReadyLine, "wait_ready", "mhrun has no IPC channel for process.send('ready') and the app has no port to wait for: no readiness check; set ready=notify (sd_notify's READY=1), ready=log:REGEX or ready=http:/PATH")
		}
	}
	if s.listenTimeout.set {
		switch {
		case pol.Ready.Kind == policy.ReadyNone:
			b.warn(s.listenTimeout.line, "listen_timeout", "not used: there is no readiness check to time (see wait_ready, exec_mode)")
		case s.listenTimeout.d <= 0:
			b.warn(s.listenTimeout.line, "listen_timeout", "0 is no timeout: mhrun's 30s kept")
		default:
			pol.ReadyTimeout = s.listenTimeout.d
		}
	}

	// Files.
	b.watch(s, cwd, pol)
	b.logs(s, cwd, pol)
	if pol.Log != "" && !filepath.IsAbs(pol.Log) {
		for _, g := range pol.Watch {
			if watch.Match(g, path.Clean(pol.Log)) {
				b.warn(s.watchLine, "watch", fmt.Sprintf("watch=%s covers log=%s: every line written to it would restart the process; narrow watch, or move the log out of the watched files", g, pol.Log))
				break
			}
		}
	}

	pol.Env = map[string]string{}
	for _, v := range p.env {
		pol.Env[v.name] = v.value
	}
	return p
}

// environment returns the app's variables (env, then env_NAME over it),
// and takes the port out of them.
func (b *builder) environment(s *spec) (env []envVar, port, portLine int) {
	set := func(v envVar) {
		for i := range env {
			if env[i].name == v.name {
				env[i] = v
				return
			}
		}
		env = append(env, v)
	}
	for _, v := range s.env {
		set(v)
	}
	if b.opts.Env != "" {
		if vars, ok := s.envs[b.opts.Env]; ok {
			for _, v := range vars {
				set(v)
			}
		}
	}
	var out []envVar
	for _, v := range env {
		switch {
		case v.name == "PORT":
			n, err := strconv.Atoi(strings.TrimSpace(v.value))
			if err != nil || n < 1 || n > 65535 {
				b.warn(v.line, "env", fmt.Sprintf("PORT=%q is no port number: left out (mhrun gives each instance its own PORT)", shorten(v.value)))
				continue
			}
			port, portLine = n, v.line
		case !isVarName(v.name):
			b.warn(v.line, "env", fmt.Sprintf("%q is not a variable name mhrun can set (letters, digits and _): left out", shorten(v.name)))
		case policy.ReservedEnv(v.name) != "":
			b.warn(v.line, "env", fmt.Sprintf("%s left out: %s", v.name, policy.ReservedEnv(v.name)))
		case strings.IndexByte(v.value, 0) >= 0:
			b.warn(v.line, "env", fmt.Sprintf("%s holds a NUL byte, which no environment variable can carry: left out", v.name))
		case len(v.name)+1+len(v.value) > procfile.MaxArgLen:
			b.warn(v.line, "env", fmt.Sprintf("%s=... is more than exec takes for one variable (128 KiB): left out; put the data in a file", v.name))
		default:
			out = append(out, v)
		}
	}
	if s.port > 0 {
		port, portLine = s.port, s.portLine
	}
	if s.incrementVar != "" {
		switch s.incrementVar {
		case "PORT":
			if port == 0 {
				b.warn(s.incrLine, "increment_var", "PORT is not set in env: nothing to increment (mhrun gives each instance its own PORT anyway)")
			}
		default:
			i := slices.IndexFunc(out, func(v envVar) bool { return v.name == s.incrementVar })
			if i < 0 {
				b.warn(s.incrLine, "increment_var", fmt.Sprintf("%s is not set in env: nothing to increment", s.incrementVar))
				s.incrementVar = ""
				break
			}
			if _, err := strconv.Atoi(out[i].value); err != nil {
				b.warn(s.incrLine, "increment_var", fmt.Sprintf("%s=%q is no whole number to increment: set as it is for every instance", s.incrementVar, shorten(out[i].value)))
				s.incrementVar = ""
			}
		}
	}
	return out, port, portLine
}

// cwd returns the app's directory relative to the project dir ("" for
// the project dir itself), slash-separated.
func (b *builder) cwd(s *spec) string {
	c := strings.TrimSpace(s.cwd)
	if c == "" {
		return ""
	}
	if strings.ContainsAny(c, "\n\r\x00") {
		b.fail(s.cwdLine, "cwd: a directory holds no line break")
		return ""
	}
	if filepath.IsAbs(c) {
		if rel, err := filepath.Rel(b.dir, filepath.Clean(c)); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			c = rel
		} else {
			return filepath.Clean(c)
		}
	}
	c = path.Clean(filepath.ToSlash(c))
	if c == "." {
		return ""
	}
	return c
}

// interpreters is PM2's choice of interpreter by extension
// (lib/API/interpreter.json); others are run by node unless binary.
var interpreters = map[string]string{
	".sh": "bash", ".py": "python", ".rb": "ruby", ".php": "php", ".pl": "perl",
	".js": "node", ".coffee": "coffee", ".ls": "lsc", ".ts": "bun", ".tsx": "bun",
}

// command returns the Procfile command of s.
func (b *builder) command(s *spec, cwd string, env *[]envVar) string {
	if s.script == "" {
		b.fail(s.line, "no script: want \"script\": the program to run, e.g. \"server.js\"")
		return ""
	}
	var core string
	if strings.Contains(s.script, " ") {
		// PM2 runs it with bash -c, in place of args and interpreter.
		core = s.script
		if s.argsSet {
			b.warn(s.argsLine, "args", "not used: a script with spaces is a shell command, run as written (PM2 ignores args for it too)")
		}
		if s.interpSet && s.interpreter != "none" {
			b.warn(s.interpLine, "interpreter", "not used: a script with spaces is a shell command, run as written")
		}
	} else {
		core = shellCommand(b.words(s, cwd))
	}
	for _, w := range []string{core, cwd} {
		if strings.ContainsAny(w, "\n\r\x00") {
			b.fail(s.scriptLine, "the command holds a line break (or a NUL byte), which a Procfile line cannot: put the commands in a script file and run that")
			return ""
		}
	}

	// Assignments from $PS, the instance's name (web.3: 3).
	var assign []string
	if s.instanceVar != "" {
		assign = append(assign, s.instanceVar+"=$((${PS##*.}-1))")
	}
	if v := s.incrementVar; v != "" && v != "PORT" {
		i := slices.IndexFunc(*env, func(e envVar) bool { return e.name == v })
		assign = append(assign, fmt.Sprintf("%s=$((%s+${PS##*.}-1))", v, (*env)[i].value))
		*env = slices.Delete(*env, i, i+1)
	}
	if cwd == "" && len(assign) == 0 {
		return b.checkLength(s, core)
	}
	var cmd string
	switch sc := procfile.ShellCommand(core); {
	case sc != core: // a simple command: exec it
		cmd = sc
	case strings.HasPrefix(strings.TrimSpace(core), "exec "):
		cmd = strings.TrimSpace(core)
	default: // a list or pipeline: a shell of its own
		cmd = "exec sh -c " + shellQuote(core)
	}
	if len(assign) > 0 {
		cmd = strings.Join(assign, " ") + " " + cmd
	}
	if cwd != "" {
		cmd = "cd " + shellQuote(cwd) + " && " + cmd
	}
	return b.checkLength(s, cmd)
}

// checkLength refuses a command longer than exec takes.
func (b *builder) checkLength(s *spec, cmd string) string {
	if n := len(procfile.ShellCommand(cmd)); n > procfile.MaxArgLen {
		b.fail(s.scriptLine, "the command is %d bytes, more than exec takes in one argument (128 KiB): put it in a script file and run that", n)
		return ""
	}
	return cmd
}

// words returns the program and arguments of a script without spaces.
func (b *builder) words(s *spec, cwd string) []string {
	script := s.script
	file := script
	if !filepath.IsAbs(file) {
		file = filepath.Join(b.dir, filepath.FromSlash(cwd), file)
	}
	fi, err := os.Stat(file)
	exists := err == nil && fi.Mode().IsRegular()

	interp := ""
	switch {
	case s.interpSet && (s.interpreter == "none" || s.interpreter == ""):
	case s.interpSet:
		interp = s.interpreter
		if strings.HasPrefix(interp, "node@") {
			b.warn(s.interpLine, "interpreter", fmt.Sprintf("%s: PM2 installs that node version with nvm; mhrun runs the node on PATH", interp))
			interp = "node"
		}
		if _, err := b.lookPath(script); !exists && !strings.Contains(script, "/") && err == nil {
			// PM2 hands the interpreter the program it finds on PATH
			// (node /usr/bin/npm); the program runs as well by itself.
			b.warn(s.interpLine, "interpreter", fmt.Sprintf("%s is a program on PATH, not a file here: run by itself (PM2 would run %s with the path of the one it finds)", script, interp))
			interp = ""
		}
	default:
		ext := path.Ext(script)
		switch {
		case interpreters[ext] != "":
			interp = interpreters[ext]
			if interp == "python" {
				if _, err := b.lookPath("python"); err != nil {
					if _, err := b.lookPath("python3"); err == nil {
						interp = "python3"
					}
				}
			}
		case ext == ".cjs" || ext == ".mjs":
			interp = "node"
		case exists && isBinary(file):
		case exists:
			interp = "node" // PM2 runs a text file of any other name with node
		case !strings.Contains(script, "/"):
			// Not a file here: a program on PATH (npm, yarn), as PM2 finds it.
		default:
			b.warn(s.scriptLine, "script", fmt.Sprintf("%s is not there yet: run as a program; if it is a Node script, set interpreter: node", script))
		}
	}
	if interp == "" && exists && !strings.Contains(script, "/") {
		script = "./" + script // the file here, not a program on PATH
	}
	var words []string
	if interp != "" {
		words = append(words, splitArgs(interp)...)
		words = append(words, s.nodeArgs...)
	} else if len(s.nodeArgs) > 0 {
		b.warn(s.nodeArgsLine, "node_args", "not used: the script runs without an interpreter")
	}
	words = append(words, script)
	return append(words, s.args...)
}

// isBinary reports whether the file looks like a program rather than a
// script: a NUL byte in its first 512 bytes.
func isBinary(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 512)
	n, _ := f.Read(buf)
	return slices.Contains(buf[:n], 0)
}

// watch sets watch= from watch and warns about what goes with it.
func (b *builder) watch(s *spec, cwd string, pol *policy.Policy) {
	on := s.watchAll || len(s.watch) > 0
	if !on {
		return
	}
	if filepath.IsAbs(cwd) {
		b.warn(s.watchLine, "watch", fmt.Sprintf("not used: cwd %s is outside the project dir, and mhrun watches only the project dir", cwd))
		return
	}
	prefix := ""
	if cwd != "" {
		prefix = cwd + "/"
	}
	var globs []string
	if s.watchAll {
		if prefix == "" {
			globs = []string{"*"}
		} else {
			globs = []string{prefix + "**"}
		}
	}
	for _, w := range s.watch {
		g := strings.TrimSpace(w)
		switch {
		case strings.ContainsAny(g, ",\n\r\x00"):
			b.warn(s.watchLine, "watch", fmt.Sprintf("%q left out: a watch glob holds no comma or line break", shorten(g)))
			continue
		case filepath.IsAbs(g):
			rel, err := filepath.Rel(b.dir, filepath.Clean(g))
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				b.warn(s.watchLine, "watch", fmt.Sprintf("%s left out: mhrun watches only the project dir", g))
				continue
			}
			g = filepath.ToSlash(rel)
		default:
			g = prefix + g
		}
		g = path.Clean(g)
		if g == "." || g == "" {
			g = "*"
		} else if !strings.ContainsAny(g, "*?[") {
			g += "/**" // a file or a directory: itself and everything below
		}
		if _, err := path.Match(g, ""); err != nil {
			b.warn(s.watchLine, "watch", fmt.Sprintf("%q left out: not a valid glob", shorten(w)))
			continue
		}
		if !slices.Contains(globs, g) {
			globs = append(globs, g)
		}
	}
	if len(globs) == 0 {
		return
	}
	pol.Watch = globs
	var ignored []string
	for _, ig := range s.ignoreWatch {
		switch strings.Trim(ig, "/.\\^$*") {
		case "node_modules", "git", ".git":
		default:
			ignored = append(ignored, ig)
		}
	}
	if len(ignored) > 0 {
		b.warn(s.ignoreLine, "ignore_watch", fmt.Sprintf("mhrun has no ignore list (it always ignores .git, node_modules and editor files): changes under %s restart the process too; narrow watch to what should", strings.Join(quoteAll(ignored), ", ")))
	}
	b.warns = append(b.warns, s.watchWarns...)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.Quote(v)
	}
	return out
}

// logs sets log= from the log file keys.
func (b *builder) logs(s *spec, cwd string, pol *policy.Policy) {
	resolve := func(p string) string {
		if !filepath.IsAbs(p) && cwd != "" {
			return path.Join(cwd, filepath.ToSlash(p))
		}
		return p
	}
	var chosen *logPath
	for _, lp := range []*logPath{&s.logFile, &s.outFile, &s.errFile} {
		if !lp.set || lp.off {
			continue
		}
		if lp.def {
			b.warn(lp.line, lp.key, "true means PM2's own file under ~/.pm2/logs: no log= set; mhrun -D keeps every process's output under .mhrun/logs")
			continue
		}
		if chosen == nil {
			chosen = lp
			continue
		}
		switch {
		case lp.path == chosen.path:
		case lp == &s.errFile:
			// PM2 keeps stderr apart: so does output=pipes, in the one file
			pol.Pipes = true
			b.warn(lp.line, lp.key, fmt.Sprintf("one log file per process: stderr goes to %s too, each line marked ! (output=pipes: stdout and stderr are pipes, not a terminal), not to %s", resolve(chosen.path), resolve(lp.path)))
		default:
			b.warn(lp.line, lp.key, fmt.Sprintf("one log file per process: its output goes to %s (under a pty stdout and stderr are one stream), not to %s", resolve(chosen.path), resolve(lp.path)))
		}
	}
	if chosen == nil {
		return
	}
	p := resolve(chosen.path)
	pol.Log = p
	if chosen == &s.errFile { // stdout went to PM2's own file: stderr's lines are marked apart
		pol.Pipes = true
	}
	if chosen == &s.outFile && !s.errFile.set {
		b.warn(chosen.line, chosen.key, fmt.Sprintf("log=%s gets stderr too: under a pty stdout and stderr are one stream", p))
	}
	if s.mergeLogs != nil && !*s.mergeLogs && (pol.Scale > 1 || pol.Scale == policy.ScaleMax) {
		b.warn(s.mergeLogsLine, "merge_logs", fmt.Sprintf("false: every instance writes to %s, each line naming its instance (%s.2 | ...), where PM2 writes a file per instance", p, b.label))
	}
}
