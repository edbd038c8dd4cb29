package session

import (
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shockwave-go/shockwave/wire"
)

// A session on the event loop: its transport is its poller (poll_linux.go),
// and what is its own of the socket is a loopConn. It has no goroutine
// while it waits for its client. An event (EPOLLIN) starts a burst of
// reading, in turns on the poller's goroutine (readOne); a write the
// kernel does not take at once waits for EPOLLOUT, holding the writing
// side without a goroutine (stateWantWrite), and a worker goes on with it.

// loopConn is what a session on the event loop keeps of its socket. The
// net.Conn is let go (see takeOver): an idle session holds this and its
// poller's 8-byte slot.
type loopConn struct {
	raddr   [16]byte // the client's address (IPv4 in IPv6)
	fd      int32
	rstate  atomic.Uint32 // the read state: readIdle, readRunning...
	rport   uint16
	rv4     bool // raddr is IPv4
	drained bool // the burst's last read was short (see fdReader.Read); the burst holder's
}

// Read states of a session on the event loop (loopConn.rstate), apart
// from the state word so that events and senders do not contend for one
// word:
//
//	readIdle ──event (CAS)──▶ readRunning ──ErrWouldBlock (CAS)──▶ readIdle
//	                            │   ▲   │
//	     an event during the    │   │   └──gate shut──▶ readPaused ──resume (CAS)──▶ readRunning
//	     burst (CAS)            ▼   │
//	                          readAgain ──at ErrWouldBlock: read on
//	any ──the session ends (endBurst)──▶ readDone
//
// A session that a listener on the event loop made on its poller's
// goroutine starts in readOpening: its first turn runs OnOpen (open).
const (
	readIdle    uint32 = iota // waiting for an event
	readRunning               // a burst is reading
	readAgain                 // an event came during the burst: read again
	readPaused                // stopped at the read gate: resume starts a burst
	readDone                  // the session is ending: no more reading
	readOpening               // in line for its first turn, which opens it
)

// readerPool holds the Readers of event-loop sessions between their bursts.
var readerPool = sync.Pool{New: func() any { return new(wire.Reader) }}

// takeOver moves u's socket to the event loop, when it runs and u.Conn is
// a plain TCP connection: the session keeps a duplicate of the
// descriptor, non-blocking like the original, and closes u.Conn, so that
// Go's own poller lets go of it. It returns the session's poller, or nil,
// leaving u.Conn as it was.
func (s *Session) takeOver(u wire.Upgraded) transport {
	if !s.sched.polling() {
		return nil
	}
	tc, ok := u.Conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	fd := -1
	if err := raw.Control(func(orig uintptr) {
		fd, err = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || fd < 0 {
		return nil
	}
	if a, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
		s.loop.setRemote(a.AddrPort())
	}
	tc.Close() // and let it go: a TCPConn and its addresses weigh more than the rest of an idle session
	s.loop.fd = int32(fd)
	if len(u.Buffered) > 0 { // bytes the HTTP server read past the handshake
		s.rd = readerPool.Get().(*wire.Reader)
		s.rd.Reset((*fdReader)(s), s.loopReaderOptions(u.Buffered))
	}
	return s.sched.pollers.pick()
}

// setRemote keeps the client's address for RemoteAddr, when the net.Conn
// is let go.
func (l *loopConn) setRemote(ap netip.AddrPort) {
	l.raddr, l.rv4, l.rport = ap.Addr().As16(), ap.Addr().Is4(), ap.Port()
}

func (p *poller) remoteAddr(s *Session) net.Addr {
	a := netip.AddrFrom16(s.loop.raddr)
	if s.loop.rv4 {
		a = a.Unmap()
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, s.loop.rport))
}

// serve runs OnOpen, then reads what is already there and leaves the
// session to its poller. The caller's goroutine is free when it returns.
func (p *poller) serve(s *Session) {
	if s.loop.rstate.Load() == readOpening {
		// On p's goroutine (see pendingConn.Accept): OnOpen in a turn.
		if !p.ready.TryPush(s) {
			s.sched.spawn(func() { p.open(s) })
		}
		return
	}
	s.loop.rstate.Store(readRunning)
	if err := s.open(); err != nil {
		s.endBurst(err)
		return
	}
	if err := p.add(s); err != nil {
		s.endBurst(err)
		return
	}
	s.readBurst()
}

// onEvent is called by the poller with the events of s's socket.
func (p *poller) onEvent(s *Session, ev uint32) {
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && s.takeWantWrite() {
		// The writer waits for room: it still holds stateRunning.
		p.watchWrite(s, false)
		s.stalledAt.Store(0)
		s.sched.run(s)
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 && s.state.Load()&stateHup == 0 {
		// The end may have come with the last bytes, in this very event:
		// from now on a short read does not prove that the next one
		// would say EAGAIN rather than EOF (see fdReader.Read).
		s.state.Or(stateHup)
	}
	rs := &s.loop.rstate
	for {
		switch st := rs.Load(); st {
		case readIdle:
			if rs.CompareAndSwap(readIdle, readRunning) {
				p.due(s)
				return
			}
		case readRunning:
			if rs.CompareAndSwap(readRunning, readAgain) {
				return
			}
		default:
			return // readAgain already, or readDone
		}
	}
}

// A session's turn on its poller ends after turnFrames messages or
// turnBytes of them, whichever comes first, so that a busy client cannot
// starve the others (nor a turn of large messages look to the watchdog
// like a callback that blocks): then it goes back in line.
const (
	turnFrames = 64
	turnBytes  = 256 << 10
)

// due puts s in line for a turn on p, or, if the line is full, gives the
// burst a goroutine.
func (p *poller) due(s *Session) {
	if !p.ready.TryPush(s) {
		s.sched.spawn(s.readBurst)
	}
}

// open is the first turn of a session that a listener on the event loop
// made: OnOpen, then reading in turns. Nobody else has a goroutine of
// its own to spare for it (a goroutine each, under a burst of handshakes,
// left their stacks to a server of idle sessions).
func (p *poller) open(s *Session) {
	s.loop.rstate.Store(readRunning)
	err := s.open()
	if err == nil {
		err = p.add(s)
	}
	if err != nil {
		s.sched.spawn(func() { s.endBurst(err) }) // the end may wait for the closing handshake
		return
	}
	p.due(s) // to read what came already
}

// turn reads and handles up to turnFrames messages or turnBytes of s on
// the poller's goroutine.
func (p *poller) turn(s *Session) {
	if s.loop.rstate.Load() == readOpening {
		p.open(s)
		return
	}
	bytes := 0
	for range turnFrames {
		n, more := s.readOne(true)
		if !more {
			return
		}
		if bytes += n; bytes >= turnBytes {
			break
		}
	}
	s.drainOwn() // what the turn corked, before the others' turns
	p.due(s)
}

// readBurst reads and handles messages until the socket has nothing more to
// give, or the session ends.
func (s *Session) readBurst() {
	for {
		if _, more := s.readOne(false); !more {
			return
		}
	}
}

// readOne reads and handles one message, and returns its length. It
// reports whether the burst goes on: false once the socket is drained (the
// session is idle again) or the session has ended. onPoller says whose
// goroutine runs it.
//
// The session's wire.Reader comes from a pool when bytes arrive and goes
// back when the socket is drained between messages (an idle session holds
// none); only the holder of the burst touches it.
func (s *Session) readOne(onPoller bool) (int, bool) {
	rs := &s.loop.rstate
	if s.gateShut() {
		// Stop here; resume starts a burst again. Events that come
		// meanwhile change nothing: the next burst reads until the socket
		// is drained, for real: the events it does not see may have
		// come after its last short read.
		s.loop.drained = false
		rs.Store(readPaused)
		if s.pause() {
			return 0, false
		}
		rs.Store(readRunning)
	}
	if s.rd == nil {
		s.rd = readerPool.Get().(*wire.Reader)
		s.rd.Reset((*fdReader)(s), s.loopReaderOptions(nil))
	}
	op, p, err := s.rd.Next()
	if err == wire.ErrWouldBlock {
		s.drainOwn()
		if s.rd.Idle() {
			readerPool.Put(s.rd)
			s.rd = nil
		}
		if rs.CompareAndSwap(readRunning, readIdle) {
			return 0, false
		}
		rs.Store(readRunning) // an event came meanwhile
		return 0, true
	}
	if err == nil {
		err = s.handle(op, p)
	}
	if err != nil {
		if onPoller {
			s.sched.spawn(func() { s.endBurst(err) }) // the end may wait for the closing handshake
		} else {
			s.endBurst(err)
		}
		return 0, false
	}
	return len(p), true
}

// resume starts a burst on a goroutine of its own: the caller is not the
// poller (the poller's line is served by the poller's goroutine alone,
// which may be parked), and pauses are for clients that send too much,
// not the steady path.
func (p *poller) resume(s *Session) {
	if s.loop.rstate.CompareAndSwap(readPaused, readRunning) {
		s.sched.spawn(s.readBurst)
	}
}

// endBurst ends the session after its reading stopped with cause.
func (s *Session) endBurst(cause error) {
	s.loop.rstate.Store(readDone)
	s.finish(cause)
}

// write writes on the socket without waiting. When the kernel does not
// take it all, the rest becomes s.pending and the session waits for room:
// it keeps stateRunning, the poller hands it to a worker when the socket
// turns writable (onEvent), and the worker's drain comes back here.
// s.pending is a slice of its own only while a write waits, so that a
// quiet session keeps no array of frame pointers.
func (p *poller) write(s *Session, sc *scratch, frames []*Frame, off int) bool {
	n, err := sc.writevFD(s.loop.fd, frames, off)
	if err != nil {
		s.writeFailed(frames, err)
		return false
	}
	if obs := s.cfg.Observer; obs != nil && n > 0 {
		depth, waited := s.observation(frames)
		obs.Wrote(completed(frames, n+off), n, depth, waited)
	}
	rest, off := s.wrote(frames, off, n)
	if rest == nil {
		return false
	}
	s.setPending(rest, off)
	// Wait for room: from here on, pending is the poller's to hand to a
	// worker. Watching EPOLLOUT reports room that came before at once.
	s.stalledAt.Store(s.sched.Now())
	s.state.Or(stateWantWrite)
	p.watchWrite(s, true)
	return true
}

// blocking is false: the socket never blocks.
func (p *poller) blocking() bool { return false }

// shutdown stops the socket both ways, waking up the reader (its next
// read sees the end) and failing any write, but leaves the descriptor open
// for release, so that its number cannot be reused under a reader or a
// writer still using it.
func (p *poller) shutdown(s *Session) {
	unix.Shutdown(int(s.loop.fd), unix.SHUT_RDWR)
}

// release closes the socket, which nobody uses any more: the reader has
// finished (it calls this), and finish holds the writing side for good.
func (p *poller) release(s *Session) {
	p.remove(s)
	unix.Close(int(s.loop.fd))
	if s.rd != nil {
		s.rd.Release()
		readerPool.Put(s.rd)
		s.rd = nil
	}
}

// linger is wire.Linger on a net.Conn of its own on the socket, for once.
func (p *poller) linger(s *Session) {
	dup, err := unix.FcntlInt(uintptr(s.loop.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(dup), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err == nil {
		wire.Linger(nc, s.cfg.CloseTimeout)
	}
}

// loopReadBuffer is the least read buffer of a session on the event loop.
// It is borrowed for a burst only, given back when the socket is drained
// (a few bytes of a frame wait in a buffer of their size), so its size
// costs an idle session nothing, and one read takes many frames: 64 small
// messages, or the next fragments with the end of one (against
// uWebSockets' 512 KiB shared buffer, a 64 KiB one took streaming 1 KiB
// from 0.127 to 0.032 system calls a message, and 64 KiB in 4 KiB
// fragments from 9.7 to 3.1).
const loopReadBuffer = 64 << 10

// loopReaderOptions are the options of the Reader of a session on the
// event loop.
func (s *Session) loopReaderOptions(buffered []byte) *wire.ReaderOptions {
	o := s.readerOptions(buffered)
	o.ReadBufferSize = max(o.ReadBufferSize, loopReadBuffer)
	return o
}

// fdReader reads a non-blocking socket for a wire.Reader: it is the
// session, so that the Reader's source costs no allocation, and tells the
// session when bytes come (see bytesCame).
type fdReader Session

// It reads with a raw system call, like the writes of the event loop (see
// scratch.writevFD): the socket never blocks.
//
// A read shorter than p emptied the socket's queue; the sockets are
// edge-triggered, so bytes that come after it bring an event of their
// own (readAgain). The next Read then says ErrWouldBlock without the
// system call, which could only have said EAGAIN: with many messages in
// one read, that call was a third of the burst's. Once the client hung up
// (stateHup), the end may have come with the last bytes and brings no
// new event, so every read is real.
func (r *fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s := (*Session)(r)
	if s.loop.drained {
		s.loop.drained = false
		if s.state.Load()&stateHup == 0 {
			return 0, wire.ErrWouldBlock
		}
	}
	for {
		n, e := recvRaw(s.loop.fd, p)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return 0, wire.ErrWouldBlock
		case e != 0:
			return 0, e
		case n == 0:
			return 0, io.EOF
		}
		s.bytesCame()
		s.loop.drained = int(n) < len(p)
		return int(n), nil
	}
}
