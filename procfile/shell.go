package procfile

import "strings"

// ShellCommand is what /bin/sh -c runs for a Procfile command, the same
// for mhrun and for the files export writes. A simple
// command (one program with its arguments, no list, pipe, subshell,
// redirection or leading assignment) gets "exec " in front, so that the
// program itself is the instance's process and session leader: Debian's
// dash does not exec the last command of -c by itself, and a shell left
// in between dies at once on SIGTERM, hangs up the pty and cuts off the
// program's last words. Anything else runs as written.
func ShellCommand(cmd string) string {
	c := strings.TrimSpace(cmd)
	if c == "" || strings.ContainsAny(c, ";&|()<>`\n") {
		return cmd
	}
	first, _, _ := strings.Cut(c, " ")
	first, _, _ = strings.Cut(first, "\t")
	if notExec[first] {
		return cmd
	}
	if strings.Contains(first, "=") {
		return cmd // FOO=1 prog: an assignment, which exec would take as the program
	}
	return "exec " + c
}

// notExec are the words a simple command may start with that exec cannot
// run: dash's builtins and the shell's reserved words.
var notExec = map[string]bool{}

func init() {
	for _, w := range strings.Fields(". : [ [[ { ! alias bg break case cd command continue echo eval exec exit export " +
		"false fc fg for function getopts hash if jobs kill local printf pwd read readonly return select set shift " +
		"source test time times trap true type ulimit umask unalias unset until wait while") {
		notExec[w] = true
	}
}
