package socket

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Regression (issue: a regular file or a symbolic link at .mhrun.sock was
// removed as a "stale control socket"): only a socket nobody listens on is
// removed; anything else at the path is an error that names it, and is
// left as it was, a symbolic link and what it points to included.
func TestRemoveStaleOnlyRemovesDeadSockets(t *testing.T) {
	tests := []struct {
		name    string
		make    func(t *testing.T, dir, path string)
		removed bool
		err     string // what the error says after the path, "" = none
	}{
		{"nothing", func(*testing.T, string, string) {}, false, ""},
		{"stale socket", func(t *testing.T, _, path string) { staleSocket(t, path) }, true, ""},
		{"live socket", func(t *testing.T, _, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, false, "another mhrun is listening on PATH"},
		{"regular file", func(t *testing.T, _, path string) { os.WriteFile(path, []byte("data"), 0o644) }, false,
			"PATH exists and is not a socket (a regular file): remove it, or choose another path with --socket or MHRUN_SOCKET"},
		{"empty regular file", func(t *testing.T, _, path string) { os.WriteFile(path, nil, 0o600) }, false,
			"PATH exists and is not a socket (a regular file): remove it"},
		{"directory", func(t *testing.T, _, path string) { os.Mkdir(path, 0o755) }, false,
			"PATH exists and is not a socket (a directory): remove it"},
		{"FIFO", func(t *testing.T, _, path string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, false, "PATH exists and is not a socket (a named pipe): remove it"},
		{"symlink to a stale socket", func(t *testing.T, dir, path string) {
			staleSocket(t, filepath.Join(dir, "real.sock"))
			os.Symlink(filepath.Join(dir, "real.sock"), path)
		}, false, "PATH exists and is not a socket (a symbolic link to DIR/real.sock): remove it"},
		{"symlink to a file", func(t *testing.T, dir, path string) {
			os.WriteFile(filepath.Join(dir, "precious"), []byte("data"), 0o644)
			os.Symlink("precious", path)
		}, false, "PATH exists and is not a socket (a symbolic link to precious): remove it"},
		{"dangling symlink", func(t *testing.T, dir, path string) { os.Symlink("/nonexistent", path) }, false,
			"PATH exists and is not a socket (a symbolic link to /nonexistent): remove it"},
	}
	for _, tt := range tests {
		for _, via := range []string{"RemoveStale", "Listen"} {
			dir := shortDir(t)
			path := filepath.Join(dir, ".mhrun.sock")
			tt.make(t, dir, path)
			before := snapshot(t, dir)

			var removed bool
			var err error
			if via == "RemoveStale" {
				removed, err = RemoveStale(path)
			} else {
				var s *Server
				if s, err = Listen(path); err == nil {
					s.Close()
					removed = tt.removed // Listen replaced it, then Close removed its own
				}
			}
			want := strings.NewReplacer("PATH", path, "DIR", dir).Replace(tt.err)
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("%s, %s: %v", tt.name, via, err)
			case tt.err != "" && (err == nil || !strings.HasPrefix(err.Error(), want)):
				t.Errorf("%s, %s: %v\nwant %s", tt.name, via, err, want)
			case removed != tt.removed:
				t.Errorf("%s, %s: removed %v, want %v", tt.name, via, removed, tt.removed)
			}
			if tt.err != "" {
				if after := snapshot(t, dir); after != before {
					t.Errorf("%s, %s: the dir changed:\n%s\nwas\n%s", tt.name, via, after, before)
				}
			}
		}
	}
}

// snapshot lists what dir holds: names, kinds, link targets, contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		b.WriteString(e.Name() + " " + e.Type().String())
		if to, err := os.Readlink(p); err == nil {
			b.WriteString(" -> " + to)
		}
		if e.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			b.WriteString(" " + string(data))
		}
		b.WriteByte('\n')
	}
	return b.String()
}
