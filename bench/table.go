//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// row is one line of the result table.
type row struct {
	bench, figure, base, mhrun, ratio, target, met string
}

func printTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| benchmark | figure | baseline | mhrun | mhrun ÷ baseline | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.bench, r.figure, r.base, r.mhrun, r.ratio, r.target, r.met)
	}
}

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range bytes.Lines(b) {
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
				model = string(bytes.TrimSpace(v))
				break
			}
		}
	}
	var u syscall.Utsname
	kernel := "?"
	if syscall.Uname(&u) == nil {
		var s strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			s.WriteByte(byte(c))
		}
		kernel = s.String()
	}
	return fmt.Sprintf("%s, %d CPUs (%s), Linux %s, %s, bench built with %s",
		time.Now().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), model, kernel, runtime.GOOS+"/"+runtime.GOARCH, runtime.Version())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func best(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Min(ds)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }

func millis(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
