package policy

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/{FuzzParse,FuzzSetScales}/seed-* from the test tables")

// seeds are the inputs FuzzParse starts from: the testdata files and every
// case of the test tables.
func seeds(t testing.TB) []string {
	files, err := filepath.Glob("testdata/*.policy")
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s = append(s, string(b))
	}
	for _, c := range validCases {
		s = append(s, "worker: "+c.in)
	}
	for _, c := range errorCases {
		s = append(s, c.in)
	}
	for _, c := range resolveErrorCases {
		s = append(s, c.in)
	}
	for _, c := range envValidCases {
		s = append(s, "*: env.TZ=UTC\nworker: "+c.in)
	}
	for _, c := range envErrorCases {
		s = append(s, c.in)
	}
	return s
}

// TestUpdateCorpus writes the seeds as a corpus in Go's format, so that a
// plain go test replays them: go test -run UpdateCorpus -update-corpus.
func TestUpdateCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite the seed corpus")
	}
	var parse, save []string
	for _, s := range seeds(t) {
		parse = append(parse, "string("+strconv.Quote(s)+")\n")
	}
	for _, s := range saveSeeds(t) {
		save = append(save, "string("+strconv.Quote(s.policy)+")\nstring("+strconv.Quote(s.names)+")\n[]byte("+strconv.Quote(string(s.scales))+")\n")
	}
	writeCorpus(t, "FuzzParse", parse)
	writeCorpus(t, "FuzzSetScales", save)
}

// writeCorpus replaces testdata/fuzz/TARGET/seed-* with one file a seed,
// each seed its values in Go's corpus format.
func writeCorpus(t *testing.T, target string, seeds []string) {
	dir := filepath.Join("testdata", "fuzz", target)
	old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
	for _, name := range old {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := "go test fuzz v1\n" + s
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%03d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		file, err := Parse(strings.NewReader(in), "fuzz.policy")
		if err != nil {
			if file != nil {
				t.Fatal("a File with an error")
			}
			checkErrorList(t, err, strings.Count(in, "\n")+1)
			return
		}
		for i, l := range strings.Split(in, "\n") {
			if strings.Contains(strings.TrimRight(l, "\r"), "\r") {
				t.Fatalf("line %d holds a carriage return that ends no line, and was accepted: %q", i+1, l)
			}
		}
		names := policyNames(file)
		m, err := file.Resolve(names)
		if err != nil {
			checkErrorList(t, err, strings.Count(in, "\n")+1)
		}
		for name, p := range m {
			checkRoundTrip(t, name, p)
			for _, kv := range p.Fields() {
				if strings.Contains(kv.Value, "\n") {
					t.Fatalf("%s: %s=%q has a newline", name, kv.Key, kv.Value)
				}
			}
		}
		// Against a Procfile it does not fit, it may fail but not panic.
		_, _ = file.Resolve(nil)
		_, _ = file.Resolve([]string{"web", "worker"})
		for _, name := range names {
			_, _ = file.Resolve(append([]string{name}, names...))
		}
	})
}

// checkErrorList fails unless err is an ErrorList of one-line errors
// "fuzz.policy:LINE: MSG", sorted, with lines in 1..lines.
func checkErrorList(t *testing.T, err error, lines int) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error %v is %T, not a non-empty ErrorList", err, err)
	}
	text := strings.Split(err.Error(), "\n")
	if len(text) != len(list) {
		t.Fatalf("%d errors print as %d lines:\n%s", len(list), len(text), err)
	}
	for i, e := range list {
		if e.Line < 1 || e.Line > lines || i > 0 && e.Line < list[i-1].Line {
			t.Fatalf("error at line %d of %d, after line %d: %v", e.Line, lines, list[max(i-1, 0)].Line, err)
		}
		if prefix := "fuzz.policy:" + strconv.Itoa(e.Line) + ": "; !strings.HasPrefix(text[i], prefix) || e.Msg == "" {
			t.Fatalf("error %q does not start with %q", text[i], prefix)
		}
	}
}

// policyNames lists the processes the file has lines for, in the order they
// first appear, without "*": the Procfile a fuzzed policy is resolved
// against, so that every line is applied.
func policyNames(f *File) []string {
	var names []string
	for _, e := range f.entries {
		if e.name != "*" {
			names = append(names, e.name)
		}
	}
	return names
}
