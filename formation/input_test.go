package formation

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs Load with a deadline: an input must never block it.
func loadWithin(t *testing.T, o Options) (*Formation, error) {
	t.Helper()
	type result struct {
		f   *Formation
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := Load(o)
		done <- result{f, err}
	}()
	select {
	case r := <-done:
		return r.f, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Load(%+v) blocked", o)
		return nil, nil
	}
}

// Every input file, named by a flag or found by default, is read only when
// it is a regular file of at most 1 MiB: a FIFO never blocks, /dev/zero
// never grows memory, a directory gives one clean line.
func TestLoadInputFileKinds(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile": "web: ./web\n",
		"good.env": "A=1\n",
		"good.pol": "web: scale=2\n",
		"big":      strings.Repeat("# padding\n", 1<<17),
	})
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("good.env", filepath.Join(dir, "link.env")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    Options
		want string // "" = loads
	}{
		{"procfile dir", Options{Procfile: "subdir"}, "subdir: is a directory, not a file (want a Procfile"},
		{"procfile fifo", Options{Procfile: "fifo"}, "fifo: is a named pipe (FIFO), not a regular file (want a Procfile"},
		{"procfile zero", Options{Procfile: "/dev/zero"}, "read /dev/zero: is a device, not a regular file (want a Procfile"},
		{"procfile big", Options{Procfile: "big"}, "big: is larger than 1 MiB, the most mhrun reads from an input file"},
		{"policy dir", Options{Policy: "subdir"}, "subdir: is a directory, not a file (want a policy file"},
		{"policy fifo", Options{Policy: "fifo"}, "fifo: is a named pipe (FIFO), not a regular file (want a policy file"},
		{"policy zero", Options{Policy: "/dev/zero"}, "read /dev/zero: is a device, not a regular file (want a policy file"},
		{"policy good", Options{Policy: "good.pol"}, ""},
		{"env dir", Options{EnvFiles: []string{"subdir"}}, "subdir: cannot read env file: is a directory, not a file (want a regular file of KEY=value lines)"},
		{"env fifo", Options{EnvFiles: []string{"fifo"}}, "fifo: cannot read env file: is a named pipe (FIFO), not a regular file (want a regular file of KEY=value lines)"},
		{"env zero", Options{EnvFiles: []string{"/dev/zero"}}, "/dev/zero: cannot read env file: is a device, not a regular file (want a regular file of KEY=value lines)"},
		{"env big", Options{EnvFiles: []string{"big"}}, "big: cannot read env file: is larger than 1 MiB, the most mhrun reads from an input file (want a regular file of KEY=value lines)"},
		{"env missing", Options{EnvFiles: []string{"nope"}}, "nope: cannot read env file: no such file or directory (pass an existing, readable file to -e)"},
		{"env link", Options{EnvFiles: []string{"link.env"}}, ""},
	}
	for _, tt := range tests {
		tt.o.Dir, tt.o.Environ = dir, []string{}
		f, err := loadWithin(t, tt.o)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && err == nil:
			t.Errorf("%s: loaded, want an error with %q", tt.name, tt.want)
		case tt.want != "" && (!strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: %v\nwant one line with %q", tt.name, err, tt.want)
		case tt.want == "" && f == nil:
			t.Errorf("%s: no formation", tt.name)
		}
	}

	// The default .env as a directory or a FIFO is an error, not a hang.
	for _, kind := range []string{"dir", "fifo"} {
		d := project(t, map[string]string{"Procfile": "web: ./web\n"})
		env := filepath.Join(d, ".env")
		if kind == "dir" {
			os.Mkdir(env, 0o755)
		} else if err := syscall.Mkfifo(env, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadWithin(t, Options{Dir: d, Environ: []string{}}); err == nil || !strings.Contains(err.Error(), ".env: cannot read env file: is a") {
			t.Errorf(".env %s: %v", kind, err)
		}
	}
}

// Out-of-range values are refused with the bound in the message: a scale
// past policy.MaxScale (by the policy or by -m), a base port outside
// 1..65535, an instance's port past 65535.
func TestLoadBounds(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile":        "web: ./web\nworker: ./worker\n",
		"Procfile.policy": "worker: scale=max\n",
	})
	tests := []struct {
		o    Options
		want string // "" = loads
	}{
		{Options{Scale: []string{"web=1000"}}, ""},
		{Options{Scale: []string{"web=60000"}}, `scale web=60000: want at most 1000 instances (each has its own pty and process tree), or max for one per CPU`},
		{Options{BasePort: -5}, "-p -5: want a port number 1..65535"},
		{Options{BasePort: 70000}, "-p 70000: want a port number 1..65535"},
		{Options{BasePort: 65535}, "worker.2 would get PORT 65636, past 65535 (lower the base port with -p or set port= in the policy)"},
		{Options{BasePort: 65000, Scale: []string{"web=537"}}, "web.537 would get PORT 65536, past 65535"},
		{Options{BasePort: 65000, Scale: []string{"web=536"}}, ""},
	}
	for _, tt := range tests {
		tt.o.Dir, tt.o.Environ, tt.o.CPUs = dir, []string{}, 2
		_, err := Load(tt.o)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.o, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: %v, want %q", tt.o, err, tt.want)
		}
	}
	// One instance per CPU, up to the bound.
	f, err := Load(Options{Dir: dir, Environ: []string{}, CPUs: 5000, Scale: []string{"web=max"}, BasePort: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if w := f.Process("web").Scale; w != 1000 {
		t.Errorf("-m web=max on 5000 CPUs: web %d instances, want 1000", w)
	}
	f, err = Load(Options{Dir: dir, Environ: []string{}, CPUs: 5000, BasePort: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if w, k := f.Process("web").Scale, f.Process("worker").Scale; w != 1 || k != 1000 {
		t.Errorf("scale=max on 5000 CPUs: web %d, worker %d instances, want 1 and 1000", w, k)
	}
}

// Regression: singleton=/nonexistent/dir/lock passed check, and mhrun then
// made the directories. A lock path must be in a directory that exists,
// and not be a directory itself; the error is at the policy line.
func TestLoadSingletonLockPath(t *testing.T) {
	dir := project(t, map[string]string{"Procfile": "web: ./web\nagent: ./agent\n", "file": "x"})
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "locks"), 0o755)
	tests := []struct {
		policy, want string // "" = loads
	}{
		{"agent: singleton\n", ""},
		{"agent: singleton=locks/agent.lock\n", ""},
		{"agent: singleton=" + filepath.Join(dir, "locks", "agent.lock") + "\n", ""},
		{"agent: singleton=file\n", ""}, // an existing file is fine: flock needs no more
		{"*: grace=1s\nagent: singleton=/nonexistent/dir/agent.lock\n",
			"Procfile.policy:2: agent: singleton=/nonexistent/dir/agent.lock: directory /nonexistent/dir does not exist: create it, or choose a lock file in an existing directory (mhrun does not create it)"},
		{"agent: singleton=missing/agent.lock\n",
			"Procfile.policy:1: agent: singleton=missing/agent.lock: directory " + filepath.Join(dir, "missing") + " does not exist"},
		{"agent: singleton=file/agent.lock\n",
			"Procfile.policy:1: agent: singleton=file/agent.lock: " + filepath.Join(dir, "file") + " is not a directory: choose a lock file in an existing directory"},
		{"agent: singleton=locks\n",
			"Procfile.policy:1: agent: singleton=locks: " + filepath.Join(dir, "locks") + " is a directory: want a lock file path, e.g. " + filepath.Join(dir, "locks", "agent.lock")},
		{"agent: singleton=fifo\n",
			"Procfile.policy:1: agent: singleton=fifo: " + filepath.Join(dir, "fifo") + " is not a regular file: want a lock file path"},
		{"*: singleton=nope/x.lock\nweb: optional\n",
			"Procfile.policy:1: web: singleton=nope/x.lock: directory"},
	}
	for _, tt := range tests {
		os.WriteFile(filepath.Join(dir, "Procfile.policy"), []byte(tt.policy), 0o644)
		wd, _ := os.Getwd()
		os.Chdir(dir) // so that messages name Procfile.policy as mhrun check in the project does
		_, err := loadWithin(t, Options{Dir: dir, Environ: []string{}})
		os.Chdir(wd)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.policy, err)
		case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
			t.Errorf("%q: %v\nwant %s", tt.policy, err, tt.want)
		}
	}
	if _, err := os.Stat("/nonexistent"); err == nil {
		t.Error("/nonexistent was made")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); err == nil {
		t.Error("the missing lock dir was made")
	}
}
