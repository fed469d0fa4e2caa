package procfile

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
func TestParseFileNotRegular(t *testing.T) {
	dir := inputFiles(t)
	hint := ` (want a Procfile with lines like "web: ./server", or pass -f FILE)`
	for name, want := range map[string]string{
		"dir":       "read DIR: is a directory, not a file" + hint,
		"fifo":      "read DIR: is a named pipe (FIFO), not a regular file" + hint,
		"zero-link": "read DIR: is a device, not a regular file" + hint,
		"big":       "read DIR: is larger than 1 MiB, the most mhrun reads from an input file" + hint,
	} {
		path := filepath.Join(dir, name)
		_, err := ParseFile(path)
		if want = strings.Replace(want, "DIR", path, 1); err == nil || err.Error() != want {
			t.Errorf("ParseFile(%s) = %v\nwant %s", name, err, want)
		}
	}
	if got, err := ParseFile(filepath.Join(dir, "link")); err != nil || len(got) != 1 {
		t.Errorf("ParseFile(symlink to a Procfile) = %v, %v", got, err)
	}
}
