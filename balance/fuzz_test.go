package balance

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The seeds are in testdata/fuzz; a few more, typical and tricky, here.
var headSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n\r\n",
	"POST /api HTTP/1.1\r\nHost: x\r\nCookie: a=1; sid=abc\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"PUT /x HTTP/1.0\nContent-Length: 3\nConnection: keep-alive\n\nabc",
	"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\n folded\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: sid=s1; Path=/; HttpOnly\r\n\r\nhello",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\nbody to the end",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
}

// FuzzHead: the head peeker and parsers never panic, never read past the
// head, and where net/http reads the same head they agree on where its
// body ends and on the key.
func FuzzHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, request bool) {
		n, st := scanHead(data, request)
		if st != headDone {
			if n != 0 {
				t.Fatalf("state %d with length %d", st, n)
			}
			if st == headMore && len(data) > 0 {
				// more bytes may complete it; what is here must not be refused later
				if _, st2 := scanHead(data[:len(data)-1], request); st2 == headNot {
					t.Fatalf("a prefix refused, the whole not")
				}
			}
			return
		}
		head := data[:n]
		if n < 2 || head[n-1] != '\n' || !(head[n-2] == '\n' || (n >= 3 && head[n-2] == '\r' && head[n-3] == '\n')) {
			t.Fatalf("head %q does not end in an empty line", head)
		}
		if n2, st2 := scanHead(head, request); st2 != headDone || n2 != n {
			t.Fatalf("the head alone scans to %d, %d", n2, st2)
		}
		if request {
			checkRequest(t, head)
		} else {
			checkResponse(t, head)
		}
	})
}

func checkRequest(t *testing.T, head []byte) {
	rq, ok := parseRequest(head, "X-Key", "")
	rc, okc := parseRequest(head, "", "sid")
	if ok != okc || rq.length != rc.length || rq.chunked != rc.chunked || rq.close != rc.close || rq.upgrade != rc.upgrade {
		t.Fatalf("the key changes the framing: %+v, %+v", rq, rc)
	}
	if !ok {
		return
	}
	if rq.n != len(head) || rq.length < 0 || (rq.chunked && rq.length != 0) {
		t.Fatalf("parsed %+v from %q", rq, head)
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return // net/http refuses what the balancer passes on: the backend judges
	}
	chunked := len(req.TransferEncoding) > 0 && req.TransferEncoding[len(req.TransferEncoding)-1] == "chunked"
	switch {
	case chunked != rq.chunked:
		t.Fatalf("chunked: net/http %v, balancer %v, in %q", chunked, rq.chunked, head)
	case !chunked && req.ContentLength != rq.length:
		t.Fatalf("length: net/http %d, balancer %d, in %q", req.ContentLength, rq.length, head)
	}
	if vs := req.Header.Values("X-Key"); len(vs) > 0 && strings.Trim(vs[0], " \t") != rq.key {
		t.Fatalf("key: net/http %q, balancer %q, in %q", vs[0], rq.key, head)
	}
	// The cookie: where both read a plain value (RFC 6265 cookie-octets;
	// what else a key holds only has to be the same each time).
	plain := rc.key != "" && !strings.ContainsAny(rc.key, "\",; \t\\")
	if c, err := req.Cookie("sid"); err == nil && plain && c.Value != "" && rc.key != c.Value {
		t.Fatalf("cookie: net/http %q, balancer %q, in %q", c.Value, rc.key, head)
	}
}

func checkResponse(t *testing.T, head []byte) {
	rh, ok := parseResponse(head, "sid")
	if !ok {
		return
	}
	if rh.n != len(head) || rh.status < 100 || rh.status > 999 || rh.length < -1 || (rh.chunked && rh.untilEOF) {
		t.Fatalf("parsed %+v from %q", rh, head)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode < 200 || resp.StatusCode == 204 || resp.StatusCode == 304 {
		return
	}
	chunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[len(resp.TransferEncoding)-1] == "chunked"
	switch {
	case chunked != rh.chunked:
		t.Fatalf("chunked: net/http %v, balancer %v, in %q", chunked, rh.chunked, head)
	case !chunked && !rh.untilEOF && resp.ContentLength != rh.length:
		t.Fatalf("length: net/http %d, balancer %d, in %q", resp.ContentLength, rh.length, head)
	case !chunked && rh.untilEOF && resp.ContentLength != -1:
		t.Fatalf("to the end: net/http says length %d, in %q", resp.ContentLength, head)
	}
}

// FuzzChunked: copyChunked writes exactly the bytes it read, and stops
// at the end of the body.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"3;ext=\"a\"\r\nabc\r\n0\r\nTrailer: x\r\n\r\nNEXT",
		"a\nabcdefghij\n0\n\n",
		"zz\r\n",
		"5\r\nhelloXX",
		"fffffffffffffff\r\n",
	} {
		f.Add([]byte(s), 16)
	}
	f.Fuzz(func(t *testing.T, data []byte, size int) {
		size = 16 + (size&0xfff)%4096
		br := bufio.NewReaderSize(bytes.NewReader(data), size)
		var out bytes.Buffer
		err := copyChunked(&out, br)
		rest, _ := io.ReadAll(br)
		if !bytes.Equal(append(out.Bytes(), rest...), data) {
			t.Fatalf("wrote %q and left %q of %q", out.Bytes(), rest, data)
		}
		if err == nil && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			t.Fatalf("ended the body at %q", out.Bytes())
		}
	})
}
