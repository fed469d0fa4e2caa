package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Regression: --policy on a directory said "read policy: read DIR: is a
// directory"; on a FIFO it blocked forever; on /dev/zero it read until
// memory ran out. A policy is read like every input file: a regular file
// of at most 1 MiB.
func TestParseFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("# a comment\n"), maxFileSize/12+1)
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "max"), big[:maxFileSize], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("max", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	hint := ` (want a policy file with lines like "web: scale=2", or pass --policy FILE)`
	for _, c := range []struct{ name, want string }{
		{"dir", "is a directory, not a file"},
		{"fifo", "is a named pipe (FIFO), not a regular file"},
		{"zero", "is a device, not a regular file"},
		{"big", "is larger than 1 MiB, the most mhrun reads from an input file"},
		{"max", ""},
		{"link", ""},
	} {
		path := filepath.Join(dir, c.name)
		done := make(chan error, 1)
		go func() {
			_, err := ParseFile(path)
			done <- err
		}()
		var err error
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("ParseFile(%s) blocked", c.name)
		}
		want := "read " + path + ": " + c.want + hint
		switch {
		case c.want == "" && err != nil:
			t.Errorf("ParseFile(%s) = %v, want it read", c.name, err)
		case c.want != "" && (err == nil || err.Error() != want):
			t.Errorf("ParseFile(%s) = %v\nwant %s", c.name, err, want)
		case err != nil && strings.Count(err.Error(), path) != 1:
			t.Errorf("ParseFile(%s) names the file more than once: %v", c.name, err)
		}
	}
}
