package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mhrun/runner"
)

// TestMain lets the test binary be mhrun itself: with MHRUN_TEST_MAIN=1 it
// runs the command line it was given, so end-to-end tests run real runners.
func TestMain(m *testing.M) {
	if tok, ok := runner.GuardToken(); ok { // the runner's guard: first of all
		os.Exit(runner.GuardMain(os.Stdin, tok, os.Stderr))
	}
	switch os.Getenv("MHRUN_TEST_HELPER") { // first: children inherit MHRUN_TEST_MAIN
	case "serve":
		serveHelper()
	case "dump":
		dumpHelper()
	}
	if os.Getenv("MHRUN_TEST_MAIN") == "1" {
		os.Exit(Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// serveHelper is an HTTP server for cluster tests: on 127.0.0.1:$PORT it
// answers every request with "$PS pid"; while the file named by
// $MHRUN_TEST_BROKEN exists at start, it never listens (never ready).
func serveHelper() {
	if f := os.Getenv("MHRUN_TEST_BROKEN"); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Println("broken: not listening")
			select {}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("listening on", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %d\n", os.Getenv("PS"), os.Getpid())
	})}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		srv.Shutdown(context.Background()) // finishes requests in flight
	}()
	srv.Serve(ln)
	os.Exit(0)
}

// mhrunCmd runs the test binary as mhrun in dir.
func mhrunCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MHRUN_TEST_MAIN=1", "NO_COLOR=", "MHRUN_SOCKET=")
	// Under -race every process of the test binary sleeps 1 s at exit
	// (GORACE atexit_sleep_ms), and these tests run it as mhrun, and its
	// helpers under mhrun, hundreds of times: 50 ms is time enough to
	// finish a race report, and takes the package from ~85 s to ~18 s.
	if _, ok := os.LookupEnv("GORACE"); !ok {
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=50")
	}
	return cmd
}

// runMhrun runs mhrun to its end and returns its output and exit code.
func runMhrun(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := mhrunCmd(t, dir, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// writeFiles writes name → body into a new temp dir.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// liveRunner is a running mhrun whose stdout lines the test can wait for.
type liveRunner struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	all   []string
	done  chan struct{}
	err   error
}

func startMhrun(t *testing.T, dir string, args ...string) *liveRunner {
	t.Helper()
	cmd := mhrunCmd(t, dir, args...)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &liveRunner{t: t, cmd: cmd, lines: make(chan string, 100000), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	go func() {
		r.err = cmd.Wait()
		pw.Close()
		close(r.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
		// children that left mhrun's session survive its SIGKILL: end the
		// ones the test's children recorded, by pid, even when the test failed
		// before it read them
		pids, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
		for _, p := range pids {
			if b, err := os.ReadFile(p); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	return r
}

// waitLine waits for a line containing s, printed before or after the
// call, and returns it.
func (r *liveRunner) waitLine(s string) string {
	r.t.Helper()
	for _, l := range r.all {
		if strings.Contains(l, s) {
			return l
		}
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				r.t.Fatalf("mhrun ended before printing %q; output:\n%s", s, strings.Join(r.all, "\n"))
			}
			r.all = append(r.all, l)
			if strings.Contains(l, s) {
				return l
			}
		case <-deadline:
			r.t.Fatalf("no line with %q in 20s; output:\n%s", s, strings.Join(r.all, "\n"))
		}
	}
}

// wait waits for mhrun to exit and returns its code and remaining output.
func (r *liveRunner) wait(d time.Duration) (int, []string) {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		r.t.Fatalf("mhrun still running after %s; output:\n%s", d, strings.Join(r.all, "\n"))
	}
	for l := range r.lines {
		r.all = append(r.all, l)
	}
	return r.cmd.ProcessState.ExitCode(), r.all
}

// readPid reads a pid file written by a child, and SIGKILLs that pid when
// the test ends, passed or failed.
func readPid(t *testing.T, path string) int {
	t.Helper()
	pid := pidIn(t, path)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

// pidIn reads a pid file, without readPid's SIGKILL at the end of the test
// (for pids the test sees exit, which may be reused by then).
func pidIn(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %q", path, b)
	}
	return pid
}

// waitExit waits, through a pidfd, until pid has exited (or is a zombie of
// someone else's), at most d.
func waitExit(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(d.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if n == 1 {
			return
		}
		t.Fatalf("pid %d still alive after %s", pid, d)
	}
}
