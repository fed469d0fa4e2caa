// Package export turns a parsed formation into files for engines made to
// run it elsewhere; it is pure: a formation in, file contents out.
//
// Systemd layout: APP.target wants every instance; each long-running
// process is a template APP-NAME@.service whose instances @1..@N the
// target wants. A scheduled process is a plain APP-NAME.service
// (Type=oneshot) started by APP-NAME.timer.
//
// The env files are EnvironmentFile= lines; PORT, PS and the policy's
// env.NAME variables are set by ExecStart=/usr/bin/env NAME=value ...
// /bin/sh -c '...', not by Environment=, which EnvironmentFile= would
// override whatever the order: under mhrun they win over the files (an
// env file's PORT is only the base port). env and sh exec, so the program
// is still the unit's main process. A template cannot compute base+n, so
// each instance's port is MHRUN_PORT in a drop-in
// APP-NAME@N.service.d/port.conf (the files map key holds the
// subdirectory), passed on as PORT=${MHRUN_PORT}; PS is NAME.%i.
// RestartSteps= and RestartMaxDelaySec= need systemd ≥ 254 and are
// written only with SystemdOptions.NewRestartKeys.
//
// A socket= process gets APP-NAME.socket (ListenStream= its address,
// 127.0.0.1 unless the policy names one; FileDescriptorName= the process
// name), which every instance of its template lists in Sockets=: systemd
// holds the socket and hands it to each instance as fd 3 with LISTEN_FDS,
// LISTEN_FDNAMES and LISTEN_PID (the main pid: env and sh exec, so a
// simple command's program), exactly as mhrun does. The instances' PORT
// is the socket's port. A connection while no instance runs starts
// instance 1 (Service=).
package export

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"mhrun/formation"
	"mhrun/policy"
	"mhrun/procfile"
)

// SystemdOptions say how the units are written; zero values are the defaults.
type SystemdOptions struct {
	App     string // unit name prefix; "" = base name of the project dir
	User    string // User= of every service; "" = none (root, or the user manager)
	WorkDir string // WorkingDirectory= and root of relative env files; "" = the project dir
	Mhrun   string // path of the mhrun binary, named in the target's header; "" = "mhrun"
	// NewRestartKeys writes RestartSteps= and RestartMaxDelaySec=, which
	// systemd understands from version 254 on.
	NewRestartKeys bool
}

// Systemd returns the unit files of f keyed by their path relative to a
// unit directory, and a warning for each policy key it could not express.
func Systemd(f *formation.Formation, o SystemdOptions) (files map[string][]byte, warnings []string, err error) {
	x, err := newSystemdExport(f, o)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range f.Processes {
		if err := x.process(p); err != nil {
			return nil, nil, err
		}
	}
	x.files[x.app+".target"] = x.target()
	slices.Sort(x.warnings)
	return x.files, x.warnings, nil
}

// systemdExport is one export under way: what every unit shares, and the
// files, the target's wants and the warnings written so far.
type systemdExport struct {
	f          *formation.Formation
	o          SystemdOptions
	app        string          // unit name prefix
	workDir    string          // WorkingDirectory= of every service
	envFiles   []string        // EnvironmentFile= of every service
	dependedOn map[string]bool // processes some after= names
	files      map[string][]byte
	wants      []string // the target's Wants=
	warnings   []string
}

// newSystemdExport resolves o's defaults for f.
func newSystemdExport(f *formation.Formation, o SystemdOptions) (*systemdExport, error) {
	app := unitName(cmp.Or(o.App, filepath.Base(f.Dir)))
	if app == "" {
		return nil, fmt.Errorf("app name %q has no character valid in a unit name (pass --app)", o.App)
	}
	x := &systemdExport{f: f, o: o, app: app, workDir: cmp.Or(o.WorkDir, f.Dir),
		dependedOn: map[string]bool{}, files: map[string][]byte{}}
	for _, e := range f.EnvFiles {
		if !filepath.IsAbs(e) {
			e = filepath.Join(x.workDir, e)
		} else if rel, err := filepath.Rel(f.Dir, e); err == nil && !strings.HasPrefix(rel, "..") && o.WorkDir != "" {
			e = filepath.Join(x.workDir, rel)
		}
		x.envFiles = append(x.envFiles, e)
	}
	for _, p := range f.Processes {
		for _, a := range p.Policy.After {
			x.dependedOn[a] = true
		}
	}
	return x, nil
}

// process writes the units of p: a template service and a port drop-in
// for each instance, or for a scheduled process a service and its timer.
func (x *systemdExport) process(p *formation.Process) error {
	base := x.base(p)
	notes := notExported(engineSystemd, p.Policy, base, "")
	for _, n := range notes {
		x.warnings = append(x.warnings, p.Name+": "+n)
	}
	unit := x.service(p, notes)
	if p.Policy.Schedule != "" {
		timer, err := x.timer(p)
		if err != nil {
			return fmt.Errorf("process %s: %w", p.Name, err)
		}
		x.files[base+".service"] = unit
		x.files[base+".timer"] = timer
		x.wants = append(x.wants, base+".timer")
		return nil
	}
	x.files[base+"@.service"] = unit
	if p.Policy.Socket != 0 {
		x.files[base+".socket"] = x.socketUnit(p)
		x.wants = append(x.wants, base+".socket")
	}
	for n := 1; n <= instances(p); n++ {
		inst := base + "@" + strconv.Itoa(n) + ".service"
		x.files[inst+".d/port.conf"] = x.portDropIn(p, n)
		x.wants = append(x.wants, inst)
	}
	return nil
}

// base is the name of p's units without the instance and suffix: APP-NAME.
func (x *systemdExport) base(p *formation.Process) string { return x.app + "-" + unitName(p.Name) }

// instances is how many instances of p run: a singleton's one at most.
func instances(p *formation.Process) int {
	if p.Policy.Singleton {
		return min(p.Scale, 1)
	}
	return p.Scale
}

// units names the units a dependent of p orders itself after.
func (x *systemdExport) units(p *formation.Process) []string {
	if p.Policy.Schedule != "" {
		return []string{x.base(p) + ".service"}
	}
	var u []string
	for n := 1; n <= instances(p); n++ {
		u = append(u, x.base(p)+"@"+strconv.Itoa(n)+".service")
	}
	return u
}

// unitText is a unit file being written, a line at a time.
type unitText struct{ strings.Builder }

func (u *unitText) line(format string, args ...any) { fmt.Fprintf(&u.Builder, format+"\n", args...) }

// service is p's service unit: the template APP-NAME@.service, or for a
// scheduled process the APP-NAME.service its timer starts. notes, what
// it could not express, head it as comments.
func (x *systemdExport) service(p *formation.Process, notes []string) []byte {
	var u unitText
	x.unitSection(&u, p, notes)
	u.line("")
	u.line("[Service]")
	x.serviceType(&u, p)
	x.serviceExec(&u, p)
	restartKeys(&u, p.Policy, x.o.NewRestartKeys)
	if p.Policy.Memory > 0 {
		u.line("MemoryMax=%d", p.Policy.Memory)
	}
	stopKeys(&u, p.Policy)
	return []byte(u.String())
}

// unitSection writes the header comments and the [Unit] section of p's
// service: its target, its order after the units of its after= and the
// start limit that stands for max-restarts.
func (x *systemdExport) unitSection(u *unitText, p *formation.Process, notes []string) {
	pol := p.Policy
	u.line("# Generated by mhrun export systemd for process %s.", p.Name)
	for _, n := range notes {
		u.line("# mhrun: %s", n)
	}
	if pol.Singleton && p.Scale > 1 {
		u.line("# mhrun: singleton: one instance only")
	}
	u.line("[Unit]")
	u.line("Description=%s %s", x.app, escapeSpecifiers(p.Name))
	u.line("PartOf=%s.target", x.app)
	var after []string
	for _, a := range pol.After {
		if dep := x.f.Process(a); dep != nil {
			after = append(after, x.units(dep)...)
		}
	}
	if pol.Socket != 0 && pol.Schedule == "" {
		after = append(after, x.base(p)+".socket")
	}
	if len(after) > 0 {
		u.line("After=%s", strings.Join(after, " "))
		u.line("Requires=%s", strings.Join(after, " "))
	}
	if pol.Schedule == "" && pol.Restart != policy.RestartNever {
		// max-restarts failures within stable×(N+1) stop the restarts.
		u.line("StartLimitBurst=%d", pol.MaxRestarts+1)
		u.line("StartLimitIntervalSec=%s", span(pol.Stable*time.Duration(pol.MaxRestarts+1)))
	}
}

// serviceType writes Type= (and its start timeout) of p's service.
func (x *systemdExport) serviceType(u *unitText, p *formation.Process) {
	pol := p.Policy
	switch {
	case pol.Schedule != "":
		u.line("Type=oneshot")
	case pol.Ready.Kind == policy.ReadyNotify:
		u.line("Type=notify")
		u.line("TimeoutStartSec=%s", span(pol.ReadyTimeout))
	case pol.Restart == policy.RestartNever && x.dependedOn[p.Name]:
		// A one-shot release phase: dependents start once it exited 0.
		u.line("Type=oneshot")
		u.line("RemainAfterExit=yes")
		u.line("TimeoutStartSec=infinity")
	default:
		u.line("Type=simple")
	}
}

// serviceExec writes how p's service runs: its user, directory, env files
// and ExecStart=.
func (x *systemdExport) serviceExec(u *unitText, p *formation.Process) {
	pol := p.Policy
	if x.o.User != "" {
		u.line("User=%s", escapeSpecifiers(x.o.User))
	}
	u.line("WorkingDirectory=%s", escapeSpecifiers(x.workDir))
	for _, e := range x.envFiles {
		u.line("EnvironmentFile=-%s", escapeSpecifiers(e))
	}
	if pol.Socket != 0 && pol.Schedule == "" {
		u.line("Sockets=%s.socket", x.base(p))
	}
	// PORT, PS and the policy's env.NAME go on the command line of
	// env(1), not in Environment=, which EnvironmentFile= overrides
	// whatever the order: under mhrun they win over the env files
	// (whose PORT is only the base port). A template cannot compute
	// an instance's port: its drop-in sets MHRUN_PORT, passed on.
	words := []string{"/usr/bin/env"}
	if pol.Schedule != "" {
		words = append(words, "PORT="+strconv.Itoa(p.Port(x.f.BasePort, 1)), "PS="+p.Instance(1))
	} else {
		words = append(words, "PORT=${MHRUN_PORT}", "PS="+p.Name+".%i")
	}
	for _, kv := range pol.EnvVars() {
		words = append(words, execWord(kv.Key+"="+kv.Value))
	}
	u.line("ExecStart=%s", strings.Join(words, " ")+" /bin/sh -c "+execQuote(procfile.ShellCommand(p.Command)))
}

// restartKeys writes Restart= and the backoff of a long-running service;
// the growth of the backoff needs systemd 254, so without newKeys it is a
// comment.
func restartKeys(u *unitText, pol policy.Policy, newKeys bool) {
	if pol.Schedule != "" {
		return
	}
	switch pol.Restart {
	case policy.RestartAlways:
		u.line("Restart=always")
	case policy.RestartOnFailure:
		u.line("Restart=on-failure")
	default:
		u.line("Restart=no")
		return
	}
	u.line("RestartSec=%s", span(pol.BackoffMin))
	if pol.BackoffMax <= pol.BackoffMin {
		return
	}
	steps := max(int(math.Ceil(math.Log2(float64(pol.BackoffMax)/float64(pol.BackoffMin)))), 1)
	if newKeys {
		u.line("# RestartSteps= and RestartMaxDelaySec= need systemd >= 254.")
		u.line("RestartSteps=%d", steps)
		u.line("RestartMaxDelaySec=%s", span(pol.BackoffMax))
	} else {
		u.line("# mhrun: backoff up to %s needs RestartSteps=%d and RestartMaxDelaySec=%s (systemd >= 254; export with --systemd-254)",
			span(pol.BackoffMax), steps, span(pol.BackoffMax))
	}
}

// stopKeys writes how a service is stopped: the whole cgroup, by the stop
// signal, SIGKILL after grace.
func stopKeys(u *unitText, pol policy.Policy) {
	u.line("KillMode=control-group")
	u.line("KillSignal=SIG%s", pol.StopSignal)
	switch pol.StopSignal {
	case "TERM", "INT", "HUP":
	default:
		// systemd counts only these (and PIPE) as a clean end by
		// signal; mhrun counts an instance its stop signal ended as
		// stopped, not failed. The same signal from anyone else is a
		// crash to mhrun, restarted under on-failure: so here too.
		u.line("SuccessExitStatus=SIG%s", pol.StopSignal)
		if pol.Schedule == "" && pol.Restart == policy.RestartOnFailure {
			u.line("RestartForceExitStatus=SIG%s", pol.StopSignal)
		}
	}
	u.line("TimeoutStopSec=%s", span(pol.Grace))
}

// timer is the APP-NAME.timer that starts scheduled process p.
func (x *systemdExport) timer(p *formation.Process) ([]byte, error) {
	t, err := ConvertCron(p.Policy.Schedule)
	if err != nil {
		return nil, err
	}
	var u unitText
	u.line("# Generated by mhrun export systemd for process %s: schedule=%q.", p.Name, p.Policy.Schedule)
	u.line("[Unit]")
	u.line("Description=%s %s schedule", x.app, escapeSpecifiers(p.Name))
	u.line("PartOf=%s.target", x.app)
	u.line("")
	u.line("[Timer]")
	if t.Every > 0 {
		u.line("OnActiveSec=%s", span(t.Every))
		u.line("OnUnitActiveSec=%s", span(t.Every))
	} else {
		u.line("OnCalendar=%s", t.OnCalendar)
	}
	// systemd's default AccuracySec=1min may start a job up to a
	// minute late (seen: a 1s timer first fired after 30s); cron
	// and mhrun fire on the second.
	u.line("AccuracySec=1s")
	u.line("Unit=%s.service", x.base(p))
	return []byte(u.String()), nil
}

// portDropIn is APP-NAME@N.service.d/port.conf: the port of instance n,
// which a template cannot compute.
func (x *systemdExport) portDropIn(p *formation.Process, n int) []byte {
	port := p.Port(x.f.BasePort, n)
	if p.Policy.Socket != 0 {
		port = p.Policy.Socket // every instance's: the shared socket's
	}
	return fmt.Appendf(nil, "# PORT of %s, which ExecStart= passes on as PORT.\n[Service]\nEnvironment=MHRUN_PORT=%d\n",
		p.Instance(n), port)
}

// socketUnit is APP-NAME.socket of a socket= process: the listening
// socket systemd holds and hands to every instance (Sockets= in the
// template).
func (x *systemdExport) socketUnit(p *formation.Process) []byte {
	pol := p.Policy
	host := cmp.Or(pol.SocketHost, "127.0.0.1")
	if host == "localhost" {
		host = "127.0.0.1" // ListenStream= takes an address, not a name
	}
	var u unitText
	u.line("# Generated by mhrun export systemd for process %s: socket=%s, handed to every instance as fd 3.", p.Name, formatSocketKey(pol))
	u.line("[Unit]")
	u.line("Description=%s %s socket", x.app, escapeSpecifiers(p.Name))
	u.line("PartOf=%s.target", x.app)
	u.line("")
	u.line("[Socket]")
	u.line("ListenStream=%s", net.JoinHostPort(host, strconv.Itoa(pol.Socket)))
	u.line("FileDescriptorName=%s", p.Name)
	u.line("# A connection while no instance runs starts the first.")
	u.line("Service=%s@1.service", x.base(p))
	u.line("")
	u.line("[Install]")
	u.line("WantedBy=sockets.target")
	return []byte(u.String())
}

// target is APP.target, which wants every instance and timer.
func (x *systemdExport) target() []byte {
	var u unitText
	u.line("# Generated by %s export systemd for %s.", cmp.Or(x.o.Mhrun, "mhrun"), x.workDir)
	u.line("# Install in /etc/systemd/system, then: systemctl daemon-reload && systemctl enable --now %s.target", x.app)
	u.line("[Unit]")
	u.line("Description=%s (mhrun formation)", x.app)
	if len(x.wants) > 0 {
		u.line("Wants=%s", strings.Join(x.wants, " "))
	}
	u.line("")
	u.line("[Install]")
	u.line("WantedBy=multi-user.target")
	return []byte(u.String())
}

// unitName keeps the characters systemd allows in a unit name prefix and
// replaces the others with "-".
func unitName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-', r == ':':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-.")
}

// span formats d as a systemd time span: whole seconds, else milliseconds.
func span(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	default:
		return strconv.FormatInt(int64((d+time.Millisecond-1)/time.Millisecond), 10) + "ms"
	}
}

// escapeSpecifiers doubles "%" so systemd does not expand specifiers.
func escapeSpecifiers(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// execQuote makes s one word of an Exec line: single-quoted, with "\" and
// "'" backslash-escaped (systemd unescapes C escapes inside quotes), control
// characters as C escapes, "%" doubled (specifiers) and "$" doubled (systemd
// would otherwise substitute variables itself; "$$" reaches sh as "$").
func execQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '%':
			b.WriteString("%%")
		case '$':
			b.WriteString("$$")
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// execWord is s as one word of an Exec line: as it is when it holds only
// characters systemd takes literally there, else execQuote'd.
func execWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_=.,:/@+-") == "" {
		return s
	}
	return execQuote(s)
}

// envQuote double-quotes an Environment= assignment when it holds a space,
// quote or backslash.
func envQuote(kv string) string {
	if !strings.ContainsAny(kv, " \t\"'\\") {
		return kv
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(kv) + `"`
}
