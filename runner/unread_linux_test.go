package runner

import (
	"testing"

	"github.com/creack/pty"
)

// unread sees bytes the pty holds for its reader, and nothing once they are
// read or the pty is closed.
func TestUnread(t *testing.T) {
	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if unread(master) {
		t.Error("a fresh pty holds bytes")
	}
	if _, err := tty.Write([]byte("half a line")); err != nil {
		t.Fatal(err)
	}
	// The line discipline hands the bytes to the master's side through a
	// work queue: read them, as the reader does, once they are there.
	buf := make([]byte, 64)
	n, err := master.Read(buf[:4])
	if err != nil || n != 4 {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	if !unread(master) {
		t.Error("7 bytes left unread, unread says none")
	}
	if _, err := master.Read(buf); err != nil {
		t.Fatal(err)
	}
	if unread(master) {
		t.Error("all read, unread says some are left")
	}
	master.Close()
	if unread(master) {
		t.Error("a closed pty holds bytes")
	}
}
