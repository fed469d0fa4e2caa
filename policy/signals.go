package policy

import (
	"fmt"
	"strings"
	"syscall"
)

// signalTable is mhrun's one table of signals by name: what stop-signal=
// accepts, what `mhrun signal` sends, and how an exit by a signal is shown.
var signalTable = []struct {
	name string
	sig  syscall.Signal
	stop bool // a stop-signal= value
	send bool // sendable with mhrun signal
}{
	{"TERM", syscall.SIGTERM, true, true},
	{"INT", syscall.SIGINT, true, true},
	{"QUIT", syscall.SIGQUIT, true, true},
	{"HUP", syscall.SIGHUP, true, true},
	{"USR1", syscall.SIGUSR1, true, true},
	{"USR2", syscall.SIGUSR2, true, true},
	{"KILL", syscall.SIGKILL, true, true},
	{"STOP", syscall.SIGSTOP, false, true},
	{"CONT", syscall.SIGCONT, false, true},
	{"WINCH", syscall.SIGWINCH, false, true},
	{"ALRM", syscall.SIGALRM, false, true},
	{"SEGV", syscall.SIGSEGV, false, false},
	{"ABRT", syscall.SIGABRT, false, false},
	{"PIPE", syscall.SIGPIPE, false, false},
	{"BUS", syscall.SIGBUS, false, false},
	{"FPE", syscall.SIGFPE, false, false},
	{"ILL", syscall.SIGILL, false, false},
}

// signalNames lists the table's names that pass keep, in its order.
func signalNames(keep func(stop, send bool) bool) []string {
	var names []string
	for _, s := range signalTable {
		if keep(s.stop, s.send) {
			names = append(names, s.name)
		}
	}
	return names
}

// stopSignals are the stop-signal= values.
var stopSignals = signalNames(func(stop, _ bool) bool { return stop })

// SignalName is the short name of sig ("TERM"), or its number.
func SignalName(sig syscall.Signal) string {
	for _, s := range signalTable {
		if s.sig == sig {
			return s.name
		}
	}
	return fmt.Sprint(int(sig))
}

// StopSignalOf is p's stop signal; the parser accepts only names of the
// table, so the zero Policy's "" (and only it) gives SIGTERM.
func (p Policy) StopSignalOf() syscall.Signal {
	for _, s := range signalTable {
		if s.name == p.StopSignal {
			return s.sig
		}
	}
	return syscall.SIGTERM
}

// ParseSendSignal reads the signal of `mhrun signal` ("HUP", "sighup",
// "SIGHUP") and gives its short name.
func ParseSendSignal(v string) (syscall.Signal, string, error) {
	name := strings.TrimPrefix(strings.ToUpper(v), "SIG")
	for _, s := range signalTable {
		if s.send && s.name == name {
			return s.sig, s.name, nil
		}
	}
	return 0, "", fmt.Errorf("unknown signal %q (want one of %s)", v, strings.Join(signalNames(func(_, send bool) bool { return send }), ", "))
}
