// Package balance spreads TCP connections over a process's ready instances.
//
// The rules of the proxy:
//
//   - A backend is chosen per client connection, never per request: the
//     balancer sees bytes, not HTTP, so keep-alive, SSE and WebSockets all stay
//     on the instance that accepted them.
//   - Every backend has an id, unique per run of an instance ("web.2#7"), and
//     a key, the instance it is a run of ("web.2").
//   - Without sticky, the backend with the fewest open connections wins; ties go
//     round robin over the pool in the order backends were added. With sticky,
//     the client's IP address is hashed against every backend key (rendezvous
//     hashing) and the highest score wins, so a client keeps its instance while
//     that instance is in the pool, across its restarts, and adding or removing
//     one moves only the clients that must move. Two backends with one key (a
//     reload's replacement beside the run it replaces): the one added last
//     wins, so the replacement takes the old run's clients over.
//   - Sticky on a request header or a cookie (Mode.Header, Mode.Cookie): the
//     connection is read as HTTP/1.x and every request is routed by the
//     header's or the cookie's value (route.go); that mode is the only one in
//     which the balancer looks at the bytes, and it never changes one.
//   - A dial that fails (refused, or no answer within DialTimeout) is retried
//     on the next best backend, each at most once; then the client is closed.
//     With an empty pool the client waits up to WaitForBackend for an Add.
//   - Bytes are copied both ways by a plain read/write loop through a pooled
//     buffer, not by splice (see oneWay). When one side's read ends cleanly,
//     the other side's write is shut (CloseWrite), so half-closed
//     request/response protocols work; both sockets are closed only when both
//     directions are done. An error in either direction closes both at once.
//     There is no idle timeout.
//   - Open counts a connection from the moment its backend is chosen until both
//     directions are done; Served counts connections whose dial succeeded.
//   - Settle takes a backend out of the pool and waits until its connections
//     are closed or the newest is old enough for the backend to have accepted
//     it: the moment its process may be told to stop without losing a
//     connection that is still in its listen queue.
package balance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for the Balancer fields of the same names.
const (
	DefaultWaitForBackend = 5 * time.Second
	DefaultDialTimeout    = 2 * time.Second
)

// Stats are one backend's counters.
type Stats struct {
	Open   int64 // connections open now through the balancer
	Served int64 // connections handed to it in total
}

// Mode is how a balancer chooses a backend.
type Mode struct {
	// Sticky hashes each client onto a backend; otherwise least
	// connections.
	Sticky bool
	// Header, with Sticky, keys on this request header's value (e.g.
	// "X-Forwarded-For", "CF-Connecting-IP") instead of the client address:
	// a request without it, and a connection that is not HTTP/1.x (TLS, a
	// protocol where the server speaks first), go by the address.
	Header string
	// Cookie, with Sticky, keys on this cookie: a request that carries one
	// the balancer saw an instance set goes to that instance, one it did
	// not goes by the cookie's hash, and a request without it goes to the
	// instance the connection is on, or the least busy one.
	Cookie string
}

// routed reports whether the balancer reads requests (route.go).
func (m Mode) routed() bool { return m.Sticky && (m.Header != "" || m.Cookie != "") }

// Balancer listens on one address and spreads connections over backends.
type Balancer struct {
	// WaitForBackend is how long a client waits for a backend to be added
	// when the pool is empty. Set it before Serve.
	WaitForBackend time.Duration
	// DialTimeout bounds each dial to a backend. Set it before Serve.
	DialTimeout time.Duration
	// HeadTimeout bounds the wait for a connection's first request head
	// when the mode reads requests; past it the connection goes by the
	// client address. Set it before Serve.
	HeadTimeout time.Duration

	ln     *net.TCPListener
	mode   Mode
	learnt *learnt         // cookie values to the instance that set them (Mode.Cookie)
	ctx    context.Context // cancelled by Close; ends dials in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per client connection

	mu       sync.Mutex
	closed   bool
	backends map[string]*backend // in the pool or with open connections
	pool     []*backend          // in the pool, in the order added
	next     int                 // round-robin cursor into pool
	added    chan struct{}       // closed and replaced on every Add
	conns    map[*net.TCPConn]struct{}
}

type backend struct {
	id       string
	key      string    // the instance: what sticky clients are hashed onto
	addr     string    // guarded by Balancer.mu
	inPool   bool      // guarded by Balancer.mu
	lastPick time.Time // the newest connection handed to it; guarded by Balancer.mu
	open     atomic.Int64
	served   atomic.Int64
	idle     chan struct{} // closed when open drops to 0; made by Drain
}

// DefaultHeadTimeout is the default of Balancer.HeadTimeout.
const DefaultHeadTimeout = time.Second

// Listen binds addr (e.g. "127.0.0.1:4321"). With m.Sticky a client keeps
// its instance while that instance is in the pool, chosen by rendezvous
// (highest-random-weight) hashing over the pool's keys, so adding or
// removing one moves only the clients that must move; otherwise
// least-connections (ties: round robin).
func Listen(addr string, m Mode) (*Balancer, error) {
	la, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("balance: resolve %s: %w", addr, err)
	}
	ln, err := net.ListenTCP("tcp", la)
	if err != nil {
		return nil, fmt.Errorf("balance: listen on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Balancer{
		WaitForBackend: DefaultWaitForBackend,
		DialTimeout:    DefaultDialTimeout,
		HeadTimeout:    DefaultHeadTimeout,
		ln:             ln,
		mode:           m,
		learnt:         newLearnt(),
		ctx:            ctx,
		cancel:         cancel,
		backends:       map[string]*backend{},
		added:          make(chan struct{}),
		conns:          map[*net.TCPConn]struct{}{},
	}, nil
}

// Addr is the address the balancer listens on.
func (b *Balancer) Addr() net.Addr { return b.ln.Addr() }

// Serve accepts until Close; each connection goroutine is tracked (WaitGroup).
// It returns nil after Close, or the error that stopped accepting.
func (b *Balancer) Serve() error {
	var delay time.Duration
	for {
		c, err := b.ln.AcceptTCP()
		if err != nil {
			if b.isClosed() {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("balance: accept: %w", err)
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-b.ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		delay = 0
		if !b.track(c, true) {
			c.Close()
			return nil
		}
		go b.handle(c)
	}
}

func temporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Add puts a ready backend in the pool: id is unique per run ("web.2#3"),
// key is the instance it is a run of ("web.2"), addr where it listens
// ("127.0.0.1:5101"). Re-adding an id updates its key and addr.
func (b *Balancer) Add(id, key, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	be := b.backends[id]
	if be == nil {
		be = &backend{id: id}
		b.backends[id] = be
	}
	be.key, be.addr = key, addr
	if !be.inPool {
		be.inPool = true
		b.pool = append(b.pool, be)
	}
	close(b.added)
	b.added = make(chan struct{})
}

// Remove takes a backend out of the pool: it gets no new connection; open ones
// go on.
func (b *Balancer) Remove(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(id)
}

func (b *Balancer) removeLocked(id string) {
	be := b.backends[id]
	if be == nil || !be.inPool {
		return
	}
	be.inPool = false
	for i, p := range b.pool {
		if p == be {
			b.pool = append(b.pool[:i], b.pool[i+1:]...)
			if b.next > i {
				b.next--
			}
			break
		}
	}
	if be.open.Load() == 0 {
		delete(b.backends, id)
	}
}

// Drain removes the backend and waits until its open connections have closed,
// or ctx ends (returns ctx.Err()).
func (b *Balancer) Drain(ctx context.Context, id string) error {
	b.mu.Lock()
	b.removeLocked(id)
	be := b.backends[id]
	if be == nil || be.open.Load() == 0 {
		b.mu.Unlock()
		return nil
	}
	if be.idle == nil {
		be.idle = make(chan struct{})
	}
	idle := be.idle
	b.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Settle takes the backend out of the pool and waits until it has no open
// connection, or its newest one was handed to it at least settle ago (so a
// backend that accepts promptly has taken it from its listen queue), or
// ctx ends. It returns the connections open then. A backend that serves
// only long-lived streams returns at once: its newest stream is old.
func (b *Balancer) Settle(ctx context.Context, id string, settle time.Duration) int64 {
	b.mu.Lock()
	b.removeLocked(id)
	be := b.backends[id]
	if be == nil {
		b.mu.Unlock()
		return 0
	}
	wait := time.Until(be.lastPick.Add(settle))
	if n := be.open.Load(); n == 0 || wait <= 0 {
		b.mu.Unlock()
		return n
	}
	if be.idle == nil {
		be.idle = make(chan struct{})
	}
	idle := be.idle
	b.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
	return be.open.Load()
}

// Open is the number of connections open to backend id now.
func (b *Balancer) Open(id string) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if be := b.backends[id]; be != nil {
		return be.open.Load()
	}
	return 0
}

// Stats reports every backend that is in the pool or still has open
// connections.
func (b *Balancer) Stats() map[string]Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := make(map[string]Stats, len(b.backends))
	for id, be := range b.backends {
		m[id] = Stats{Open: be.open.Load(), Served: be.served.Load()}
	}
	return m
}

// Close stops listening, closes every proxied connection, waits for the
// goroutines.
func (b *Balancer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	b.cancel()
	conns := make([]*net.TCPConn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()

	err := b.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	b.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("balance: close listener: %w", err)
	}
	return nil
}

func (b *Balancer) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// track registers c so that Close closes it; false once Close has begun.
// With goroutine, it also counts the goroutine about to handle c, under the
// same lock, so that Close never waits before the count went up.
func (b *Balancer) track(c *net.TCPConn, goroutine bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	if goroutine {
		b.wg.Add(1)
	}
	return true
}

func (b *Balancer) untrack(c *net.TCPConn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	c.Close()
}

// handle proxies one client connection.
func (b *Balancer) handle(client *net.TCPConn) {
	defer b.wg.Done()
	defer b.untrack(client)
	if b.mode.routed() {
		b.route(client)
		return
	}
	var w want
	if b.mode.Sticky {
		w.hash = clientKey(client)
	}
	be, server := b.connect(w)
	if server == nil {
		return
	}
	defer b.release(be)
	defer b.untrack(server)
	pipe(client, server)
}

func clientKey(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return c.RemoteAddr().String()
}

// want is what a connection or a request asks of the pool.
type want struct {
	hash     string // rendezvous on this over the backends' keys; "" = least connections
	instance string // a backend key to take first, when in the pool (a learnt cookie)
}

// connect chooses a backend for the client and dials it, trying each backend
// at most once. On success the backend's open count holds the connection; the
// caller releases it.
func (b *Balancer) connect(w want) (*backend, *net.TCPConn) {
	var tried map[*backend]bool // made on the first failed dial
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	d := net.Dialer{Timeout: b.DialTimeout}
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, nil
		}
		be := b.pickLocked(w, tried)
		if be == nil {
			if len(b.pool) > 0 {
				// Every backend in the pool refused: give up.
				b.mu.Unlock()
				return nil, nil
			}
			added := b.added
			b.mu.Unlock()
			if wait == nil {
				wait = time.NewTimer(b.WaitForBackend)
			}
			select {
			case <-added:
				continue
			case <-wait.C:
				return nil, nil
			case <-b.ctx.Done():
				return nil, nil
			}
		}
		be.open.Add(1) // reserve now, so concurrent picks see it
		be.lastPick = time.Now()
		addr := be.addr
		b.mu.Unlock()

		c, err := d.DialContext(b.ctx, "tcp", addr)
		if err != nil {
			if tried == nil {
				tried = map[*backend]bool{}
			}
			tried[be] = true
			b.release(be)
			continue
		}
		server := c.(*net.TCPConn)
		if !b.track(server, false) {
			server.Close()
			b.release(be)
			return nil, nil
		}
		be.served.Add(1)
		return be, server
	}
}

// pickLocked returns the best backend in the pool not yet tried, or nil.
func (b *Balancer) pickLocked(w want, tried map[*backend]bool) *backend {
	var best *backend
	if w.instance != "" {
		for _, be := range b.pool { // the last added of the key: a replacement
			if be.key == w.instance && !tried[be] {
				best = be
			}
		}
		if best != nil {
			return best
		}
	}
	if w.hash != "" {
		var bestScore uint64
		for _, be := range b.pool {
			if tried[be] {
				continue
			}
			// >=: of two runs of one instance, the one added last
			if s := score(w.hash, be.key); best == nil || s >= bestScore {
				best, bestScore = be, s
			}
		}
		return best
	}
	n := len(b.pool)
	bi := 0
	for i := range n {
		j := (b.next + i) % n
		be := b.pool[j]
		if tried[be] {
			continue
		}
		if best == nil || be.open.Load() < best.open.Load() {
			best, bi = be, j
		}
	}
	if best != nil {
		b.next = (bi + 1) % n
	}
	return best
}

// release ends a connection's hold on its backend.
func (b *Balancer) release(be *backend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if be.open.Add(-1) != 0 {
		return
	}
	if be.idle != nil {
		close(be.idle)
		be.idle = nil
	}
	if !be.inPool && b.backends[be.id] == be {
		delete(b.backends, be.id)
	}
}

// pipe copies both ways and returns when both directions are done, with
// both connections closed.
func pipe(client, server *net.TCPConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		oneWay(server, client)
	}()
	oneWay(client, server)
	<-done
	client.Close()
	server.Close()
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// readerOnly and writerOnly hide ReadFrom and WriteTo, so that
// io.CopyBuffer uses its buffer.
type readerOnly struct{ io.Reader }
type writerOnly struct{ io.Writer }

// oneWay copies src to dst. A clean end of src shuts dst's write side so the
// peer sees the end too while the other direction goes on; an error closes
// both connections, which ends the other direction as well.
func oneWay(dst, src *net.TCPConn) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	// A plain read/write loop: splice, which io.Copy between TCP
	// connections would use, costs two syscalls and a pipe per message,
	// more than it saves for request-sized messages.
	if _, err := io.CopyBuffer(writerOnly{dst}, readerOnly{src}, *buf); err != nil {
		src.Close()
		dst.Close()
		return
	}
	if err := dst.CloseWrite(); err != nil {
		src.Close()
		dst.Close()
	}
}
