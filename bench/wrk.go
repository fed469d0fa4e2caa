//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The cluster benchmarks load HTTP servers with wrk (Debian's package
// wrk, 4.1), which the harness never installs: without it on $PATH the
// throughput figures are skipped with a hint. Each measurement is wrk -t T
// -c C -d D --latency against one URL, or, for the direct baseline, one wrk
// per instance at once, the threads and connections split evenly, so that
// the total is the same. wrk's report is parsed: Requests/sec, the 50% and
// 99% lines of its latency distribution, its socket errors and its non-2xx
// count.

// wrkInstall is what the harness prints when wrk is missing.
const wrkInstall = "apt-get install -y wrk (Debian, Ubuntu)"

// wrkResult is one wrk report, or the sum of several run at once.
type wrkResult struct {
	rps      float64       // Requests/sec (summed)
	requests int64         // requests completed (summed)
	p50, p99 time.Duration // latency distribution (of several: their mean)
	errors   int64         // socket errors: connect, read, write, timeout (summed)
	non2xx   int64         // non-2xx or 3xx responses (summed)
	p99s     []time.Duration
	cpu      time.Duration // CPU time of the target's pid over the run, if one was given
}

func (r wrkResult) String() string {
	s := fmt.Sprintf("%8.0f req/s, %d requests, p50 %s, p99 %s", r.rps, r.requests, durMs(r.p50), durMs(r.p99))
	if len(r.p99s) > 1 {
		var each []string
		for _, p := range r.p99s {
			each = append(each, durMs(p))
		}
		s += " (p99 of each: " + strings.Join(each, ", ") + ")"
	}
	if r.errors > 0 || r.non2xx > 0 {
		s += fmt.Sprintf(", %d socket errors, %d non-2xx", r.errors, r.non2xx)
	}
	return s
}

func durMs(d time.Duration) string { return fmt.Sprintf("%.2f ms", ms(d)) }

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: ([0-9]+)`)
)

// parseWrk reads wrk's report (run with --latency).
func parseWrk(out []byte) (wrkResult, error) {
	var r wrkResult
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec line in wrk's report: %.500q", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	if m = wrkRequests.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	for _, m := range wrkPct.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[string(m[3])]
		d := time.Duration(v * float64(unit))
		if string(m[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if r.p99 == 0 {
		return r, fmt.Errorf("no 99%% line in wrk's report (was it run with --latency?): %.500q", out)
	}
	if m = wrkSocket.FindSubmatch(out); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.ParseInt(string(f), 10, 64)
			r.errors += n
		}
	}
	if m = wrkNon2xx.FindSubmatch(out); m != nil {
		r.non2xx, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	r.p99s = []time.Duration{r.p99}
	return r, nil
}

// wrk loads urls at once for d, with threads and conns split evenly
// between them (one wrk process each), and returns the sum of the reports.
func (b *bench) wrk(urls []string, threads, conns int, d time.Duration) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(b.ctx, d+15*time.Second)
	defer cancel()
	type done struct {
		out []byte
		err error
	}
	results := make([]chan done, len(urls))
	for i, u := range urls {
		cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads/len(urls)), "-c", strconv.Itoa(conns/len(urls)),
			"-d", fmt.Sprintf("%ds", int(d.Seconds())), "--latency", u)
		cmd.Env = b.env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		results[i] = make(chan done, 1)
		go func() {
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("wrk %s: %v: %s", u, err, bytes.TrimSpace(stderr.Bytes()))
			}
			results[i] <- done{out, err}
		}()
	}
	var sum wrkResult
	var firstErr error
	for i, ch := range results {
		d := <-ch
		if d.err != nil {
			firstErr = cmp(firstErr, d.err)
			continue
		}
		r, err := parseWrk(d.out)
		if err != nil {
			firstErr = cmp(firstErr, fmt.Errorf("wrk %s: %w", urls[i], err))
			continue
		}
		sum.rps += r.rps
		sum.requests += r.requests
		sum.errors += r.errors
		sum.non2xx += r.non2xx
		sum.p50 += r.p50 / time.Duration(len(urls))
		sum.p99 += r.p99 / time.Duration(len(urls))
		sum.p99s = append(sum.p99s, r.p99)
	}
	return sum, firstErr
}

// cmp is the first of a and b that is not the zero value.
func cmp[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}
