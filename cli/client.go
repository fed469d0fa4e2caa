package cli

import (
	"os"
	"path/filepath"

	"mhrun/socket"
)

// ControlFlags find the control socket of a running formation.
type ControlFlags struct {
	Dir    string `short:"d" placeholder:"DIR" help:"Project dir (default: the current dir)."`
	Socket string `placeholder:"PATH" env:"MHRUN_SOCKET" help:"Control socket (default: .mhrun.sock in the project dir, or a hashed path under the runtime dir when that is too long)."`
}

// socketPath is where the formation of the project dir listens.
func socketPath(dir, override string) (path, abs string, err error) {
	if dir == "" {
		dir = "."
	}
	abs, err = filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	if override != "" {
		return override, abs, nil
	}
	return socket.Path(abs), abs, nil
}

// dial connects to the running formation, or says there is none.
func (c *ControlFlags) dial() (*socket.Conn, error) {
	path, abs, err := socketPath(c.Dir, c.Socket)
	if err != nil {
		return nil, err
	}
	label := abs
	if c.Dir == "" {
		if wd, err := os.Getwd(); err == nil && wd == abs {
			label = "this dir"
		}
	}
	conn, err := socket.DialProject(path, label)
	if err != nil && c.Socket == "" {
		if other, _ := dialOther(abs); other != nil {
			return other, nil
		}
	}
	return conn, err
}

// dialOther connects to a runner of the project in abs that listens in
// another runtime dir than this process's (a system service's runner seen
// from a login shell), or returns nil.
func dialOther(abs string) (*socket.Conn, string) {
	for _, p := range socket.OtherPaths(abs) {
		if conn, err := socket.Dial(p); err == nil {
			return conn, p
		}
	}
	return nil, ""
}

// call sends one request and returns the answer; a refusal is an error.
func (c *ControlFlags) call(req socket.Request) (socket.Response, error) {
	conn, err := c.dial()
	if err != nil {
		return socket.Response{}, err
	}
	defer conn.Close()
	return socket.Call(conn, req)
}
