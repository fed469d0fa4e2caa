package formation

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"mhrun/procfile"
)

// MissingProgram is a process whose command names a program that a start
// would not find, or find and fail to run: /bin/sh would exit 127 ("not
// found") or 126 ("Permission denied") before the program ran at all.
type MissingProgram struct {
	Process  string // the process, "voice"
	Program  string // the program as the command names it: "voice-server", "./bin/voice"
	ExitCode int    // what sh exits with: 127 not found, 126 found but not executable
	Problem  string // what is wrong: "not found on PATH", "is not executable", ...
	Hint     string // what to do about it
}

// String is the warning's line, without a "warning:" prefix:
// "voice: voice-server not found on PATH: install it, add its directory
// to PATH, or mark voice optional in Procfile.policy".
func (m MissingProgram) String() string {
	return m.Process + ": " + m.Program + " " + m.Problem + ": " + m.Hint
}

// defaultPath is where dash looks for a program when PATH is unset.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// MissingPrograms checks the program of every process of f that runs
// (scale above 0) with CheckProgram, and returns the ones not found or
// not executable, in Procfile order. It is a warning, not an error: the
// PATH and the files a start meets may differ from what it sees now.
func (f *Formation) MissingPrograms() []MissingProgram {
	var out []MissingProgram
	for _, p := range f.Processes {
		if p.Scale == 0 {
			continue
		}
		if m, ok := f.CheckProgram(p); ok {
			out = append(out, m)
		}
	}
	return out
}

// CheckProgram looks for the program of p's command as /bin/sh -c would
// when it starts an instance, and reports it when sh would not find it
// (exit 127) or not run it (126). The program is procfile.Program's: the
// first word after VAR= assignments and exec; when the command does not
// say (a builtin, a compound command that starts with one, an expansion
// like $BIN), nothing is checked and ok is false. A name with a slash is
// a path from the project dir; any other is searched in the PATH of the
// instance's environment (Env: the real one, env files, env.PATH in the
// policy), an empty or relative entry from the project dir, as sh does.
//
// It only stats files (a few per PATH entry), never runs anything, and
// reads the file system as it is when called: call it off the
// supervisor's loop, e.g. when a run exits 127 within its first moments,
// to tell "command not found" from a program that itself exited 127.
func (f *Formation) CheckProgram(p *Process) (m MissingProgram, ok bool) {
	prog := procfile.Program(p.Command)
	if prog == "" {
		return MissingProgram{}, false
	}
	m = MissingProgram{Process: p.Name, Program: prog}
	// remedy lists what to do about a program not found: a, b, or
	// making the process optional when it is not yet.
	remedy := func(a, b string) string {
		if p.Policy.Optional {
			return a + " or " + b + " (" + p.Name + " is optional: the others run without it)"
		}
		return a + ", " + b + ", or mark " + p.Name + " optional in " + filepath.Base(f.PolicyFile)
	}
	if strings.Contains(prog, "/") {
		path := prog
		if !filepath.IsAbs(path) {
			path = filepath.Join(f.Dir, path)
		}
		switch fi, err := os.Stat(path); {
		case errors.Is(err, fs.ErrNotExist):
			m.ExitCode, m.Problem = 127, "not found"
			if path != prog {
				m.Problem += " in " + f.Dir
			}
			m.Hint = remedy("build or install it", "fix the path in "+filepath.Base(f.Procfile))
			return m, true
		case err != nil:
			return MissingProgram{}, false // unreadable dir: sh may fare better
		case fi.IsDir():
			m.ExitCode, m.Problem, m.Hint = 126, "is a directory, not a program", "fix the command in "+filepath.Base(f.Procfile)
			return m, true
		case fi.Mode()&0o111 == 0:
			m.ExitCode, m.Problem, m.Hint = 126, "is not executable", "chmod +x "+prog+", or run it through its interpreter (sh "+prog+")"
			return m, true
		}
		return MissingProgram{}, false
	}
	path, set := "", false
	for _, kv := range f.Env(p, 1, "") {
		if v, found := strings.CutPrefix(kv, "PATH="); found {
			path, set = v, true
		}
	}
	if !set {
		path = defaultPath
	}
	var denied string // sh goes on past a file it may not run, then exits 126
	for _, dir := range strings.Split(path, ":") {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(f.Dir, dir) // "" is the current dir
		}
		file := filepath.Join(dir, prog)
		fi, err := os.Stat(file)
		switch {
		case err != nil:
		case fi.Mode().IsRegular() && fi.Mode()&0o111 != 0:
			return MissingProgram{}, false
		case denied == "":
			denied = file
		}
	}
	if denied != "" {
		m.ExitCode, m.Problem = 126, "is "+denied+" on PATH, which is not executable"
		m.Hint = "chmod +x " + denied + ", or install " + prog + " where PATH finds it first"
		return m, true
	}
	m.ExitCode, m.Problem = 127, "not found on PATH"
	m.Hint = remedy("install it", "add its directory to PATH")
	return m, true
}
