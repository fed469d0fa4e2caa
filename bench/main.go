//go:build linux

// Command bench measures mhrun against plain-shell baselines taken in the
// same run and prints a markdown table (see BENCHMARKS.md):
//
//   - throughput: 4 writers × 200,000 lines of 100 bytes, one write(2) per
//     line, through mhrun start (stdout to a file) against the same writers
//     under /bin/sh writing straight to a file; every line is checked. A
//     second baseline, the pty floor (bench/ptyfloor), only copies each
//     writer's pty to a file: what any runner giving children ptys must do.
//   - idle: mhrun's RSS and CPU with 50 sleeping processes.
//   - start/stop 50: from exec until 50 sleeps exist, from SIGTERM until
//     mhrun and the 50 are gone, against a shell doing the same.
//   - restart: from a child's exit to its next start under restart=always
//     backoff=0s..0s, against a shell loop running the same child.
//   - sampling: mhrun's CPU with 200 sleeps under memory=1G (their trees
//     read every second) against 200 without memory=, in the same window.
//   - status: exec → exit of "mhrun status" against a formation of 200
//     running instances, against "mhrun version" (no socket).
//   - scale: "mhrun scale web=50" on a running formation, from exec until
//     the 50 sleeps exist, against a shell starting 50 sleeps.
//   - cluster: a Go HTTP hello server ×2 behind mhrun's balancer (balance=):
//     wrk's requests/s and latency through the balancer against the two
//     instances loaded directly and through the proxy floor
//     (bench/proxyfloor, a bare io.Copy proxy: what any user-space
//     balancer must at least do); failed requests during "mhrun reload web"
//     under a load loop and under wrk. Needs wrk (skipped with a hint).
//   - memcap (not in the default run): a child growing about 1 GiB/s
//     (bench/grow) under memory=200M, restarted again and again; each
//     run's peak RSS ÷ the cap, for a child that dies at SIGTERM and one
//     that ignores it (grace=2s).
//   - pm2 (not in the default run): the same on a Node hello-world, mhrun
//     side by side with PM2's cluster mode (npm installs PM2 if needed).
//
// Run it from the repository root: go run ./bench [flags]. It builds mhrun,
// the writer and the stamp (and the helpers a benchmark needs) into a temp
// dir, and stops every process it started, by pid.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// defaultRun is what -run runs by default; pm2 is left out (it installs
// PM2 with npm, which takes longer than the rest together).
const defaultRun = "throughput,idle,startstop,restart,sampling,status,scale,cluster"

// config is the command line.
type config struct {
	runs     int
	writers  int
	lines    int
	size     int
	idle     time.Duration
	procs    int
	restarts int
	sampled  int
	listed   int
	queries  int
	mhrun    string
	only     string
	verbose  bool
	keepTemp bool
	wrkRuns  int
	wrkFor   time.Duration
	pm2      string
	memRuns  int
	memRate  int
	load     int // CPU-spinning processes run beside the benchmarks
	before   string
	hivemind string
	many     int
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.runs, "n", 5, "runs of each throughput, start/stop and scale measurement (best and median reported)")
	fs.IntVar(&c.writers, "writers", 4, "throughput: writer processes")
	fs.IntVar(&c.lines, "lines", 200000, "throughput: lines per writer")
	fs.IntVar(&c.size, "size", 100, "throughput: bytes per line, \"\\n\" included")
	fs.DurationVar(&c.idle, "idle", 30*time.Second, "idle and sampling: how long mhrun's CPU is measured")
	fs.IntVar(&c.procs, "procs", 50, "idle, start/stop and scale: sleep processes")
	fs.IntVar(&c.restarts, "restarts", 200, "restart: restarts measured for each runner, in -n rounds")
	fs.IntVar(&c.sampled, "sampled", 200, "sampling: sleep processes under memory=, and as many without")
	fs.IntVar(&c.listed, "listed", 200, "status: running instances the status lists")
	fs.IntVar(&c.queries, "queries", 50, "status: runs of mhrun status, and as many of mhrun version")
	fs.IntVar(&c.wrkRuns, "wrkruns", 3, "cluster and pm2: wrk runs of each target, taking turns (median reported)")
	fs.DurationVar(&c.wrkFor, "wrkfor", 5*time.Second, "cluster and pm2: how long each wrk run lasts (whole seconds)")
	fs.StringVar(&c.pm2, "pm2", "", "pm2: the pm2 binary (default: pm2 on $PATH, else npm install pm2@latest into the temp dir)")
	fs.IntVar(&c.memRuns, "memruns", 10, "memcap: memory restarts measured for each shape")
	fs.IntVar(&c.memRate, "memrate", 1024, "memcap: how fast the child grows, MiB/s")
	fs.IntVar(&c.load, "load", 0, "run this many CPU-spinning processes beside the benchmarks (started after the builds, killed by pid at the end)")
	fs.StringVar(&c.mhrun, "mhrun", "", "mhrun binary to measure (default: go build the module at the current dir)")
	fs.StringVar(&c.before, "before", "", "throughput (ptys), idle and startstop: also measure this mhrun binary (a build of main, say) in the same run, as the before column")
	fs.StringVar(&c.hivemind, "hivemind", "", "startstop and idle: also measure this hivemind binary in the same rounds (default: hivemind on $PATH, if any)")
	fs.IntVar(&c.many, "many", 300, "idle: instances of the threads and per-instance RSS measure")
	fs.StringVar(&c.only, "run", defaultRun, "benchmarks to run, comma-separated (also: memcap, pm2)")
	fs.BoolVar(&c.verbose, "v", false, "print every run's figures to stderr")
	fs.BoolVar(&c.keepTemp, "keep", false, "keep the temp dir (outputs, Procfiles) and print its path")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.runs < 1 || c.writers < 1 || c.lines < 1 || c.procs < 1 || c.restarts < 1 || c.sampled < 1 || c.listed < 1 || c.queries < 1 || c.wrkRuns < 1 || c.memRuns < 1 || c.memRate < 1 || c.many <= c.procs || c.size < 16 || c.idle <= 0 || c.wrkFor < time.Second || c.load < 0 || c.load > 64 {
		fmt.Fprintln(stderr, "bench: -n, -writers, -lines, -procs, -restarts, -sampled, -listed, -queries, -wrkruns, -memruns and -memrate must be at least 1, -many more than -procs, -size at least 16, -idle positive, -wrkfor at least 1s, -load 0 to 64")
		return 2
	}
	if c.before != "" {
		if abs, err := filepath.Abs(c.before); err == nil {
			c.before = abs
		}
	}
	want := map[string]bool{}
	for _, name := range strings.Split(c.only, ",") {
		switch name = strings.TrimSpace(name); name {
		case "throughput", "idle", "startstop", "restart", "sampling", "status", "scale", "cluster", "memcap", "pm2":
			want[name] = true
		case "":
		default:
			fmt.Fprintf(stderr, "bench: unknown benchmark %q in -run (want throughput, idle, startstop, restart, sampling, status, scale, cluster, memcap, pm2)\n", name)
			return 2
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(ctx, c, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	defer b.close()
	spin, err := b.spin(c.load)
	defer spin.stop()
	if err != nil {
		fmt.Fprintf(stderr, "bench: -load: %v\n", err)
		return 1
	}

	var rows []row
	for _, step := range []struct {
		name string
		fn   func() ([]row, error)
	}{
		{"throughput", b.throughput},
		{"idle", b.idleBench},
		{"startstop", b.startStop},
		{"restart", b.restartBench},
		{"sampling", b.samplingBench},
		{"status", b.statusBench},
		{"scale", b.scaleBench},
		{"cluster", b.clusterBench},
		{"memcap", b.memcapBench},
		{"pm2", b.pm2Bench},
	} {
		if !want[step.name] {
			continue
		}
		r, err := step.fn()
		rows = append(rows, r...)
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", step.name, err)
			if ctx.Err() != nil {
				return 130
			}
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s\n\nmhrun: %s\n\n", machine(), b.source)
	if c.load > 0 {
		fmt.Fprintf(stdout, "load: %d CPU-spinning processes ran beside the benchmarks\n\n", c.load)
	}
	printTable(stdout, rows)
	return 0
}

// bench holds what every benchmark shares: the binaries and the temp dir.
type bench struct {
	ctx    context.Context
	cfg    config
	log    io.Writer
	tmp    string
	mhrun  string
	writer string
	stamp  string
	source string // where the measured mhrun came from
	env    []string
	built  map[string]bool // helpers built by helper
}

func newBench(ctx context.Context, c config, log io.Writer) (*bench, error) {
	tmp, err := os.MkdirTemp("", "mhrun-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{ctx: ctx, cfg: c, log: log, tmp: tmp, built: map[string]bool{}}
	if err := setSubreaper(); err != nil {
		fmt.Fprintf(log, "bench: cannot become child subreaper (%v): orphaned sleeps are left to PID 1\n", err)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MHRUN_") {
			b.env = append(b.env, kv)
		}
	}
	b.writer = filepath.Join(tmp, "writer")
	if err := b.build(b.writer, "./bench/writer"); err != nil {
		b.close()
		return nil, err
	}
	b.stamp = filepath.Join(tmp, "stamp")
	if err := b.build(b.stamp, "./bench/stamp"); err != nil {
		b.close()
		return nil, err
	}
	b.mhrun = c.mhrun
	if b.mhrun == "" {
		b.mhrun = filepath.Join(tmp, "mhrun")
		if err := b.build(b.mhrun, "."); err != nil {
			b.close()
			return nil, err
		}
		b.source = "built from the working tree, " + gitState()
	} else if b.mhrun, err = filepath.Abs(b.mhrun); err != nil {
		b.close()
		return nil, err
	} else {
		b.source = b.mhrun + " (given with -mhrun)"
	}
	return b, nil
}

// gitState names the commit the working tree is at, and whether files
// other than the benchmark's own differ from it.
func gitState() string {
	head, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "not a git checkout"
	}
	st := fmt.Sprintf("HEAD %s", strings.TrimSpace(string(head)))
	out, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!BENCHMARKS.md").Output()
	if err == nil && len(strings.TrimSpace(string(out))) > 0 {
		st += " with uncommitted changes"
	}
	return st
}

// build runs go build for pkg, relative to the module root (the current dir).
func (b *bench) build(out, pkg string) error {
	cmd := exec.CommandContext(b.ctx, "go", "build", "-o", out, pkg)
	msg, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s (run the benchmark from the repository root): %v\n%s", pkg, err, msg)
	}
	return nil
}

// close kills whatever is left of the runs and removes the temp dir.
func (b *bench) close() {
	sweep()
	if b.cfg.keepTemp {
		fmt.Fprintf(b.log, "bench: temp dir kept: %s\n", b.tmp)
		return
	}
	os.RemoveAll(b.tmp)
}

// command prepares a run in a process group of its own, so that a Ctrl-C
// on the terminal reaches only the benchmark, which then kills the group
// by its id (the context's cancel).
func (b *bench) command(name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(b.ctx, name, args...)
	cmd.Env = b.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// logf prints a run's figures with -v.
func (b *bench) logf(format string, args ...any) {
	if b.cfg.verbose {
		fmt.Fprintf(b.log, format+"\n", args...)
	}
}

// pause waits d unless the benchmark is interrupted.
func (b *bench) pause(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

// shQuote quotes s for /bin/sh.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tail is the end of a small log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
