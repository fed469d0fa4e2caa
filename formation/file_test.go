package formation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"mhrun/policy"
)

// inputFiles makes one of each kind of path an input flag may name, in a
// fresh dir, and returns the dir.
func inputFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Procfile", []byte("web: ./server\n"))
	write("max", append(bytes.Repeat([]byte("# padding\n"), MaxFileSize/10), bytes.Repeat([]byte("#"), MaxFileSize%10)...))
	write("big", bytes.Repeat([]byte("# padding\n"), MaxFileSize/10+1))
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"link": "Procfile", "fifo-link": "fifo", "zero-link": "/dev/zero", "dangling": "nowhere"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	// A socket path must stay short; the test dir may not be.
	sock := filepath.Join(dir, "sock")
	if len(sock) < 100 {
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}
	return dir
}

// TestReadFile: only regular files are read, at most MaxFileSize bytes of
// them; a FIFO never blocks, a device never grows memory.
func TestReadFile(t *testing.T) {
	dir := inputFiles(t)
	tests := []struct {
		path string
		want string // error suffix after "read PATH: " or "open PATH: ", "" = reads
	}{
		{"Procfile", ""},
		{"link", ""},
		{"max", ""},
		{"/proc/self/status", ""}, // regular, though its stat says 0 bytes
		{"big", "is larger than 1 MiB, the most mhrun reads from an input file"},
		{"dir", "is a directory, not a file"},
		{"fifo", "is a named pipe (FIFO), not a regular file"},
		{"fifo-link", "is a named pipe (FIFO), not a regular file"},
		{"/dev/zero", "is a device, not a regular file"},
		{"zero-link", "is a device, not a regular file"},
		{"/dev/null", "is a device, not a regular file"},
		{"sock", "is a socket, not a regular file"},
		{"dangling", "no such file or directory"},
		{"missing", "no such file or directory"},
	}
	for _, tt := range tests {
		path := tt.path
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if _, err := os.Lstat(path); err != nil && tt.path != "missing" {
			t.Logf("%s: %v; skipped", tt.path, err)
			continue
		}
		type result struct {
			data []byte
			err  error
		}
		done := make(chan result, 1)
		go func() {
			data, err := ReadFile(path)
			done <- result{data, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadFile(%s) blocked", tt.path)
		}
		if tt.want == "" {
			if r.err != nil || len(r.data) == 0 || len(r.data) > MaxFileSize {
				t.Errorf("ReadFile(%s) = %d bytes, %v", tt.path, len(r.data), r.err)
			}
			continue
		}
		if r.err == nil {
			t.Errorf("ReadFile(%s) read %d bytes, want an error ending %q", tt.path, len(r.data), tt.want)
			continue
		}
		msg := r.err.Error()
		if !strings.HasSuffix(msg, ": "+tt.want) || strings.Count(msg, path) != 1 {
			t.Errorf("ReadFile(%s) = %q, want the path once, then %q", tt.path, msg, tt.want)
		}
	}
}

// Regression: -f on a directory said "read DIR: read DIR: is a directory";
// on a FIFO it blocked forever; on /dev/zero it read until memory ran out.
// --policy on a directory said "read policy: read DIR: is a directory". The
// Procfile and the policy are read as every input file, and their errors
// are one line naming the file once, with what would be right.
func TestReadProcfileAndPolicy(t *testing.T) {
	dir := inputFiles(t)
	procHint := ` (want a Procfile with lines like "web: ./server", or pass -f FILE)`
	polHint := ` (want a policy file with lines like "web: scale=2", or pass --policy FILE)`
	for name, want := range map[string]string{
		"dir":       "read PATH: is a directory, not a file",
		"fifo":      "read PATH: is a named pipe (FIFO), not a regular file",
		"fifo-link": "read PATH: is a named pipe (FIFO), not a regular file",
		"zero-link": "read PATH: is a device, not a regular file",
		"big":       "read PATH: is larger than 1 MiB, the most mhrun reads from an input file",
	} {
		path := filepath.Join(dir, name)
		want = strings.Replace(want, "PATH", path, 1)
		done := make(chan [2]error, 1)
		go func() {
			_, perr := readProcfile(path)
			_, _, _, polErr := readPolicy(path)
			done <- [2]error{perr, polErr}
		}()
		var errs [2]error
		select {
		case errs = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("reading %s blocked", name)
		}
		if err := errs[0]; err == nil || err.Error() != want+procHint {
			t.Errorf("readProcfile(%s) = %v\nwant %s", name, err, want+procHint)
		}
		if err := errs[1]; err == nil || err.Error() != want+polHint {
			t.Errorf("readPolicy(%s) = %v\nwant %s", name, err, want+polHint)
		}
	}
	if got, err := readProcfile(filepath.Join(dir, "link")); err != nil || len(got) != 1 {
		t.Errorf("readProcfile(symlink to a Procfile) = %v, %v", got, err)
	}
	if _, _, found, err := readPolicy(filepath.Join(dir, "max")); err != nil || !found {
		t.Errorf("readPolicy(1 MiB of comments) = %v, %v", found, err)
	}

	missing := filepath.Join(dir, "missing")
	_, err := readProcfile(missing)
	want := "open " + missing + `: no such file or directory (create one with lines like "web: ./server", or pass -f FILE)`
	if err == nil || err.Error() != want {
		t.Errorf("readProcfile(missing) = %v, want %s", err, want)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readProcfile(missing) error does not wrap os.ErrNotExist")
	}

	path := filepath.Join(dir, "Procfile.dev")
	if err := os.WriteFile(path, []byte("web: a\nweb b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = readProcfile(path)
	want = path + `:2: not a process line: "web b" (want "name: command")`
	if err == nil || err.Error() != want {
		t.Errorf("readProcfile(bad) = %v, want %s", err, want)
	}
}

// A missing policy is no error: an empty policy, every process with the
// defaults, that still names the file in messages.
func TestReadPolicyMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "Procfile.policy")
	pf, _, found, err := readPolicy(path)
	if err != nil || found {
		t.Fatalf("readPolicy(missing) = %v, %v", found, err)
	}
	if pf.Name() != path {
		t.Errorf("name %q, want %q", pf.Name(), path)
	}
	m, err := pf.Resolve([]string{"web"})
	if err != nil || !reflect.DeepEqual(m["web"].Fields(), policy.Default().Fields()) {
		t.Errorf("missing file resolves to %+v, %v; want defaults", m, err)
	}
	if err := os.WriteFile(path, []byte("web: scale=2\nbad: grace=5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := readPolicy(path); err == nil || err.Error() != path+`:2: grace="5": missing unit, e.g. 5s` {
		t.Errorf("readPolicy(bad) = %v", err)
	}
}

// utf16LE is s as Windows PowerShell's > writes it: a byte order mark
// (FF FE), then each UTF-16 code unit little-endian.
func utf16LE(s string, bom bool) []byte {
	var b []byte
	if bom {
		b = []byte{0xFF, 0xFE}
	}
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return b
}

// Issue 17: a Procfile, policy or env file in UTF-16 (PowerShell's >) was
// refused with a NUL-byte error for every line. It gets one line naming
// the file that says to save it as UTF-8; a UTF-8 byte order mark (what
// editors on Windows write) is accepted in each.
func TestLoadUTF16AndByteOrderMarks(t *testing.T) {
	const procfile, pol, env = "web: ./web\nworker: ./worker\n", "web: scale=2\n", "GREETING=hi\n"
	be := func(s string) []byte {
		b := []byte{0xFE, 0xFF}
		for _, u := range utf16.Encode([]rune(s)) {
			b = binary.BigEndian.AppendUint16(b, u)
		}
		return b
	}
	tests := []struct {
		name  string
		files map[string][]byte
		args  []string // -e files
		want  string   // the whole error; "" = loads
	}{
		{"Procfile", map[string][]byte{"Procfile": utf16LE(procfile, true)}, nil,
			"Procfile: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"},
		{"Procfile without a byte order mark", map[string][]byte{"Procfile": utf16LE(procfile, false)}, nil,
			"Procfile: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"},
		{"Procfile big-endian", map[string][]byte{"Procfile": be(procfile)}, nil,
			"Procfile: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"},
		{"policy", map[string][]byte{"Procfile.policy": utf16LE(pol, true)}, nil,
			"Procfile.policy: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"},
		{".env", map[string][]byte{".env": utf16LE(env, true)}, nil,
			".env: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"},
		{"-e file", map[string][]byte{"prod.env": utf16LE(env, true)}, []string{"prod.env"},
			"prod.env: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"},
		{"every file", map[string][]byte{"Procfile": utf16LE(procfile, true), "Procfile.policy": utf16LE(pol, true), ".env": utf16LE(env, true)}, nil,
			"Procfile: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8\n" +
				"Procfile.policy: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8\n" +
				".env: is UTF-16 text (what Windows PowerShell's > writes): save it as UTF-8"},
		{"UTF-8 byte order marks", map[string][]byte{"Procfile": []byte("\uFEFF" + procfile), "Procfile.policy": []byte("\uFEFF" + pol), ".env": []byte("\uFEFF" + env)}, nil, ""},
		{"a NUL later is no UTF-16", map[string][]byte{"Procfile": []byte("web: ./web\nwo\x00rker: x\n")}, nil,
			`Procfile:2: line contains a NUL byte: "wo\x00rker: x" (remove it; a command cannot hold one)`},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		files := map[string][]byte{"Procfile": []byte(procfile)}
		maps.Copy(files, tt.files)
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		wd, _ := os.Getwd()
		os.Chdir(dir) // so that messages name the files as mhrun check in the project does
		f, err := Load(Options{Dir: dir, Environ: []string{}, EnvFiles: tt.args})
		os.Chdir(wd)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want == "":
			if f.Process("web").Scale != 2 || f.FileEnv["GREETING"] != "hi" {
				t.Errorf("%s: web scale %d, GREETING %q", tt.name, f.Process("web").Scale, f.FileEnv["GREETING"])
			}
		case err == nil || err.Error() != tt.want:
			t.Errorf("%s: %v\nwant %s", tt.name, err, tt.want)
		}
	}
}
