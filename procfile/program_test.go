package procfile

import (
	"strings"
	"testing"
)

// programCases are commands and their programs; FuzzProgram starts from them.
var programCases = map[string]string{
	"node server.js":                      "node",
	"  voice-server --port $PORT ":        "voice-server",
	"./bin/web":                           "./bin/web",
	"bin/rails server -p $PORT":           "bin/rails",
	"/usr/bin/env ruby x.rb":              "/usr/bin/env",
	"bundle exec puma":                    "bundle",
	"exec cloudflared tunnel run":         "cloudflared",
	"command node x":                      "node",
	"HOST=127.0.0.1 node server.js":       "node",
	"A=1 B='two words' C=\"x y\" prog -v": "prog",
	"A=${B:-x y} prog":                    "prog",
	"A=${B:-\"}\"} prog":                  "prog",
	"A=1 exec prog":                       "prog",
	"\"my prog\" -v":                      "my prog",
	"'./odd name'/run":                    "./odd name/run",
	"my\\ prog":                           "my prog",
	"node server.js | tee log":            "node",
	"node>log":                            "node",
	"worker && echo done":                 "worker",
	"sleep 1; prog":                       "sleep",
	"cd web && npm start":                 "",
	"echo hi":                             "",
	"\"echo\" hi":                         "",
	"if true; then x; fi":                 "",
	"{ a; b; }":                           "",
	"! prog":                              "",
	"(cd x && y)":                         "",
	"> log prog":                          "",
	"exec":                                "",
	"exec >log 2>&1":                      "",
	"exec -a name prog":                   "",
	"command -v prog":                     "",
	"$HOME/bin/x":                         "",
	"${BIN:-node} x":                      "",
	"\"$BIN\" x":                          "",
	"~/bin/x":                             "",
	"bin/*":                               "",
	"$(which node) x":                     "",
	"`which node` x":                      "",
	"A=$(date) prog":                      "",
	"PATH=./bin:$PATH prog":               "",
	"A=1":                                 "",
	"'unterminated":                       "",
	"f() { x; }":                          "",
	"f () { x; }":                         "",
	"# a comment":                         "",
	"\"\"":                                "",
	"":                                    "",
	"trailing\\":                          "",
	"kill -SEGV $$":                       "",
	"exec env FOO=1 prog":                 "env",
	"A=\"unterminated prog":               "",
	"A=\"esc \\\" q\" prog":               "prog",
	"-x foo":                              "",
}

func TestProgram(t *testing.T) {
	for cmd, want := range programCases {
		if got := Program(cmd); got != want {
			t.Errorf("Program(%q) = %q, want %q", cmd, got, want)
		}
	}
}

// FuzzProgram: no panic; a program is a word sh would look up as a file,
// the same for the command as for what ShellCommand makes of it.
func FuzzProgram(f *testing.F) {
	for cmd := range programCases {
		f.Add(cmd)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		p := Program(cmd)
		if p != "" && (notExec[p] || p[0] == '-') {
			t.Fatalf("Program(%q) = %q, which sh does not look up as a file", cmd, p)
		}
		if cmd != strings.TrimSpace(cmd) {
			return // not a Procfile command: the parser trims them
		}
		if q := Program(ShellCommand(cmd)); q != p {
			t.Fatalf("Program(%q) = %q, but Program(ShellCommand) = %q", cmd, p, q)
		}
	})
}

// The program of a command is the program of what the shell runs for it:
// ShellCommand's exec changes nothing.
func TestProgramOfShellCommand(t *testing.T) {
	for _, cmd := range []string{"node server.js", "FOO=1 prog", "a | b", "echo hi", "exec x", "\"my prog\" -v"} {
		if got, want := Program(ShellCommand(cmd)), Program(cmd); got != want {
			t.Errorf("Program(ShellCommand(%q)) = %q, Program = %q", cmd, got, want)
		}
	}
}
