//go:build linux

// Command grow is the memcap benchmark's child: a process whose memory
// grows at a steady rate until something stops it. It maps anonymous
// memory a MiB at a time and touches every page of it (so each MiB is
// resident), RATE MiB a second by the wall clock, up to MAX MiB, then
// holds. After each MiB it writes its resident size (/proc/self/statm)
// and the nanoseconds since it started to DIR/PID, over the previous figure:
// what it never frees only grows, so the figure left in its file when it dies,
// even by SIGKILL, is its peak to within the last MiB.
//
// Usage: grow [-rate 1024] [-max 4096] [-ignore-term] DIR
//
// It prints "growing PID" first. SIGTERM ends it at once (the default
// action), unless -ignore-term: then it prints "ignoring TERM" and grows
// on, as a program stuck in its own work would.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func main() {
	rate := flag.Int("rate", 1024, "MiB a second")
	most := flag.Int("max", 4096, "MiB at most")
	ignore := flag.Bool("ignore-term", false, "ignore SIGTERM and grow on")
	flag.Parse()
	if flag.NArg() != 1 || *rate < 1 || *most < 1 {
		fmt.Fprintln(os.Stderr, "usage: grow [-rate MiB/s] [-max MiB] [-ignore-term] DIR")
		os.Exit(2)
	}
	f, err := os.Create(filepath.Join(flag.Arg(0), strconv.Itoa(os.Getpid())))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	term := make(chan os.Signal, 1)
	if *ignore {
		signal.Notify(term, syscall.SIGTERM)
	}
	fmt.Printf("growing %d\n", os.Getpid())
	page := os.Getpagesize()
	statm := make([]byte, 128)
	line := make([]byte, 0, 64)
	mapped, said := 0, false
	for {
		select {
		case <-term:
			if !said {
				fmt.Println("ignoring TERM")
				said = true
			}
		default:
		}
		want := min(int(time.Since(start).Seconds()*float64(*rate)), *most)
		if mapped >= want {
			time.Sleep(time.Millisecond)
			continue
		}
		for ; mapped < want; mapped++ {
			_, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_POPULATE)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			line = strconv.AppendInt(line[:0], resident(statm, page), 10)
			line = append(line, ' ')
			line = strconv.AppendInt(line, int64(time.Since(start)), 10)
			for len(line) < 40 {
				line = append(line, ' ')
			}
			line = append(line, '\n')
			f.WriteAt(line, 0)
		}
	}
}

// resident is this process's resident size in bytes: the second field of
// /proc/self/statm, in pages.
func resident(buf []byte, page int) int64 {
	fd, err := syscall.Open("/proc/self/statm", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	n, _ := syscall.Read(fd, buf)
	syscall.Close(fd)
	var fields [2]int64
	i := 0
	for _, c := range buf[:max(n, 0)] {
		switch {
		case c >= '0' && c <= '9':
			fields[i] = fields[i]*10 + int64(c-'0')
		case c == ' ':
			i++
		}
		if i == len(fields) {
			break
		}
	}
	return fields[1] * int64(page)
}
