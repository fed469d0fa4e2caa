// Package socket is mhrun's control protocol: the server the runner drives, and the client every command uses.
package socket

// The rules of the wire, for both sides:
//
//   - Transport: a unix stream socket, mode 0600, owned by the runner's uid.
//     The server also checks the peer's uid (SO_PEERCRED on Linux,
//     LOCAL_PEERCRED on macOS and FreeBSD) and refuses any other uid with an
//     error Response, before reading anything from it.
//   - One connection carries one request. The client writes a Request as one
//     JSON object on one line ending in "\n"; the server answers with one
//     Response, also one JSON line. Then the server closes the connection,
//     unless the Response has Stream set.
//   - A line is at most MaxMessage bytes, not counting the "\n". A longer
//     request is answered with an error and the connection closed: a line
//     too long cannot be resynchronised.
//   - Requests are strict: one JSON object, no unknown fields, nothing after
//     it on the line. Responses are read leniently, so an older client can
//     show what it understands of a newer runner's answer.
//   - Versioning: every request carries "v". A runner answers a request of
//     another version with an error naming both versions and does nothing;
//     the version changes when a message changes meaning, not when a field is
//     added that both sides ignore when absent.
//   - Streams (logs -f, attach): after a Response with Stream set, both sides
//     exchange frames on the same connection until it closes. A frame is one
//     type byte, a 4-byte big-endian payload length and the payload, at most
//     MaxMessage bytes. Server to client: FrameData (output), FrameNotice (a
//     line for the user), FrameEnd (the stream is over, the payload says why;
//     the server closes next). Client to server: FrameData (keys),
//     FrameResize (cols, rows as big-endian uint16), FrameDetach (the client
//     leaves; the server ends the stream). An unknown type or an oversized
//     length is an error: the reader drops the connection.
//   - quit is a stream too, server to client only: after its Response
//     (Stream set, StopWithin the longest the stop may take by the
//     formation's graces), the server sends a FrameNotice every few seconds
//     saying what is still stopping, then, once every instance has stopped,
//     FrameEnd saying how the formation ended, and closes the connection.
//     The runner process exits right after. A client that wants the runner
//     gone (so that a new one can start) waits for that process (its pid
//     from SO_PEERCRED, see Conn.Peer); a connection that ends without
//     FrameEnd means the runner died before the formation had stopped.
//     Several clients may quit and wait at once; a quit while the
//     formation already stops only waits.
//   - A Response with OK false is a refusal; its Error says what would be
//     right, in one line, for the user.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Version is the protocol version; a request with another version gets an
// error answer naming both.
const Version = 1

// MaxMessage is the largest request or response line (without its "\n") and
// the largest frame payload, in bytes.
const MaxMessage = 1 << 20

// Command names what a request asks of the runner; both sides use these.
type Command string

// The commands of the protocol.
const (
	CmdStatus  Command = "status"  // every instance's row
	CmdScale   Command = "scale"   // Args: NAME=N items
	CmdRestart Command = "restart" // Args: processes or instances
	CmdStop    Command = "stop"
	CmdStart   Command = "start"
	CmdSignal  Command = "signal" // Args: targets, then the signal
	CmdReload  Command = "reload" // Args: one balanced process
	CmdLogs    Command = "logs"   // streams recent and (Follow) new lines
	CmdAttach  Command = "attach" // streams one instance's terminal both ways
	CmdQuit    Command = "quit"   // streams until the formation has stopped
	// CmdSave serves mhrun save, which writes the policy file itself (the
	// runner writes no file). Without Args the answer's Save says what
	// the client needs: the policy file, the sum of what the runner read,
	// the live scales. Args OLD NEW tell the runner that the client
	// replaced the file whose sum was OLD with one whose sum is NEW; the
	// runner takes NEW only while its sum is OLD, else refuses.
	CmdSave Command = "save"
)

// Request is one command from a client. Wire: one JSON object on one line
// ("\n"-terminated).
type Request struct {
	Version int      `json:"v"`
	Cmd     Command  `json:"cmd"`
	Args    []string `json:"args,omitempty"`   // names like web or web.2; scale items like web=4; for signal: targets then the signal last
	Lines   int      `json:"lines,omitempty"`  // logs -n
	Follow  bool     `json:"follow,omitempty"` // logs -f
	Cols    int      `json:"cols,omitempty"`   // attach: the client's terminal size
	Rows    int      `json:"rows,omitempty"`
}

// Instance is one row of status.
type Instance struct {
	Name     string    `json:"name"`    // web.2
	Process  string    `json:"process"` // web
	N        int       `json:"n"`
	State    string    `json:"state"`
	PID      int       `json:"pid,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"last_exit,omitempty"` // "exited with code 1", "was killed by signal KILL"
	Reason   string    `json:"reason,omitempty"`
	Ready    bool      `json:"ready,omitempty"`       // running, and its ready= check passed
	CPU      float64   `json:"cpu"`                   // percent of one core over the last sample interval
	CPUTime  float64   `json:"cpu_seconds,omitempty"` // user+system seconds of its live tree
	RSS      int64     `json:"rss"`                   // bytes, whole tree
	Port     int       `json:"port"`
	Next     time.Time `json:"next,omitzero"`      // a job's next run
	Balanced bool      `json:"balanced,omitempty"` // the process has balance=PORT
	Conns    int64     `json:"conns,omitempty"`    // balanced: connections open through the balancer
	Served   int64     `json:"served,omitempty"`   // balanced: connections served in total
}

// Response is the runner's answer: one JSON line. When Stream is true,
// frames follow on the same connection.
type Response struct {
	OK      bool       `json:"ok"`
	Error   string     `json:"error,omitempty"`
	Message string     `json:"message,omitempty"` // what happened, for the user: "web scaled to 4 (web.3, web.4 started)"
	Status  []Instance `json:"status,omitempty"`
	Stream  bool       `json:"stream,omitempty"`
	// StopWithin, for quit: the longest the stop may take, every grace in
	// turn (twice for a balanced process, which drains first); nanoseconds.
	StopWithin time.Duration `json:"stop_within,omitempty"`
	Save       *Save         `json:"save,omitempty"` // save without Args
}

// Save is the runner's answer to save: what a client needs to write the
// live scale into the policy file and to know the file is still the one
// the formation runs.
type Save struct {
	Policy string `json:"policy"` // the policy file, an absolute path
	// Sum is formation.PolicySum of the file as the runner read it (or
	// as a save last wrote it); "" when there was no file.
	Sum       string   `json:"sum,omitempty"`
	Procfile  []string `json:"procfile"` // every process of the Procfile, in order, run or not
	Processes []Scale  `json:"processes"`
}

// Scale is the live scale of one process of the running formation.
type Scale struct {
	Name  string `json:"name"`
	Scale int    `json:"scale"`
	Max   bool   `json:"max,omitempty"` // it came from max: one per CPU
}

// Frame types for stream mode (logs, attach, quit). Frame wire format: 1 byte
// type, 4 bytes big-endian payload length, payload (≤ MaxMessage).
const (
	FrameData   byte = 'd' // output bytes (server→client), or keys (client→server)
	FrameResize byte = 'r' // client→server: 4 bytes, cols then rows, big-endian uint16 each
	FrameNotice byte = 'n' // server→client: one line of text for the user ("web.2 restarted: following the new run")
	FrameEnd    byte = 'e' // server→client: the stream is over; payload says why ("the formation stopped")
	FrameDetach byte = 'x' // client→server: the client leaves; the server ends the stream
)

const frameHeader = 5

func knownFrame(typ byte) bool {
	switch typ {
	case FrameData, FrameResize, FrameNotice, FrameEnd, FrameDetach:
		return true
	}
	return false
}

// Conn is one connection, for both sides. Safe for one reader goroutine and
// one writer goroutine at a time (writes are serialized with a mutex so a
// server may write frames from two goroutines).
type Conn struct {
	rw io.ReadWriteCloser
	r  *bufio.Reader

	wmu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// NewConn wraps any byte stream as a Conn: a net.Conn, one end of a
// net.Pipe, or a reader for tests and fuzzing.
func NewConn(rw io.ReadWriteCloser) *Conn {
	return &Conn{rw: rw, r: bufio.NewReader(rw)}
}

// Close closes the connection; later calls return nil. It unblocks a
// ReadFrame in another goroutine.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.rw.Close() })
	return c.closeErr
}

// SetDeadline sets the read and write deadline of the underlying connection,
// as net.Conn.SetDeadline does; a zero time clears it. It fails when the
// stream has no deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	d, ok := c.rw.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return errors.New("set deadline: the connection has no deadlines")
	}
	return d.SetDeadline(t)
}

func (c *Conn) setReadDeadline(t time.Time) {
	if d, ok := c.rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		d.SetReadDeadline(t)
	}
}

func (c *Conn) setWriteDeadline(t time.Time) {
	if d, ok := c.rw.(interface{ SetWriteDeadline(time.Time) error }); ok {
		d.SetWriteDeadline(t)
	}
}

// errTooLong reports a line longer than MaxMessage; what is "request" or
// "response".
type errTooLong string

func (e errTooLong) Error() string { return string(e) + " longer than 1 MiB" }

// errMalformed reports a line that is not the message it should be.
type errMalformed struct {
	what string
	err  error
}

func (e *errMalformed) Error() string { return "malformed " + e.what + ": " + e.err.Error() }
func (e *errMalformed) Unwrap() error { return e.err }

// readLine reads one "\n"-terminated line of at most MaxMessage bytes and
// returns it without the "\n". A clean end of stream before any byte is
// io.EOF; an end in the middle of a line is io.ErrUnexpectedEOF.
func (c *Conn) readLine(what string) ([]byte, error) {
	var line []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxMessage+1 {
			return nil, errTooLong(what)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(line) == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("read %s: %w", what, io.ErrUnexpectedEOF)
		default:
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
	}
}

// writeLine marshals v and writes it as one line with one Write.
func (c *Conn) writeLine(what string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	if len(b) > MaxMessage {
		return errTooLong(what)
	}
	b = append(b, '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.rw.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	return nil
}

// ReadRequest reads one request line. Errors: a line too long ("request
// longer than 1 MiB"), malformed JSON ("malformed request: ..."), io.EOF
// when the client closed before sending anything. After an error the
// connection is out of step and should be answered and closed.
func (c *Conn) ReadRequest() (Request, error) {
	line, err := c.readLine("request")
	if err != nil {
		return Request{}, err
	}
	var req Request
	if err := decodeStrict(line, &req); err != nil {
		return Request{}, &errMalformed{"request", err}
	}
	return req, nil
}

// decodeStrict decodes exactly one JSON object with known fields only.
func decodeStrict(line []byte, v any) error {
	trimmed := bytes.TrimLeft(line, " \t\r")
	if len(trimmed) == 0 {
		return errors.New("empty line")
	}
	if trimmed[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("unexpected end of JSON input")
		}
		return err
	}
	rest, _ := io.ReadAll(dec.Buffered())
	if len(bytes.TrimSpace(rest)) > 0 || dec.More() {
		return errors.New("data after the JSON object")
	}
	return nil
}

// WriteRequest sends one request as it is; Call fills Version first.
func (c *Conn) WriteRequest(req Request) error {
	return c.writeLine("request", req)
}

// Reply sends the response to the request read on c.
func (c *Conn) Reply(r Response) error {
	return c.writeLine("response", r)
}

// ReadResponse reads the runner's answer line. Unknown fields are ignored.
func (c *Conn) ReadResponse() (Response, error) {
	line, err := c.readLine("response")
	if err != nil {
		return Response{}, err
	}
	var r Response
	if err := json.Unmarshal(line, &r); err != nil {
		return Response{}, &errMalformed{"response", err}
	}
	return r, nil
}

// WriteFrame sends one frame with one Write, so frames written from two
// goroutines never interleave. A FrameData payload longer than MaxMessage is
// sent as several frames (the data is a byte stream); any other oversized
// payload, or an unknown type, is an error.
func (c *Conn) WriteFrame(typ byte, payload []byte) error {
	if !knownFrame(typ) {
		return fmt.Errorf("write frame: unknown frame type %q", typ)
	}
	if len(payload) > MaxMessage && typ != FrameData {
		return fmt.Errorf("write frame: %q payload of %d bytes is longer than 1 MiB", typ, len(payload))
	}
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), MaxMessage)
		buf := make([]byte, frameHeader+n)
		buf[0] = typ
		binary.BigEndian.PutUint32(buf[1:frameHeader], uint32(n))
		copy(buf[frameHeader:], payload[:n])
		payload = payload[n:]
		if err := c.write(buf); err != nil {
			return fmt.Errorf("write frame: %w", err)
		}
	}
	return nil
}

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.rw.Write(b)
	return err
}

// ReadFrame reads the next frame. The payload is a new slice the caller may
// keep. An unknown type or a length over MaxMessage is an error, after which
// the connection is out of step. A clean end between frames is io.EOF.
func (c *Conn) ReadFrame() (typ byte, payload []byte, err error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil, io.EOF
		}
		return 0, nil, fmt.Errorf("read frame: %w", err)
	}
	typ = h[0]
	if !knownFrame(typ) {
		return 0, nil, fmt.Errorf("read frame: unknown frame type 0x%02x", typ)
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxMessage {
		return 0, nil, fmt.Errorf("read frame: %q payload of %d bytes is longer than 1 MiB", typ, n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("read frame: %w", err)
	}
	return typ, payload, nil
}

// ResizePayload is the payload of a FrameResize: cols then rows, each a
// big-endian uint16, clamped to 0..65535.
func ResizePayload(cols, rows int) []byte {
	p := make([]byte, 4)
	binary.BigEndian.PutUint16(p[0:2], uint16(min(max(cols, 0), 0xffff)))
	binary.BigEndian.PutUint16(p[2:4], uint16(min(max(rows, 0), 0xffff)))
	return p
}

// ParseResize reads a FrameResize payload made by ResizePayload.
func ParseResize(p []byte) (cols, rows int, err error) {
	if len(p) != 4 {
		return 0, 0, fmt.Errorf("resize frame of %d bytes: want 4 (cols, rows)", len(p))
	}
	return int(binary.BigEndian.Uint16(p[0:2])), int(binary.BigEndian.Uint16(p[2:4])), nil
}
