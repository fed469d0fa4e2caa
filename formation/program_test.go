package formation

import (
	"os"
	"path/filepath"
	"testing"
)

// MissingPrograms warns, in Procfile order, of each process whose program
// sh would not find (127) or not run (126), looked up as sh does: in the
// instance's PATH (env.PATH included; an empty or relative entry from the
// project dir) or, for a path, from the project dir.
func TestMissingPrograms(t *testing.T) {
	dir := project(t, map[string]string{
		"Procfile": "ok: tool --port $PORT\n" +
			"voice: HOST=127.0.0.1 exec voice-server --port $PORT\n" +
			"tunnel: cloudflared tunnel run\n" +
			"script: ./bin/missing.sh\n" +
			"noexec: ./bin/noexec\n" +
			"adir: ./bin\n" +
			"onpath: noexec\n" +
			"own: owntool\n" +
			"relative: reltool\n" +
			"builtin: cd sub && ./server\n" +
			"expanded: $BIN --x\n" +
			"off: never-installed\n",
		"Procfile.policy": "tunnel: optional\n" +
			"own: env.PATH=" + "/nonexistent:extra\n" +
			"relative: env.PATH=bin:/usr/bin\n" +
			"off: scale=0\n",
	})
	for _, d := range []string{"sys", "bin", "extra"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for file, mode := range map[string]os.FileMode{"sys/tool": 0o755, "sys/noexec": 0o644, "bin/noexec": 0o644, "extra/owntool": 0o700, "bin/reltool": 0o755} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Load(Options{Dir: dir, Environ: []string{"PATH=" + filepath.Join(dir, "sys")}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"voice: voice-server not found on PATH: install it, add its directory to PATH, or mark voice optional in Procfile.policy",
		"tunnel: cloudflared not found on PATH: install it or add its directory to PATH (tunnel is optional: the others run without it)",
		"script: ./bin/missing.sh not found in " + dir + ": build or install it, fix the path in Procfile, or mark script optional in Procfile.policy",
		"noexec: ./bin/noexec is not executable: chmod +x ./bin/noexec, or run it through its interpreter (sh ./bin/noexec)",
		"adir: ./bin is a directory, not a program: fix the command in Procfile",
		"onpath: noexec is " + filepath.Join(dir, "sys/noexec") + " on PATH, which is not executable: chmod +x " + filepath.Join(dir, "sys/noexec") + ", or install noexec where PATH finds it first",
	}
	codes := []int{127, 127, 127, 126, 126, 126}
	got := f.MissingPrograms()
	for i, m := range got {
		if i >= len(want) || m.String() != want[i] || m.ExitCode != codes[i] {
			t.Errorf("warning %d: %q (exit %d)", i, m, m.ExitCode)
			continue
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d warnings, want %d", len(got), len(want))
	}
	if m, ok := f.CheckProgram(f.Process("off")); !ok || m.Program != "never-installed" || m.ExitCode != 127 {
		t.Errorf("CheckProgram(off) = %+v, %v; want never-installed not found, though scale 0 keeps it from the warnings", m, ok)
	}
	if _, ok := f.CheckProgram(f.Process("ok")); ok {
		t.Error("CheckProgram(ok) reports tool, which is on PATH")
	}
}

// Without PATH in the environment, sh searches its default path.
func TestMissingProgramsDefaultPath(t *testing.T) {
	dir := project(t, map[string]string{"Procfile": "sh: sh -c true\nnope: mhrun-no-such-program-anywhere\n"})
	f, err := Load(Options{Dir: dir, Environ: []string{"HOME=/h"}})
	if err != nil {
		t.Fatal(err)
	}
	got := f.MissingPrograms()
	if len(got) != 1 || got[0].Process != "nope" {
		t.Errorf("MissingPrograms = %q, want nope only", got)
	}
}
