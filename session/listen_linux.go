package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shockwave-go/shockwave/internal/bufpool"
	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/wire"
)

// A listener on the event loop (Engine.Listen) serves a listening socket
// without net/http: its goroutine accepts connections with accept4, and
// each new socket waits on a poller, as a pendingConn, until its request
// head has come; the runtime's handshake function then answers it, and
// the session of an accepted one keeps the socket. Nothing of the
// handshake is left for the GC: the record is pooled, the head is read
// into the poller's scratch (a head that comes in pieces keeps a pooled
// buffer), and no net.Conn, http.Request or goroutine is made for it. An
// upgrade through net/http leaves some 12 KB of garbage, which a server
// of idle sessions paid for in heap headroom, at twice the live heap.
//
//	accept4 ──▶ pending, on a poller ──EPOLLIN: read, head complete──▶ handshake
//	                │                                                    ├─ Accept: 101, the session takes the socket
//	                └─ timeout, or the listener closes: closed           └─ Refuse: an HTTP error, closed
type listener struct {
	sc        *scheduler
	cfg       *settings
	raw       syscall.RawConn // ln's
	wake      int32           // an eventfd that ends the wait (wakeUp)
	backoff   time.Duration   // after running out of descriptors
	timeout   int64           // the handshake timeout, in ns
	blocking  bool            // handshake may block: run each on a goroutine of its own
	handshake func(engine.Handshake[*Session, Handler])
	budget    *wire.Budget        // the inbound budget, which heads' buffers count in; may be nil
	pending   atomic.Int32        // connections whose handshake is under way
	rsa       unix.RawSockaddrAny // accept4's, on the listener's goroutine only
}

// maxHead bounds a request head: a longer one is refused with 431.
const maxHead = 16 << 10

// maxPending bounds the connections of one listener whose handshake is
// under way: past it, the listener stops accepting until one ends, and
// new connections wait in the kernel's backlog. A variable for
// TestListenPendingBound.
var maxPending int32 = 1 << 14

// pendingConn is a connection whose request head is being read. It is in
// its poller's pending table until the head is complete (or the timeout,
// or the listener's end, takes it out); whoever takes it out owns it, and
// ends it with Accept or Refuse (or close).
type pendingConn struct {
	l      *listener
	p      *poller
	fd     int32
	remote netip.AddrPort
	since  int64         // when it was accepted, on the scheduler's clock
	buf    *[]byte       // what came of a head that came in pieces, or nil
	n      int           // of buf
	data   []byte        // what came: in buf, or in the poller's scratch
	head   int           // the head's length in data, once complete
	req    *wire.Request // the head, once complete
}

var pendingPool = sync.Pool{New: func() any { return new(pendingConn) }}

// listen serves ln on sc's event loop (see engine.Engine.Listen), until
// ln is closed or ctx is done.
func (sc *scheduler) listen(ctx context.Context, cfg *settings, ln net.Listener, timeout time.Duration, blocking bool, handshake func(engine.Handshake[*Session, Handler])) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok || !sc.polling() {
		return engine.ErrNoEventLoop
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return engine.ErrNoEventLoop
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(wake)
	l := &listener{sc: sc, cfg: cfg, raw: raw, wake: int32(wake), timeout: int64(timeout), blocking: blocking, handshake: handshake, budget: cfg.InboundBudget}
	defer sc.pollers.drop(l)
	stop := context.AfterFunc(ctx, l.wakeUp)
	defer stop()
	for ctx.Err() == nil {
		if l.pending.Load() >= maxPending {
			l.wait(-1) // until a handshake ends
			continue
		}
		lfd := -1
		if err := raw.Control(func(fd uintptr) { lfd = int(fd) }); err != nil {
			return nil // closed
		}
		// The listener's descriptor is Go's netpoller's, which lends it
		// only for Control: wait for a connection with poll, without it,
		// on a thread of the listener's own, for listenWait at most, then
		// accept under Control, which fails once ln is closed.
		if !l.wait(lfd) {
			continue
		}
		var failed syscall.Errno
		if err := raw.Control(func(fd uintptr) { failed = l.acceptAll(fd) }); err != nil {
			return nil // closed
		}
		switch failed {
		case 0:
			l.backoff = 0
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
			// Out of descriptors or memory for now: wait, as net/http does.
			l.backoff = min(max(2*l.backoff, 5*time.Millisecond), time.Second)
			time.Sleep(l.backoff)
		default:
			return &net.OpError{Op: "accept", Net: "tcp", Addr: ln.Addr(), Err: failed}
		}
	}
	return nil
}

// listenWait is how long the listener's poll waits before it looks
// whether ln was closed, which brings no event.
const listenWait = time.Second

// wait waits with poll for a connection on lfd (none when lfd < 0), for
// wakeUp, or for listenWait. It reports whether lfd is readable.
func (l *listener) wait(lfd int) bool {
	fds := [2]unix.PollFd{{Fd: l.wake, Events: unix.POLLIN}, {Fd: int32(lfd), Events: unix.POLLIN}}
	n, _ := unix.Poll(fds[:], int(listenWait/time.Millisecond))
	if fds[0].Revents != 0 {
		var b [8]byte
		unix.Read(int(l.wake), b[:])
	}
	return n > 0 && lfd >= 0 && fds[1].Revents != 0
}

// wakeUp ends the listener's wait: ctx is done, or a handshake ended
// while the pending ones were at maxPending.
func (l *listener) wakeUp() {
	b := [8]byte{1}
	unix.Write(int(l.wake), b[:])
}

// acceptAll accepts the connections waiting on lfd, until there are no
// more or maxPending are pending. It returns the error that stopped it,
// if any.
func (l *listener) acceptAll(lfd uintptr) syscall.Errno {
	for l.pending.Load() < maxPending {
		size := uint32(unsafe.Sizeof(l.rsa))
		r, _, e := syscall.RawSyscall6(unix.SYS_ACCEPT4, lfd, uintptr(unsafe.Pointer(&l.rsa)), uintptr(unsafe.Pointer(&size)),
			unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			l.start(int32(r), l.remote())
		case syscall.ECONNABORTED, syscall.EINTR, syscall.EPROTO:
		case syscall.EAGAIN:
			return 0
		default:
			return e
		}
	}
	return 0
}

// remote is the address of the client accept4 wrote in l.rsa.
func (l *listener) remote() netip.AddrPort {
	switch l.rsa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(&l.rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), port(a.Port))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(&l.rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), port(a.Port))
	}
	return netip.AddrPort{}
}

// port turns a sockaddr's port, in network order, into a number.
func port(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return binary.BigEndian.Uint16(b[:])
}

// start puts a new connection on a poller, pending until its head comes.
func (l *listener) start(fd int32, remote netip.AddrPort) {
	// As net's accepted connections: no Nagle, so that small frames go
	// out at once.
	unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c := pendingPool.Get().(*pendingConn)
	*c = pendingConn{l: l, p: l.sc.pollers.pick(), fd: fd, remote: remote, since: l.sc.Now()}
	l.pending.Add(1)
	p := c.p
	p.hmu.Lock()
	if p.pending == nil {
		p.pending = make(map[int32]*pendingConn)
	}
	p.pending[fd] = c
	p.hmu.Unlock()
	ev := unix.EpollEvent{Events: readEvents, Fd: fd}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		if c := p.takePending(fd); c != nil {
			c.close()
		}
	}
}

// takePending takes fd's pendingConn out of p's table, and fd out of the
// epoll instance; nil if another took it first.
func (p *poller) takePending(fd int32) *pendingConn {
	p.hmu.Lock()
	c := p.pending[fd]
	if c != nil {
		delete(p.pending, fd)
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	}
	p.hmu.Unlock()
	return c
}

// onHandshake is called by the poller with the events of a pending
// connection: it reads what came of the head, and once the head is
// complete (or cannot be), takes the connection out of the table and
// answers it.
func (p *poller) onHandshake(fd int32, ev uint32) {
	p.hmu.Lock()
	c := p.pending[fd]
	if c == nil {
		p.hmu.Unlock()
		return
	}
	status, msg := c.read()
	if status < 0 { // more to come
		p.hmu.Unlock()
		return
	}
	delete(p.pending, fd)
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	p.hmu.Unlock()
	switch {
	case status > 0:
		c.Refuse(wire.AppendRefusal(c.Buffer(), status, msg, 0))
	case status == 0 && c.head == 0:
		c.close() // the client went away, or failed
	case c.l.blocking:
		c.own()
		c.l.sc.spawn(func() { c.l.handshake(c) })
	default:
		c.l.handshake(c)
	}
}

// read reads what the socket has of the head. It returns -1 while the
// head is incomplete; 0 when it is complete (head set) or the connection
// failed (head 0); or the HTTP status to refuse it with, and why.
func (c *pendingConn) read() (int, string) {
	p := c.p
	for {
		// A head that comes whole, as most do, is read into the poller's
		// scratch and answered there; one that comes in pieces keeps what
		// came in a buffer of its own, which grows as its bytes come.
		var room []byte
		switch {
		case c.buf == nil:
			if p.head == nil {
				p.head = new([maxHead]byte)
			}
			room = p.head[:]
		case c.n == len(*c.buf):
			if c.n >= maxHead {
				return 431, "request head too large"
			}
			nb := bufpool.Get(min(4*c.n, maxHead))
			c.take(len(*nb))
			copy(*nb, (*c.buf)[:c.n])
			c.giveBack()
			c.buf = nb
			fallthrough
		default:
			room = (*c.buf)[c.n:]
		}
		n, e := recvRaw(c.fd, room)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return -1, ""
		case e != 0 || n == 0:
			return 0, ""
		}
		from := max(c.n-3, 0)
		if c.buf == nil {
			c.data = room[:n]
		} else {
			c.n += int(n)
			c.data = (*c.buf)[:c.n]
		}
		// Parse once the empty line that ends the head has come: a head
		// that trickles in is searched once, not once a read.
		if bytes.Contains(c.data[from:], crlfcrlf) || bytes.Contains(c.data[from:], lflf) {
			h, err := wire.ParseRequest(&p.req, c.data)
			switch {
			case err == nil:
				c.head, c.req = h, &p.req
				return 0, ""
			case !errors.Is(err, wire.ErrIncomplete):
				var he *wire.HandshakeError
				if errors.As(err, &he) {
					return he.Status, he.Msg
				}
				return 400, "malformed request"
			}
		}
		if c.buf == nil { // keep what came
			if len(c.data) >= maxHead {
				return 431, "request head too large"
			}
			c.buf = bufpool.Get(max(2*len(c.data), 512))
			c.take(len(*c.buf))
			c.n = copy(*c.buf, c.data)
			c.data = (*c.buf)[:c.n]
		}
		if c.l.budget != nil && c.l.budget.Exceeded() {
			return 503, "out of memory for handshakes"
		}
	}
}

// own moves the head out of the poller's scratch into a buffer and a
// Request of c's own, for a handshake that runs on another goroutine.
func (c *pendingConn) own() {
	if c.buf == nil {
		c.buf = bufpool.Get(len(c.data))
		c.take(len(*c.buf))
		c.n = copy(*c.buf, c.data)
		c.data = (*c.buf)[:c.n]
	}
	c.req = new(wire.Request)
	wire.ParseRequest(c.req, c.data) // as it did on the poller
}

var (
	crlfcrlf = []byte("\r\n\r\n")
	lflf     = []byte("\n\n")
)

// take and giveBack count the head's buffer in the inbound budget.
func (c *pendingConn) take(n int) {
	if c.l.budget != nil {
		c.l.budget.Take(int64(n))
	}
}

func (c *pendingConn) giveBack() {
	if c.buf == nil {
		return
	}
	if c.l.budget != nil {
		c.l.budget.Give(int64(len(*c.buf)))
	}
	bufpool.Put(c.buf)
	c.buf = nil
}

// Buffer is room for a response, after what was read.
func (c *pendingConn) Buffer() []byte {
	if cap(c.data)-len(c.data) >= 512 {
		return c.data[len(c.data):len(c.data)]
	}
	return make([]byte, 0, 512)
}

// Request returns the request head; Remote the client's address.
func (c *pendingConn) Request() *wire.Request { return c.req }
func (c *pendingConn) Remote() netip.AddrPort { return c.remote }

// Refuse writes resp and closes the connection.
func (c *pendingConn) Refuse(resp []byte) {
	writeAll(c.fd, resp)
	c.close()
}

// Accept writes resp and makes the session of the connection.
func (c *pendingConn) Accept(resp []byte, u wire.Upgraded, h Handler) (*Session, error) {
	if err := writeAll(c.fd, resp); err != nil {
		c.close()
		return nil, err
	}
	sc := c.l.sc
	s := makeSession(u, h, sc, c.l.cfg)
	s.loop.fd = c.fd
	s.loop.setRemote(c.remote)
	if rest := c.data[c.head:]; len(rest) > 0 { // frames sent right after the head
		s.rd = readerPool.Get().(*wire.Reader)
		s.rd.Reset((*fdReader)(s), s.loopReaderOptions(rest))
	}
	if c.l.blocking {
		s.tr = sc.pollers.pick() // Serve runs OnOpen on this goroutine, the handshake's own
	} else {
		// On c.p's goroutine: Serve puts the session in its line, where
		// its first turn opens it.
		s.tr = c.p
		s.loop.rstate.Store(readOpening)
	}
	s.lastRead.Store(sc.Now())
	c.fd = -1
	c.end()
	return s, nil
}

// writeAll writes a handshake's response, which an empty send buffer
// takes whole: a short write fails.
func writeAll(fd int32, b []byte) error {
	for {
		n, err := unix.Write(int(fd), b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n < len(b) {
			return syscall.EAGAIN
		}
		return nil
	}
}

// close closes the connection and ends c.
func (c *pendingConn) close() {
	if c.fd >= 0 {
		unix.Close(int(c.fd))
		c.fd = -1
	}
	c.end()
}

// end gives back what c holds, c included.
func (c *pendingConn) end() {
	c.giveBack()
	if c.l.pending.Add(-1) == maxPending-1 {
		c.l.wakeUp() // the listener waits for room
	}
	*c = pendingConn{}
	pendingPool.Put(c)
}

// sweep closes the pending connections whose handshake took longer than
// their listener's timeout, at now.
func (pp *pollers) sweep(now int64) {
	for _, p := range pp.ps {
		p.closePending(func(c *pendingConn) bool { return now-c.since > c.l.timeout })
	}
}

// drop closes the pending connections of l, which stopped listening.
func (pp *pollers) drop(l *listener) {
	for _, p := range pp.ps {
		p.closePending(func(c *pendingConn) bool { return c.l == l })
	}
}

// closePending closes p's pending connections that match.
func (p *poller) closePending(match func(*pendingConn) bool) {
	p.hmu.Lock()
	defer p.hmu.Unlock()
	for fd, c := range p.pending {
		if match(c) {
			delete(p.pending, fd)
			unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
			c.close()
		}
	}
}
