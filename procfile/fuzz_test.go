package procfile

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// FuzzParse checks what holds for any input: no panic; entries with valid,
// unique names and non-empty one-line commands, the same foreman would read
// once this parser's leniencies are applied; errors of one line each that
// start with the file name.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.Procfile")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range parseCases {
		f.Add([]byte(tc.input))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(bytes.NewReader(data), "Procfile")
		if err != nil {
			if entries != nil {
				t.Errorf("entries %v returned with error", entries)
			}
			list, ok := err.(ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			last := 0
			for _, e := range list {
				s := e.Error()
				if !strings.HasPrefix(s, "Procfile:") || strings.Contains(s, "\n") {
					t.Errorf("bad error text %q", s)
				}
				if e.Line < 1 || e.Line < last {
					t.Errorf("error lines out of order: %d after %d", e.Line, last)
				}
				last = e.Line
			}
			return
		}
		if len(entries) == 0 {
			t.Fatal("no entries and no error")
		}
		for i, l := range strings.Split(string(data), "\n") {
			if strings.Contains(strings.TrimRight(l, blank), "\r") {
				t.Errorf("line %d holds a carriage return that ends no line, and was accepted: %q", i+1, l)
			}
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !nameRE.MatchString(e.Name) {
				t.Errorf("invalid name %q", e.Name)
			}
			if seen[e.Name] {
				t.Errorf("duplicate name %q", e.Name)
			}
			seen[e.Name] = true
			if e.Command == "" || strings.ContainsAny(e.Command[:1], " \t") || strings.Contains(e.Command, "\n") {
				t.Errorf("bad command %q", e.Command)
			}
		}
		// Differential: foreman reads the same entries once the byte order
		// mark is dropped, indentation removed and trailing blanks trimmed.
		norm := strings.TrimPrefix(string(data), "\uFEFF")
		lines := strings.Split(strings.ReplaceAll(norm, "\r\n", "\n"), "\n")
		for i, l := range lines {
			lines[i] = strings.TrimLeft(l, blank)
		}
		want := foremanParse(strings.Join(lines, "\n"))
		for i := range want {
			want[i][1] = strings.TrimRight(want[i][1], blank)
		}
		if got := pairs(entries); !reflect.DeepEqual(got, want) {
			t.Errorf("differs from foreman:\n got  %q\n want %q", got, want)
		}
	})
}
