package runner

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"mhrun/formation"
	"mhrun/policy"
	"mhrun/procfile"
)

// Shared-socket mode. A process with socket=PORT has mhrun listen on that
// port itself, once, and hand the listening socket to every instance as
// fd 3, by systemd's socket-activation protocol (sd_listen_fds(3)):
// LISTEN_FDS=1, LISTEN_FDNAMES=NAME (the process's name) and LISTEN_PID,
// the pid of the program that is to use it. The instances accept on the
// one socket and the kernel spreads the connections over them; no byte
// passes through mhrun, which never accepts on it. The socket is opened
// before the first instance starts and closed only when the runner ends:
// restarts, scale and reload all start their instances on it, so that a
// connection that arrives while no instance accepts waits in the
// socket's backlog instead of being refused.
//
// LISTEN_PID. The command runs as /bin/sh -c SCRIPT, and a simple command
// is exec'd (procfile.ShellCommand), so the program has the shell's pid;
// the shell sets the variables itself, as
//
//	export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web; exec node app.js
//
// so that LISTEN_PID is the program's pid. A compound command (cd x &&
// node app.js, a pipeline) is not exec'd: LISTEN_PID is then the shell's
// pid, and a library that checks it as sd_listen_fds does (systemd's
// own, python-systemd, Go's coreos/go-systemd activation) ignores the
// socket in the shell's child; a program that takes fd 3 as it is (Node's
// listen({fd: 3}), Go's net.FileListener(os.NewFile(3, ...)), gunicorn's
// --bind fd://3, uvicorn's --fd 3) works either way. Write the command so
// that it is exec'd (exec in front of the last program, or one program)
// where the library checks.
//
// $PORT is the socket's port, for programs that print it or bind it
// without an inherited socket (which then fails: the port is taken).

// listenFD is the descriptor the socket has in an instance: the first
// after stdin, stdout and stderr, as systemd hands it.
const listenFD = 3

// sharedSocket is the listening socket of one socket= process: a
// descriptor mhrun holds only to hand it on (cmd.ExtraFiles). The
// listener it came from is closed at once, and the descriptor kept is
// made outside Go's poller (see socketFile), so that a connection wakes
// only the instances and no start changes the socket's flags.
type sharedSocket struct {
	file *os.File
	port int
}

// startSockets listens on every socket= port: the policy's address, else
// host (loopback unless --balance-host widens it), as balance= binds.
func (r *Runner) startSockets(host string) error {
	for _, p := range r.f.Processes {
		if p.Policy.Socket == 0 {
			continue
		}
		addr := SocketAddr(p.Policy, host)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			r.closeSockets()
			return fmt.Errorf("socket %s: %w (free the port, or change socket= in the policy)", p.Name, err)
		}
		tl := ln.(*net.TCPListener)
		f, err := socketFile(tl, p.Name)
		tl.Close()
		if err != nil {
			r.closeSockets()
			return fmt.Errorf("socket %s: %w", p.Name, err)
		}
		r.sockets[p.Name] = &sharedSocket{file: f, port: tl.Addr().(*net.TCPAddr).Port}
	}
	return nil
}

// socketFile duplicates the listener's socket into a file the poller does
// not know. TCPListener.File would do, but its file is one Go made
// non-blocking, and exec clears O_NONBLOCK through File.Fd at every
// start: the flag is the socket's, shared with the instances serving on
// it, so an event loop's accept after a wake-up would block (Node's loop
// frozen until the next connection, a Go server's Shutdown stuck in
// accept). Made blocking for os.NewFile, the file is an ordinary one;
// then the socket is set non-blocking again, as the listener had it and
// as every server that takes an inherited socket sets it anyway.
func socketFile(tl *net.TCPListener, name string) (*os.File, error) {
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	if err := unix.SetNonblock(nfd, false); err != nil {
		unix.Close(nfd)
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "socket "+name)
	if err := unix.SetNonblock(nfd, true); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (r *Runner) closeSockets() {
	for name, s := range r.sockets {
		s.file.Close()
		delete(r.sockets, name)
	}
}

// SocketAddr is where a socket= process listens: the policy's address,
// else host, else 127.0.0.1.
func SocketAddr(p policy.Policy, host string) string {
	switch {
	case p.SocketHost != "":
		host = p.SocketHost
	case host == "":
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(p.Socket))
}

// withSocket hands the instance's shared socket, if its process has one,
// to cmd as fd 3 and has the shell set LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES before it runs the command (see above).
func (r *Runner) withSocket(in *instance, cmd *exec.Cmd) {
	s := r.sockets[in.proc.Name]
	if s == nil {
		return
	}
	cmd.ExtraFiles = []*os.File{s.file} // fd 3: listenFD
	cmd.Args[len(cmd.Args)-1] = SocketScript(in.proc.Name, in.proc.Command)
}

// SocketScript is the shell script of a socket= process's command: the
// LISTEN_ variables set by the shell, with its own pid, then the command,
// exec'd when it is simple.
func SocketScript(name, command string) string {
	return "export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=" + name + "\n" + procfile.ShellCommand(command)
}

// execd reports whether the shell execs the command's program, which
// then has the shell's pid: a simple command (procfile.ShellCommand execs
// it), or a list whose last command is exec PROGRAM (cd web && exec node
// app.js); not a pipeline, a subshell or a list that ends otherwise.
func execd(command string) bool {
	c := procfile.ShellCommand(command)
	if strings.ContainsAny(c, "|()`") {
		return false
	}
	last := c
	for _, sep := range []string{"&&", ";", "\n", "&"} {
		if i := strings.LastIndex(last, sep); i >= 0 {
			last = last[i+len(sep):]
		}
	}
	for _, w := range strings.Fields(last) {
		if w == "exec" {
			return true
		}
		if !strings.Contains(w, "=") || strings.ContainsAny(w, "<>") {
			return false
		}
	}
	return false
}

// socketPort is the port of the instance's shared socket, or 0.
func (r *Runner) socketPort(in *instance) int {
	if s := r.sockets[in.proc.Name]; s != nil {
		return s.port
	}
	return 0
}

// DescribeSocket says how a socket= process is served, for mhrun check.
// host is --balance-host ("" for 127.0.0.1). It returns nothing for a
// process without socket=.
func DescribeSocket(p *formation.Process, host string) []string {
	pol := p.Policy
	if pol.Socket == 0 {
		return nil
	}
	lines := []string{fmt.Sprintf("%s: mhrun listens on %s and hands the socket to every instance as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=%s, LISTEN_PID, $PORT=%d); the kernel spreads connections over the instances that accept, and a reload starts each replacement on the same socket before it stops the old instance",
		p.Name, SocketAddr(pol, host), p.Name, pol.Socket)}
	if !execd(p.Command) {
		lines = append(lines, fmt.Sprintf("%s: the command does not end in an exec'd program: LISTEN_PID is the shell's pid, so a library that checks it (sd_listen_fds) ignores the socket in the shell's child; one that reads fd 3 as it is still works (write exec before the program to be sure)", p.Name))
	}
	return lines
}
