package procfile

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// parseCase is one input and what Parse must make of it: entries, or the
// exact text of the error.
type parseCase struct {
	name  string
	input string
	want  []Entry
	err   string
}

var parseCases = []parseCase{
	// What foreman accepts.
	{name: "one line", input: "web: ./server\n",
		want: []Entry{{"web", "./server", 1}}},
	{name: "order kept", input: "b: two\na: one\nc: three\n",
		want: []Entry{{"b", "two", 1}, {"a", "one", 2}, {"c", "three", 3}}},
	{name: "no space after colon", input: "web:./server\n",
		want: []Entry{{"web", "./server", 1}}},
	{name: "tab and spaces after colon", input: "web:\t  ./server\n",
		want: []Entry{{"web", "./server", 1}}},
	{name: "name characters", input: "Web_2-a: x\n-: y\n_: z\n0: w\n",
		want: []Entry{{"Web_2-a", "x", 1}, {"-", "y", 2}, {"_", "z", 3}, {"0", "w", 4}}},
	{name: "later colons belong to the command", input: "jobs: bundle exec rake jobs:work\n",
		want: []Entry{{"jobs", "bundle exec rake jobs:work", 1}}},
	{name: "double colon", input: "web:: x\n",
		want: []Entry{{"web", ": x", 1}}},
	{name: "shell syntax untouched", input: `worker: bundle exec sidekiq -c ${SIDEKIQ_CONCURRENCY:-5} 2>&1 | tee "a b" # c` + "\n",
		want: []Entry{{"worker", `bundle exec sidekiq -c ${SIDEKIQ_CONCURRENCY:-5} 2>&1 | tee "a b" # c`, 1}}},
	{name: "unicode command", input: "greet: echo 'héllo — 你好 🚀'\n",
		want: []Entry{{"greet", "echo 'héllo — 你好 🚀'", 1}}},
	{name: "comments and blank lines", input: "# top\n\n  \t\nweb: a\n   # indented comment\n#web: b\n\nworker: c\n",
		want: []Entry{{"web", "a", 4}, {"worker", "c", 8}}},
	{name: "crlf", input: "web: a\r\nworker: b\r\n",
		want: []Entry{{"web", "a", 1}, {"worker", "b", 2}}},
	{name: "crlf blank and comment lines", input: "# x\r\n\r\nweb: a\r\n",
		want: []Entry{{"web", "a", 3}}},
	{name: "last line without newline", input: "web: a\nworker: b",
		want: []Entry{{"web", "a", 1}, {"worker", "b", 2}}},
	{name: "trailing blanks trimmed", input: "web: a b  \t \n",
		want: []Entry{{"web", "a b", 1}}},
	{name: "byte order mark", input: "\uFEFFweb: a\n",
		want: []Entry{{"web", "a", 1}}},
	{name: "byte order mark then comment", input: "\uFEFF# c\nweb: a\n",
		want: []Entry{{"web", "a", 2}}},
	{name: "indented line accepted", input: "  web: a\n\tworker: b\n",
		want: []Entry{{"web", "a", 1}, {"worker", "b", 2}}},
	{name: "invalid utf-8 in a comment is ignored", input: "# \xff\xfe\nweb: a\n",
		want: []Entry{{"web", "a", 2}}},

	// What foreman silently drops.
	{name: "missing colon", input: "# x\n\nweb ./server\n",
		err: `Procfile:3: not a process line: "web ./server" (want "name: command")`},
	{name: "missing colon, colon later", input: "worker bundle exec rake jobs:work\n",
		err: `Procfile:1: not a process line: "worker bundle exec rake jobs:work" (want "name: command")`},
	{name: "single word", input: "web\n",
		err: `Procfile:1: not a process line: "web" (want "name: command")`},
	{name: "empty command", input: "web:\n",
		err: `Procfile:1: web has no command: "web:" (want "web: command")`},
	{name: "blank command", input: "web: \t \r\n",
		err: `Procfile:1: web has no command: "web:" (want "web: command")`},
	{name: "invalid name", input: "my.web: x\n",
		err: `Procfile:1: invalid process name "my.web": "my.web: x" (a name may only contain letters, digits, "_" and "-", like "my-web")`},
	{name: "invalid name, nothing to suggest", input: "☃: x\n",
		err: `Procfile:1: invalid process name "☃": "☃: x" (a name may only contain letters, digits, "_" and "-")`},
	{name: "invalid name, run of characters", input: "web..1!: x\n",
		err: `Procfile:1: invalid process name "web..1!": "web..1!: x" (a name may only contain letters, digits, "_" and "-", like "web-1")`},
	{name: "missing name", input: ": ./server\n",
		err: `Procfile:1: missing process name: ": ./server" (want "name: command")`},
	{name: "space before colon", input: "web : ./server\n",
		err: `Procfile:1: space before ":": "web : ./server" (want "web: ./server")`},
	{name: "space before colon, no command", input: "web\t:\n",
		err: `Procfile:1: space before ":": "web\t:" (want "web: command")`},
	{name: "duplicate", input: "# x\nweb: a\nworker: b\n\nweb: c\n",
		err: `Procfile:5: duplicate process "web" (first defined at line 2)`},
	{name: "duplicate twice", input: "web: a\nweb: b\nweb: c\n",
		err: "Procfile:2: duplicate process \"web\" (first defined at line 1)\n" +
			"Procfile:3: duplicate process \"web\" (first defined at line 1)"},
	{name: "empty file", input: "",
		err: `Procfile:1: no processes defined (add a line like "web: ./server")`},
	{name: "only comments and blanks", input: "# a\n\n   \n# b\n",
		err: `Procfile:1: no processes defined (add a line like "web: ./server")`},
	{name: "only a byte order mark", input: "\uFEFF",
		err: `Procfile:1: no processes defined (add a line like "web: ./server")`},
	{name: "NUL in name", input: "w\x00b: x\n",
		err: `Procfile:1: line contains a NUL byte: "w\x00b: x" (remove it; a command cannot hold one)`},
	{name: "NUL in command", input: "web: a\x00b\n",
		err: `Procfile:1: line contains a NUL byte: "web: a\x00b" (remove it; a command cannot hold one)`},
	{name: "invalid utf-8 in name", input: "w\xffb: x\n",
		err: `Procfile:1: line is not valid UTF-8: "w\xffb: x" (save the file as UTF-8)`},
	{name: "invalid utf-8 in command", input: "web: caf\xe9\n",
		err: `Procfile:1: line is not valid UTF-8: "web: caf\xe9" (save the file as UTF-8)`},
	{name: "byte order mark not at start", input: "web: a\n\uFEFFworker: b\n",
		err: `Procfile:2: invalid process name "\ufeffworker": "\ufeffworker: b" (a name may only contain letters, digits, "_" and "-", like "worker")`},
	{name: "line wrapped in quotes", input: "\"web: ./server\"\n",
		err: `Procfile:1: line is wrapped in quotes: "\"web: ./server\"" (remove the quotes: want "web: ./server")`},
	{name: "line wrapped in single quotes, quotes inside", input: "'web: echo \"hi\" '\n",
		err: `Procfile:1: line is wrapped in quotes: "'web: echo \"hi\" '" (remove the quotes: want "web: echo \"hi\"")`},
	{name: "name in quotes", input: "\"web\": \"./server\"\n",
		err: `Procfile:1: process name in quotes: "\"web\": \"./server\"" (remove the quotes: want "web: \"./server\"")`},
	{name: "opening quote alone", input: "\"web: ./server\n",
		err: `Procfile:1: line starts with a quote: "\"web: ./server" (remove it: want "web: ./server")`},
	{name: "quotes around what is no process line either", input: "\"my.web: x\"\n\"\n'web'\n",
		err: "Procfile:1: invalid process name \"\\\"my.web\": \"\\\"my.web: x\\\"\" (a name may only contain letters, digits, \"_\" and \"-\", like \"my-web\")\n" +
			"Procfile:2: not a process line: \"\\\"\" (want \"name: command\")\n" +
			"Procfile:3: not a process line: \"'web'\" (want \"name: command\")"},
	{name: "long line quoted short", input: "web " + strings.Repeat("x", 100) + "\n",
		err: `Procfile:1: not a process line: "web ` + strings.Repeat("x", 53) + `"... (want "name: command")`},
	{name: "long unicode line cut on a rune", input: strings.Repeat("é", 100) + "\n",
		err: `Procfile:1: not a process line: "` + strings.Repeat("é", 57) + `"... (want "name: command")`},
	{name: "every error, in line order", input: "web ./server\nweb: a\nweb:\nmy.web: b\nweb: c\n",
		err: "Procfile:1: not a process line: \"web ./server\" (want \"name: command\")\n" +
			"Procfile:3: web has no command: \"web:\" (want \"web: command\")\n" +
			"Procfile:4: invalid process name \"my.web\": \"my.web: b\" (a name may only contain letters, digits, \"_\" and \"-\", like \"my-web\")\n" +
			"Procfile:5: duplicate process \"web\" (first defined at line 2)"},
	{name: "errors only: no extra empty-file error", input: "web ./server\n",
		err: `Procfile:1: not a process line: "web ./server" (want "name: command")`},

	// Name length: what mhrun export can make a Kubernetes name of.
	{name: "name of 63 characters", input: strings.Repeat("n", 63) + ": x\n",
		want: []Entry{{strings.Repeat("n", 63), "x", 1}}},
	{name: "name of 64 characters", input: strings.Repeat("n", 64) + ": x\n",
		err: `Procfile:1: process name is 64 characters long: "` + strings.Repeat("n", 57) + `"... (want at most 63: mhrun export makes it a Kubernetes container name and part of systemd unit names)`},
	{name: "name of 100000 characters", input: "web: a\n" + strings.Repeat("n", 100000) + ": x\n",
		err: `Procfile:2: process name is 100000 characters long: "` + strings.Repeat("n", 57) + `"... (want at most 63: mhrun export makes it a Kubernetes container name and part of systemd unit names)`},

	// Carriage returns: CRLF and a trailing CR are line ends; a CR anywhere
	// else (CR-only old Mac files, a stray ^M) is refused, not read as one
	// line as foreman would.
	{name: "doubled CR before LF", input: "web: a\r\r\nworker: b\r\n",
		want: []Entry{{"web", "a", 1}, {"worker", "b", 2}}},
	{name: "CR-only line ends", input: "web: a\rworker: b\r",
		err: `Procfile:1: carriage return (\r) inside a line: "web: a\rworker: b" (save the file with LF or CRLF line ends; CR alone does not end a line)`},
	{name: "CR-only file starting with a comment", input: "# dev\rweb: a\rworker: b\r",
		err: `Procfile:1: carriage return (\r) inside a line: "# dev\rweb: a\rworker: b" (save the file with LF or CRLF line ends; CR alone does not end a line)`},
	{name: "stray CR in a command", input: "web: a\nworker: b\rc\n",
		err: `Procfile:2: carriage return (\r) inside a line: "worker: b\rc" (save the file with LF or CRLF line ends; CR alone does not end a line)`},
	{name: "CR at a line's start", input: "web: a\n\rworker: b\n",
		err: `Procfile:2: carriage return (\r) inside a line: "\rworker: b" (save the file with LF or CRLF line ends; CR alone does not end a line)`},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tc.input), "Procfile")
			if tc.err != "" {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want error\n%s", tc.input, got, tc.err)
				}
				if err.Error() != tc.err {
					t.Fatalf("Parse(%q) error:\n%s\nwant:\n%s", tc.input, err, tc.err)
				}
				if got != nil {
					t.Errorf("Parse(%q) returned entries %v with an error", tc.input, got)
				}
				var list ErrorList
				if !errors.As(err, &list) || len(list) != strings.Count(tc.err, "\n")+1 {
					t.Errorf("error is %T with %d items, want ErrorList of one per line", err, len(list))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.input, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Parse(%q) =\n%v\nwant\n%v", tc.input, got, tc.want)
			}
		})
	}
}

func TestSyntaxError(t *testing.T) {
	e := &SyntaxError{File: "dir/Procfile.dev", Line: 12, Msg: "web has no command"}
	if got, want := e.Error(), "dir/Procfile.dev:12: web has no command"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestErrorListUnwrap(t *testing.T) {
	_, err := Parse(strings.NewReader("a: x\nb c\na: y\n"), "P")
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("errors.As(%v, *SyntaxError) = false", err)
	}
	if se.File != "P" || se.Line != 2 || se.Msg != `not a process line: "b c" (want "name: command")` {
		t.Errorf("first SyntaxError = %+v", *se)
	}
	list := err.(ErrorList)
	if errs := list.Unwrap(); len(errs) != 2 || errs[1] != error(list[1]) {
		t.Errorf("Unwrap() = %v", errs)
	}
}

// Lines of any length are read; a command is accepted up to what exec
// takes in one argument, counting the "exec " that ShellCommand adds.
func TestParseLongLine(t *testing.T) {
	cmd := "./run " + strings.Repeat("x", MaxArgLen-len("exec ./run "))
	input := "# " + strings.Repeat("c", 1<<20) + "\nweb: " + cmd + "\r\nworker: b"
	got, err := Parse(strings.NewReader(input), "Procfile")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{"web", cmd, 2}, {"worker", "b", 3}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("long line: got %d entries, first command %d bytes", len(got), len(got[0].Command))
	}

	// Regression: a command exec can never take passed, and every start failed.
	for _, long := range []string{cmd + "x", "a=1; " + strings.Repeat("x", MaxArgLen), strings.Repeat("x", 1<<20)} {
		_, err = Parse(strings.NewReader("web: "+long+"\n"), "Procfile")
		want := fmt.Sprintf("Procfile:1: the command of web is %d bytes, more than exec takes in one argument (128 KiB): move it into a script and run that", len(long))
		if err == nil || err.Error() != want {
			t.Errorf("command of %d bytes: %v\nwant %s", len(long), err, want)
		}
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Parse(iotest.ErrReader(boom), "Procfile")
	if !errors.Is(err, boom) || err.Error() != "read Procfile: boom" {
		t.Fatalf("Parse(failing reader) = %v, want read Procfile: boom", err)
	}
	// A reader that fails after the first line: no entries, only the error.
	r := iotest.DataErrReader(strings.NewReader("web: a\n"))
	if got, err := Parse(r, "Procfile"); err != nil || len(got) != 1 {
		t.Fatalf("Parse(DataErrReader) = %v, %v", got, err)
	}
}

// foremanLine is foreman's own pattern (lib/foreman/procfile.rb), with Ruby's
// \s spelled out: Go's \s lacks \v.
var foremanLine = regexp.MustCompile(`^([A-Za-z0-9_-]+):[ \t\n\v\f\r]*(.+)$`)

// foremanParse is what foreman does with a Procfile: CRLF becomes LF, the
// text is split into lines, and each line that matches foremanLine is a
// process; every other line is dropped.
func foremanParse(data string) [][2]string {
	var out [][2]string
	for line := range strings.SplitSeq(strings.ReplaceAll(data, "\r\n", "\n"), "\n") {
		if m := foremanLine.FindStringSubmatch(line); m != nil {
			out = append(out, [2]string{m[1], m[2]})
		}
	}
	return out
}

func pairs(entries []Entry) [][2]string {
	var out [][2]string
	for _, e := range entries {
		out = append(out, [2]string{e.Name, e.Command})
	}
	return out
}

// golden prints entries as the .golden files hold them: name, a tab, the
// command, one entry a line.
func golden(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Name + "\t" + e.Command + "\n")
	}
	return b.String()
}

// TestGolden parses the real-world Procfiles in testdata and compares each
// with its .golden listing, and with what foreman makes of the same file.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.Procfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.Procfile: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			entries, err := Parse(bytes.NewReader(data), file)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := pairs(entries), foremanParse(string(data)); !reflect.DeepEqual(got, want) {
				t.Errorf("differs from foreman:\n got  %q\n want %q", got, want)
			}
			got := golden(entries)
			goldenFile := strings.TrimSuffix(file, ".Procfile") + ".golden"
			if *update {
				if err := os.WriteFile(goldenFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenFile)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", file, goldenFile, got, want)
			}
		})
	}
}
