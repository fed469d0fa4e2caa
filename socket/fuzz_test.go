package socket

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzReadRequest checks what holds for any bytes from a client: no panic;
// every request read writes back as one line that reads as the same request.
// Seeds are in testdata/fuzz/FuzzReadRequest.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(`{"v":1,"cmd":"status"}` + "\n"))
	f.Add([]byte(`{"v":1,"cmd":"scale","args":["web=4"]}` + "\n" + `{"v":2}` + "\n"))
	f.Add([]byte("{\"v\":1,\"cmd\":\"logs\",\"lines\":-1,\"follow\":true}\r\n"))
	f.Add([]byte(`{"v":1,"cmd":"x","args":[]}` + "\n"))
	f.Add([]byte(`{"v":1e400}` + "\n"))
	f.Add([]byte("\x00\xff\n\n{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _ := newMemConn(data)
		for range 64 {
			req, err := c.ReadRequest()
			if err != nil {
				return
			}
			if len(req.Args) == 0 {
				req.Args = nil // "args":[] and no args are the same request
			}
			var wire bytes.Buffer
			w := NewConn(memConn{bytes.NewReader(nil), &wire})
			if err := w.WriteRequest(req); err != nil {
				t.Fatalf("WriteRequest(%+v): %v", req, err)
			}
			if n := bytes.Count(wire.Bytes(), []byte("\n")); n != 1 {
				t.Fatalf("request written as %d lines: %q", n, wire.Bytes())
			}
			again, err := NewConn(memConn{&wire, &bytes.Buffer{}}).ReadRequest()
			if err != nil || !reflect.DeepEqual(again, req) {
				t.Fatalf("round trip of %+v: %+v, %v", req, again, err)
			}
		}
	})
}

// FuzzReadFrame checks what holds for any bytes on a stream: no panic; every
// frame read has a known type and a payload within MaxMessage, and writes
// back as the same bytes it was read from.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("d\x00\x00\x00\x05hello"))
	f.Add([]byte("r\x00\x00\x00\x04\x00\x50\x00\x18x\x00\x00\x00\x00"))
	f.Add([]byte("e\x00\x00\x00\x15the formation stopped"))
	f.Add([]byte("Z\x00\x00\x00\x00"))
	f.Add([]byte("d\xff\xff\xff\xff"))
	f.Add([]byte("d\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _ := newMemConn(data)
		read := 0
		for range 64 {
			typ, p, err := c.ReadFrame()
			if err != nil {
				return
			}
			if !knownFrame(typ) || len(p) > MaxMessage {
				t.Fatalf("frame %q of %d bytes accepted", typ, len(p))
			}
			var wire bytes.Buffer
			w := NewConn(memConn{bytes.NewReader(nil), &wire})
			if err := w.WriteFrame(typ, p); err != nil {
				t.Fatalf("WriteFrame(%q, %d bytes): %v", typ, len(p), err)
			}
			if !bytes.Equal(wire.Bytes(), data[read:read+wire.Len()]) {
				t.Fatalf("frame writes as %q, was read from %q", wire.Bytes(), data[read:read+wire.Len()])
			}
			read += wire.Len()
		}
	})
}
