package cli

// The chaos test runs mhrun, as a real process, under random hostile
// children, random control commands and random ends of the runner, and
// checks four invariants after every runner exit (RELIABILITY.md):
//
//   - the loop answers: every status call over the control socket returns
//     within chaosStatusBound (the slowest and the count over 100 ms are
//     recorded);
//   - every exit is seen: a leader that recorded "about to exit with code
//     N" has an event saying it exited with code N, unless a command, a
//     signal or the runner's end cut in (see accountExits for what is fair);
//   - nothing survives a runner exit: every process of the round (the pids
//     the children recorded, and anything carrying the round's mark in its
//     environment) is gone within chaosSurvivorBound of the runner's exit,
//     whether it stopped gracefully, was SIGKILLed or dumped on SIGQUIT;
//   - descriptors, threads and goroutines do not grow: in soak rounds the
//     runner is brought to the same quiet shape (every instance stopped)
//     at the start and at the end, and compared.
//
//	go test -run Chaos .                          # the short version, two runners
//	MHRUN_CHAOS=2m go test -run Chaos -v .         # two minutes
//	MHRUN_CHAOS=2m MHRUN_CHAOS_SEED=42 go test ...  # replay a seed's choices
//
// By default (no MHRUN_CHAOS, or MHRUN_CHAOS=short) the short version runs:
// two runners of 2 s, one stopped gracefully and one SIGKILLed, every
// invariant but the soak's, in about 5 s (measured: 4.2 to 7.3 s, -race
// included). MHRUN_CHAOS=off and go test -short skip it. The random
// choices (formations, commands, their targets and delays, the runner's
// ends) come from one seed, printed first; the timing of a loaded machine
// is not replayed. More knobs are in RELIABILITY.md.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mhrun/socket"
)

const (
	chaosStatusBound   = time.Second            // a status answer slower than this fails
	chaosStatusSlow    = 100 * time.Millisecond // counted, not failed
	chaosPingMargin    = 500 * time.Millisecond // a status over the bound fails when its loop ping took more than its ping by more
	chaosSurvivorBound = 3 * time.Second        // after the runner's exit
	chaosGuardBound    = 6 * time.Second        // the guard's own exit (it gives up after 3 s)
	chaosStopBound     = 30 * time.Second       // a graceful stop, on a loaded machine
	chaosSlowStop      = 5 * time.Second        // a stop this slow is shown (not failed)
	chaosFdSlack       = 2                      // descriptors, quiet shape to quiet shape
	chaosGoSlack       = 1                      // goroutines not the runtime's own, quiet shape to quiet shape
)

// chaosSettings reads MHRUN_CHAOS and MHRUN_CHAOS_SEED; it skips the test
// when it is turned off, under -short, or off Linux.
func chaosSettings(t *testing.T) (d time.Duration, short bool, seed uint64) {
	v := os.Getenv("MHRUN_CHAOS")
	switch v {
	case "off", "0":
		t.Skip("MHRUN_CHAOS=" + v)
	case "", "short":
		if testing.Short() {
			t.Skip("-short: the chaos test's short version runs two runners for about 5 s")
		}
		d, short = 5*time.Second, true
	default:
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("MHRUN_CHAOS=%q: want a duration like 2m, short or off", v)
		}
	}
	if runtime.GOOS != "linux" {
		t.Skip("the chaos test reads /proc: Linux only")
	}
	for _, tool := range []string{"setsid", "nohup", "yes", "date", "env", "sleep"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the chaos test's children need %s: %v", tool, err)
		}
	}
	seed = uint64(time.Now().UnixNano())
	if s := os.Getenv("MHRUN_CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("MHRUN_CHAOS_SEED=%q: want a whole number", s)
		}
	}
	return d, short, seed
}

// TestChaos is the chaos run; see the top of this file.
func TestChaos(t *testing.T) {
	d, short, seed := chaosSettings(t)
	c := &chaos{t: t, seed: seed, short: short, start: time.Now(), until: time.Now().Add(d),
		rng: rand.New(rand.NewPCG(seed, 0x6d6872756e)), deckRng: rand.New(rand.NewPCG(seed, 5)), tot: newChaosTotals()}
	c.logf("seed %d (replay the choices: MHRUN_CHAOS_SEED=%d MHRUN_CHAOS=%s)", seed, seed, os.Getenv("MHRUN_CHAOS"))
	c.dir = writeFiles(t, map[string]string{"Procfile": "x: true\n"})
	c.sock = filepath.Join(c.dir, ".mhrun.sock")
	if len(c.sock) > 100 {
		c.dir = t.TempDir() // not shorter; let the runner hash it
	}
	t.Cleanup(c.cleanup)
	for n := 1; ; n++ {
		left := time.Until(c.until)
		if left <= 0 || (n > 2 && short) {
			break
		}
		seedN := c.rng.Uint64()
		switch {
		case !short && n%4 == 0 && left >= 25*time.Second:
			f := newFormation(seedN)
			// a sleeper the commander never scales to 0 keeps the runner
			// up: without an instance it would end by itself
			f = append(f, &chaosProc{shape: "sleeper", name: "anchor", cmd: "echo $$ >> P; exec sleep 1000", scale: 1, maxN: 3, code: -1,
				grace: time.Second, policy: "anchor: grace=1s backoff=50ms..200ms max-restarts=1000000"})
			c.round(n, seedN, f, roundCalibrate, 0)
			soak := min(left-6*time.Second, 20*time.Second+time.Duration(c.rng.IntN(20))*time.Second)
			c.round(n, seedN, f, roundSoak, soak)
		default:
			dur := 2*time.Second + time.Duration(c.rng.IntN(8000))*time.Millisecond
			if short {
				dur = 2 * time.Second
			}
			c.round(n, seedN, newFormation(seedN), roundNormal, min(dur, max(left, time.Second)))
		}
		if c.t.Failed() && os.Getenv("MHRUN_CHAOS_KEEPGOING") == "" {
			break
		}
	}
	c.report()
}

// chaos is the state of one chaos run across its rounds (one runner each).
type chaos struct {
	t       *testing.T
	seed    uint64
	short   bool
	rng     *rand.Rand
	start   time.Time
	until   time.Time
	dir     string
	sock    string
	tot     *chaosTotals
	live    *round       // the round whose runner may still run, for cleanup
	calib   *calibration // the quiet shape of a fresh runner, once measured
	deck    []string     // the ends still to deal (dealEnd)
	deckRng *rand.Rand
	mu      sync.Mutex
	marks   []string // every round's mark, for cleanup
}

func (c *chaos) logf(format string, args ...any) {
	c.t.Helper()
	c.t.Logf(format, args...)
}

// failf is a test failure that names the seed.
func (c *chaos) failf(format string, args ...any) {
	c.t.Helper()
	c.t.Errorf("seed %d: "+format, append([]any{c.seed}, args...)...)
}

// chaosTotals are the figures of the whole run.
type chaosTotals struct {
	mu          sync.Mutex
	runners     int
	ends        map[string]int // runner ends by kind
	shapes      map[string]int // hostile processes in formations, by shape
	commands    map[string]int // control commands sent, by kind
	refused     int            // answered with a refusal (no such instance, already running…)
	transport   int            // no answer: the runner was ending
	statusCalls int
	slowest     time.Duration
	slowestPing time.Duration
	slowestLoop time.Duration // loop pings
	mostHeld    time.Duration // the most a loop ping took beyond its ping
	loopSlow    int           // over the bound, with the loop holding them (pollStatus)
	over100     int
	overBound   int
	records     int // leader exits recorded by the children
	seen        int
	excused     int
	lost        int
	extra       int // exit events beyond the recorded runs
	pids        int // pids recorded by the children
	survivors   int
	guards      int // guards seen
	guardsLeft  int
	slow        []slowAnswer             // status answers over chaosStatusSlow
	stopTook    map[string]time.Duration // the longest from a requested end to the runner's exit, by kind
	cleanTook   map[string]time.Duration // the longest from the runner's exit to its last process gone, by kind
	outBytes    int64
	events      int
	fdSamples   []string
	soaks       []string
}

// slowAnswer is a status answer over chaosStatusSlow: how long it took,
// how long the runner's threads and the test's waited for a CPU meanwhile
// (their run-queue time, summed: a loaded machine, not a blocked loop),
// and the load.
type slowAnswer struct {
	took, ping, loop, waited, self time.Duration // self: the test's own threads
	load                           string
}

// runqWait is the time the threads of pid have spent waiting for a CPU
// (the second field of /proc/PID/task/TID/schedstat), summed.
func runqWait(pid int) time.Duration {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var sum int64
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, e.Name()))
		if f := strings.Fields(string(b)); err == nil && len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n
		}
	}
	return time.Duration(sum)
}

func newChaosTotals() *chaosTotals {
	return &chaosTotals{ends: map[string]int{}, shapes: map[string]int{}, commands: map[string]int{},
		stopTook: map[string]time.Duration{}, cleanTook: map[string]time.Duration{}}
}

// The hostile shapes. Each leader appends its pid ($$) to the round's
// pids file (P), and so does every process it leaves behind; a leader that
// exits by itself appends "PS PID CODE NANOS" to the runs file (X) first.

// leftover is a process a leader leaves behind that keeps writing to the
// pty (or not), in one of the ways processes escape their instance.
func leftover(rng *rand.Rand) (shape, line string) {
	body := `echo $$ >> P; trap "" HUP; while :; do echo tick; sleep 0.2; done`
	shapes := []string{"background", "deaf", "nohup", "setsid", "daemon", "doublefork"}
	shape = shapes[rng.IntN(len(shapes))]
	switch shape {
	case "background": // in the group, writing to the pty
		line = fmt.Sprintf(`sh -c '%s' &`, body)
	case "deaf": // in the group, ignoring TERM and INT: SIGKILL after grace
		line = fmt.Sprintf(`sh -c 'trap "" TERM INT; %s' &`, body)
	case "nohup": // away from the pty
		line = fmt.Sprintf(`nohup sh -c '%s' >/dev/null 2>&1 &`, body)
	case "setsid": // a session of its own, the pty kept
		line = fmt.Sprintf(`setsid sh -c '%s' &`, body)
	case "daemon": // double-forked into a session of its own, deaf, no pty
		line = fmt.Sprintf(`( setsid sh -c 'trap "" TERM; %s' </dev/null >/dev/null 2>&1 & ) ;`, body)
	case "doublefork": // double-forked, adopted by the subreaper
		line = fmt.Sprintf(`( sh -c '%s' & ) ;`, body)
	}
	return shape, line
}

// chaosProc is one process of a round's formation.
type chaosProc struct {
	name   string
	shape  string
	cmd    string
	policy string
	scale  int // the scale the test believes it has
	maxN   int // the most it may be scaled to
	code   int // the code its runs exit with, -1 if they never exit by themselves
	grace  time.Duration
}

// newFormation draws a formation of 3 to 7 hostile processes.
func newFormation(seed uint64) []*chaosProc {
	rng := rand.New(rand.NewPCG(seed, 1))
	shapes := []string{"crash", "leaver", "daemonizer", "stubborn", "selfstop", "forker", "sleeper", "crash", "leaver"}
	n := 3 + rng.IntN(5)
	var procs []*chaosProc
	firehose := rng.IntN(3) == 0 // at most one `yes`, in a third of the rounds
	if firehose {
		n--
	}
	rec := func(code int) string {
		return fmt.Sprintf(`echo "$PS $$ %d $(date +%%s%%N)" >> X; exit %d`, code, code)
	}
	for i := range n {
		p := &chaosProc{shape: shapes[rng.IntN(len(shapes))], scale: 1 + rng.IntN(2), maxN: 3, code: -1}
		p.name = fmt.Sprintf("%s%d", p.shape, i+1)
		nap := fmt.Sprintf("%d.%02d", rng.IntN(2), rng.IntN(100))
		switch p.shape {
		case "crash": // a crash loop, nothing left behind
			p.code = 1 + rng.IntN(9)
			p.cmd = fmt.Sprintf("echo $$ >> P; sleep %s; %s", nap, rec(p.code))
		case "leaver": // exits, leaving one or two processes behind
			p.code = rng.IntN(10)
			var b strings.Builder
			for range 1 + rng.IntN(2) {
				s, l := leftover(rng)
				p.name += "-" + s
				b.WriteString(l + " ")
			}
			p.cmd = fmt.Sprintf("%secho $$ >> P; sleep %s; %s", b.String(), nap, rec(p.code))
		case "daemonizer": // lives on beside what it left
			s, l := leftover(rng)
			p.name += "-" + s
			p.cmd = fmt.Sprintf("%s echo $$ >> P; while :; do sleep 0.3; done", l)
		case "stubborn": // ignores TERM, HUP and INT: SIGKILL after grace
			p.cmd = `echo $$ >> P; trap "" TERM HUP INT; while :; do sleep 0.1; done`
		case "selfstop": // stops itself; exits once continued
			p.code = 1 + rng.IntN(9)
			p.cmd = fmt.Sprintf("echo $$ >> P; sleep %s; kill -STOP $$; %s", nap, rec(p.code))
		case "forker": // forks in bursts of 4, bounded, then exits
			p.code = 1 + rng.IntN(9)
			p.cmd = fmt.Sprintf(`echo $$ >> P; i=0; while [ $i -lt %d ]; do for j in 1 2 3 4; do sh -c 'echo $$ >> P; sleep 0.1' & done; wait; i=$((i+1)); done; %s`, 2+rng.IntN(10), rec(p.code))
		case "sleeper":
			p.cmd = "echo $$ >> P; exec sleep 1000"
		}
		procs = append(procs, p)
	}
	if firehose {
		p := &chaosProc{shape: "firehose", name: "firehose", scale: 1, maxN: 1, code: -1}
		p.cmd = fmt.Sprintf("echo $$ >> P; exec yes %s", strings.Repeat("y", 1+rng.IntN(200)))
		procs = append(procs, p)
	}
	if os.Getenv("MHRUN_CHAOS_ESCAPE") == "1" {
		// the documented escape (members.go, guard.go): an environment
		// cleared, a session left; to see the checks catch a survivor
		procs = append(procs, &chaosProc{shape: "escaper", name: "escaper", scale: 1, maxN: 1, code: -1,
			cmd: `env -i PATH="$PATH" setsid sh -c 'echo $$ >> P; exec sleep 1000' </dev/null >/dev/null 2>&1 & echo $$ >> P; exec sleep 1000`})
	}
	for _, p := range procs {
		p.grace = time.Duration(100+rng.IntN(700)) * time.Millisecond
		restart := "on-failure"
		if rng.IntN(3) == 0 {
			restart = "always"
		}
		lo := 20 + rng.IntN(80)
		p.policy = fmt.Sprintf("%s: grace=%dms backoff=%dms..%dms max-restarts=1000000 restart=%s", p.name, p.grace.Milliseconds(), lo, lo+100+rng.IntN(400), restart)
		if p.scale != 1 {
			p.policy += fmt.Sprintf(" scale=%d", p.scale)
		}
	}
	return procs
}

type roundKind int

const (
	roundNormal    roundKind = iota // chaos, then a random end
	roundCalibrate                  // start, quiet shape, SIGQUIT: the goroutines of a fresh runner
	roundSoak                       // quiet shape, chaos, quiet shape, SIGQUIT: compared
)

// round is one runner's life.
type round struct {
	c     *chaos
	n     int
	kind  roundKind
	rng   *rand.Rand
	mark  string
	procs []*chaosProc
	pidsF string
	runsF string
	errF  string

	cmd      *exec.Cmd
	pid      int
	exited   chan struct{}
	exitAt   time.Time
	outDone  chan struct{}
	guardPid int

	mu      sync.Mutex
	events  []chaosEvent
	lines   int
	bytes   int64
	dist    []disturbance
	endKind string
	endAt   time.Time
	peak    int // the most instances with a pid in one status answer

	samples []procSample
}

type chaosEvent struct {
	at   time.Time
	text string
}

// disturbance is something sent to the runner that may cut an exit short
// or change how it is reported: a command on some instances, or the end.
type disturbance struct {
	sent, answered time.Time
	what           string
	insts          []string // nil: every instance
}

type procSample struct {
	at      time.Time
	fds     int
	threads int
	cpu     time.Duration // user and system time so far
}

// round runs one runner: kind says what is done with it.
func (c *chaos) round(n int, seed uint64, procs []*chaosProc, kind roundKind, d time.Duration) {
	c.t.Helper()
	r := &round{c: c, n: n, kind: kind, rng: rand.New(rand.NewPCG(seed, 2+uint64(kind))), procs: procs,
		mark:  fmt.Sprintf("%d-%d-%d-%d", os.Getpid(), c.seed, n, kind),
		pidsF: fmt.Sprintf("pids.%d.%d", n, kind), runsF: fmt.Sprintf("runs.%d.%d", n, kind), errF: fmt.Sprintf("stderr.%d.%d", n, kind)}
	for _, p := range procs {
		p.scale = 1
		if m := regexp.MustCompile(`scale=(\d+)`).FindStringSubmatch(p.policy); m != nil {
			p.scale, _ = strconv.Atoi(m[1])
		}
	}
	c.mu.Lock()
	c.marks = append(c.marks, r.mark)
	c.mu.Unlock()
	var pf, pol strings.Builder
	for _, p := range procs {
		cmd := strings.NewReplacer(">> P", ">> "+r.pidsF, ">> X", ">> "+r.runsF).Replace(p.cmd)
		fmt.Fprintf(&pf, "%s: %s\n", p.name, cmd)
		fmt.Fprintln(&pol, p.policy)
		if kind != roundCalibrate {
			c.tot.shapes[p.shape]++
		}
	}
	for name, body := range map[string]string{"Procfile": pf.String(), "Procfile.policy": pol.String()} {
		if err := os.WriteFile(filepath.Join(c.dir, name), []byte(body), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	kinds := map[roundKind]string{roundNormal: "chaos", roundCalibrate: "calibration", roundSoak: "soak"}
	c.logf("round %d (%s, %s): %d processes: %s", n, kinds[kind], d.Round(time.Millisecond), len(procs), procNames(procs))

	if !r.startRunner() {
		return
	}
	c.live = r
	stopPoll := r.pollStatus()
	stopSample := r.sample()
	switch kind {
	case roundNormal:
		stopCmds := r.commander(false)
		r.sleep(d)
		stopCmds()
		r.end(r.pickEnd())
	case roundCalibrate:
		quiet := r.quiesce()
		stopSample()
		stopPoll() // no status in flight in the goroutine dump
		r.endQuit(quiet, nil)
	case roundSoak:
		before := r.quiesce()
		r.startAll()
		stopCmds := r.commander(true)
		r.sleep(d)
		stopCmds()
		r.restoreScale()
		after := r.quiesce()
		stopSample()
		stopPoll()
		r.endQuit(before, &after)
	}
	stopSample()
	r.waitExit()
	stopPoll()
	<-r.outDone
	r.checkSurvivors()
	r.checkStderr()
	r.accountExits()
	r.tally()
	c.live = nil
}

func procNames(procs []*chaosProc) string {
	var names []string
	for _, p := range procs {
		names = append(names, fmt.Sprintf("%s×%d", p.name, p.scale))
	}
	return strings.Join(names, " ")
}

// gone reports whether the runner has exited.
func (r *round) gone() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// sleep waits d, or less when the runner exits first.
func (r *round) sleep(d time.Duration) {
	select {
	case <-time.After(d):
	case <-r.exited:
	}
}

// startRunner starts mhrun in the project dir, its stdout read line by
// line as it comes (mhrun's events kept), its stderr in a file (the
// guard writes there too, and may outlive the runner).
func (r *round) startRunner() bool {
	c := r.c
	errf, err := os.Create(filepath.Join(c.dir, r.errF))
	if err != nil {
		c.t.Fatal(err)
	}
	defer errf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := mhrunCmd(c.t, c.dir, "start")
	cmd.Env = append(cmd.Env, "CHAOS_MARK="+r.mark, "GOTRACEBACK=all")
	cmd.Stdout, cmd.Stderr = pw, errf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	pw.Close()
	r.cmd, r.pid, r.exited, r.outDone = cmd, cmd.Process.Pid, make(chan struct{}), make(chan struct{})
	go func() {
		cmd.Wait()
		r.mu.Lock()
		r.exitAt = time.Now()
		r.mu.Unlock()
		close(r.exited)
	}()
	go r.readOutput(pr)
	c.tot.runners++
	// the socket answers once the runner is up
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, _, err := r.call("status"); err == nil && len(resp.Status) > 0 {
			break
		}
		select {
		case <-r.exited:
			c.failf("round %d: the runner exited before it answered: %s\n%s", r.n, cmd.ProcessState, r.tail(20))
			<-r.outDone
			return false
		case <-time.After(20 * time.Millisecond): // a socket has no event to wait on
		}
		if time.Now().After(deadline) {
			c.failf("round %d: the runner did not answer in 20s", r.n)
			r.cmd.Process.Kill()
			<-r.exited
			<-r.outDone
			return false
		}
	}
	r.guardPid = findGuard(r.pid)
	return true
}

// readOutput reads the runner's stdout to its end: the events (lines of
// the name mhrun) are kept with the time they arrived, the rest counted.
func (r *round) readOutput(pr *os.File) {
	defer close(r.outDone)
	defer pr.Close()
	br := bufio.NewReaderSize(pr, 64*1024)
	var long bool // inside a line longer than the buffer
	for {
		b, err := br.ReadSlice('\n')
		r.mu.Lock()
		r.bytes += int64(len(b))
		if !long && bytes.HasPrefix(b, []byte("mhrun ")) && bytes.HasSuffix(b, []byte("\n")) {
			if _, text, ok := strings.Cut(string(b), " | "); ok {
				r.events = append(r.events, chaosEvent{time.Now(), strings.TrimRight(text, "\r\n")})
			}
		}
		if len(b) > 0 && b[len(b)-1] == '\n' {
			r.lines++
		}
		r.mu.Unlock()
		long = errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !long {
			return
		}
	}
}

// tail is the last n events, for failure messages.
func (r *round) tail(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events[max(0, len(r.events)-n):] {
		fmt.Fprintf(&b, "  %s %s\n", e.at.Format("15:04:05.000"), e.text)
	}
	return b.String()
}

// findGuard is the pid of the runner's guard: its child whose
// environment carries MHRUN_GUARD.
func findGuard(runner int) int {
	for range 50 {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if ppidOf(pid) == runner {
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil && bytes.Contains(b, []byte("\x00MHRUN_GUARD=")) {
					return pid
				}
			}
		}
		time.Sleep(20 * time.Millisecond) // started just before the instances: rarely needed
	}
	return 0
}

// statOf reads /proc/PID/stat: the state letter and the parent's pid.
func statOf(pid int) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+4 >= len(b) {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, true
}

func ppidOf(pid int) int {
	_, ppid, _ := statOf(pid)
	return ppid
}

// call sends one request on a connection of its own, with a deadline, and
// returns the answer and how long it took from the dial.
func (r *round) call(cmd string, args ...string) (socket.Response, time.Duration, error) {
	t0 := time.Now()
	nc, err := net.DialTimeout("unix", r.c.sock, 5*time.Second)
	if err != nil {
		return socket.Response{}, time.Since(t0), err
	}
	conn := socket.NewConn(nc)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := socket.Call(conn, socket.Request{Cmd: socket.Command(cmd), Args: args})
	return resp, time.Since(t0), err
}

// pollStatus asks for status every 50 to 150 ms until stopped, and holds
// every answer to the bound. With each status go two probes, at the same
// moment: a ping, a request of another protocol version, which the
// runner's socket server refuses by itself; and a loop ping, a scale with
// no argument, which the supervisor refuses from its loop and does
// nothing. A status reads the CPU and RSS of every tree from /proc, off
// the loop, which the probes do not. A status slower than
// chaosStatusBound fails when its loop ping took chaosPingMargin more than
// its ping: the loop held it. When the loop ping was not slower, the
// whole runner waited (for a CPU, on a loaded machine) or the reading of
// /proc did: recorded, with how long the runner's threads waited for a CPU
// meanwhile, not failed. Every status is counted, whatever the probes.
func (r *round) pollStatus() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	rng := rand.New(rand.NewPCG(r.rng.Uint64(), 3))
	go func() {
		defer close(finished)
		for {
			waited, self := runqWait(r.pid), runqWait(os.Getpid())
			pinged, looped := make(chan time.Duration, 1), make(chan time.Duration, 1)
			go func() { pinged <- r.ping() }()
			go func() {
				_, d, _ := r.call("scale") // refused by the loop: "want NAME=N"
				looped <- d
			}()
			resp, took, err := r.call("status")
			ping, loop := <-pinged, <-looped
			held := max(0, loop-ping) // what the loop added
			var re *socket.RemoteError
			switch {
			case err == nil || errors.As(err, &re):
				r.c.tot.mu.Lock()
				r.c.tot.statusCalls++
				r.c.tot.slowest = max(r.c.tot.slowest, took)
				r.c.tot.slowestPing = max(r.c.tot.slowestPing, ping)
				r.c.tot.slowestLoop = max(r.c.tot.slowestLoop, loop)
				r.c.tot.mostHeld = max(r.c.tot.mostHeld, held)
				if took > chaosStatusSlow {
					r.c.tot.over100++
					waited, self = max(0, runqWait(r.pid)-waited), max(0, runqWait(os.Getpid())-self)
					load, _ := os.ReadFile("/proc/loadavg")
					f := strings.Fields(string(load))
					r.c.tot.slow = append(r.c.tot.slow, slowAnswer{took, ping, loop, waited, self, strings.Join(f[:min(3, len(f))], " ")})
				}
				if took > chaosStatusBound {
					r.c.tot.overBound++
					s := r.c.tot.slow[len(r.c.tot.slow)-1]
					if held > chaosPingMargin {
						r.c.tot.loopSlow++
						r.c.failf("round %d: a status took %s (bound %s), a loop ping beside it %s and a ping %s: the loop held it; meanwhile the runner's threads waited %s in all for a CPU, the test's %s; load average %s",
							r.n, took.Round(time.Millisecond), chaosStatusBound, loop.Round(time.Millisecond), ping.Round(time.Millisecond), s.waited.Round(time.Millisecond), s.self.Round(time.Millisecond), s.load)
					}
				}
				r.c.tot.mu.Unlock()
				live := 0
				for _, row := range resp.Status {
					if row.PID > 0 {
						live++
					}
				}
				r.mu.Lock()
				r.peak = max(r.peak, live)
				r.mu.Unlock()
			case took > chaosStatusBound:
				select {
				case <-r.exited: // the runner died during the call
				default:
					r.c.failf("round %d: a status failed after %s with the runner alive: %v", r.n, took.Round(time.Millisecond), err)
				}
			}
			select {
			case <-done:
				return
			case <-r.exited:
				return
			case <-time.After(time.Duration(50+rng.IntN(100)) * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}

// ping sends a request of a protocol version no runner speaks, which the
// socket server refuses by itself, and reports how long the answer took
// (10 s when there was none).
func (r *round) ping() time.Duration {
	t0 := time.Now()
	nc, err := net.DialTimeout("unix", r.c.sock, 5*time.Second)
	if err != nil {
		return 10 * time.Second
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write([]byte(`{"v":999,"cmd":"status"}` + "\n")); err != nil {
		return 10 * time.Second
	}
	if _, err := bufio.NewReader(nc).ReadString('\n'); err != nil {
		return 10 * time.Second
	}
	return time.Since(t0)
}

// sample reads the runner's descriptors and threads every 250 ms.
func (r *round) sample() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(finished)
		for {
			if s, ok := readProcSample(r.pid); ok {
				r.mu.Lock()
				r.samples = append(r.samples, s)
				r.mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-r.exited:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return func() { once.Do(func() { close(done); <-finished }) }
}

func readProcSample(pid int) (procSample, bool) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return procSample{}, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, false
	}
	s := procSample{at: time.Now(), fds: len(ents)}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(st, ')'); i > 0 {
			if f := strings.Fields(string(st[i+1:])); len(f) > 13 {
				u, _ := strconv.ParseInt(f[12], 10, 64) // utime, in USER_HZ (100/s)
				k, _ := strconv.ParseInt(f[13], 10, 64) // stime
				s.cpu = time.Duration(u+k) * 10 * time.Millisecond
			}
		}
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			s.threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return s, true
}

// instances is every instance name the test believes p has.
func (p *chaosProc) instances() []string {
	var out []string
	for k := 1; k <= p.scale; k++ {
		out = append(out, fmt.Sprintf("%s.%d", p.name, k))
	}
	return out
}

// commander sends random control commands every 50 to 400 ms until
// stopped: restart, stop, start, scale, signal STOP, CONT or TERM, status.
// With keep, it never scales a process to 0, so that the runner, which
// ends once it has no instance left, lives on (a soak).
func (r *round) commander(keep bool) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	rng := rand.New(rand.NewPCG(r.rng.Uint64(), 4))
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-r.exited:
				return
			case <-time.After(time.Duration(50+rng.IntN(350)) * time.Millisecond):
			}
			r.command(rng, keep)
		}
	}()
	return func() { close(done); <-finished }
}

// target picks a process or one of its instances (now and then one past
// its scale, which the runner must refuse).
func (r *round) target(rng *rand.Rand) (arg string, p *chaosProc, insts []string) {
	p = r.procs[rng.IntN(len(r.procs))]
	if rng.IntN(2) == 0 {
		return p.name, p, p.instances()
	}
	k := 1 + rng.IntN(p.scale+1)
	name := fmt.Sprintf("%s.%d", p.name, k)
	return name, p, []string{name}
}

func (r *round) command(rng *rand.Rand, keep bool) {
	var req []string
	var insts []string
	what := ""
	switch x := rng.IntN(100); {
	case x < 10:
		what, req = "status", []string{"status"}
	case x < 25:
		arg, _, in := r.target(rng)
		what, req, insts = "restart", []string{"restart", arg}, in
	case x < 35:
		arg, _, in := r.target(rng)
		what, req, insts = "stop", []string{"stop", arg}, in
	case x < 52:
		arg, _, in := r.target(rng)
		what, req, insts = "start", []string{"start", arg}, in
	case x < 67:
		p := r.procs[rng.IntN(len(r.procs))]
		k := rng.IntN(p.maxN + 1)
		if keep {
			k = 1 + rng.IntN(p.maxN)
		}
		what, req = "scale", []string{"scale", fmt.Sprintf("%s=%d", p.name, k)}
		if k < p.scale {
			for j := k + 1; j <= p.scale; j++ {
				insts = append(insts, fmt.Sprintf("%s.%d", p.name, j))
			}
		} else {
			what = "scale up"
			if k == p.scale {
				what = "scale same"
			}
		}
	default:
		arg, _, in := r.target(rng)
		sig := []string{"STOP", "CONT", "CONT", "TERM"}[rng.IntN(4)]
		what, req, insts = "signal "+sig, []string{"signal", arg, sig}, in
	}
	t0 := time.Now()
	resp, _, err := r.call(req[0], req[1:]...)
	t1 := time.Now()
	r.c.tot.mu.Lock()
	r.c.tot.commands[what]++
	var re *socket.RemoteError
	switch {
	case err == nil:
	case errors.As(err, &re):
		r.c.tot.refused++
	default:
		r.c.tot.transport++
	}
	r.c.tot.mu.Unlock()
	if err == nil && strings.HasPrefix(what, "scale") {
		// believe the runner: "NAME scaled to K" or "already has K"
		p := r.proc(strings.SplitN(req[1], "=", 2)[0])
		if m := regexp.MustCompile(`(?:scaled to|already has) (\d+)`).FindStringSubmatch(resp.Message); m != nil && p != nil {
			p.scale, _ = strconv.Atoi(m[1])
		}
	}
	if err != nil && re == nil {
		select {
		case <-r.exited:
		default:
			r.c.failf("round %d: %v: no answer with the runner alive: %v", r.n, req, err)
		}
	}
	if what != "status" && what != "scale up" && what != "scale same" {
		r.mu.Lock()
		r.dist = append(r.dist, disturbance{sent: t0, answered: t1, what: strings.Join(req, " "), insts: insts})
		r.mu.Unlock()
	}
}

func (r *round) proc(name string) *chaosProc {
	for _, p := range r.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// pickEnd draws how the runner ends.
func (r *round) pickEnd() string {
	if r.c.short { // the short run covers a graceful stop and a SIGKILL
		if r.n == 1 {
			return []string{"INT", "TERM", "HUP", "quit"}[r.rng.IntN(4)]
		}
		return "KILL"
	}
	return r.c.dealEnd()
}

// dealEnd deals the next end from a shuffled deck of every kind, SIGKILL
// twice, so that a short run still sees each kind.
func (c *chaos) dealEnd() string {
	if len(c.deck) == 0 {
		c.deck = []string{"KILL", "KILL", "INT", "TERM", "HUP", "quit", "INT INT", "TERM KILL"}
		c.deckRng.Shuffle(len(c.deck), func(i, j int) { c.deck[i], c.deck[j] = c.deck[j], c.deck[i] })
	}
	end := c.deck[0]
	c.deck = c.deck[1:]
	return end
}

// end ends the runner: a graceful stop (INT, TERM, HUP, quit), a stop
// then a second INT (kill at once), SIGKILL, or SIGKILL in the middle of
// a graceful stop (TERM, then KILL within 0.5 s).
func (r *round) end(kind string) {
	select {
	case <-r.exited: // by itself: every instance scaled away or finished
		kind = "itself"
	default:
	}
	r.mu.Lock()
	r.endKind, r.endAt = kind, time.Now()
	r.dist = append(r.dist, disturbance{sent: r.endAt, answered: r.endAt.Add(time.Hour), what: "runner " + kind})
	r.mu.Unlock()
	sig := map[string]syscall.Signal{"KILL": syscall.SIGKILL, "INT": syscall.SIGINT, "TERM": syscall.SIGTERM, "HUP": syscall.SIGHUP, "INT INT": syscall.SIGINT, "TERM KILL": syscall.SIGTERM}
	if kind == "itself" {
		return
	}
	if kind == "quit" {
		if _, _, err := r.call("quit"); err != nil {
			r.c.failf("round %d: quit: %v", r.n, err)
		}
	} else {
		syscall.Kill(r.pid, sig[kind])
	}
	switch kind {
	case "INT INT": // a second Ctrl-C: kill at once
		time.Sleep(time.Duration(r.rng.IntN(300)) * time.Millisecond)
		syscall.Kill(r.pid, syscall.SIGINT)
	case "TERM KILL": // killed in the middle of its graceful stop
		time.Sleep(time.Duration(r.rng.IntN(500)) * time.Millisecond)
		syscall.Kill(r.pid, syscall.SIGKILL)
	}
}

// waitExit waits for the runner to exit, within chaosStopBound of its end
// (then it is SIGKILLed, and that is a failure).
func (r *round) waitExit() {
	select {
	case <-r.exited:
	case <-time.After(chaosStopBound):
		r.c.failf("round %d: the runner did not exit %s after %s; its last events:\n%s", r.n, chaosStopBound, r.endKind, r.tail(30))
		r.cmd.Process.Kill()
		<-r.exited
	}
	code := r.cmd.ProcessState.ExitCode()
	ws, _ := r.cmd.ProcessState.Sys().(syscall.WaitStatus)
	r.c.tot.ends[r.endKind]++
	r.mu.Lock()
	took := r.exitAt.Sub(r.endAt)
	if r.endKind != "itself" {
		r.c.tot.stopTook[r.endKind] = max(r.c.tot.stopTook[r.endKind], took)
	}
	var since strings.Builder
	for _, e := range r.events {
		if !e.at.Before(r.endAt) {
			fmt.Fprintf(&since, "  %s %s\n", e.at.Format("15:04:05.000"), e.text)
		}
	}
	r.mu.Unlock()
	if took > chaosSlowStop && r.endKind != "itself" {
		load, _ := os.ReadFile("/proc/loadavg")
		r.c.logf("round %d: the runner took %s to exit after %s (load %s); its events since:\n%s", r.n, took.Round(time.Millisecond), r.endKind, strings.TrimSpace(string(load)), since.String())
	}
	switch r.endKind {
	case "KILL":
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			r.c.failf("round %d: the runner ended %s before its SIGKILL", r.n, r.cmd.ProcessState)
		}
	case "TERM KILL": // the stop may have ended before the SIGKILL
		if code != 0 && (!ws.Signaled() || ws.Signal() != syscall.SIGKILL) {
			r.c.failf("round %d: the runner ended %s after TERM then KILL, want 0 or killed", r.n, r.cmd.ProcessState)
		}
	case "QUIT":
		if code != 2 {
			r.c.failf("round %d: the runner ended %s on SIGQUIT, want exit 2 (a goroutine dump)", r.n, r.cmd.ProcessState)
		}
	default:
		if code != 0 { // "itself": nothing was left to run, which is exit 0 too
			r.c.failf("round %d: the runner exited %s after a requested stop (%s), want 0; its last events:\n%s", r.n, r.cmd.ProcessState, r.endKind, r.tail(30))
		}
	}
}

// quiesce brings the runner to its quiet shape: every process continued
// and stopped, no instance with a process; then it reads the descriptors
// and threads.
func (r *round) quiesce() procSample {
	if r.gone() {
		return procSample{}
	}
	for _, p := range r.procs {
		r.disturb(p.instances(), "signal", p.name, "CONT")
		r.disturb(p.instances(), "stop", p.name)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, _, err := r.call("status")
		busy := ""
		for _, row := range resp.Status {
			switch row.State {
			case "stopped", "exited", "errored":
			default:
				busy = row.Name + " " + row.State
			}
			if row.PID > 0 {
				busy = row.Name + " has pid " + strconv.Itoa(row.PID)
			}
		}
		if err == nil && busy == "" {
			break
		}
		if r.gone() {
			return procSample{}
		}
		if time.Now().After(deadline) {
			r.c.failf("round %d: not quiet 20s after every process was stopped: %s %v\n%s", r.n, busy, err, r.tail(20))
			break
		}
		time.Sleep(50 * time.Millisecond) // status has no event to wait on
	}
	time.Sleep(time.Second) // readers and waiters finish; threads park
	var s procSample
	for i := range 4 { // the least of a few: a status call in flight holds a descriptor
		if x, ok := readProcSample(r.pid); ok && (i == 0 || x.fds < s.fds || (x.fds == s.fds && x.threads < s.threads)) {
			s = x
		}
		time.Sleep(100 * time.Millisecond)
	}
	if left := alive(r.recordedPids()); len(left) > 0 {
		r.c.failf("round %d: every instance is stopped, yet processes it recorded live: %s", r.n, describePids(left))
	}
	return s
}

// startAll starts every process again after a quiesce.
func (r *round) startAll() {
	for _, p := range r.procs {
		r.disturb(p.instances(), "start", p.name)
	}
}

// disturb is a command of the test's own (not the commander's), recorded
// as a disturbance of insts.
func (r *round) disturb(insts []string, cmd string, args ...string) (socket.Response, error) {
	t0 := time.Now()
	resp, _, err := r.call(cmd, args...)
	r.mu.Lock()
	r.dist = append(r.dist, disturbance{sent: t0, answered: time.Now(), what: cmd + " " + strings.Join(args, " "), insts: insts})
	r.mu.Unlock()
	return resp, err
}

// restoreScale puts every process back to the scale it started with.
func (r *round) restoreScale() {
	for _, p := range r.procs {
		want := 1
		if m := regexp.MustCompile(`scale=(\d+)`).FindStringSubmatch(p.policy); m != nil {
			want, _ = strconv.Atoi(m[1])
		}
		var removed []string
		for k := want + 1; k <= p.scale; k++ {
			removed = append(removed, fmt.Sprintf("%s.%d", p.name, k))
		}
		for range 100 {
			if _, err := r.disturb(removed, "scale", fmt.Sprintf("%s=%d", p.name, want)); err == nil {
				p.scale = want
				break
			}
			time.Sleep(50 * time.Millisecond) // "still stopping after a scale down": once it is gone
		}
	}
}

// endQuit ends a calibration or soak round with SIGQUIT: the Go runtime
// prints every goroutine and exits 2. A soak compares its quiet shapes
// (before and after) and its goroutines with the calibration's.
func (r *round) endQuit(before procSample, after *procSample) {
	if r.gone() {
		r.c.failf("round %d: the runner exited by itself before the end of its %s round (%s):\n%s", r.n, map[roundKind]string{roundCalibrate: "calibration", roundSoak: "soak"}[r.kind], r.cmd.ProcessState, r.tail(20))
		r.end("itself")
		return
	}
	r.mu.Lock()
	r.endKind, r.endAt = "QUIT", time.Now()
	r.mu.Unlock()
	syscall.Kill(r.pid, syscall.SIGQUIT)
	select {
	case <-r.exited:
	case <-time.After(chaosStopBound):
	}
	b, _ := os.ReadFile(filepath.Join(r.c.dir, r.errF))
	total, by := goroutines(b)
	c := r.c
	if r.kind == roundCalibrate {
		c.calib = &calibration{fds: before.fds, threads: before.threads, goroutines: total, by: by}
		var fns []string
		for _, f := range slices.Sorted(maps.Keys(by)) {
			fns = append(fns, fmt.Sprintf("%s %d", f, by[f]))
		}
		c.logf("round %d: quiet shape of a fresh runner: %d descriptors, %d threads, %d goroutines: %s", r.n, before.fds, before.threads, total, strings.Join(fns, "; "))
		return
	}
	peak := r.peak
	var maxT, maxF int
	for _, s := range r.samples {
		maxT, maxF = max(maxT, s.threads), max(maxF, s.fds)
	}
	var diff []string
	if c.calib != nil {
		for f, n := range by {
			if n != c.calib.by[f] {
				diff = append(diff, fmt.Sprintf("%s %d (fresh %d)", f, n, c.calib.by[f]))
			}
		}
		for f, n := range c.calib.by {
			if by[f] == 0 {
				diff = append(diff, fmt.Sprintf("%s 0 (fresh %d)", f, n))
			}
		}
		sort.Strings(diff)
	}
	line := fmt.Sprintf("round %d soak %s: descriptors %d → %d (peak %d), threads %d → %d (peak %d), goroutines %d, %d not the runtime's (fresh runner %d, %d), %d instances live at most",
		r.n, after.at.Sub(before.at).Round(time.Second), before.fds, after.fds, maxF, before.threads, after.threads, maxT, total, appGoroutines(by), c.calibGoroutines(), c.calibApp(), peak)
	c.logf("%s; goroutines not as in the fresh runner: %s", line, strings.Join(diff, "; "))
	c.tot.mu.Lock()
	c.tot.soaks = append(c.tot.soaks, line)
	c.tot.mu.Unlock()
	if after.fds > before.fds+chaosFdSlack {
		c.failf("round %d: descriptors grew from %d to %d in the quiet shape", r.n, before.fds, after.fds)
	}
	// Go keeps the threads it made (a pty read blocks one each), so the
	// bound is the plateau: one per instance that lived at once, and a few.
	if after.threads > before.threads+peak+8 {
		c.failf("round %d: threads grew from %d to %d in the quiet shape (%d instances live at most)", r.n, before.threads, after.threads, peak)
	}
	// the runtime starts goroutines of its own lazily (GC workers at the
	// first collection): only the others are held to the fresh runner's
	if c.calib != nil && appGoroutines(by) > appGoroutines(c.calib.by)+chaosGoSlack {
		c.failf("round %d: %d goroutines not the runtime's own in the quiet shape after the soak, %d in a fresh runner's:\n  %s", r.n, appGoroutines(by), appGoroutines(c.calib.by), strings.Join(diff, "\n  "))
	}
}

type calibration struct {
	fds, threads, goroutines int
	by                       map[string]int
}

func (c *chaos) calibApp() int {
	if c.calib == nil {
		return -1
	}
	return appGoroutines(c.calib.by)
}

func (c *chaos) calibGoroutines() int {
	if c.calib == nil {
		return -1
	}
	return c.calib.goroutines
}

// appGoroutines counts the goroutines not created by the runtime itself.
func appGoroutines(by map[string]int) int {
	n := 0
	for f, k := range by {
		if !strings.Contains(f, "(created by runtime.") {
			n += k
		}
	}
	return n
}

// goroutines counts the goroutines of a Go traceback, by the first frame
// in mhrun's own code (else the top frame).
func goroutines(dump []byte) (int, map[string]int) {
	by := map[string]int{}
	total := 0
	blocks := strings.Split(string(dump), "\n\n")
	for _, b := range blocks {
		lines := strings.Split(strings.TrimSpace(b), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[0], "goroutine ") {
			continue
		}
		total++
		fn, mine, created := "", false, ""
		for _, l := range lines[1:] {
			if c, ok := strings.CutPrefix(l, "created by "); ok {
				created = c
				continue
			}
			if strings.HasPrefix(l, "\t") {
				continue
			}
			if fn == "" || (!mine && !strings.HasPrefix(l, "runtime.") && strings.HasPrefix(fn, "runtime.")) {
				fn = l
			}
			if strings.HasPrefix(l, "mhrun") || strings.HasPrefix(l, "main.") {
				fn, mine = l, true
				break
			}
		}
		if i := strings.LastIndexByte(fn, '('); i > 0 {
			fn = fn[:i]
		}
		if !mine && created != "" {
			if i := strings.Index(created, " in goroutine"); i > 0 {
				created = created[:i]
			}
			fn += " (created by " + created + ")"
		}
		by[fn]++
	}
	return total, by
}

// recordedPids are the pids the round's children wrote.
func (r *round) recordedPids() []int {
	b, _ := os.ReadFile(filepath.Join(r.c.dir, r.pidsF))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// marked lists the live processes (zombies are gone) whose environment
// carries the mark: every descendant of the runner, its guard included.
func marked(mark string) []int {
	want := []byte("\x00CHAOS_MARK=" + mark + "\x00")
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !bytes.Contains(append([]byte{0}, b...), want) {
			continue
		}
		if st, _, ok := statOf(pid); ok && st != 'Z' && st != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// alive is those of pids still running (zombies count as gone).
func alive(pids []int) []int {
	var out []int
	for _, pid := range pids {
		if st, _, ok := statOf(pid); ok && st != 'Z' && st != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

// describePids says what each pid is: state, parent, command line.
func describePids(pids []int) string {
	var b strings.Builder
	for _, pid := range pids {
		st, ppid, _ := statOf(pid)
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		fmt.Fprintf(&b, "\n    %d (state %c, parent %d): %s", pid, st, ppid, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
	}
	return b.String()
}

// checkSurvivors holds the round to "nothing survives": within
// chaosSurvivorBound of the runner's exit, every pid the children
// recorded is gone, and so is every process with the round's mark but
// the guard, which gets chaosGuardBound (it gives up after 3 s itself).
func (r *round) checkSurvivors() {
	c := r.c
	r.mu.Lock()
	exitAt := r.exitAt
	r.mu.Unlock()
	pids := r.recordedPids()
	c.tot.pids += len(pids)
	var left, strays []int
	for {
		left = alive(pids)
		strays = slices.DeleteFunc(marked(r.mark), func(pid int) bool { return pid == r.guardPid || slices.Contains(left, pid) })
		if len(left)+len(strays) == 0 {
			c.tot.cleanTook[r.endKind] = max(c.tot.cleanTook[r.endKind], time.Since(exitAt))
			break
		}
		if time.Since(exitAt) > chaosSurvivorBound {
			break
		}
		time.Sleep(20 * time.Millisecond) // other processes' exits have no event here
	}
	if len(left)+len(strays) > 0 {
		c.tot.survivors += len(left) + len(strays)
		b, _ := os.ReadFile(filepath.Join(c.dir, r.errF))
		c.failf("round %d: %d recorded and %d other processes of the round survived the runner's end (%s) by %s:%s%s\nthe runner's stderr:\n%s\nits last events:\n%s",
			r.n, len(left), len(strays), r.endKind, chaosSurvivorBound, describePids(left), describePids(strays), tailBytes(b, 2000), r.tail(20))
		for _, pid := range append(left, strays...) {
			syscall.Kill(pid, syscall.SIGKILL) // not to haunt the next round
		}
	}
	if r.guardPid > 0 {
		c.tot.guards++
		for time.Since(exitAt) < chaosGuardBound && len(alive([]int{r.guardPid})) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if len(alive([]int{r.guardPid})) > 0 {
			c.tot.guardsLeft++
			c.failf("round %d: the guard %d still runs %s after the runner's end (%s)", r.n, r.guardPid, chaosGuardBound, r.endKind)
			syscall.Kill(r.guardPid, syscall.SIGKILL)
		}
	} else {
		c.failf("round %d: no guard found for the runner", r.n)
	}
}

// checkStderr fails on a data race (under -race), a panic or a fatal
// error of the runner or its guard, which share the stderr file.
func (r *round) checkStderr() {
	b, _ := os.ReadFile(filepath.Join(r.c.dir, r.errF))
	for _, bad := range []string{"WARNING: DATA RACE", "panic: ", "fatal error: "} {
		if i := bytes.Index(b, []byte(bad)); i >= 0 {
			r.c.failf("round %d: %q in the runner's stderr:\n%s", r.n, bad, b[i:min(len(b), i+4000)])
		}
	}
}

func tailBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

var (
	// an exit with its code, as the leader's exit (leftovers to stop) …
	exitLeftRE = regexp.MustCompile(`^(\S+) exited with code (\d+); stopping `)
	// … or as the run's end: own, finished, restarted, or cut by a stop
	exitEndRE = regexp.MustCompile(`^(\S+) (?:stopped \()?exited with code (\d+)(?:\)| \(finished\)|, restarting in \S+)?$`)
)

// exitRecord is a leader's "about to exit with code N", from the runs file.
type exitRecord struct {
	inst string
	code int
	at   time.Time
}

// exitTally is what tallyExits found.
type exitTally struct {
	recorded, seen, excused, lost, extra int
	lostMsgs                             []string
}

// tallyExits holds records to "every exit is seen". Each run that
// recorded "exiting with code N" must have an event saying so: the
// leader's exit with leftovers ("X exited with code N; stopping …"), or
// the run's end ("X exited with code N", "… (finished)", "…, restarting
// in …", "X stopped (exited with code N)"). A run with leftovers may have
// both lines, so per instance and code the events counted are the larger
// of the two counts. A run for which excused is true (see accountExits)
// may rightly have another event or none; lost is then, per instance and
// code, recorded − seen − excused when positive (the unmatched runs could
// all be the excused ones), and seen beyond the recorded is extra.
func tallyExits(records []exitRecord, events []string, excused func(exitRecord) bool) exitTally {
	type key struct {
		inst string
		code int
	}
	recorded := map[key][]exitRecord{}
	keys := map[key]bool{}
	for _, x := range records {
		k := key{x.inst, x.code}
		recorded[k] = append(recorded[k], x)
		keys[k] = true
	}
	left, ends := map[key]int{}, map[key]int{}
	for _, e := range events {
		if m := exitLeftRE.FindStringSubmatch(e); m != nil {
			code, _ := strconv.Atoi(m[2])
			left[key{m[1], code}]++
			keys[key{m[1], code}] = true
		} else if m := exitEndRE.FindStringSubmatch(e); m != nil {
			code, _ := strconv.Atoi(m[2])
			ends[key{m[1], code}]++
			keys[key{m[1], code}] = true
		}
	}
	var t exitTally
	for k := range keys {
		runs := recorded[k]
		seen := max(left[k], ends[k])
		exc := 0
		for _, x := range runs {
			if excused(x) {
				exc++
			}
		}
		t.recorded += len(runs)
		t.seen += min(seen, len(runs))
		t.extra += max(0, seen-len(runs))
		unmatched := max(0, len(runs)-seen)
		t.excused += min(unmatched, exc)
		if lost := unmatched - exc; lost > 0 {
			t.lost += lost
			var times []string
			for _, x := range runs {
				mark := ""
				if excused(x) {
					mark = " (excused)"
				}
				times = append(times, x.at.Format("15:04:05.000")+mark)
			}
			t.lostMsgs = append(t.lostMsgs, fmt.Sprintf("%s: %d runs recorded exiting with code %d (at %s); %d exit events with leftovers, %d at the run's end; %d excused",
				k.inst, len(runs), k.code, strings.Join(times, ", "), left[k], ends[k], exc))
		}
	}
	sort.Strings(t.lostMsgs)
	return t
}

// accountExits holds the round to "every exit is seen" (tallyExits). A
// run is excused, its event rightly another or none, when it recorded
//
//   - from 0.5 s before a command on its instance (restart, stop, start,
//     signal, a scale down removing it) was answered to its grace plus
//     1.5 s before it was sent: a stop or TERM between the record and
//     the exit makes it a kill, and a restart or start between the exit
//     and the run's end starts it again without an exit event (the
//     request's event stands for it);
//   - from 0.5 s before a requested stop of the runner, which may cut it
//     with a TERM; from 2 s before a SIGKILL or SIGQUIT of the runner (or
//     a TERM then SIGKILL), as its event may not have been written yet.
func (r *round) accountExits() {
	c := r.c
	var records []exitRecord
	b, _ := os.ReadFile(filepath.Join(c.dir, r.runsF))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 {
			continue
		}
		code, _ := strconv.Atoi(f[2])
		ns, _ := strconv.ParseInt(f[3], 10, 64)
		records = append(records, exitRecord{f[0], code, time.Unix(0, ns)})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var texts []string
	for _, e := range r.events {
		texts = append(texts, e.text)
	}
	graceOf := func(inst string) time.Duration {
		name, _, _ := strings.Cut(inst, ".")
		if p := r.proc(name); p != nil {
			return p.grace
		}
		return time.Second
	}
	excused := func(x exitRecord) bool {
		if r.endKind == "KILL" || r.endKind == "QUIT" || r.endKind == "TERM KILL" {
			if !x.at.Before(r.endAt.Add(-2 * time.Second)) {
				return true
			}
		} else if !r.endAt.IsZero() && !x.at.Before(r.endAt.Add(-500*time.Millisecond)) {
			return true
		}
		for _, d := range r.dist {
			if slices.Contains(d.insts, x.inst) && !d.sent.After(x.at.Add(graceOf(x.inst)+1500*time.Millisecond)) && !d.answered.Before(x.at.Add(-500*time.Millisecond)) {
				return true
			}
		}
		return false
	}
	t := tallyExits(records, texts, excused)
	c.tot.mu.Lock()
	c.tot.records += t.recorded
	c.tot.seen += t.seen
	c.tot.excused += t.excused
	c.tot.lost += t.lost
	c.tot.extra += t.extra
	c.tot.events += len(r.events)
	c.tot.outBytes += r.bytes
	c.tot.mu.Unlock()
	if t.lost > 0 {
		var evs strings.Builder
		for _, e := range r.events {
			fmt.Fprintf(&evs, "  %s %s\n", e.at.Format("15:04:05.000"), e.text)
		}
		var ds strings.Builder
		for _, d := range r.dist {
			fmt.Fprintf(&ds, "  %s–%s %s %v\n", d.sent.Format("15:04:05.000"), d.answered.Format("15:04:05.000"), d.what, d.insts)
		}
		c.failf("round %d: %d exits lost (the runner ended by %s at %s):\n  %s\nevents:\n%scommands:\n%s", r.n, t.lost, r.endKind, r.endAt.Format("15:04:05.000"),
			strings.Join(t.lostMsgs, "\n  "), evs.String(), ds.String())
	}
	c.logf("round %d: ended by %s; %d exits recorded, %d seen, %d excused, %d lost; %d events, %s of output",
		r.n, r.endKind, t.recorded, t.seen, t.excused, t.lost, len(r.events), humanBytes(r.bytes))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// tally adds the round's descriptor and thread series to the totals.
func (r *round) tally() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.samples) == 0 {
		return
	}
	first, last := r.samples[0], r.samples[len(r.samples)-1]
	var maxF, maxT int
	for _, s := range r.samples {
		maxF, maxT = max(maxF, s.fds), max(maxT, s.threads)
	}
	r.c.tot.mu.Lock()
	cpu := 0.0
	if d := last.at.Sub(first.at); d > 0 {
		cpu = 100 * float64(last.cpu-first.cpu) / float64(d)
	}
	r.c.tot.fdSamples = append(r.c.tot.fdSamples, fmt.Sprintf("round %d: fds %d→%d (max %d), threads %d→%d (max %d), the runner's CPU %.0f%% of a core, over %s",
		r.n, first.fds, last.fds, maxF, first.threads, last.threads, maxT, cpu, last.at.Sub(first.at).Round(time.Second)))
	r.c.tot.mu.Unlock()
}

// report prints the run's figures, the ones RELIABILITY.md quotes.
func (c *chaos) report() {
	t := c.tot
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "chaos run: seed %d, %s\n", c.seed, time.Since(c.start).Round(time.Second))
	fmt.Fprintf(&b, "  runners started: %d; ends: %s\n", t.runners, countsOf(t.ends))
	fmt.Fprintf(&b, "  hostile processes in formations: %s\n", countsOf(t.shapes))
	n := 0
	for _, v := range t.commands {
		n += v
	}
	fmt.Fprintf(&b, "  control commands sent: %d (%s); refused %d, unanswered (runner ending) %d\n", n, countsOf(t.commands), t.refused, t.transport)
	fmt.Fprintf(&b, "  status answers: %d, slowest %s, over 100ms %d, over %s %d (of which held by the loop, its loop ping over its ping by more than %s: %d)\n",
		t.statusCalls, t.slowest.Round(time.Millisecond), t.over100, chaosStatusBound, t.overBound, chaosPingMargin, t.loopSlow)
	fmt.Fprintf(&b, "  probes beside them: slowest ping %s, slowest loop ping %s, the most a loop ping took beyond its ping %s\n",
		t.slowestPing.Round(time.Millisecond), t.slowestLoop.Round(time.Millisecond), t.mostHeld.Round(time.Millisecond))
	for _, a := range t.slow {
		fmt.Fprintf(&b, "    a status in %s, its loop ping %s, its ping %s; meanwhile the runner's threads waited %s for a CPU, the test's %s; load %s\n",
			a.took.Round(time.Millisecond), a.loop.Round(time.Millisecond), a.ping.Round(time.Millisecond), a.waited.Round(time.Millisecond), a.self.Round(time.Millisecond), a.load)
	}
	fmt.Fprintf(&b, "  exits recorded %d: seen %d, excused %d, lost %d (extra events %d)\n", t.records, t.seen, t.excused, t.lost, t.extra)
	fmt.Fprintf(&b, "  pids recorded %d: survivors %d; guards %d, left running %d\n", t.pids, t.survivors, t.guards, t.guardsLeft)
	fmt.Fprintf(&b, "  longest from the end sent to the runner's exit: %s\n", durationsOf(t.stopTook))
	fmt.Fprintf(&b, "  longest from the runner's exit to the last process of the round gone (an upper bound: polled every 20 ms): %s\n", durationsOf(t.cleanTook))
	fmt.Fprintf(&b, "  runner output: %s, %d events\n", humanBytes(t.outBytes), t.events)
	for _, s := range t.soaks {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	for _, s := range t.fdSamples {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	c.t.Log("\n" + b.String())
	if p := os.Getenv("MHRUN_CHAOS_REPORT"); p != "" {
		os.WriteFile(p, []byte(b.String()), 0o644)
	}
}

func durationsOf(m map[string]time.Duration) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %s", k, m[k].Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ")
}

func countsOf(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// cleanup ends, by pid, whatever of the test is left when it stops early:
// the runner, and every process carrying one of the rounds' marks.
func (c *chaos) cleanup() {
	if r := c.live; r != nil && r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		<-r.exited
	}
	c.mu.Lock()
	marks := slices.Clone(c.marks)
	c.mu.Unlock()
	for _, m := range marks {
		for _, pid := range marked(m) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// The exit accounting of the chaos test, on made-up records and events:
// a run with leftovers is counted once for its two lines, a missing event
// is lost unless its run is excused, and events beyond the runs are extra.
func TestChaosTallyExits(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	recs := []exitRecord{
		{"a.1", 3, at}, {"a.1", 3, at.Add(time.Second)}, // both seen, one with leftovers
		{"b.1", 0, at},                                  // finished
		{"c.2", 7, at},                                  // stopped while exiting
		{"d.1", 5, at}, {"d.1", 5, at.Add(time.Second)}, // one lost
		{"e.1", 4, at}, {"e.1", 4, at.Add(2 * time.Second)}, // one missing, excused
	}
	events := []string{
		"a.1 exited with code 3; stopping 1 process it left running (grace 1s)",
		"a.1 exited with code 3",
		"a.1: restart 1 in 20ms",
		"a.1 exited with code 3, restarting in 20ms",
		"b.1 exited with code 0 (finished)",
		"c.2 stopped (exited with code 7)",
		"d.1 exited with code 5",
		"e.1 exited with code 4",
		"f.1 exited with code 9",        // no record: extra
		"g.1 was killed by signal TERM", // not an exit with a code
	}
	excused := func(x exitRecord) bool { return x.inst == "e.1" && x.at.After(at) }
	got := tallyExits(recs, events, excused)
	want := exitTally{recorded: 8, seen: 6, excused: 1, lost: 1, extra: 1}
	got.lostMsgs, want.lostMsgs = nil, nil
	if got.recorded != want.recorded || got.seen != want.seen || got.excused != want.excused || got.lost != want.lost || got.extra != want.extra {
		t.Errorf("tallyExits = %+v, want %+v", got, want)
	}
	if t2 := tallyExits(recs[:1], nil, func(exitRecord) bool { return false }); t2.lost != 1 || len(t2.lostMsgs) != 1 || !strings.Contains(t2.lostMsgs[0], "a.1: 1 runs recorded exiting with code 3") {
		t.Errorf("one run, no event: %+v", t2)
	}
}

// A process that clears its environment and leaves the session (found by
// the chaos run) is no longer tied to its run: it outlives the run's end,
// as RELIABILITY.md and the README say. mhrun, its subreaper, still stops
// it with the formation.
func TestEnvClearedDaemonStoppedWithTheFormation(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": `esc: env -i PATH="$PATH" setsid sh -c 'echo $$ > esc.pid; exec sleep 1000' </dev/null >/dev/null 2>&1 & until [ -s esc.pid ]; do sleep 0.01; done; exit 3` + "\n" +
			"keep: exec sleep 1000\n",
		"Procfile.policy": "esc: restart=never optional grace=300ms\n",
	})
	r := startMhrun(t, dir, "start")
	r.waitLine("esc.1 gave up")
	pid := readPid(t, filepath.Join(dir, "esc.pid"))
	r.cmd.Process.Signal(syscall.SIGINT)
	if code, out := r.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d:\n%s", code, strings.Join(out, "\n"))
	}
	waitExit(t, pid, 3*time.Second)
}

// Regression (found by the chaos run): the leader's exit event said
// "stopping 4 processs it left running": plural() appends "s" to
// "process".
func TestRegressionLeftoverCountPlural(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        `two: sh -c 'trap "" HUP; echo $$ >> pids; exec sleep 1000' & sh -c 'trap "" HUP; echo $$ >> pids; exec sleep 1000' & until [ "$(wc -l < pids)" -ge 2 ]; do sleep 0.01; done; exit 3` + "\n",
		"Procfile.policy": "two: restart=never grace=300ms\n",
	})
	r := startMhrun(t, dir, "start")
	if l := r.waitLine("two.1 exited with code 3; stopping"); !strings.Contains(l, "stopping 2 processes it left") {
		t.Errorf("got %q, want \"stopping 2 processes it left running\"", l)
	}
	r.wait(20 * time.Second)
}

// The goroutine dump of a SIGQUIT, grouped as the soak compares it.
func TestChaosGoroutines(t *testing.T) {
	dump := "SIGQUIT: quit\nPC=0x4 m=0 sigcode=0\n\n" +
		"goroutine 1 gp=0xc000002380 m=nil [select]:\nruntime.gopark(0x1?)\n\t/go/src/runtime/proc.go:435 +0xce\nruntime.selectgo(0xc0)\n\t/go/src/runtime/select.go:351\nmhrun/runner.(*Runner).loop(0xc0001, {0x9, 0xc})\n\t/w/runner/runner.go:270 +0x2f\nmain.main()\n\t/w/main.go:10\n\n" +
		"goroutine 7 gp=0xc000 m=nil [GC worker (idle)]:\nruntime.gopark(0x1?)\n\t/go/src/runtime/proc.go:435\nruntime.gcBgMarkWorker(0xc0)\n\t/go/src/runtime/mgc.go:1423\ncreated by runtime.gcBgMarkStartWorkers in goroutine 1\n\t/go/src/runtime/mgc.go:1339 +0x105\n\n" +
		"goroutine 9 gp=0xc000 m=nil [syscall]:\nos/signal.signal_recv()\n\t/go/src/runtime/sigqueue.go:152\nos/signal.loop()\n\t/go/src/os/signal/signal_unix.go:23\ncreated by os/signal.Notify.func1.1 in goroutine 1\n\t/go/src/os/signal/signal.go:152\n\n" +
		"goroutine 12 gp=0xc000 m=nil [IO wait]:\nruntime.gopark(0x1?)\n\t/go/src/runtime/proc.go:435\ninternal/poll.runtime_pollWait(0x7f)\n\t/go/src/runtime/netpoll.go:351\nmhrun/runner.(*run).read(0xc0)\n\t/w/runner/instance.go:210\ncreated by mhrun/runner.startRun in goroutine 6\n\t/w/runner/instance.go:128\n"
	total, by := goroutines([]byte(dump))
	want := map[string]int{
		"mhrun/runner.(*Runner).loop":                                 1,
		"mhrun/runner.(*run).read":                                    1,
		"runtime.gopark (created by runtime.gcBgMarkStartWorkers)":    1,
		"os/signal.signal_recv (created by os/signal.Notify.func1.1)": 1,
	}
	if total != 4 || !maps.Equal(by, want) || appGoroutines(by) != 3 {
		t.Errorf("goroutines = %d %v (%d not the runtime's), want 4 %v (3)", total, by, appGoroutines(by), want)
	}
}
