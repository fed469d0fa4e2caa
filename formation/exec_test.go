package formation

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestEnvValuesExecCannotPass: a NUL byte, or a NAME=value longer than
// exec takes in one string, is refused at the line that sets it.
func TestEnvValuesExecCannotPass(t *testing.T) {
	big := strings.Repeat("x", 128<<10)
	tests := []struct {
		name, data string
		want       []string // "" = reads
	}{
		{"NUL unquoted", "A=1\nB=x\x00y\n", []string{`f.env:2: B holds a NUL byte, which no environment variable can carry (remove it)`}},
		{"NUL quoted, multi-line", "A=\"one\ntwo\x00\"\n", []string{`f.env:1: A holds a NUL byte, which no environment variable can carry (remove it)`}},
		{"NUL through expansion", "A='x\x00'\nexport B=\"${A}!\"\n", []string{
			`f.env:1: A holds a NUL byte, which no environment variable can carry (remove it)`,
			`f.env:2: B holds a NUL byte, which no environment variable can carry (remove it)`,
		}},
		{"largest that fits", "LONG=" + big[:128<<10-len("LONG=")-1] + "\n", nil},
		{"one byte more", "\n\nLONG=" + big[:128<<10-len("LONG=")] + "\n", []string{
			`f.env:3: LONG=... is 131072 bytes, more than exec takes for one variable (128 KiB): put the data in a file and pass its path`,
		}},
		{"long through expansion", "A=" + big[:70000] + "\nB=${A}${A}\n", []string{
			`f.env:2: B=... is 140002 bytes, more than exec takes for one variable (128 KiB): put the data in a file and pass its path`,
		}},
		{"CR-only line ends", "A=1\rB=2\r", []string{`f.env:1: carriage return (\r) inside a line: "A=1\rB=2" (save the file with LF or CRLF line ends; CR alone does not end a line)`}},
		{"stray CR", "A=1\r\nB=x\ry\nC=3\n", []string{`f.env:2: carriage return (\r) inside a line: "B=x\ry" (save the file with LF or CRLF line ends; CR alone does not end a line)`}},
		{"CRLF", "A=1\r\nB=\"two\r\nlines\"\r\n", nil},
	}
	for _, tt := range tests {
		m, err := parseEnv([]byte(tt.data), "f.env")
		if tt.want == nil {
			if err != nil || m == nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: read %d variables, want %q", tt.name, len(m), tt.want)
			continue
		}
		if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n%s\nwant\n%s", tt.name, err, strings.Join(tt.want, "\n"))
		}
	}
}

// Regression: a formation whose environment exec could never take passed
// check, and every start of every instance then failed with E2BIG. The
// test also holds the model to the kernel: what checkExec accepts starts,
// and what it refuses for the total would not.
func TestLoadRefusesEnvironmentExecCannotTake(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the bound checked is Linux's")
	}
	limit, _ := execLimit()
	// Variables of 100 KiB (single-quoted: godotenv reads those fastest),
	// in as many files of 900 KiB as it takes to pass the limit.
	const varSize, perFile = 100 << 10, 9
	files := map[string]string{"Procfile": "web: ./web\n"}
	var env []string
	n := 0
	for total := 0; total <= limit; total += varSize {
		f := fmt.Sprintf("%d.env", n/perFile)
		files[f] += fmt.Sprintf("V%d='%s'\n", n, strings.Repeat("v", varSize-len(fmt.Sprintf("V%d=", n))-1))
		if !slices.Contains(env, f) {
			env = append(env, f)
		}
		n++
	}
	dir := project(t, files)
	_, err := Load(Options{Dir: dir, EnvFiles: env, Environ: []string{}})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "web: its command and environment come to ") ||
		!strings.Contains(err.Error(), "from an env file: make the env files smaller, or raise ulimit -s") {
		t.Fatalf("Load = %v, want one line refusing web's environment", err)
	}
	if err := startsWith(t, dir, files, env); !errors.Is(err, syscall.E2BIG) {
		t.Errorf("exec of what checkExec refused: %v, want E2BIG", err)
	}

	// Drop variables until it loads: that one must start.
	for len(env) > 0 {
		last := env[len(env)-1]
		lines := strings.SplitAfter(files[last], "\n")
		files[last] = strings.Join(lines[:len(lines)-2], "")
		if files[last] == "" {
			env = env[:len(env)-1]
		}
		os.WriteFile(filepath.Join(dir, last), []byte(files[last]), 0o644)
		if _, err := Load(Options{Dir: dir, EnvFiles: env, Environ: []string{}}); err == nil {
			break
		}
	}
	if err := startsWith(t, dir, files, env); err != nil {
		t.Errorf("exec of what checkExec accepted: %v", err)
	}
}

// startsWith execs /bin/sh -c with the formation's command and the env of
// its web.1, as the runner does, and returns the error of the start.
func startsWith(t *testing.T, dir string, files map[string]string, env []string) error {
	t.Helper()
	f, err := Load(Options{Dir: dir, EnvFiles: env, Environ: []string{}})
	if err != nil {
		// Refused: build the same environment by hand.
		vars, rerr := ReadEnvFiles(nil, abs(dir, env))
		if rerr != nil {
			t.Fatal(rerr)
		}
		f = &Formation{Dir: dir, BasePort: 5000, FileEnv: vars, Environ: []string{}}
		f.Processes = []*Process{{Name: "web", Command: "true", Scale: 1}}
	}
	p := f.Processes[0]
	cmd := exec.Command("/bin/sh", "-c", "true")
	cmd.Env = f.Env(p, 1, socketPlaceholder)
	return cmd.Run()
}

func abs(dir string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}

// TestExecSizeIsTheKernels holds execSize to Linux's exec: a start that
// execSize puts at the limit starts, one whose strings are a byte over the
// kernel's own count fails with E2BIG.
func TestExecSizeIsTheKernels(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the bound checked is Linux's")
	}
	limit, _ := execLimit()
	argv := []string{"/bin/sh", "-c", "true"}
	// envOf returns an environment that brings execSize to size.
	envOf := func(size int) []string {
		var env []string
		rest := size - execSize("/bin/sh", argv, nil)
		for i := 0; rest > 0; i++ {
			// A string of n bytes takes n+9; leave at least 12 for the last.
			n := min(100<<10, rest-9)
			if r := rest - (n + 9); r > 0 && r < 12 {
				n -= 12
			}
			name := fmt.Sprintf("V%d=", i)
			env = append(env, name+strings.Repeat("v", n-len(name)))
			rest -= n + 9
		}
		if got := execSize("/bin/sh", argv, env); got != size {
			t.Fatalf("envOf(%d) makes %d", size, got)
		}
		return env
	}
	run := func(env []string) error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = env
		return cmd.Run()
	}
	if err := run(envOf(limit)); err != nil {
		t.Errorf("a start execSize puts at the limit: %v", err)
	}
	if err := run(envOf(limit + 8 + 1)); !errors.Is(err, syscall.E2BIG) {
		t.Errorf("a start a byte over the kernel's count: %v, want E2BIG", err)
	}
}
