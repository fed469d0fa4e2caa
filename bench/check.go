//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"

	"mhrun/bench/internal/lines"
)

// checked is what one output file held, line by line.
//
// A writer's line is intact when one output line holds exactly it. It is
// split when it comes as several consecutive output lines under its own
// prefix whose texts, joined, make it (a partial line flushed early); the
// pieces are counted as fragments. An empty output line under a writer's
// prefix that completes nothing is a stray empty line: what the "\r\n"
// that ends a line becomes when it arrives after the rest of the line was
// already flushed as a partial line (the line itself then counts intact).
type checked struct {
	intact    int      // lines found whole, in one output line
	split     int      // lines found in pieces (the pieces joined make them)
	lost      int      // lines found neither way
	dup       int      // extra copies of lines found
	fragments int      // output lines that are pieces of split lines
	empty     int      // stray empty output lines under a writer's prefix
	events    int      // mhrun's own lines
	dropped   int      // lines mhrun said it dropped ("[mhrun: N lines dropped …]")
	other     int      // anything else
	samples   []string // the first few unexpected output lines, for -v
}

// sample keeps line as an example of what was wrong.
func (c *checked) sample(line []byte) {
	if len(c.samples) < 6 {
		c.samples = append(c.samples, string(line))
	}
}

func (c *checked) add(d checked) {
	c.intact += d.intact
	c.split += d.split
	c.lost += d.lost
	c.dup += d.dup
	c.fragments += d.fragments
	c.empty += d.empty
	c.events += d.events
	c.dropped += d.dropped
	c.other += d.other
	for _, l := range d.samples {
		c.sample([]byte(l))
	}
}

// writerState is one writer's lines seen so far.
type writerState struct {
	seen    []uint8 // per line: times found (intact or joined)
	joined  []bool  // per line: found in pieces
	pending []byte  // pieces so far of a line not yet complete
	pieces  int
}

// checkOutput reads an output file written by the writers ids, n lines of
// size bytes each. With prefixed, every line must be "NAME | TEXT" where
// NAME is the writer's instance (ID.1) padded with spaces; mhrun's own lines
// are counted apart.
func checkOutput(path string, ids []string, n, size int, prefixed bool) (checked, error) {
	f, err := os.Open(path)
	if err != nil {
		return checked{}, err
	}
	defer f.Close()
	ws := map[string]*writerState{}
	for _, id := range ids {
		ws[id] = &writerState{seen: make([]uint8, n), joined: make([]bool, n)}
	}
	var c checked
	var want []byte
	// match reports whether text is exactly one of the writers' lines, and which.
	match := func(text []byte) (string, int, bool) {
		id, seq, ok := lines.Header(text)
		if !ok || ws[id] == nil || seq >= n {
			return "", 0, false
		}
		want = lines.Append(want[:0], id, seq, size)
		return id, seq, bytes.Equal(text, want)
	}
	// abandon counts the pieces of w that never made a line.
	abandon := func(w *writerState) {
		if w.pieces > 0 {
			c.other += w.pieces
			w.pending, w.pieces = w.pending[:0], 0
		}
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := readLine(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, err
		}
		if !prefixed { // straight to a file: whole lines only
			if id, seq, ok := match(line); ok {
				ws[id].seen[seq] = min(ws[id].seen[seq]+1, 255)
			} else {
				c.other++
				c.sample(line)
			}
			continue
		}
		name, text, ok := bytes.Cut(line, []byte(" | "))
		name = bytes.TrimRight(name, " ")
		if !ok {
			c.other++
			c.sample(line)
			continue
		}
		if string(name) == "mhrun" {
			c.events++
			c.dropped += droppedCount(text)
			continue
		}
		id, inst, _ := bytes.Cut(name, []byte("."))
		w := ws[string(id)]
		if w == nil || string(inst) != "1" {
			c.other++
			c.sample(line)
			continue
		}
		if d := droppedCount(text); d > 0 { // the marker stands where the lines were
			abandon(w)
			c.dropped += d
			continue
		}
		if mid, seq, ok := match(text); ok && mid == string(id) {
			abandon(w)
			w.seen[seq] = min(w.seen[seq]+1, 255)
			continue
		}
		if len(text) == 0 && w.pieces == 0 {
			c.empty++
			c.sample(line)
			continue
		}
		c.sample(line)
		w.pending = append(w.pending, text...)
		w.pieces++
		if mid, seq, ok := match(w.pending); ok && mid == string(id) {
			w.seen[seq] = min(w.seen[seq]+1, 255)
			w.joined[seq] = true
			c.fragments += w.pieces
			w.pending, w.pieces = w.pending[:0], 0
		} else if len(w.pending) >= size {
			abandon(w)
		}
	}
	for _, id := range ids {
		w := ws[id]
		abandon(w)
		for seq, k := range w.seen {
			switch {
			case k == 0:
				c.lost++
			case w.joined[seq]:
				c.split++
			default:
				c.intact++
			}
			if k > 1 {
				c.dup += int(k) - 1
			}
		}
	}
	return c, nil
}

// readLine reads one line without its "\n", however long.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			line, err = r.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err == io.EOF && len(line) > 0 {
		err = nil // a last line without "\n"
	}
	return bytes.TrimSuffix(line, []byte("\n")), err
}

// droppedCount reads N from mhrun's "[mhrun: N lines dropped, output too slow]".
func droppedCount(text []byte) int {
	rest, ok := bytes.CutPrefix(text, []byte("[mhrun: "))
	if !ok || !bytes.Contains(rest, []byte("dropped")) {
		return 0
	}
	num, _, _ := bytes.Cut(rest, []byte(" "))
	n, _ := strconv.Atoi(string(num))
	return n
}

func (c checked) String() string {
	return fmt.Sprintf("intact %d, split %d, lost %d, dup %d, fragments %d, stray empty %d, mhrun lines %d, dropped %d, other %d",
		c.intact, c.split, c.lost, c.dup, c.fragments, c.empty, c.events, c.dropped, c.other)
}
