package runner

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mhrun/logfile"
)

// Regression (issue 14): `mhrun logs web` under -D printed nothing once
// other processes had written more recently: memory held fewer web lines
// than -n, so the last -n lines of the combined file, all a neighbour's,
// were read, filtered to none, and what memory had was dropped. Here web's
// lines and the events about it are spread over the files and memory, with
// a chatty neighbour between them and several lines per millisecond, and
// every -n gets exactly the last n of them, each once, oldest first.
func TestLogsLogbookAndFilesMerge(t *testing.T) {
	dir := t.TempDir()
	sink, err := logfile.Open(logfile.Options{Dir: dir, MaxSize: 1 << 20, Keep: -1})
	if err != nil {
		t.Fatal(err)
	}
	b := newLogbook()
	t0 := time.Date(2026, 11, 25, 19, 31, 7, 0, time.Local)
	var all []logfile.Line // every line, as written
	add := func(i int, name, text string) {
		at := t0.Add(time.Duration(i) * 300 * time.Microsecond) // 3 or 4 lines a millisecond
		b.add(name, false, at, []byte(text))
		sink.Write(name, at, []byte(text))
		all = append(all, logfile.Line{Time: at, Name: name, Text: text})
	}
	i := 0
	for round := range 4 {
		add(i, "web.1", fmt.Sprintf("web %d", round))
		i++
		add(i, "mhrun", fmt.Sprintf("web.1: restart %d in 1s", round))
		i++
		add(i, "mhrun", "noisy.1: restart 1 in 1s") // about another process
		i++
		for range 2*logLines/4 + round { // memory holds half of the rest
			add(i, "noisy.1", fmt.Sprintf("noise %d", i))
			i++
		}
	}
	add(i, "web.2", "web last")
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}

	keep := func(n string) bool { return n == "web" || strings.HasPrefix(n, "web.") }
	show := shown(keep)
	var want []string
	for _, l := range all {
		if show(l.Name, []byte(l.Text)) {
			want = append(want, string(logfile.AppendLine(nil, l.Time, time.Local, l.Name, l.Stderr, []byte(l.Text))))
		}
	}
	if len(want) != 9 {
		t.Fatalf("%d lines to show: %q", len(want), want)
	}
	for _, n := range []int{1, 2, 3, 5, 9, 100} {
		h, _ := b.recent(n, show, false)
		if h.count != logLines {
			t.Fatalf("memory holds %d lines, want %d (it must have dropped some)", h.count, logLines)
		}
		older, err := olderLines(dir, n-len(h.lines), h, show)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range older {
			got = append(got, string(logfile.AppendLine(nil, l.Time, time.Local, l.Name, l.Stderr, []byte(l.Text))))
		}
		for _, l := range h.lines {
			got = append(got, string(logfile.AppendLine(nil, l.Time, time.Local, l.Name, l.Stderr, l.Text)))
		}
		if w := want[max(0, len(want)-n):]; !slices.Equal(got, w) {
			t.Errorf("-n %d: %d from the files, %d from memory:\n%s\nwant:\n%s", n, len(older), len(h.lines), strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}
}

// A neighbour's lines of the very millisecond of memory's oldest line are
// neither lost nor shown twice: the files' stamps cannot tell them apart,
// memory's count of that millisecond does.
func TestLogsSameMillisecondBoundary(t *testing.T) {
	dir := t.TempDir()
	sink, err := logfile.Open(logfile.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b := newLogbook()
	at := time.Date(2026, 11, 25, 19, 31, 7, 5_000_000, time.Local)
	for i := range logLines + 3 { // memory drops the first 3, all of one millisecond
		name := "noisy.1"
		if i < 6 {
			name = "web.1"
		}
		b.add(name, false, at, fmt.Appendf(nil, "line %d", i))
		sink.Write(name, at, fmt.Appendf(nil, "line %d", i))
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	show := shown(func(n string) bool { return n == "web.1" })
	h, _ := b.recent(10, show, false)
	if len(h.lines) != 3 || h.sameMilli != logLines {
		t.Fatalf("memory: %d web lines, %d of the oldest millisecond", len(h.lines), h.sameMilli)
	}
	older, err := olderLines(dir, 10-len(h.lines), h, show)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range older {
		got = append(got, l.Text)
	}
	for _, l := range h.lines {
		got = append(got, string(l.Text))
	}
	if want := []string{"line 0", "line 1", "line 2", "line 3", "line 4", "line 5"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
