package runner

import (
	"fmt"
	"syscall"
)

var signalNames = map[syscall.Signal]string{
	syscall.SIGTERM: "TERM", syscall.SIGINT: "INT", syscall.SIGQUIT: "QUIT",
	syscall.SIGHUP: "HUP", syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2",
	syscall.SIGKILL: "KILL", syscall.SIGSEGV: "SEGV", syscall.SIGABRT: "ABRT",
	syscall.SIGPIPE: "PIPE", syscall.SIGBUS: "BUS", syscall.SIGFPE: "FPE",
	syscall.SIGILL: "ILL", syscall.SIGALRM: "ALRM",
}

// signalName is the short name of sig ("TERM"), or its number.
func signalName(sig syscall.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return fmt.Sprint(int(sig))
}

// parseSignal turns a policy stop-signal ("TERM") into a signal; the policy
// parser has already refused anything else, so unknown names give SIGTERM.
func parseSignal(name string) syscall.Signal {
	for sig, n := range signalNames {
		if n == name {
			return sig
		}
	}
	return syscall.SIGTERM
}
