package procfile

import "testing"

func TestShellCommand(t *testing.T) {
	for cmd, want := range map[string]string{
		"bundle exec puma -C config/puma.rb": "exec bundle exec puma -C config/puma.rb",
		"go run ./demo web":                  "exec go run ./demo web",
		"  node server.js --port $PORT ":     "exec node server.js --port $PORT",
		"worker -c ${N:-5} \"a b\"":          "exec worker -c ${N:-5} \"a b\"",
		"a && b":                             "a && b",
		"a; b":                               "a; b",
		"a | b":                              "a | b",
		"a > log":                            "a > log",
		"(cd x && y)":                        "(cd x && y)",
		"echo `date`":                        "echo `date`",
		"exec sleep 1":                       "exec sleep 1",
		"FOO=1 prog":                         "FOO=1 prog",
		"if true; then x; fi":                "if true; then x; fi",
		"trap 'x' TERM":                      "trap 'x' TERM",
		"cd sub":                             "cd sub",
		"exit 3":                             "exit 3",
		"echo hi":                            "echo hi",
		"kill -SEGV $$":                      "kill -SEGV $$",
		"":                                   "",
	} {
		if got := ShellCommand(cmd); got != want {
			t.Errorf("ShellCommand(%q) = %q, want %q", cmd, got, want)
		}
	}
}
