package socket

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// memConn is a Conn over bytes: reads come from in, writes go to out.
type memConn struct {
	io.Reader
	out *bytes.Buffer
}

func (m memConn) Write(p []byte) (int, error) { return m.out.Write(p) }
func (m memConn) Close() error                { return nil }

func newMemConn(in []byte) (*Conn, *bytes.Buffer) {
	out := &bytes.Buffer{}
	return NewConn(memConn{bytes.NewReader(in), out}), out
}

func TestRequestRoundTrip(t *testing.T) {
	reqs := []Request{
		{Version: 1, Cmd: "status"},
		{Version: 1, Cmd: "scale", Args: []string{"web=4", "worker=0"}},
		{Version: 1, Cmd: "signal", Args: []string{"web.2", "USR1"}},
		{Version: 1, Cmd: "logs", Args: []string{"web"}, Lines: 100, Follow: true},
		{Version: 1, Cmd: "attach", Args: []string{"web.1"}, Cols: 200, Rows: 50},
		{Version: 1, Cmd: "start", Args: []string{"ünïcode", "a\nb", `"quoted"`}},
		{Version: 1, Cmd: CmdSave},
		{Version: 1, Cmd: CmdSave, Args: []string{"0a1b", "2c3d"}},
	}
	var wire bytes.Buffer
	w := NewConn(memConn{strings.NewReader(""), &wire})
	for _, r := range reqs {
		if err := w.WriteRequest(r); err != nil {
			t.Fatal(err)
		}
	}
	if got := bytes.Count(wire.Bytes(), []byte("\n")); got != len(reqs) {
		t.Fatalf("%d lines for %d requests:\n%s", got, len(reqs), wire.Bytes())
	}
	r, _ := newMemConn(wire.Bytes())
	for _, want := range reqs {
		got, err := r.ReadRequest()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ReadRequest = %+v, %v; want %+v", got, err, want)
		}
	}
	if _, err := r.ReadRequest(); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
}

func TestReadRequestEnds(t *testing.T) {
	c, _ := newMemConn([]byte(`{"v":1,"cmd":"status"}`)) // no newline
	if _, err := c.ReadRequest(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a line cut short: %v, want io.ErrUnexpectedEOF", err)
	}
	c, _ = newMemConn([]byte("{\"v\":1,\"cmd\":\"status\"}\r\n"))
	if req, err := c.ReadRequest(); err != nil || req.Cmd != "status" {
		t.Errorf("CRLF line: %+v, %v", req, err)
	}
}

func TestWriteTooLong(t *testing.T) {
	c, out := newMemConn(nil)
	err := c.Reply(Response{OK: true, Message: strings.Repeat("x", MaxMessage)})
	if err == nil || err.Error() != "response longer than 1 MiB" {
		t.Errorf("Reply: %v", err)
	}
	err = c.WriteRequest(Request{Cmd: "start", Args: []string{strings.Repeat("x", MaxMessage)}})
	if err == nil || err.Error() != "request longer than 1 MiB" {
		t.Errorf("WriteRequest: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("%d bytes written for messages too long", out.Len())
	}
	c, _ = newMemConn([]byte(strings.Repeat("x", 3<<20) + "\n"))
	if _, err := c.ReadResponse(); err == nil || err.Error() != "response longer than 1 MiB" {
		t.Errorf("ReadResponse: %v", err)
	}
}

func TestReadResponseIsLenient(t *testing.T) {
	c, _ := newMemConn([]byte(`{"ok":true,"message":"hi","added_later":[1,2]}` + "\n" + "{nope\n"))
	if r, err := c.ReadResponse(); err != nil || !r.OK || r.Message != "hi" {
		t.Errorf("ReadResponse = %+v, %v", r, err)
	}
	if _, err := c.ReadResponse(); err == nil || !strings.HasPrefix(err.Error(), "malformed response: ") {
		t.Errorf("ReadResponse of junk: %v", err)
	}
}

// The answer to save carries the policy file, its sum and the live
// scales, max kept apart from the count it gave.
func TestSaveResponseRoundTrip(t *testing.T) {
	want := Response{OK: true, Save: &Save{
		Policy:   "/srv/app/Procfile.policy",
		Sum:      strings.Repeat("ab", 32),
		Procfile: []string{"clock", "web", "worker"},
		Processes: []Scale{
			{Name: "web", Scale: 8, Max: true},
			{Name: "worker", Scale: 0},
		},
	}}
	var wire bytes.Buffer
	if err := NewConn(memConn{strings.NewReader(""), &wire}).Reply(want); err != nil {
		t.Fatal(err)
	}
	if s := wire.String(); !strings.Contains(s, `"max":true`) || strings.Count(s, `"max"`) != 1 {
		t.Errorf("wire: %s", s)
	}
	r, _ := newMemConn(wire.Bytes())
	if got, err := r.ReadResponse(); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadResponse = %+v, %v; want %+v", got, err, want)
	}
}

func TestFrames(t *testing.T) {
	var wire bytes.Buffer
	w := NewConn(memConn{strings.NewReader(""), &wire})
	frames := []struct {
		typ     byte
		payload string
	}{
		{FrameData, "hello\r\n"},
		{FrameData, ""},
		{FrameResize, string(ResizePayload(80, 24))},
		{FrameNotice, "web.2 restarted: following the new run"},
		{FrameDetach, ""},
		{FrameEnd, "the formation stopped"},
	}
	for _, f := range frames {
		if err := w.WriteFrame(f.typ, []byte(f.payload)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.HasPrefix(wire.Bytes(), []byte("d\x00\x00\x00\x07hello\r\nd\x00\x00\x00\x00r\x00\x00\x00\x04\x00\x50\x00\x18")) {
		t.Errorf("wire starts %q", wire.Bytes()[:30])
	}
	r, _ := newMemConn(wire.Bytes())
	for _, want := range frames {
		typ, p, err := r.ReadFrame()
		if err != nil || typ != want.typ || string(p) != want.payload {
			t.Errorf("ReadFrame = %q %q %v, want %q %q", typ, p, err, want.typ, want.payload)
		}
	}
	if _, _, err := r.ReadFrame(); err != io.EOF {
		t.Errorf("at the end: %v, want io.EOF", err)
	}
}

func TestWriteFrameLimits(t *testing.T) {
	c, out := newMemConn(nil)
	if err := c.WriteFrame('?', nil); err == nil {
		t.Error("unknown type written")
	}
	if err := c.WriteFrame(FrameNotice, make([]byte, MaxMessage+1)); err == nil {
		t.Error("oversized notice written")
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written for refused frames", out.Len())
	}
	// data is a byte stream: a big write becomes several frames
	big := bytes.Repeat([]byte("0123456789"), MaxMessage/4)
	if err := c.WriteFrame(FrameData, big); err != nil {
		t.Fatal(err)
	}
	r, _ := newMemConn(out.Bytes())
	var got []byte
	frames := 0
	for {
		typ, p, err := r.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil || typ != FrameData {
			t.Fatalf("ReadFrame = %q, %v", typ, err)
		}
		got = append(got, p...)
		frames++
	}
	if !bytes.Equal(got, big) || frames != 3 {
		t.Errorf("%d bytes in %d frames, want %d in 3", len(got), frames, len(big))
	}
}

func TestResizePayload(t *testing.T) {
	for _, tc := range []struct{ cols, rows, wantCols, wantRows int }{
		{80, 24, 80, 24},
		{0, 0, 0, 0},
		{65535, 1, 65535, 1},
		{70000, -3, 65535, 0},
	} {
		cols, rows, err := ParseResize(ResizePayload(tc.cols, tc.rows))
		if err != nil || cols != tc.wantCols || rows != tc.wantRows {
			t.Errorf("%dx%d → %dx%d %v, want %dx%d", tc.cols, tc.rows, cols, rows, err, tc.wantCols, tc.wantRows)
		}
	}
	for _, p := range [][]byte{nil, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		if _, _, err := ParseResize(p); err == nil {
			t.Errorf("ParseResize(%v): no error", p)
		}
	}
}
