package socket

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	// requestTimeout bounds the wait for a connected client's request line.
	requestTimeout = 10 * time.Second
	// shutdownGrace is how long a handler may take to end its stream after
	// the server's context ends before its connection is closed under it.
	shutdownGrace = 2 * time.Second
	// replyTimeout bounds the write of an error answer to a client that
	// does not read.
	replyTimeout = time.Second
)

// Handler is what the runner gives the server: it answers one request on c —
// Reply once, then, if it replied with Stream: true, exchange frames until
// the stream ends — and returns; the server closes c after. ctx ends when
// the server closes; a handler still running shutdownGrace (2s) later has c
// closed under it.
type Handler interface {
	Serve(ctx context.Context, req Request, c *Conn)
}

// Server listens on the control socket.
type Server struct {
	path string
	l    *net.UnixListener
	uid  int
	file os.FileInfo // the socket file Listen made: Close removes only that

	ctx    context.Context // handlers' context: ended by Close or Serve's ctx
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	serving   bool
	serveDone chan struct{}
	wg        sync.WaitGroup // one per connection goroutine and its watcher

	stopOnce   sync.Once
	removeOnce sync.Once
}

// Listen creates the socket at path, mode 0600. The socket is made under a
// temporary name in the same directory, chmodded, then hard-linked to path,
// so no other uid can connect through path before the mode is tight and a
// concurrent runner's socket is never replaced. If a socket file already
// exists at path: when a dial to it succeeds, another runner owns it and
// Listen fails with "another mhrun is listening on PATH"; when the dial is
// refused (nobody listening) it is stale and is replaced. Anything else at
// path is an error and is left alone (see RemoveStale).
func Listen(path string) (*Server, error) {
	if len(path) > sunPathMax {
		return nil, fmt.Errorf("control socket path %s is %d bytes, longer than the %d a unix socket allows: choose a shorter one with --socket or MHRUN_SOCKET", path, len(path), sunPathMax)
	}
	var (
		l   *net.UnixListener
		tmp string
		err error
	)
	for attempt := 0; ; attempt++ {
		if _, err := RemoveStale(path); err != nil {
			return nil, err
		}
		if l == nil {
			if l, tmp, err = listenTemp(path); err != nil {
				return nil, err
			}
			if err := os.Chmod(tmp, 0o600); err != nil {
				l.Close()
				os.Remove(tmp)
				return nil, fmt.Errorf("listen on control socket: %w", err)
			}
		}
		err = os.Link(tmp, path)
		if err == nil {
			break
		}
		if errors.Is(err, fs.ErrExist) && attempt < 3 {
			continue // a socket appeared since the check: check it again
		}
		if !errors.Is(err, fs.ErrExist) {
			// No hard links on this file system: rename, which is atomic
			// but would replace a socket made since the check.
			err = os.Rename(tmp, path)
			if err == nil {
				break
			}
		}
		l.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	os.Remove(tmp) // after a link; after a rename it is gone already
	file, err := os.Lstat(path)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		path:      path,
		l:         l,
		uid:       os.Geteuid(),
		file:      file,
		ctx:       ctx,
		cancel:    cancel,
		serveDone: make(chan struct{}),
	}, nil
}

// RemoveStale removes what a killed runner leaves at a control socket
// path, a unix socket nobody listens on (a dial is refused), and reports
// whether there was one. It never removes anything else: a socket that
// answers is "another mhrun is listening on PATH", and anything that is
// not a socket, a symbolic link included whatever it points to (lstat, not
// followed), is an error that says what it is and what to do. A missing
// path is (false, nil). The runner lock's taker calls it before it reports
// a stale socket; Listen calls it too.
func RemoveStale(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return false, fmt.Errorf("%s exists and is not a socket (%s): remove it, or choose another path with --socket or MHRUN_SOCKET", path, describe(path, fi))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return false, fmt.Errorf("another mhrun is listening on %s", path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed since the lstat
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return false, fmt.Errorf("check control socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("remove stale control socket: %w", err)
	}
	return true, nil
}

// describe says what fi, found at path by lstat, is: "a regular file",
// "a symbolic link to /x".
func describe(path string, fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeSymlink != 0:
		if to, err := os.Readlink(path); err == nil {
			return "a symbolic link to " + to
		}
		return "a symbolic link"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}

// listenTemp listens on a fresh name beside path, no longer than path's own
// name when that has 7 bytes or more, so a path that fits fits here too.
func listenTemp(path string) (*net.UnixListener, string, error) {
	dir, base := filepath.Split(path)
	n := max(len(base)-1, 6)
	for range 10 {
		name := "."
		for len(name) <= n {
			name += strconv.FormatUint(rand.Uint64(), 36)
		}
		tmp := filepath.Join(dir, name[:n+1])
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
		if errors.Is(err, syscall.EADDRINUSE) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("listen on control socket: %w", err)
		}
		l.SetUnlinkOnClose(false) // the name changes: Close removes path
		return l, tmp, nil
	}
	return nil, "", fmt.Errorf("listen on control socket: no free temporary name in %s", dir)
}

// Serve accepts connections until ctx ends or Close. For each connection it
// checks that the peer's uid is this process's effective uid (else answers
// "connection from uid N refused: only uid M may control this runner" and
// closes), reads one request (answering errors for a malformed or
// oversized one, or one of another protocol version), then calls h.Serve.
// Serve returns once every connection has ended, after removing the socket
// file; it returns nil when stopped by ctx or Close.
func (s *Server) Serve(ctx context.Context, h Handler) error {
	s.mu.Lock()
	if s.closed || s.serving {
		s.mu.Unlock()
		return errors.New("serve control socket: the server is closed or already serving")
	}
	s.serving = true
	s.mu.Unlock()
	defer close(s.serveDone)
	defer context.AfterFunc(ctx, s.stop)()

	var err error
	var delay time.Duration
	for {
		nc, aerr := s.l.AcceptUnix()
		if aerr != nil {
			if s.isClosed() {
				break
			}
			if temporary(aerr) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-s.ctx.Done():
					t.Stop()
				}
				continue
			}
			err = fmt.Errorf("accept on control socket: %w", aerr)
			break
		}
		delay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			break
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(nc, h)
		}()
	}
	s.stop()
	s.wg.Wait()
	s.remove()
	return err
}

// temporary reports accept errors worth a pause and a retry.
func temporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Close stops accepting, ends the handlers' context, waits for every
// connection to end and removes the socket file. A Handler must not call it:
// it would wait for itself.
func (s *Server) Close() error {
	s.stop()
	s.mu.Lock()
	serving := s.serving
	s.mu.Unlock()
	if serving {
		<-s.serveDone
	} else {
		s.wg.Wait()
	}
	s.remove()
	return nil
}

// stop ends accepting and the handlers' context; it does not wait.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.l.Close()
	})
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// remove deletes the socket file if it is still the one Listen made.
func (s *Server) remove() {
	s.removeOnce.Do(func() {
		if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.file) {
			os.Remove(s.path)
		}
	})
}

// serveConn checks the peer, reads its request and hands it to h.
func (s *Server) serveConn(nc *net.UnixConn, h Handler) {
	c := NewConn(nc)
	defer c.Close()
	refuse := func(msg string) {
		c.setWriteDeadline(time.Now().Add(replyTimeout))
		c.Reply(Response{Error: msg})
	}

	uid, err := peerUID(nc)
	if err != nil {
		refuse(fmt.Sprintf("connection refused: %v", err))
		return
	}
	if uid != s.uid {
		refuse(fmt.Sprintf("connection from uid %d refused: only uid %d may control this runner", uid, s.uid))
		return
	}

	// The watcher ends the wait for a request at once when the server
	// stops; a handler gets shutdownGrace to end its stream first.
	var (
		phase   sync.Mutex
		reading = true
		done    = make(chan struct{})
	)
	defer close(done)
	s.wg.Add(1) // this goroutine holds a count, so Wait has not returned
	go func() {
		defer s.wg.Done()
		select {
		case <-done:
			return
		case <-s.ctx.Done():
		}
		phase.Lock()
		r := reading
		if r {
			c.setReadDeadline(time.Now())
		}
		phase.Unlock()
		if r {
			return
		}
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			c.Close()
		}
	}()

	c.setReadDeadline(time.Now().Add(requestTimeout))
	req, err := c.ReadRequest()
	phase.Lock()
	reading = false
	c.setReadDeadline(time.Time{})
	phase.Unlock()
	var malformed *errMalformed
	var tooLong errTooLong
	switch {
	case err == nil:
	case errors.As(err, &malformed), errors.As(err, &tooLong):
		refuse(err.Error())
		return
	case s.ctx.Err() != nil:
		refuse("the runner is shutting down")
		return
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return // the client left; nobody to answer
	case errors.Is(err, os.ErrDeadlineExceeded):
		refuse(fmt.Sprintf("no request within %s", requestTimeout))
		return
	default:
		refuse(err.Error())
		return
	}
	if req.Version != Version {
		refuse(fmt.Sprintf("request is protocol version %d but this runner speaks version %d: use the same mhrun for the commands and the runner", req.Version, Version))
		return
	}
	if req.Cmd == "" {
		refuse("malformed request: no cmd")
		return
	}
	if s.ctx.Err() != nil {
		refuse("the runner is shutting down")
		return
	}
	h.Serve(s.ctx, req, c)
}
