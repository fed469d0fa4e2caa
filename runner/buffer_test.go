package runner

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an io.Writer the tests read while the runner's output
// writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls the buffer until cond holds or fails the test after a
// generous deadline.
func (b *syncBuffer) waitFor(t *testing.T, what string, cond func(out string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := b.String()
		if cond(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; output:\n%s", what, out)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockingWriter blocks every Write until release is closed, like a
// terminal whose user pressed Ctrl-S.
type blockingWriter struct {
	release chan struct{}
	syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.syncBuffer.Write(p)
}
