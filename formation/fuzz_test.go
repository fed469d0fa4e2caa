package formation

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mhrun/procfile"
)

// FuzzParseEnv: env files never panic the reader, and every error is one
// line naming the file (and a line when it has one).
func FuzzParseEnv(f *testing.F) {
	for _, seed := range []string{
		"A=1\n", "export B='x'\n", "C=\"multi\nline\"\n", "D: yaml\n", "# c\n\nE=${A}\n",
		"JUST_A_NAME\n", "9X=1\n", "C='open\n", "A=\"esc \\\" q\"\r\nB=2", "\uFEFFA=1\n", "=1\n", "A\x00=1",
		"A=x\x00y\n", "A='x\x00'\nB=${A}\n", "A=1\rB=2\r", "A=\"x\ry\"\n", "A=1\r\r\n",
	} {
		f.Add(seed)
	}
	if seeds, _ := filepath.Glob("testdata/*.env"); len(seeds) > 0 {
		for _, s := range seeds {
			b, _ := os.ReadFile(s)
			f.Add(string(b))
		}
	}
	shape := regexp.MustCompile(`^f\.env(:\d+)?: `)
	f.Fuzz(func(t *testing.T, data string) {
		m, err := parseEnv([]byte(data), "f.env")
		if err == nil {
			if m == nil {
				t.Fatal("nil map without an error")
			}
			for k, v := range m {
				if strings.IndexByte(v, 0) >= 0 || len(k)+1+len(v) > procfile.MaxArgLen {
					t.Fatalf("%s=%q accepted, which exec cannot pass", k, v)
				}
			}
			for i, l := range strings.Split(data, "\n") {
				if strings.Contains(strings.TrimRight(l, "\r"), "\r") {
					t.Fatalf("line %d holds a carriage return that ends no line, and was accepted: %q", i+1, l)
				}
			}
			return
		}
		var list interface{ Unwrap() []error }
		errs := []error{err}
		if errors.As(err, &list) {
			errs = list.Unwrap()
		}
		for _, e := range errs {
			msg := e.Error()
			if !shape.MatchString(msg) || strings.Contains(msg, "\n") {
				t.Fatalf("malformed error %q for %q", msg, data)
			}
		}
	})
}
