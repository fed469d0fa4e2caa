// Command stamp is the restart benchmark's child. Each run appends one
// line to FILE: the CLOCK_MONOTONIC time (ns) it started at, read first
// thing in main, and the time it exits at, read just before the line is
// written; then it exits 0. Once FILE holds N lines it sleeps instead of
// exiting, so the runner has nothing more to restart while it is stopped.
//
// Usage: stamp FILE N
//
// Lines have a fixed width (lineLen bytes), so the size of FILE after the
// append tells how many runs there were, without reading it. It imports
// nothing it does not need, so that its own start stays short.
package main

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// lineLen is the length of a line: two 19-digit numbers, a space and "\n".
const lineLen = 40

func main() {
	start := now()
	if len(os.Args) != 3 {
		os.Stderr.WriteString("usage: stamp FILE N\n")
		os.Exit(2)
	}
	n, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || n < 1 {
		os.Stderr.WriteString("stamp: N must be a positive number\n")
		os.Exit(2)
	}
	fd, err := unix.Open(os.Args[1], unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
	if err != nil {
		os.Stderr.WriteString("stamp: " + err.Error() + "\n")
		os.Exit(1)
	}
	line := make([]byte, 0, lineLen)
	line = pad(line, start)
	line = append(line, ' ')
	line = pad(line, now())
	line = append(line, '\n')
	if w, err := unix.Write(fd, line); err != nil || w != len(line) {
		os.Stderr.WriteString("stamp: short write\n")
		os.Exit(1)
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && st.Size >= n*lineLen {
		for {
			time.Sleep(time.Hour)
		}
	}
	os.Exit(0)
}

// now is CLOCK_MONOTONIC in nanoseconds: one clock for every process on
// the machine, which no one can set.
func now() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// pad appends v in 19 digits with leading zeros.
func pad(b []byte, v int64) []byte {
	s := strconv.AppendInt(nil, v, 10)
	for i := len(s); i < 19; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}
