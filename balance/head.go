package balance

// Reading HTTP/1.x message heads, for the modes that route by a header or
// a cookie. The rules:
//
//   - Only what routing needs is read: the request line or status line, and
//     the headers that frame the body (Content-Length, Transfer-Encoding),
//     end the connection (Connection), switch protocols (Upgrade) and key
//     the client (the sticky header, Cookie, Set-Cookie). Nothing is
//     rewritten: a head is forwarded as the bytes that came.
//   - A head ends at its first empty line; lines end in LF with an optional
//     CR before it, as Go's and Node's servers read them.
//   - A head the balancer would have to guess at is not "ok": a version other
//     than HTTP/1.0 or 1.1, a malformed line, obsolete line folding, a
//     Content-Length that is not one decimal number, both Content-Length and
//     Transfer-Encoding on a request, a request Transfer-Encoding that does
//     not end in chunked. The caller then stops reading that connection and
//     copies the rest of it as it comes, to the backend it is on: never a
//     guess about where a message ends.
//   - scanHead answers early: the first bytes of TLS, of HTTP/2's preface
//     or of anything that is not a request line are refused without waiting
//     for more.

import (
	"bytes"
	"strconv"
	"strings"
)

// maxHead bounds a request head: the balancer reads no more than this
// before it decides. A longer head is copied on unread.
const maxHead = 8 << 10

// maxRespHead bounds a response head (Set-Cookie headers make them
// longer than requests'); a longer one ends the reading of the connection.
const maxRespHead = 16 << 10

// headState is what scanHead makes of the bytes so far.
type headState int

const (
	headMore headState = iota // no end yet, and the bytes may still start a head
	headDone                  // a complete head: its length is returned
	headNot                   // these bytes do not start an HTTP/1.x head
)

// scanHead looks for the end of a head at the start of p. For a request,
// the request line's method must be a token followed by a space and the
// target must be followed by " HTTP/1."; for a response, p must start with
// "HTTP/1.". It returns the head's length with headDone.
func scanHead(p []byte, request bool) (int, headState) {
	if !plausibleStart(p, request) {
		return 0, headNot
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '\n' {
			continue
		}
		// an empty line: "\n\n" or "\n\r\n"
		if i+1 < len(p) && p[i+1] == '\n' {
			return i + 2, headDone
		}
		if i+2 < len(p) && p[i+1] == '\r' && p[i+2] == '\n' {
			return i + 3, headDone
		}
	}
	return 0, headMore
}

// plausibleStart reports whether p may be the start of a request or status
// line (the whole of it, when it holds a line end).
func plausibleStart(p []byte, request bool) bool {
	line, complete := p, false
	if i := bytes.IndexByte(p, '\n'); i >= 0 {
		line, complete = bytes.TrimSuffix(p[:i], []byte("\r")), true
	}
	const v = "HTTP/1."
	if !request {
		return bytes.HasPrefix(line, []byte(v)) || (!complete && bytes.HasPrefix([]byte(v), line))
	}
	// METHOD SP TARGET SP HTTP/1.x
	i := 0
	for i < len(line) && isTokenChar(line[i]) {
		i++
	}
	if i == len(line) {
		return !complete && i <= 32 // a method so far, unless absurdly long
	}
	if i == 0 || i > 32 || line[i] != ' ' {
		return false
	}
	j := i + 1
	for j < len(line) && line[j] > ' ' && line[j] != 0x7f {
		j++
	}
	if j == len(line) {
		return !complete
	}
	if j == i+1 || line[j] != ' ' {
		return false
	}
	rest := line[j+1:]
	return bytes.HasPrefix(rest, []byte(v)) || (!complete && bytes.HasPrefix([]byte(v), rest))
}

// isTokenChar reports whether c may be in an RFC 9110 token (a method, a
// header name).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// ValidHeaderName reports whether s may name a header (and a cookie): an
// RFC 9110 token.
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// reqHead is what the balancer reads of a request head.
type reqHead struct {
	n       int    // bytes of the head, its empty line included
	method  string // GET, HEAD, CONNECT, ...
	length  int64  // the body's Content-Length; 0 without one
	chunked bool   // the body is chunked
	upgrade bool   // asks to switch protocols (Upgrade, or CONNECT)
	close   bool   // the client ends the connection after this exchange
	key     string // the sticky header's or cookie's value; "" when absent
}

// respHead is what the balancer reads of a response head.
type respHead struct {
	n         int
	status    int
	length    int64 // Content-Length, -1 without one
	chunked   bool
	untilEOF  bool   // the body runs to the connection's end (no length, or a Transfer-Encoding without chunked last)
	close     bool   // the server ends the connection after it
	setCookie string // the value the response sets for the sticky cookie, "" when none
}

// headLines splits a complete head into its lines, without line ends and
// without the final empty line.
func headLines(h []byte) []string {
	s := string(h)
	var lines []string
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSuffix(s[:i], "\r")
		s = s[i+1:]
		if line == "" {
			break
		}
		lines = append(lines, line)
	}
	return lines
}

// header is one "Name: value" line, the value without its surrounding
// spaces and tabs.
func splitHeader(line string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(line, ":")
	if !ok || !ValidHeaderName(name) {
		return "", "", false
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return "", "", false
		}
	}
	return name, value, true
}

// framing collects the headers that say where a body ends and whether the
// connection goes on.
type framing struct {
	lengthSeen  bool
	length      int64
	te          []string // Transfer-Encoding codings, in order, lower case
	connClose   bool
	connKeep    bool
	connUpgrade bool
	upgrade     bool // an Upgrade header
}

// add takes one header into account; false for a value that cannot be
// trusted (a malformed or conflicting Content-Length).
func (f *framing) add(name, value string) bool {
	switch {
	case strings.EqualFold(name, "Content-Length"):
		for _, v := range strings.Split(value, ",") {
			v = strings.Trim(v, " \t")
			if v == "" || len(v) > 18 || strings.Trim(v, "0123456789") != "" {
				return false
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			if f.lengthSeen && n != f.length {
				return false
			}
			f.lengthSeen, f.length = true, n
		}
	case strings.EqualFold(name, "Transfer-Encoding"):
		for _, v := range strings.Split(value, ",") {
			if v = strings.ToLower(strings.Trim(v, " \t")); v != "" {
				f.te = append(f.te, v)
			}
		}
	case strings.EqualFold(name, "Connection"):
		for _, v := range strings.Split(value, ",") {
			switch strings.ToLower(strings.Trim(v, " \t")) {
			case "close":
				f.connClose = true
			case "keep-alive":
				f.connKeep = true
			case "upgrade":
				f.connUpgrade = true
			}
		}
	case strings.EqualFold(name, "Upgrade"):
		f.upgrade = true
	}
	return true
}

func (f *framing) chunkedLast() bool { return len(f.te) > 0 && f.te[len(f.te)-1] == "chunked" }

// closes reports whether a message of version HTTP/1.minor with these
// headers ends its connection.
func (f *framing) closes(minor int) bool {
	return f.connClose || (minor == 0 && !f.connKeep)
}

// parseVersion reads "HTTP/1.0" or "HTTP/1.1".
func parseVersion(v string) (minor int, ok bool) {
	switch v {
	case "HTTP/1.1":
		return 1, true
	case "HTTP/1.0":
		return 0, true
	}
	return 0, false
}

// parseRequest reads a complete request head h (as scanHead found it).
// header or cookie names the sticky key to read (at most one is set).
func parseRequest(h []byte, header, cookie string) (reqHead, bool) {
	r := reqHead{n: len(h)}
	lines := headLines(h)
	if len(lines) == 0 {
		return r, false
	}
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || !ValidHeaderName(parts[0]) || parts[1] == "" {
		return r, false
	}
	minor, ok := parseVersion(parts[2])
	if !ok {
		return r, false
	}
	r.method = parts[0]
	var f framing
	keySeen := false
	for _, line := range lines[1:] {
		if line[0] == ' ' || line[0] == '\t' {
			return r, false // obsolete line folding
		}
		name, value, ok := splitHeader(line)
		if !ok || !f.add(name, value) {
			return r, false
		}
		switch {
		case header != "" && !keySeen && strings.EqualFold(name, header):
			r.key, keySeen = value, true
		case cookie != "" && !keySeen && strings.EqualFold(name, "Cookie"):
			if v, ok := cookieValue(value, cookie); ok {
				r.key, keySeen = v, true
			}
		}
	}
	switch {
	case len(f.te) > 0 && (f.lengthSeen || !f.chunkedLast() || minor == 0):
		return r, false // a request smuggler's favourite: let the backend judge it, unrouted
	case len(f.te) > 0:
		r.chunked = true
	case f.lengthSeen:
		r.length = f.length
	}
	r.upgrade = r.method == "CONNECT" || (f.upgrade && f.connUpgrade)
	r.close = f.closes(minor)
	return r, true
}

// cookieValue finds name in a Cookie header's value ("a=1; b=2").
func cookieValue(header, name string) (string, bool) {
	for _, part := range strings.Split(header, ";") {
		k, v, ok := strings.Cut(strings.Trim(part, " \t"), "=")
		if ok && k == name {
			return v, true
		}
	}
	return "", false
}

// parseResponse reads a complete response head; cookie names the sticky
// cookie whose Set-Cookie is wanted ("" for none).
func parseResponse(h []byte, cookie string) (respHead, bool) {
	r := respHead{n: len(h), length: -1}
	lines := headLines(h)
	if len(lines) == 0 {
		return r, false
	}
	version, rest, _ := strings.Cut(lines[0], " ")
	minor, ok := parseVersion(version)
	if !ok || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return r, false
	}
	code := rest[:3]
	if strings.Trim(code, "0123456789") != "" || code[0] == '0' {
		return r, false
	}
	r.status, _ = strconv.Atoi(code)
	var f framing
	for _, line := range lines[1:] {
		if line[0] == ' ' || line[0] == '\t' {
			return r, false
		}
		name, value, ok := splitHeader(line)
		if !ok || !f.add(name, value) {
			return r, false
		}
		if cookie != "" && strings.EqualFold(name, "Set-Cookie") {
			first, _, _ := strings.Cut(value, ";")
			if k, v, ok := strings.Cut(strings.Trim(first, " \t"), "="); ok && k == cookie && v != "" {
				r.setCookie = v
			}
		}
	}
	switch {
	case len(f.te) > 0 && f.chunkedLast() && minor == 1:
		r.chunked = true
	case len(f.te) > 0:
		r.untilEOF = true
	case f.lengthSeen:
		r.length = f.length
	default:
		r.untilEOF = true
	}
	r.close = f.closes(minor)
	return r, true
}

// bodiless reports whether a response to method with this status has no
// body whatever its headers say (RFC 9112 section 6.3).
func bodiless(method string, status int) bool {
	return method == "HEAD" || status < 200 || status == 204 || status == 304 ||
		(method == "CONNECT" && status/100 == 2)
}
