package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"mhrun/policy"
	"mhrun/procfile"
)

// block is a fenced code block of README.md.
type block struct {
	lang, body string
	line       int
}

func readmeBlocks(t *testing.T) ([]block, string) {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur *block
	for i, l := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			cur = &block{lang: strings.TrimPrefix(l, "```"), line: i + 1}
		case cur != nil && l == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.body += l + "\n"
		}
	}
	return out, string(b)
}

// TestReadmeExamples parses every Procfile and policy example of the README,
// policies against the Procfile shown before them, so the docs cannot drift.
func TestReadmeExamples(t *testing.T) {
	blocks, _ := readmeBlocks(t)
	var names []string
	seen := map[string]int{}
	for _, b := range blocks {
		seen[b.lang]++
		switch b.lang {
		case "Procfile":
			entries, err := procfile.Parse(strings.NewReader(b.body), "README.md")
			if err != nil {
				t.Errorf("README.md:%d: Procfile example: %v", b.line, err)
				continue
			}
			names = names[:0]
			for _, e := range entries {
				names = append(names, e.Name)
			}
		case "policy":
			f, err := policy.Parse(strings.NewReader(b.body), "README.md")
			if err == nil {
				_, err = f.Resolve(names)
			}
			if err != nil {
				t.Errorf("README.md:%d: policy example: %v", b.line, err)
			}
		}
	}
	if seen["Procfile"] == 0 || seen["policy"] == 0 || seen["check-errors"] == 0 {
		t.Errorf("README examples not found: %v", seen)
	}
}

// TestReadmeKeyTable checks that the key table has every policy key, each
// with an example that parses against the README's Procfile.
func TestReadmeKeyTable(t *testing.T) {
	_, text := readmeBlocks(t)
	row := regexp.MustCompile("(?m)^\\| ([a-z-]+) \\| `([^`]+)` \\|")
	var keys []string
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		key, example := m[1], m[2]
		keys = append(keys, key)
		f, err := policy.Parse(strings.NewReader(example+"\n"), "README.md")
		if err == nil {
			_, err = f.Resolve([]string{"web", "worker", "css"})
		}
		if err != nil {
			t.Errorf("example for %s, %q: %v", key, example, err)
		}
		if !strings.Contains(example, key+"=") && !strings.HasSuffix(example, " "+key) {
			t.Errorf("example for %s, %q, does not use it", key, example)
		}
	}
	// env.NAME is a family of keys, not one: its row is checked on its own
	m := regexp.MustCompile("(?m)^\\| env\\.NAME \\| `([^`]+)` \\|").FindStringSubmatch(text)
	if m == nil {
		t.Errorf("README key table has no env.NAME row")
	} else if f, err := policy.Parse(strings.NewReader(m[1]+"\n"), "README.md"); err != nil {
		t.Errorf("example for env.NAME, %q: %v", m[1], err)
	} else if _, err := f.Resolve([]string{"web", "worker", "css"}); err != nil || !strings.Contains(m[1], "env.") {
		t.Errorf("example for env.NAME, %q: %v", m[1], err)
	}
	var want []string
	for _, kv := range policy.Default().Fields() {
		want = append(want, kv.Key)
	}
	if !slices.Equal(keys, want) {
		t.Errorf("README key table has %v\nthe policy has %v", keys, want)
	}
}

// TestReadmeErrors runs `mhrun check` on each error example of the README
// and compares what it prints with what the README shows.
func TestReadmeErrors(t *testing.T) {
	blocks, _ := readmeBlocks(t)
	for _, b := range blocks {
		if b.lang != "check-errors" {
			continue
		}
		input, want, ok := strings.Cut(b.body, "---\n")
		if !ok {
			t.Fatalf("README.md:%d: check-errors block without ---", b.line)
		}
		files := map[string]string{"Procfile": "web: x\nworker: y\ncss: z\n"}
		file := strings.SplitN(want, ":", 2)[0]
		files[file] = input
		dir := writeFiles(t, files)
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), []string{"check", "-d", dir}, &stdout, &stderr)
		got := strings.ReplaceAll(stderr.String(), "mhrun: "+filepath.Join(dir, "")+"/", "mhrun: ")
		got = strings.ReplaceAll(got, "mhrun: ", "")
		if code != 1 || got != want {
			t.Errorf("README.md:%d: mhrun check exit %d, printed:\n%s\nREADME shows:\n%s", b.line, code, got, want)
		}
	}
}
