package policy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateSave = flag.Bool("update", false, "rewrite testdata/save/*.after from SetScales")

// saveCases are the golden tests of SetScales: testdata/save/NAME.before
// with the scales set gives NAME.after.
var saveCases = []struct {
	name  string
	names []string // the Procfile
	set   map[string]int
}{
	// scale=max replaced by a number; a process without a line gets one
	// after the one before it in the Procfile, padded like its neighbours
	{"design", append(designNames, "clock"), map[string]int{"web": 4, "scheduler": 1, "tunnel": 0, "clock": 2}},
	// the live value came from max and the file says max: nothing to write
	{"design-max-kept", designNames, map[string]int{"web": ScaleMax, "scheduler": 1, "voice": 1}},
	// a longer value takes from the padding after it, a shorter one gives
	{"aligned-columns", []string{"web", "worker"}, map[string]int{"web": 12, "worker": 3}},
	// scale= goes at the end of the process's line, before its comment
	{"append-to-line", []string{"web", "worker", "clock"}, map[string]int{"web": 3, "worker": 0, "clock": ScaleMax}},
	// between web and worker, as in the Procfile; after the last one
	{"new-line-between", []string{"web", "api", "worker", "clock"}, map[string]int{"web": 1, "api": 2, "worker": 1, "clock": 0}},
	// first in the Procfile: above the next process's line and its comment
	{"new-line-first", []string{"clock", "web"}, map[string]int{"clock": 0, "web": 1}},
	// no process has a line: after the last line that is not blank
	{"new-line-end", []string{"web", "worker"}, map[string]int{"web": 2, "worker": 3}},
	// CRLF stays CRLF, the byte order mark stays first
	{"crlf-bom", []string{"web", "worker"}, map[string]int{"web": 3, "worker": 0}},
	// the last line gets a line end before a line after it
	{"no-final-newline", []string{"web", "worker", "clock"}, map[string]int{"worker": 2, "clock": 4}},
	// no policy file yet
	{"empty", []string{"web", "worker"}, map[string]int{"web": 2, "worker": 1}},
	// *: gives 2: web at 2 keeps its line as it is; worker at 1 needs a line
	{"star-scale", []string{"web", "worker"}, map[string]int{"web": 2, "worker": 1}},
	// the process's scale= is on its third line
	{"several-lines", []string{"web", "worker"}, map[string]int{"web": 5, "worker": 2}},
	// tab-aligned neighbours: a tab for the new line too
	{"tabs", []string{"web", "api", "worker"}, map[string]int{"api": 2}},
	// a quoted value is replaced whole
	{"quoted", []string{"web"}, map[string]int{"web": 3}},
	// back to what the default gives: the value is written, not the key dropped
	{"back-to-default", []string{"web", "worker"}, map[string]int{"web": 1, "worker": 1}},
	// a line with no items: where its neighbours' items start
	{"comment-only-line", []string{"web", "worker", "clock", "api"}, map[string]int{"worker": 2, "clock": 3}},
}

func TestSetScalesGolden(t *testing.T) {
	for _, c := range saveCases {
		t.Run(c.name, func(t *testing.T) {
			base := filepath.Join("testdata", "save", c.name)
			before, err := os.ReadFile(base + ".before")
			if err != nil {
				t.Fatal(err)
			}
			got, err := SetScales(before, "Procfile.policy", c.names, c.set)
			if err != nil {
				t.Fatalf("SetScales: %v", err)
			}
			if *updateSave {
				if err := os.WriteFile(base+".after", got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(base + ".after")
			if err != nil {
				t.Fatalf("%v (go test -run SetScalesGolden -update writes it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			again, err := SetScales(got, "Procfile.policy", c.names, c.set)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("a second save changed the file again (%v):\n%s", err, again)
			}
		})
	}
}

func TestSetScalesNothingToWrite(t *testing.T) {
	data := []byte("*: scale=2\nweb: balance=4321\n")
	got, err := SetScales(data, "Procfile.policy", []string{"web", "worker"}, map[string]int{"web": 2, "worker": 2})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("got %q, %v; want the file as it was", got, err)
	}
}

func TestSetScalesErrors(t *testing.T) {
	cases := []struct {
		in    string
		names []string
		set   map[string]int
		want  string
	}{
		{"web: scale=2\n", []string{"web", "worker"}, map[string]int{"wbe": 3}, `unknown process "wbe" (did you mean "web"?)`},
		{"", []string{"web", "worker"}, map[string]int{"db": 3}, `unknown process "db" (the Procfile has web, worker)`},
		{"clock: singleton\n", []string{"clock"}, map[string]int{"clock": 2}, "clock is a singleton: scale it to 0 or 1, not 2"},
		{"clock: singleton\n", []string{"clock"}, map[string]int{"clock": ScaleMax}, "clock is a singleton: scale it to 0 or 1, not max"},
		{"web: scale=2\n", []string{"web"}, map[string]int{"web": MaxScale + 1}, "want at most 1000 instances"},
		{"web: scael=2\n", []string{"web"}, map[string]int{"web": 3}, `Procfile.policy:1: unknown key "scael" (did you mean "scale"?)`},
		{"api: scale=2\n", []string{"web"}, map[string]int{"web": 3}, "Procfile.policy:1: api is not a process in the Procfile"},
	}
	for _, c := range cases {
		got, err := SetScales([]byte(c.in), "Procfile.policy", c.names, c.set)
		if err == nil || !strings.Contains(err.Error(), c.want) || got != nil {
			t.Errorf("SetScales(%q, %v) = %q, %v; want an error with %q", c.in, c.set, got, err, c.want)
		}
	}
}

// saveSeeds are the inputs FuzzSetScales starts from: each golden case,
// and the parser's valid cases with scales to set.
func saveSeeds(t testing.TB) []saveSeed {
	var s []saveSeed
	for _, c := range saveCases {
		before, err := os.ReadFile(filepath.Join("testdata", "save", c.name+".before"))
		if err != nil {
			t.Fatal(err)
		}
		var scales []byte
		for _, n := range c.names {
			v, ok := c.set[n]
			switch {
			case !ok:
				scales = append(scales, 6)
			case v == ScaleMax:
				scales = append(scales, 5)
			default:
				scales = append(scales, byte(v%5))
			}
		}
		s = append(s, saveSeed{string(before), strings.Join(c.names, " "), scales})
	}
	for i, c := range validCases {
		s = append(s, saveSeed{"*:   grace=1s\nworker:  " + c.in + "   # a comment\r\n", "web worker db", []byte{byte(i), byte(i + 1), byte(i + 2)}})
	}
	return s
}

type saveSeed struct {
	policy, names string
	scales        []byte
}

// FuzzSetScales edits any policy the parser accepts, for any Procfile and
// scales, and checks what SetScales promises: the result parses, gives
// the scales asked and every other key as before, is idempotent, and
// differs from the input by at most a line per process changed (and the
// line end a last line gets).
func FuzzSetScales(f *testing.F) {
	for _, s := range saveSeeds(f) {
		f.Add(s.policy, s.names, s.scales)
	}
	f.Fuzz(func(t *testing.T, in, procfile string, scales []byte) {
		if strings.Count(in, "\n") > 300 {
			return // the line diff below is quadratic
		}
		var names []string
		seen := map[string]bool{}
		add := func(n string) {
			if validName(n) && len(n) <= maxNameLen && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		for _, n := range strings.Fields(procfile) {
			add(n)
		}
		file, parseErr := Parse(strings.NewReader(in), "fuzz.policy")
		if parseErr == nil {
			for _, e := range file.entries {
				if e.name != "*" {
					add(e.name)
				}
			}
		}
		set := map[string]int{}
		for i, n := range names {
			if i < len(scales) {
				switch v := scales[i] % 8; {
				case v < 5:
					set[n] = int(v)
				case v == 5:
					set[n] = ScaleMax
				}
			}
		}
		out, err := SetScales([]byte(in), "fuzz.policy", names, set)
		if parseErr != nil {
			if err == nil {
				t.Fatalf("a file that does not parse was edited: %v", parseErr)
			}
			return
		}
		old, resolveErr := file.Resolve(names)
		if resolveErr != nil {
			if err == nil {
				t.Fatalf("a file that does not resolve was edited: %v", resolveErr)
			}
			return
		}
		changed := 0
		for n, v := range set {
			if old[n].Scale != v {
				changed++
			}
			if CheckScale(n, old[n], v) != nil {
				if err == nil {
					t.Fatalf("%s=%d allowed: %v", n, v, CheckScale(n, old[n], v))
				}
				return
			}
		}
		if err != nil {
			t.Fatalf("SetScales: %v", err)
		}
		// SetScales checks the policies itself; check it again here.
		got, err := Parse(bytes.NewReader(out), "fuzz.policy")
		if err != nil {
			t.Fatalf("the result does not parse: %v\n%q", err, out)
		}
		pols, err := got.Resolve(names)
		if err != nil {
			t.Fatalf("the result does not resolve: %v\n%q", err, out)
		}
		for _, n := range names {
			want := old[n]
			if v, ok := set[n]; ok {
				want.Scale = v
			}
			if p := pols[n]; p.Format() != want.Format() {
				t.Fatalf("%s: %q, want %q\n%q", n, p.Format(), want.Format(), out)
			}
		}
		if changed == 0 && string(out) != in {
			t.Fatalf("nothing to change, and the file changed:\n%q\n%q", in, out)
		}
		again, err := SetScales(out, "fuzz.policy", names, set)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("a second save changed the file again (%v):\n%q\n%q", err, out, again)
		}
		a, b := strings.Split(in, "\n"), strings.Split(string(out), "\n")
		common := lcs(a, b)
		if len(a)-common > changed+1 || len(b)-common > changed+1 {
			t.Fatalf("%d processes changed, and %d lines went, %d came:\n%q\n%q", changed, len(a)-common, len(b)-common, in, out)
		}
	})
}

// lcs is the length of the longest common subsequence of the lines a and b.
func lcs(a, b []string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for i := range a {
		for j := range b {
			switch {
			case a[i] == b[j]:
				cur[j+1] = prev[j] + 1
			default:
				cur[j+1] = max(cur[j], prev[j+1])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
