package pm2

import (
	"fmt"
	"strings"
)

// key is one PM2 app key: its names, what it becomes in mhrun (for the
// README's table), and how its value is read into a spec. The table is
// the importer itself: a key is known only through it.
type key struct {
	name    string
	aliases []string
	mhrun   string // what it becomes: a policy key, "Procfile command", ".env", or "—"
	note    string // how, or why there is no equivalent
	read    func(c *reader, s *spec, m *member)
}

// keys is every key of PM2's app schema (lib/API/schema.json), its
// aliases, and kill_signal, in the order the README lists them.
var keys = []key{
	// What runs.
	{"script", []string{"exec", "cmd", "command"}, "Procfile command",
		"the program, relative to `cwd`; a script with spaces is a shell command, as in PM2 (which runs it with `bash -c` and ignores `args`)", readScript},
	{"name", nil, "Procfile name",
		"made a valid Procfile name (letters, digits, `_`, `-`; at most 63), with a warning when it changes; without one, the script's file name less its extension, as in PM2; a name taken twice gets `-2`", readName},
	{"args", nil, "Procfile command",
		"after the script, each argument quoted for `/bin/sh`; a string is split into words as PM2 splits it", readArgs},
	{"interpreter", []string{"exec_interpreter"}, "Procfile command",
		"before the script; without one, chosen by extension as PM2 does (`.js` `.cjs` `.mjs` node, `.py` python, `.sh` bash, `.rb` ruby, `.php` php, `.pl` perl, `.ts` `.tsx` bun, `.coffee` coffee, `.ls` lsc); `none`, a binary, or a program found on PATH (`npm`) runs as it is; `node@VERSION` becomes node, with a warning", readInterpreter},
	{"node_args", []string{"interpreter_args", "interpreterArgs"}, "Procfile command",
		"between the interpreter and the script", readNodeArgs},
	{"cwd", nil, "Procfile command",
		"`cd DIR && exec ...`; the script, `watch` paths and log files stay relative to it", readCwd},
	{"instance_var", nil, "Procfile command",
		"the variable is set to the instance's number from 0, as PM2's `NODE_APP_INSTANCE`, from mhrun's `$PS`: `NAME=$((${PS##*.}-1)) exec ...`", readInstanceVar},
	{"increment_var", nil, "port / Procfile command",
		"`PORT`: `port=` its value, since mhrun gives instance N the port + N−1 too; another variable with a whole number: set from `$PS` in the command as for `instance_var`", readIncrementVar},

	// How many, and how they share a port.
	{"instances", nil, "scale",
		"N; `max` and 0 give `scale=max`; −N (PM2: the CPUs less N) gives `scale=max` with a warning", readInstances},
	{"exec_mode", nil, "balance, ready",
		"`cluster` with a port (`port`, or `PORT` in `env`): `balance=PORT ready=tcp`, mhrun listening on the port and spreading connections over the instances, each of which must listen on its own `$PORT`; without a port, a warning. `fork`: nothing", readExecMode},
	{"port", nil, "port / balance",
		"PM2's shortcut for `PORT` in `env`: `port=` (`balance=` in cluster mode)", readPort},
	{"autostart", nil, "scale",
		"`false`: `scale=0` (in the formation, not started; `mhrun scale NAME=1` starts it)", readAutostart},

	// The environment.
	{"env", nil, ".env / env.NAME",
		"a variable every app sets to the same value goes to `.env`, the others to `env.NAME=` on the app's policy line (or all of them there, `.env` left alone, when asked); `PORT` becomes `port=`; `PS` and `MHRUN_*` are mhrun's and dropped with a warning. The real environment wins over `.env` (as in foreman) but not over `env.NAME=` (as over PM2's `env`)", readEnv},
	{"env_*", nil, ".env / env.NAME",
		"`env_NAME` is merged over `env` when NAME is chosen (PM2's `--env NAME`); the one used, or those left unused, are named in a warning", nil},
	{"append_env_to_name", nil, "Procfile name",
		"with an environment chosen, `-NAME` is appended to the process name, as in PM2", readAppendEnvToName},
	{"filter_env", nil, "—",
		"mhrun passes the whole real environment (and `.env`) to every process", warnUnlessFalse("mhrun passes every variable of its own environment to each process; to drop some, unset them before `mhrun start`")},

	// Restarts.
	{"autorestart", nil, "restart",
		"PM2 restarts an app whatever its exit code, so `true` (the default) is `restart=always` (on the `*:` line); `false` is `restart=never`", readAutorestart},
	{"stop_exit_codes", nil, "restart",
		"`0` among them: `restart=on-failure` (a clean exit is not restarted); other codes: a warning (mhrun restarts any non-zero exit under `on-failure`)", readStopExitCodes},
	{"max_restarts", nil, "max-restarts",
		"the same count: failed runs in a row shorter than `min_uptime`", readMaxRestarts},
	{"min_uptime", nil, "stable",
		"milliseconds, or `30s` `5m` `1h`", readDurationKey(func(s *spec) *duration { return &s.minUptime })},
	{"restart_delay", nil, "backoff",
		"a fixed delay: `backoff=D` (MIN = MAX)", readDurationKey(func(s *spec) *duration { return &s.restartDelay })},
	{"exp_backoff_restart_delay", nil, "backoff",
		"`backoff=D..15s`: PM2 starts at D and grows to at most 15 s (by 1.5×, mhrun by 2×); it wins over `restart_delay`, as in PM2", readDurationKey(func(s *spec) *duration { return &s.expBackoff })},
	{"max_memory_restart", nil, "memory",
		"`300M`, `1G`, `512K` or bytes, binary units in both; mhrun counts the RSS of the whole process tree", readMemory},
	{"cron_restart", []string{"cron"}, "cron-restart / schedule",
		"`cron-restart=`; with `autorestart: false` (PM2's way to run a job on a schedule) `schedule=` with `restart=never`: a job started at each tick, not also once at start as PM2 does; `0` or `''`: none", readCronRestart},

	// Stopping and readiness.
	{"kill_timeout", nil, "grace",
		"milliseconds from the stop signal to SIGKILL; PM2's default (1.6 s) is not copied, mhrun's (5 s) applies", readDurationKey(func(s *spec) *duration { return &s.killTimeout })},
	{"kill_signal", nil, "stop-signal",
		"PM2 stops with SIGINT (its `PM2_KILL_SIGNAL`), so the `*:` line says `stop-signal=INT`; a `kill_signal` key sets it per app", readKillSignal},
	{"shutdown_with_message", nil, "—",
		"mhrun has no IPC channel to the process", warnUnlessFalse("mhrun has no IPC channel: the process gets its stop signal (SIGINT) instead of a 'shutdown' message; handle that signal")},
	{"wait_ready", nil, "ready",
		"mhrun has no IPC channel for `process.send('ready')`: `ready=tcp` (the instance's `$PORT` accepting connections) when the app has a port, else a warning; `ready=notify` (sd_notify) is the way to say ready from the program", readWaitReady},
	{"listen_timeout", nil, "ready-timeout",
		"with a readiness check (`wait_ready`, cluster mode); not ready by then is a failed start in mhrun, where PM2 goes on anyway", readDurationKey(func(s *spec) *duration { return &s.listenTimeout })},
	{"kill_retry_time", nil, "—",
		"PM2 polls for the exit every N ms; mhrun learns of it at once", warnAlways("not needed: mhrun learns of an exit at once instead of polling for it")},
	{"treekill", nil, "—",
		"mhrun always stops the whole process tree", warnUnlessTrue("mhrun always stops every process of an instance's tree, not only the main one")},

	// Files.
	{"watch", nil, "watch",
		"`true`: every file under `cwd` (`watch=*`); paths: `PATH/**` each, relative to `cwd`, globs kept; mhrun never watches `.git` and `node_modules`", readWatch},
	{"ignore_watch", nil, "—",
		"mhrun has no ignore list; it always ignores `.git`, `node_modules` and editor files, the rest is a warning (narrow `watch` instead)", readIgnoreWatch},
	{"watch_delay", nil, "—",
		"mhrun restarts once changes have been quiet for 300 ms", warnWithWatch("mhrun restarts once a burst of changes has been quiet for 300 ms; the delay cannot be set")},
	{"watch_options", nil, "—",
		"chokidar's options; mhrun watches with inotify", warnWithWatch("chokidar's options have no equivalent: mhrun watches the project dir with inotify")},
	{"log_file", []string{"log"}, "log",
		"the combined output file: `log=PATH`, relative to `cwd`", readLogPath(func(s *spec) *logPath { return &s.logFile })},
	{"out_file", []string{"out", "output", "out_log"}, "log",
		"without `log_file`: `log=PATH`, which gets stderr too (under a pty both are one stream); `/dev/null`: none", readLogPath(func(s *spec) *logPath { return &s.outFile })},
	{"error_file", []string{"error", "err", "err_file", "err_log"}, "log",
		"a path other than the `log=` one: `output=pipes`, stderr's lines marked `!` in the `log=` file (and a warning: one file); alone: `log=PATH` and `output=pipes`", readLogPath(func(s *spec) *logPath { return &s.errFile })},
	{"merge_logs", []string{"combine_logs"}, "log",
		"mhrun's `log=` file has every instance, each line naming it (`web.2`): `true` is what it does; `false` with several instances is a warning", readMergeLogs},
	{"log_date_format", nil, "—",
		"mhrun's log files always carry RFC 3339 times; `mhrun start --timestamps` prefixes the terminal's lines", warnAlways("mhrun's log files always carry RFC 3339 times with milliseconds, and `mhrun start --timestamps` adds times to the terminal's lines; the format cannot be set")},
	{"time", nil, "—",
		"`mhrun start --timestamps` (for the whole formation)", warnUnlessFalse("no per-process switch: `mhrun start --timestamps` prefixes every line with its time, and the log files always have it")},
	{"log_type", nil, "—",
		"mhrun writes plain lines", warnUnlessValue("raw", "mhrun writes plain lines (time, instance, text), not JSON")},
	{"disable_logs", nil, "—",
		"without `log=` mhrun writes no file of its own except under `-D`", warnUnlessFalse("no per-process switch: without log= mhrun writes a process's output to no file, except with -D, where every process has one")},
	{"pid_file", []string{"pid"}, "—",
		"`mhrun status --json` lists the pids", warnAlways("mhrun writes no pid files; `mhrun status --json` lists every instance's pid")},

	// PM2's own machinery.
	{"namespace", nil, "—", "a Procfile is one formation", warnUnlessValue("default", "mhrun has no namespaces: a project's Procfile is one formation")},
	{"name_prefix", nil, "—", "PM2 modules only", warnAlways("no equivalent: the process is named as given")},
	{"source_map_support", nil, "—", "Node's own `--enable-source-maps` in `node_args`", warnUnlessFalse("no equivalent: add --enable-source-maps to node_args")},
	{"disable_source_map_support", nil, "—", "mhrun adds no source map support to disable", warnUnlessTrue("no equivalent: mhrun adds no source map support")},
	{"vizion", nil, "—", "mhrun keeps no version control metadata", warnUnlessFalse("mhrun keeps no version control metadata of the app")},
	{"pmx", nil, "—", "PM2 Plus", warnUnlessFalse("no equivalent: PM2 Plus monitoring is PM2's")},
	{"automation", nil, "—", "PM2 Plus", warnUnlessFalse("no equivalent: PM2 Plus monitoring is PM2's")},
	{"trace", nil, "—", "PM2 Plus", warnUnlessFalse("no equivalent: PM2 Plus tracing is PM2's")},
	{"disable_trace", nil, "—", "PM2 Plus", warnUnlessTrue("no equivalent: PM2 Plus tracing is PM2's")},
	{"v8", nil, "—", "PM2 Plus", warnUnlessFalse("no equivalent: PM2 Plus metrics are PM2's")},
	{"event_loop_inspector", nil, "—", "PM2 Plus", warnUnlessFalse("no equivalent: PM2 Plus metrics are PM2's")},
	{"deep_monitoring", nil, "—", "PM2 Plus", warnUnlessFalse("no equivalent: PM2 Plus metrics are PM2's")},
	{"io", nil, "—", "PM2 Plus", warnAlways("no equivalent: PM2 Plus settings are PM2's")},
	{"post_update", nil, "—", "PM2 Plus", warnAlways("no equivalent: mhrun does not update apps")},
	{"install_url", nil, "—", "PM2 modules", warnAlways("no equivalent: mhrun installs nothing")},
	{"force", nil, "—", "a Procfile process runs once per formation", warnUnlessFalse("no equivalent: a Procfile process runs once per formation (scale it for more)")},
	{"execute_command", nil, "—", "`true` is fork mode, as in PM2", readExecuteCommand},
	{"username", nil, "—", "mhrun runs every process as the user who runs it", warnAlways("mhrun runs every process as the user who starts it")},
	{"uid", []string{"user"}, "—", "run mhrun as that user (or `mhrun startup`'s unit with `User=`)", warnAlways("mhrun runs every process as the user who starts it: run mhrun as that user (a systemd unit's User=)")},
	{"gid", nil, "—", "as `uid`", warnAlways("mhrun runs every process with its own group: run mhrun with that group (a systemd unit's Group=)")},
	{"windowsHide", nil, "—", "Windows only", nil},
	{"write", nil, "—", "no documented meaning", warnAlways("no equivalent")},
}

// topKeys are the keys of the file beside its apps.
var topKeys = map[string]string{
	"deploy": "mhrun does not deploy: keep `pm2 deploy` or your CI for it",
}

var (
	keyIndex   = map[string]*key{} // every name, alias and camelCase form
	knownNames []string            // the names, for "did you mean"
)

func init() {
	for i := range keys {
		k := &keys[i]
		if k.name == "env_*" {
			continue
		}
		for _, n := range append([]string{k.name}, k.aliases...) {
			keyIndex[n] = k
			keyIndex[camel(n)] = k
		}
		knownNames = append(knownNames, k.name)
	}
}

// camel is PM2's camelCase alias of a key (max_memory_restart →
// maxMemoryRestart): each part after the first, if longer than one
// letter, starts upper case.
func camel(name string) string {
	parts := strings.Split(name, "_")
	for i, p := range parts {
		if i > 0 && len(p) > 1 {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

// Mapping is one row of the table of PM2 keys: what a key becomes in
// mhrun, and how (or why it has no equivalent).
type Mapping struct {
	PM2     string   // the key
	Aliases []string // other names PM2 accepts for it (camelCase forms left out)
	Mhrun   string   // a policy key, "Procfile command", "Procfile name", ".env / env.NAME", or "—" for none
	Note    string   // Markdown
}

// Table returns every PM2 app key the importer knows, in the order of
// the README's table.
func Table() []Mapping {
	out := make([]Mapping, len(keys))
	for i, k := range keys {
		out[i] = Mapping{PM2: k.name, Aliases: append([]string(nil), k.aliases...), Mhrun: k.mhrun, Note: k.note}
	}
	return out
}

// MarkdownTable returns Table as a Markdown table, as pm2/README.md
// holds it.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| PM2 key | mhrun | how |\n|---|---|---|\n")
	for _, m := range Table() {
		name := "`" + m.PM2 + "`"
		if len(m.Aliases) > 0 {
			name += " (" + "`" + strings.Join(m.Aliases, "`, `") + "`)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, codeWords(m.Mhrun), m.Note)
	}
	return b.String()
}

// codeWords puts the policy keys and files of a Mhrun column in code:
// "port / balance" → "`port` / `balance`"; "—" and "Procfile ..." stay.
func codeWords(s string) string {
	fields := strings.Split(s, " / ")
	for i, f := range fields {
		parts := strings.Split(f, ", ")
		for j, p := range parts {
			if p != "—" && !strings.HasPrefix(p, "Procfile") {
				parts[j] = "`" + p + "`"
			}
		}
		fields[i] = strings.Join(parts, ", ")
	}
	return strings.Join(fields, " / ")
}
