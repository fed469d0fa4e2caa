package logfile

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// backwardAll is every line Backward gives, oldest first.
func backwardAll(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	if err := Backward(dir, func(l string) bool { out = append(out, l); return true }); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(out)
	return out
}

// Lines of every length around the chunk size, read backwards, come out whole and in
// order; a last line still being written is skipped.
func TestBackwardChunks(t *testing.T) {
	var want []string
	var b bytes.Buffer
	for i, n := range []int{0, 1, readChunk - 1, readChunk, readChunk + 1, 5, 3 * readChunk, 0, 7} {
		l := fmt.Sprintf("%d:%s", i, strings.Repeat("x", n))
		want = append(want, l)
		b.WriteString(l + "\n")
	}
	for _, partial := range []string{"", "half a li", strings.Repeat("p", readChunk+3)} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "mhrun.log"), append(slices.Clone(b.Bytes()), partial...), 0o644); err != nil {
			t.Fatal(err)
		}
		got := backwardAll(t, dir)
		if !slices.Equal(got, want) {
			t.Errorf("partial %d bytes: got %d lines, want %d", len(partial), len(got), len(want))
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("line %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
				}
			}
		}
	}
	// a file that is nothing but a line being written gives nothing
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mhrun.log"), []byte("no newline yet"), 0o644)
	if got := backwardAll(t, dir); len(got) != 0 {
		t.Errorf("got %q", got)
	}
}

// Backward goes from the current file through the rotated ones, gzipped or not, newest
// first, and stops as soon as its caller has enough.
func TestBackwardRotatedAndStop(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, lines ...string) {
		t.Helper()
		body := []byte(strings.Join(lines, "\n") + "\n")
		if strings.HasSuffix(name, ".gz") {
			var z bytes.Buffer
			w := gzip.NewWriter(&z)
			w.Write(body)
			w.Close()
			body = z.Bytes()
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mhrun-2026-11-25T19-00-00.000.log.gz", "a1", "a2")
	write("mhrun-2026-11-25T19-10-00.000.log", "b1", "b2")
	write("mhrun.log", "c1", "c2")
	write("web.log", "not", "this")
	write("web-2026-11-25T19-10-00.000.log", "nor", "this")
	if got, want := backwardAll(t, dir), []string{"a1", "a2", "b1", "b2", "c1", "c2"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	var seen []string
	err := Backward(dir, func(l string) bool { seen = append(seen, l); return l != "b2" })
	if err != nil || !slices.Equal(seen, []string{"c2", "c1", "b2"}) {
		t.Errorf("stopped at b2: saw %q, %v", seen, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".mhrun-tail-*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %q", tmp)
	}
	if got, _ := Tail(dir, 3); !slices.Equal(got, []string{"b2", "c1", "c2"}) {
		t.Errorf("Tail(3) = %q", got)
	}
}

// A rotation between opening the current file and listing the rotated ones makes the
// file already read a rotated one: it is not read twice.
func TestBackwardRotationInBetween(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "mhrun.log")
	os.WriteFile(filepath.Join(dir, "mhrun-2026-11-25T19-00-00.000.log"), []byte("old\n"), 0o644)
	os.WriteFile(cur, []byte("new1\nnew2\n"), 0o644)
	// the same file under its rotated name, as a rename leaves it seen from an open handle
	if err := os.Link(cur, filepath.Join(dir, "mhrun-2026-11-25T19-10-00.000.log")); err != nil {
		t.Skip(err)
	}
	if got, want := backwardAll(t, dir), []string{"old", "new1", "new2"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// ParseLine reads what the sink writes, and AppendLine writes what the sink writes.
func TestParseAppendLine(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, Options{Dir: dir, Location: zone})
	s.Write("web.2", t0, []byte("GET / | 200"))
	s.WriteErr("web.2", t0, []byte("warn: x ! y | z"))
	s.Write("mhrun", t0.Add(time.Second), []byte("web.2 exited with code 1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines := backwardAll(t, dir)
	want := []Line{
		{Time: t0, Name: "web.2", Text: "GET / | 200"},
		{Time: t0, Name: "web.2", Stderr: true, Text: "warn: x ! y | z"},
		{Time: t0.Add(time.Second), Name: "mhrun", Text: "web.2 exited with code 1"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%q", lines)
	}
	for i, s := range lines {
		l, ok := ParseLine(s)
		if !ok || !l.Time.Equal(want[i].Time) || l.Name != want[i].Name || l.Stderr != want[i].Stderr || l.Text != want[i].Text {
			t.Errorf("ParseLine(%q) = %+v, %v; want %+v", s, l, ok, want[i])
		}
		if b := AppendLine(nil, want[i].Time, zone, want[i].Name, want[i].Stderr, []byte(want[i].Text)); string(b) != s {
			t.Errorf("AppendLine = %q, want %q", b, s)
		}
	}
	for _, bad := range []string{"", "no-time web.1 | x", "2026-11-25T20:31:07.123+01:00 web.1 no bar",
		"2026-11-25T20:31:07.123+01:00  | empty name", "2026-11-25T20:31:07.123+01:00 web.1 !", "2026-11-25T20:31:07.123+01:00 web.1 ? x"} {
		if l, ok := ParseLine(bad); ok {
			t.Errorf("ParseLine(%q) = %+v, want not ok", bad, l)
		}
	}
}

// A line of a file written before the stderr mark reads as it always did:
// the text after the first " | ", a " ! " inside it included.
func TestParseLineOldFiles(t *testing.T) {
	l, ok := ParseLine("2026-11-25T20:31:07.123+01:00 web.1 | a ! b | c")
	if !ok || l.Name != "web.1" || l.Stderr || l.Text != "a ! b | c" {
		t.Errorf("got %+v, %v", l, ok)
	}
	l, ok = ParseLine("2026-11-25T20:31:07.123+01:00 web.1 | ")
	if !ok || l.Text != "" {
		t.Errorf("empty text: got %+v, %v", l, ok)
	}
}

// ParseLine never panics, and what it accepts AppendLine writes back as it was.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"2026-11-25T20:31:07.123+01:00 web.2 | GET / | 200",
		"2026-11-25T20:31:07.123Z web.2 ! warn ! x",
		"2026-11-25T20:31:07.123+01:00 mhrun | web.2 exited with code 1",
		"2026-11-25T20:31:07.123+01:00 web.1 !",
		"2026-11-25T20:31:07.123+01:00  | x",
		"x y | z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, ok := ParseLine(s)
		if !ok {
			return
		}
		if l.Name == "" || strings.Contains(l.Name, " ") {
			t.Fatalf("ParseLine(%q) gave name %q", s, l.Name)
		}
		ts, _, _ := strings.Cut(s, " ")
		want := ts + s[len(ts):]
		got := ts + string(AppendLine(nil, l.Time, time.UTC, l.Name, l.Stderr, []byte(l.Text)))[len(l.Time.UTC().Format(timeLayout)):]
		if got != want {
			t.Fatalf("AppendLine(ParseLine(%q)) = %q", s, got)
		}
	})
}
