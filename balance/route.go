package balance

// Routing by a request header or a cookie (Mode.Header, Mode.Cookie).
//
// Behind a proxy or a tunnel on the same host every connection comes from
// 127.0.0.1, and such a proxy (cloudflared, Caddy, nginx with upstream
// keep-alive) carries the requests of many clients, one after the other,
// over each connection it keeps to the backend. So the key is read from
// every request, not only the first of a connection, and each request goes
// where its key says. The rules:
//
//   - The client connection is read as HTTP/1.x, message by message: a
//     head (at most maxHead bytes; the first within HeadTimeout), then the
//     body as its head frames it (Content-Length or chunked). Bytes are
//     forwarded as they came: nothing is added, removed or rewritten.
//   - Each request's key picks a backend as a connection's address does in
//     sticky mode. While it picks the backend the connection is on, the
//     request goes on that backend connection (keep-alive and pipelining
//     as the client does them). When it picks another, the balancer waits
//     until every response of the current backend has been passed on, then
//     closes that backend connection and opens one to the other. A request
//     without a key goes by the client address (Header), or stays where the
//     connection is (Cookie: a new session goes to the least busy backend).
//   - Responses are read the same way, to know where each ends. A
//     Set-Cookie of the sticky cookie is learnt: later requests carrying
//     that value go to the instance that set it, while it is in the pool
//     (so an app's own session cookie keeps its session's instance); a value
//     never learnt goes by its hash.
//   - A backend that closes an idle keep-alive connection (its idle
//     timeout, or its shutdown after a drain) does not end the client's:
//     the next request opens a new backend connection. A backend that
//     closes with a request unanswered closes the client too.
//   - Whatever the balancer cannot frame with certainty (not HTTP/1.x, a
//     head past the bound, no head within HeadTimeout, a malformed or
//     ambiguous framing, an Upgrade or CONNECT that the backend accepts, a
//     response that runs to the connection's end, an exchange after which
//     either side said "Connection: close") ends the routing of that
//     connection: from there its bytes are copied both ways as they come,
//     to the backend it is on (or, before the first request, the one its
//     address picks), exactly as in the other modes.

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// errFraming is a message the balancer cannot frame with certainty.
var errFraming = errors.New("balance: message framing not understood")

// errNotHead is bytes that do not start an HTTP/1.x head within its bound.
var errNotHead = errors.New("balance: not an HTTP/1.x head")

var (
	reqReaders  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxHead) }}
	respReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxRespHead) }}
)

// peekHead waits for a complete head at the start of br (whose buffer is
// the bound) and returns its length, leaving it unread. errNotHead: the
// bytes are not a head, or not one that fits.
func peekHead(br *bufio.Reader, request bool) (int, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		n, st := scanHead(buf, request)
		switch {
		case st == headDone:
			return n, nil
		case st == headNot, br.Buffered() == br.Size():
			return 0, errNotHead
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// copyN copies n bytes from br to dst.
func copyN(dst io.Writer, br *bufio.Reader, n int64) error {
	for n > 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		p, _ := br.Peek(int(min(int64(br.Buffered()), n)))
		if _, err := dst.Write(p); err != nil {
			return err
		}
		br.Discard(len(p))
		n -= int64(len(p))
	}
	return nil
}

// copyLine copies one line, its LF included, from br to dst and returns
// it (valid until br is read again). A line longer than br's buffer is
// errFraming, after what was read of it was copied.
func copyLine(dst io.Writer, br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if len(line) > 0 {
		if _, werr := dst.Write(line); werr != nil {
			return nil, werr
		}
	}
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errFraming
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	}
	return line, err
}

func isEmptyLine(l []byte) bool { return string(l) == "\r\n" || string(l) == "\n" }

// copyChunked copies a chunked body, its trailers included, from br to
// dst. errFraming: the body is not chunked coding as the RFC writes it;
// every byte read was copied.
func copyChunked(dst io.Writer, br *bufio.Reader) error {
	for {
		line, err := copyLine(dst, br)
		if err != nil {
			return err
		}
		size, ok := chunkSize(line)
		if !ok {
			return errFraming
		}
		if size == 0 {
			break
		}
		if err := copyN(dst, br, size); err != nil {
			return err
		}
		if line, err = copyLine(dst, br); err != nil {
			return err
		}
		if !isEmptyLine(line) {
			return errFraming
		}
	}
	for { // trailers, to the empty line
		line, err := copyLine(dst, br)
		if err != nil {
			return err
		}
		if isEmptyLine(line) {
			return nil
		}
	}
}

// chunkSize reads a chunk-size line: hex digits, optional extensions.
func chunkSize(line []byte) (int64, bool) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	s, _, _ = strings.Cut(s, ";")
	s = strings.TrimRight(s, " \t")
	if s == "" || len(s) > 15 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 16, 64)
	return int64(n), err == nil
}

// learnt maps sticky cookie values to the instance that set them: two
// generations of at most learntGen values each, the older dropped when the
// newer fills, so the most recently seen sessions are kept.
type learnt struct {
	mu       sync.Mutex
	cur, old map[string]string
}

const (
	learntGen      = 16384
	learntMaxValue = 256 // longer values are not learnt (they go by hash)
)

func newLearnt() *learnt { return &learnt{cur: map[string]string{}} }

func (l *learnt) put(value, key string) {
	if len(value) > learntMaxValue {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.putLocked(value, key)
}

func (l *learnt) putLocked(value, key string) {
	if _, ok := l.cur[value]; !ok && len(l.cur) >= learntGen {
		l.old, l.cur = l.cur, make(map[string]string, learntGen)
	}
	l.cur[value] = key
}

func (l *learnt) get(value string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k, ok := l.cur[value]; ok {
		return k
	}
	k, ok := l.old[value]
	if ok {
		l.putLocked(value, k)
	}
	return k
}

// wantFor is what a request asks of the pool.
func (b *Balancer) wantFor(rq reqHead, addr string) want {
	if b.mode.Header != "" {
		if rq.key != "" {
			return want{hash: rq.key}
		}
		return want{hash: addr}
	}
	if rq.key == "" {
		return want{} // no session yet: where the connection is, or the least busy
	}
	return want{instance: b.learnt.get(rq.key), hash: rq.key}
}

// keeps reports whether a request that wants w stays on u's backend.
func (b *Balancer) keeps(u *upstream, w want) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !u.be.inPool {
		return false
	}
	if w.hash == "" && w.instance == "" {
		return true
	}
	return b.pickLocked(w, nil) == u.be
}

// pending is a request sent on a backend connection and not yet answered.
type pending struct {
	method  string
	close   bool      // the client ends the connection after it
	verdict chan bool // an upgrade's answer: false when it did not switch (nil for others)
}

// upstream is one backend connection of a routed client connection. The
// client's goroutine writes requests to it; its own goroutine (loop)
// reads the responses and writes them to the client.
type upstream struct {
	b      *Balancer
	be     *backend
	conn   *net.TCPConn
	client *net.TCPConn

	mu      sync.Mutex
	queue   []pending
	idle    chan struct{} // closed when the queue empties, for a switch that waits
	closing bool          // the client's side is done with it: its end is no news
	pinned  bool          // the client's side copies as it comes: the server's end is the client's
	ended   bool          // loop saw the server's end (or an error)

	raw      chan struct{} // closed when loop copies as it comes
	done     chan struct{} // closed when loop returns
	released sync.Once
}

func (b *Balancer) newUpstream(be *backend, conn, client *net.TCPConn) *upstream {
	u := &upstream{b: b, be: be, conn: conn, client: client, raw: make(chan struct{}), done: make(chan struct{})}
	go u.loop()
	return u
}

// push queues a request about to be sent; false when the server has ended
// the connection already (send it on a new one).
func (u *upstream) push(p pending) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ended {
		return false
	}
	u.queue = append(u.queue, p)
	return true
}

func (u *upstream) front() (pending, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.queue) == 0 {
		return pending{}, false
	}
	return u.queue[0], true
}

func (u *upstream) pop() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.queue = u.queue[1:]
	if len(u.queue) == 0 && u.idle != nil {
		close(u.idle)
		u.idle = nil
	}
}

func (u *upstream) isEnded() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ended
}

// waitAnswered waits until every request sent on u is answered; it
// reports whether requests may be routed on: false when loop copies as it
// comes, or ended with requests unanswered (the client is closed then).
func (u *upstream) waitAnswered() bool {
	for {
		u.mu.Lock()
		n, ended := len(u.queue), u.ended
		var idle chan struct{}
		if n > 0 && !ended {
			if u.idle == nil {
				u.idle = make(chan struct{})
			}
			idle = u.idle
		}
		u.mu.Unlock()
		select {
		case <-u.raw:
			return false
		default:
		}
		switch {
		case n == 0:
			return true
		case ended:
			return false
		}
		select {
		case <-idle:
		case <-u.raw:
		case <-u.done:
		}
	}
}

func (u *upstream) isRaw() bool {
	select {
	case <-u.raw:
		return true
	default:
		return false
	}
}

// shut ends the backend connection from the client's side and waits for
// loop.
func (u *upstream) shut() {
	u.mu.Lock()
	u.closing = true
	u.mu.Unlock()
	u.conn.Close()
	<-u.done
	u.release()
}

// abort closes both connections: what the client was waiting for will not
// come.
func (u *upstream) abort() {
	u.mu.Lock()
	u.closing = true
	u.mu.Unlock()
	u.client.Close()
	u.conn.Close()
}

func (u *upstream) release() {
	u.released.Do(func() {
		u.b.untrack(u.conn)
		u.b.release(u.be)
	})
}

// loop reads the backend's responses and writes them to the client.
func (u *upstream) loop() {
	defer func() {
		u.mu.Lock()
		u.ended = true
		u.mu.Unlock()
		close(u.done)
	}()
	br := respReaders.Get().(*bufio.Reader)
	br.Reset(u.conn)
	defer func() { br.Reset(nil); respReaders.Put(br) }()
	cookie := u.b.mode.Cookie
	for {
		if _, err := br.Peek(1); err != nil {
			u.serverEnded()
			return
		}
		p, ok := u.front()
		if !ok { // bytes no request asked for (a 408 before a close, say)
			u.copyRaw(br)
			return
		}
		n, err := peekHead(br, false)
		if errors.Is(err, errNotHead) {
			u.copyRaw(br)
			return
		}
		if err != nil {
			u.abort()
			return
		}
		rh, ok := parseResponse(mustPeek(br, n), cookie)
		if !ok {
			u.copyRaw(br)
			return
		}
		if rh.length > 0 && !rh.chunked && !bodiless(p.method, rh.status) && int64(br.Buffered()-n) >= rh.length {
			n += int(rh.length) // the body is here too: one write for both
			rh.length = 0
		}
		if _, err := u.client.Write(mustPeek(br, n)); err != nil {
			u.abort()
			return
		}
		br.Discard(n)
		if rh.status == 101 || (p.method == "CONNECT" && rh.status/100 == 2) {
			u.copyRaw(br) // the protocol switched: a tunnel from here
			return
		}
		if rh.status/100 == 1 {
			continue // interim (100 Continue, 103): the final answer follows
		}
		if rh.setCookie != "" {
			u.b.learnt.put(rh.setCookie, u.be.key)
		}
		switch {
		case bodiless(p.method, rh.status):
		case rh.chunked:
			err = copyChunked(u.client, br)
		case rh.untilEOF:
			u.pop()
			u.copyRaw(br)
			return
		default:
			err = copyN(u.client, br, rh.length)
		}
		if errors.Is(err, errFraming) {
			u.copyRaw(br)
			return
		}
		if err != nil {
			u.abort()
			return
		}
		u.pop()
		if p.verdict != nil {
			p.verdict <- false
		}
		if rh.close || p.close {
			u.copyRaw(br) // the connection ends with this exchange
			return
		}
	}
}

// serverEnded is the backend connection's end (or an error) seen by loop.
func (u *upstream) serverEnded() {
	u.mu.Lock()
	u.ended = true
	closing, pinned, unanswered := u.closing, u.pinned, len(u.queue) > 0
	u.mu.Unlock()
	switch {
	case closing:
	case unanswered:
		u.abort()
	case pinned:
		u.client.CloseWrite()
	default:
		// An idle keep-alive connection closed by the backend: the client's
		// next request opens another. Released now, so a drain sees it.
		u.release()
	}
}

// copyRaw copies the rest of the backend connection to the client as it
// comes: what br holds, then the connection.
func (u *upstream) copyRaw(br *bufio.Reader) {
	close(u.raw)
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		if _, err := u.client.Write(p); err != nil {
			u.abort()
			return
		}
		br.Discard(n)
	}
	oneWay(u.client, u.conn)
}

// route proxies one client connection, routing each request by its key.
func (b *Balancer) route(client *net.TCPConn) {
	addr := clientKey(client)
	cr := reqReaders.Get().(*bufio.Reader)
	cr.Reset(client)
	defer func() { cr.Reset(nil); reqReaders.Put(cr) }()
	var u *upstream
	defer func() {
		if u != nil {
			u.shut()
		}
	}()

	client.SetReadDeadline(time.Now().Add(b.HeadTimeout))
	for first := true; ; first = false {
		n, err := peekHead(cr, true)
		if first {
			client.SetReadDeadline(time.Time{})
		}
		var ne net.Error
		switch {
		case err == nil:
		case err == io.EOF && cr.Buffered() == 0: // done, between messages
			if u != nil {
				u.mu.Lock()
				u.pinned = true
				u.mu.Unlock()
				u.conn.CloseWrite()
				<-u.done
			}
			return
		case errors.Is(err, errNotHead), err == io.EOF, first && errors.As(err, &ne) && ne.Timeout():
			b.routeRaw(u, cr, client, want{hash: addr})
			return
		default:
			return // a read error: the client is gone
		}
		rq, ok := parseRequest(mustPeek(cr, n), b.mode.Header, b.mode.Cookie)
		if !ok || (u != nil && u.isRaw()) {
			b.routeRaw(u, cr, client, want{hash: addr})
			return
		}
		w := b.wantFor(rq, addr)
		p := pending{method: rq.method, close: rq.close}
		if rq.upgrade {
			p.verdict = make(chan bool, 1)
		}
		if u != nil && (!b.keeps(u, w) || !u.push(p)) {
			// another backend, or this one closed the connection: once
			// every response from it has been passed on
			if !u.waitAnswered() {
				b.routeRaw(u, cr, client, w)
				return
			}
			u.shut()
			u = nil
		}
		if u == nil {
			be, conn := b.connect(w)
			if conn == nil {
				return // no backend: the client is closed
			}
			u = b.newUpstream(be, conn, client)
			if !u.push(p) {
				return // it ended before its first request
			}
		}
		length := rq.length
		if length > 0 && int64(cr.Buffered()-n) >= length {
			n += int(length) // the body is here too: one write for both
			length = 0
		}
		if _, err := u.conn.Write(mustPeek(cr, n)); err != nil {
			u.abort()
			return
		}
		cr.Discard(n)
		switch {
		case rq.chunked:
			err = copyChunked(u.conn, cr)
		case length > 0:
			err = copyN(u.conn, cr, length)
		}
		if errors.Is(err, errFraming) {
			b.routeRaw(u, cr, client, w)
			return
		}
		if err != nil {
			u.abort()
			return
		}
		if rq.upgrade {
			select {
			case <-p.verdict:
				continue // refused: HTTP goes on
			case <-u.raw:
			case <-u.done:
				return
			}
		}
		if rq.upgrade || rq.close {
			b.routeRaw(u, cr, client, w) // a tunnel, or the last exchange
			return
		}
	}
}

func mustPeek(br *bufio.Reader, n int) []byte {
	p, _ := br.Peek(n)
	return p
}

// routeRaw copies the rest of the client connection as it comes: to u's
// backend while it is open, else to a new connection to the backend w
// picks; the backend's side is copied back likewise.
func (b *Balancer) routeRaw(u *upstream, cr *bufio.Reader, client *net.TCPConn, w want) {
	if u != nil && !u.isEnded() {
		u.mu.Lock()
		u.pinned = true
		u.mu.Unlock()
		if err := flush(cr, u.conn); err != nil {
			u.abort()
			return
		}
		oneWay(u.conn, client)
		<-u.done
		return
	}
	be, server := b.connect(w)
	if server == nil {
		return
	}
	defer b.release(be)
	defer b.untrack(server)
	if err := flush(cr, server); err != nil {
		return
	}
	pipe(client, server)
}

// flush writes what br holds to dst.
func flush(br *bufio.Reader, dst io.Writer) error {
	n := br.Buffered()
	if n == 0 {
		return nil
	}
	p, _ := br.Peek(n)
	_, err := dst.Write(p)
	br.Discard(n)
	return err
}
