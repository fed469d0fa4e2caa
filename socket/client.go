package socket

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNoRunner is wrapped by the error of Dial when nothing listens at the
// socket path: no file, or a file nobody accepts on (a runner was killed).
var ErrNoRunner = errors.New("no runner")

// dialTimeout bounds a connect to a runner too busy to accept.
const dialTimeout = 5 * time.Second

// noRunnerError is the one-line message a caller prints; it is ErrNoRunner
// and the dial error for errors.Is.
type noRunnerError struct {
	dir   string
	cause error
}

func (e *noRunnerError) Error() string {
	return fmt.Sprintf("no formation running in %s (start one with mhrun start)", e.dir)
}

func (e *noRunnerError) Unwrap() []error { return []error{ErrNoRunner, e.cause} }

// RemoteError is a refusal from the runner: a Response with OK false. Msg is
// Response.Error, already worded for the user.
type RemoteError struct {
	Msg string
}

func (e *RemoteError) Error() string {
	if e.Msg == "" {
		return "the runner refused the request without saying why"
	}
	return e.Msg
}

// Dial connects to the runner at path. When nothing listens there (no file,
// or connection refused), the error is ErrNoRunner, printed as "no formation
// running in DIR (start one with mhrun start)" with DIR the socket's
// directory.
func Dial(path string) (*Conn, error) {
	return DialProject(path, filepath.Dir(path))
}

// DialProject is Dial naming dir, the project, in the no-runner message: the
// socket may live elsewhere (a runtime dir when the project path is too long
// for a socket).
func DialProject(path, dir string) (*Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	nc, err := d.Dial("unix", path)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
			return nil, &noRunnerError{dir: dir, cause: err}
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return nil, fmt.Errorf("connect to control socket %s: permission denied (the formation belongs to another user)", path)
		}
		return nil, fmt.Errorf("connect to control socket: %w", err)
	}
	return NewConn(nc), nil
}

// Call sends one request, with Version filled in, and reads one response. A
// Response with OK false becomes a *RemoteError carrying Response.Error,
// except when Stream is true: then frames follow and the caller reads them.
func Call(c *Conn, req Request) (Response, error) {
	req.Version = Version
	werr := c.WriteRequest(req)
	// Read even when the write failed: a runner that refuses this uid
	// answers and closes without reading, and its answer says why.
	resp, err := c.ReadResponse()
	if err != nil {
		if werr != nil {
			return Response{}, werr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return Response{}, fmt.Errorf("the runner did not answer in time: %w", err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Response{}, fmt.Errorf("the runner closed the connection without an answer: %w", err)
		}
		return Response{}, fmt.Errorf("read the runner's answer: %w", err)
	}
	if !resp.OK && !resp.Stream {
		return resp, &RemoteError{Msg: resp.Error}
	}
	return resp, nil
}
