package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 13: check and start refuse every input that can never work, in one
// line each with file:line where there is a file, and exit 1; never accept
// it, hang on it, or start anything.
func TestCheckAndStartRefuseInputsThatCannotWork(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		args  []string
		want  string
	}{
		{"cron that never fires", map[string]string{"Procfile.policy": "digest: schedule=\"0 0 30 2 *\"\n"}, nil,
			`Procfile.policy:1: schedule="0 0 30 2 *": never fires`},
		{"cron-restart every 0s", map[string]string{"Procfile.policy": "\nweb: cron-restart=\"@every 0s\"\n"}, nil,
			`Procfile.policy:2: cron-restart="@every 0s": @every 0s: want an interval of at least 1s`},
		{"NUL in an env value", map[string]string{".env": "A=1\nTOKEN=ab\x00c\n"}, nil,
			".env:2: TOKEN holds a NUL byte"},
		{"env value over 128 KiB", map[string]string{"big.env": "BLOB=" + strings.Repeat("x", 128<<10) + "\n"}, []string{"-e", "big.env"},
			"big.env:1: BLOB=... is 131077 bytes, more than exec takes for one variable (128 KiB)"},
		{"command over 128 KiB", map[string]string{"Procfile": "web: ./web " + strings.Repeat("x", 128<<10) + "\n"}, nil,
			"Procfile:1: the command of web is 131078 bytes, more than exec takes in one argument"},
		{"CR-only Procfile", map[string]string{"Procfile": "web: ./web\rdigest: ./digest\r"}, nil,
			`Procfile:1: carriage return (\r) inside a line`},
		{"CR-only policy", map[string]string{"Procfile.policy": "web: scale=2\rdigest: optional\r"}, nil,
			`Procfile.policy:1: carriage return (\r) inside a line`},
		{"name of 100000 characters", map[string]string{"Procfile": strings.Repeat("n", 100000) + ": x\n"}, nil,
			"Procfile:1: process name is 100000 characters long"},
		{"scale=60000", map[string]string{"Procfile.policy": "web: scale=60000\n"}, nil,
			`Procfile.policy:1: scale="60000": want at most 1000 instances`},
		{"-m web=60000", nil, []string{"-m", "web=60000"}, "scale web=60000: want at most 1000 instances"},
		{"-p 70000", nil, []string{"-p", "70000"}, "-p 70000: want a port number 1..65535"},
		{"singleton lock in a missing dir", map[string]string{"Procfile.policy": "digest: singleton=/nonexistent/dir/lock\n"}, nil,
			"Procfile.policy:1: digest: singleton=/nonexistent/dir/lock: directory /nonexistent/dir does not exist"},
		{"policy is a directory", map[string]string{"Procfile.policy/x": ""}, nil,
			"read Procfile.policy: is a directory, not a file (want a policy file"},
		{"UTF-16 Procfile (PowerShell's >)", map[string]string{"Procfile": "\xff\xfew\x00e\x00b\x00:\x00 \x00x\x00\n\x00"}, nil,
			"Procfile: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"},
		{"Procfile line in quotes", map[string]string{"Procfile": "\"web: ./web\"\n"}, nil,
			`Procfile:1: line is wrapped in quotes: "\"web: ./web\"" (remove the quotes: want "web: ./web")`},
		{"Procfile is /dev/zero", nil, []string{"-f", "/dev/zero"}, "read /dev/zero: is a device, not a regular file"},
		{"Procfile is a FIFO", nil, []string{"-f", "fifo"}, "read fifo: is a named pipe (FIFO), not a regular file"},
		{"env file is a FIFO", nil, []string{"-e", "fifo"}, "fifo: cannot read env file: is a named pipe (FIFO), not a regular file"},
	}
	for _, tt := range tests {
		files := map[string]string{"Procfile": "web: ./web\ndigest: ./digest\n"}
		for k, v := range tt.files {
			files[k] = v
		}
		dir := writeFiles(t, files)
		if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"check", "start"} {
			wd, _ := os.Getwd()
			if err := os.Chdir(dir); err != nil {
				t.Fatal(err)
			}
			type result struct {
				stderr string
				code   int
			}
			done := make(chan result, 1)
			go func() {
				var stdout, stderr bytes.Buffer
				code := Run(context.Background(), append([]string{cmd}, tt.args...), &stdout, &stderr)
				done <- result{stderr.String(), code}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(20 * time.Second):
				os.Chdir(wd)
				t.Fatalf("%s: mhrun %s did not return", tt.name, cmd)
			}
			os.Chdir(wd)
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if r.code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "mhrun: "+tt.want) {
				t.Errorf("%s: mhrun %s exit %d, stderr:\n%s\nwant one line starting mhrun: %s", tt.name, cmd, r.code, r.stderr, tt.want)
			}
			for _, left := range []string{".mhrun.sock", ".mhrun.sock.lock"} {
				if _, err := os.Lstat(filepath.Join(dir, left)); err == nil {
					t.Errorf("%s: mhrun %s left %s", tt.name, cmd, left)
				}
			}
		}
	}
	if _, err := os.Stat("/nonexistent"); err == nil {
		t.Error("/nonexistent was made")
	}
}

// Issue 14: the policy's env.NAME variables are shown by check, in the
// effective policy line and in --json.
func TestCheckShowsProcessEnv(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: sh -c 'exec sleep 1'\nworker: sh -c true\n",
		"Procfile.policy": "*: env.NODE_ENV=production\nweb: env.HOST=127.0.0.1 env.GREETING=\"hello world\" env.NODE_ENV=development\n",
	})
	out, stderr, code := runIn(t, "check", "-d", dir)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		`grace=5s env.GREETING="hello world" env.HOST=127.0.0.1 env.NODE_ENV=development` + "\n",
		"grace=5s env.NODE_ENV=production\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	out, _, code = runIn(t, "check", "-d", dir, "--json")
	var v checkView
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("json: %v (exit %d)\n%s", err, code, out)
	}
	want := map[string]string{"HOST": "127.0.0.1", "GREETING": "hello world", "NODE_ENV": "development"}
	if !maps.Equal(v.Processes[0].Env, want) || !maps.Equal(v.Processes[1].Env, map[string]string{"NODE_ENV": "production"}) {
		t.Errorf("json env: web %q worker %q", v.Processes[0].Env, v.Processes[1].Env)
	}
	if v.Warnings == nil || len(v.Warnings) != 0 || !strings.Contains(out, `"warnings": []`) {
		t.Errorf("json warnings %q, want []", v.Warnings)
	}
}

// Issue 14: a command whose program is not installed passed check, then
// exit 127 was retried for minutes. check warns, one line a process on
// stderr, and still succeeds: PATH may differ at run time.
func TestCheckWarnsOfMissingPrograms(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile": "web: sh -c 'exec sleep 1'\n" +
			"voice: VOICE=1 exec mhrun-test-voice-server --port $PORT\n" +
			"tunnel: mhrun-test-cloudflared tunnel run\n" +
			"setup: cd /tmp && mhrun-test-not-checked\n",
		"Procfile.policy": "tunnel: optional\n",
	})
	out, stderr, code := runIn(t, "check", "-d", dir)
	want := "mhrun: warning: voice: mhrun-test-voice-server not found on PATH: install it, add its directory to PATH, or mark voice optional in Procfile.policy\n" +
		"mhrun: warning: tunnel: mhrun-test-cloudflared not found on PATH: install it or add its directory to PATH (tunnel is optional: the others run without it)\n"
	if code != 0 || stderr != want || !strings.HasPrefix(out, "valid: 4 processes") {
		t.Errorf("exit %d, stderr:\n%s\nwant:\n%s\nstdout:\n%s", code, stderr, want, out)
	}
	out, stderr, code = runIn(t, "check", "-d", dir, "--json")
	var v checkView
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("json: %v (exit %d)\n%s", err, code, out)
	}
	if len(v.Warnings) != 2 || "mhrun: warning: "+v.Warnings[0]+"\n"+"mhrun: warning: "+v.Warnings[1]+"\n" != want || stderr != want {
		t.Errorf("json warnings %q, stderr %q", v.Warnings, stderr)
	}
}

// Issue 17: with no policy file, check said "policy Procfile.policy" as if
// there were one. It says there is none and what that means; --json says
// has_policy false.
func TestCheckSaysThereIsNoPolicy(t *testing.T) {
	dir := writeFiles(t, map[string]string{"Procfile": "web: sh -c 'exec sleep 1'\n"})
	out, stderr, code := runIn(t, "check", "-d", dir)
	want := "valid: 1 process from " + filepath.Join(dir, "Procfile") + ", policy none (no " + filepath.Join(dir, "Procfile.policy") + ": every process gets the defaults), env none, base port "
	if code != 0 || stderr != "" || !strings.HasPrefix(out, want) {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant it to start:\n%s", code, stderr, out, want)
	}
	out, _, _ = runIn(t, "check", "-d", dir, "--json")
	var v checkView
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.HasPolicy {
		t.Errorf("json: %v, has_policy %v\n%s", err, v.HasPolicy, out)
	}

	os.WriteFile(filepath.Join(dir, "Procfile.policy"), []byte("web: grace=1s\n"), 0o644)
	out, _, _ = runIn(t, "check", "-d", dir)
	want = "valid: 1 process from " + filepath.Join(dir, "Procfile") + ", policy " + filepath.Join(dir, "Procfile.policy") + ", env none, base port "
	if !strings.HasPrefix(out, want) {
		t.Errorf("stdout:\n%s\nwant it to start:\n%s", out, want)
	}
	out, _, _ = runIn(t, "check", "-d", dir, "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.HasPolicy {
		t.Errorf("json: %v, has_policy %v\n%s", err, v.HasPolicy, out)
	}
}

// Issue 16: check shows output=pipes in the effective policy and says what
// it means.
func TestCheckExplainsOutputPipes(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: sh -c 'exec sleep 1'\nworker: sh -c true\n",
		"Procfile.policy": "worker: output=pipes\nweb: output=pty\n",
	})
	out, stderr, code := runIn(t, "check", "-d", dir)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"grace=5s output=pipes\n",
		"\noutput=pipes (stdout and stderr are two pipes, not a terminal):\nworker: stderr lines are marked with ! (worker.1 ! text)",
		"mhrun connect is refused (no terminal to attach to)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "web: stderr") || strings.Count(out, "output=") != 2 {
		t.Errorf("web has the default, output=pty, which check leaves unsaid:\n%s", out)
	}
	_, stderr, code = runIn(t, "check", "-d", writeFiles(t, map[string]string{
		"Procfile": "web: x\n", "Procfile.policy": "web: output=pipe\n",
	}))
	if want := `Procfile.policy:1: output="pipe": want pty (one terminal, the default) or pipes (stdout and stderr apart, no terminal) (did you mean "pipes"?)`; code != 1 || !strings.Contains(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q, want %s", code, stderr, want)
	}
}

// Issue 16: check explains socket=: where mhrun listens, what the
// instances get, and when LISTEN_PID cannot be the program's pid.
func TestCheckExplainsSocket(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"Procfile":        "web: sh -c 'exec sleep 1'\napi: cd /tmp && sleep 1\n",
		"Procfile.policy": "web: scale=2 socket=4321\napi: socket=0.0.0.0:4322\n",
	})
	out, stderr, code := runIn(t, "check", "-d", dir)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"4321 (shared)",
		"scale=2 restart=on-failure backoff=1s..1m stable=10s max-restarts=10 ready-timeout=30s stop-signal=TERM grace=5s socket=4321\n",
		"\ncluster mode:\nweb: mhrun listens on 127.0.0.1:4321 and hands the socket to every instance as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=web, LISTEN_PID, $PORT=4321)",
		"api: mhrun listens on 0.0.0.0:4322",
		"api: the command does not end in an exec'd program: LISTEN_PID is the shell's pid",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	out, _, code = runIn(t, "check", "-d", dir, "--json")
	var v checkView
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 {
		t.Fatalf("json: %v (exit %d)\n%s", err, code, out)
	}
	if p := v.Processes[0]; p.Policy["socket"] != "4321" || len(p.Instances) != 2 || p.Instances[1].Port != 4321 {
		t.Errorf("json: %+v", p)
	}
	dir = writeFiles(t, map[string]string{
		"Procfile":        "web: ./web\n",
		"Procfile.policy": "web: socket=4321 balance=4322\n",
	})
	_, stderr, code = runIn(t, "check", "-d", dir)
	if want := "Procfile.policy:1: web: socket and balance do not go together"; code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
	}
}
