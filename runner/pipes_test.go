package runner

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mhrun/socket"
)

// With output=pipes, stdout lines are marked "|" and stderr lines "!",
// a line written in pieces stays one line, a last line without newline is
// kept on each stream, and the child has no terminal.
func TestPipesMarkStderr(t *testing.T) {
	r, _ := runFormation(t, map[string]string{
		"Procfile": `p: [ -t 1 ] || echo no terminal; echo to err >&2; printf 'in '; echo pieces; ` +
			`printf 'err ' >&2; echo pieces >&2; printf 'last out'; printf 'last err' >&2` + "\n",
		"Procfile.policy": "p: output=pipes restart=never\n",
	})
	if code := r.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, r.out.String())
	}
	out := r.out.String()
	for _, want := range []string{
		"p.1   | no terminal\n", "p.1   ! to err\n", "p.1   | in pieces\n", "p.1   ! err pieces\n",
		"p.1   | last out\n", "p.1   ! last err\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "p.1   "); n != 6 {
		t.Errorf("%d lines of p.1, want 6:\n%s", n, out)
	}
}

// A child that writes fast on both streams then exits loses no line: the
// run ends once both pipes reached their end.
func TestPipesFastWriterThenExit(t *testing.T) {
	r, _ := runFormation(t, map[string]string{
		"Procfile":        "fast: seq 1 100000 >&2 & seq 1 200000; wait\n",
		"Procfile.policy": "fast: output=pipes restart=never\n",
	})
	if code := r.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	out := r.out.String()
	outs := regexp.MustCompile(`(?m)^fast\.1 \| (\d+)$`).FindAllStringSubmatch(out, -1)
	errs := regexp.MustCompile(`(?m)^fast\.1 ! (\d+)$`).FindAllStringSubmatch(out, -1)
	if len(outs) != 200000 || len(errs) != 100000 {
		t.Fatalf("%d stdout lines, %d stderr lines; want 200000 and 100000", len(outs), len(errs))
	}
	for i, m := range outs {
		if m[1] != itoa(i+1) {
			t.Fatalf("stdout line %d is %q", i+1, m[1])
		}
	}
	for i, m := range errs {
		if m[1] != itoa(i+1) {
			t.Fatalf("stderr line %d is %q", i+1, m[1])
		}
	}
}

// `mhrun connect` to an output=pipes instance is refused in one line, and
// `mhrun logs` shows the stderr mark.
func TestPipesConnectRefusedLogsMarked(t *testing.T) {
	path := filepath.Join(shortTempDir(t), "s")
	r, _ := runFormationWith(t, Options{Socket: path, Control: true}, map[string]string{
		"Procfile":        "w: echo up; echo oops >&2; exec sleep 1000\n",
		"Procfile.policy": "w: output=pipes\n",
	})
	waitFor(t, r.out, "w.1   ! oops")
	c, err := socket.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = socket.Call(c, socket.Request{Cmd: socket.CmdAttach, Args: []string{"w"}})
	want := "w.1 has output=pipes: no terminal to connect to; follow its output with `mhrun logs -f w.1`, or set output=pty"
	if err == nil || err.Error() != want || strings.Contains(err.Error(), "\n") {
		t.Errorf("connect: %v\nwant %s", err, want)
	}

	l, err := socket.Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := socket.Call(l, socket.Request{Cmd: socket.CmdLogs, Args: []string{"w"}, Lines: 10}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		typ, p, err := l.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if typ == socket.FrameEnd {
			break
		}
		if typ == socket.FrameData {
			_, line, _ := strings.Cut(strings.TrimSuffix(string(p), "\n"), " ")
			got = append(got, line)
		}
	}
	if strings.Join(got, "\n") != "w.1 | up\nw.1 ! oops" && strings.Join(got, "\n") != "w.1 ! oops\nw.1 | up" {
		t.Errorf("logs gave %q", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// ready=log matches stderr's lines too, each pipe's lines whole: a line
// begun on stdout and one on stderr do not make one line.
func TestPipesReadyLogOnStderr(t *testing.T) {
	r, _ := runFormation(t, map[string]string{
		"Procfile":        "w: printf 'list' ; printf 'ening no\\n' >&2; echo listening on 80 >&2; exec sleep 1000\n",
		"Procfile.policy": "w: output=pipes ready=log:^listening\n",
	})
	waitFor(t, r.out, "w.1 is ready (log:^listening)")
	out := r.out.String()
	if !strings.Contains(out, "w.1   ! ening no\n") || !strings.Contains(out, "w.1   ! listening on 80\n") {
		t.Errorf("stderr lines not as written:\n%s", out)
	}
}
