package session

import (
	"net"

	"github.com/shockwave-go/shockwave/wire"
)

// transport is a session's connection, as the session uses it: the few
// things that the event loop and the goroutine-per-connection transport
// each do their own way. newSession chooses one, once (newTransport);
// nothing else asks which it is.
//
//   - The event loop (loop_linux.go): the session's socket is on one of the
//     scheduler's pollers, and the transport is that *poller. The session
//     has no goroutine while it waits for its client: bytes come as
//     epoll events, its callbacks run in turns on the poller's goroutine,
//     and a write the kernel does not take at once waits for EPOLLOUT.
//   - A goroutine per connection (conn.go): the transport is a *netConn.
//     The goroutine that calls serve reads the connection and runs the
//     callbacks; a write the kernel does not take at once is finished by
//     writeSlow, on a goroutine of the session's own.
//
// Everything else (the state word, the mailbox, draining, the read gate's
// decisions, closing, the timeouts) is the session's, the same on both.
// The methods take the session; a transport keeps no pointer to it.
type transport interface {
	// serve runs the session: OnOpen, then reading and OnMessage until
	// the session ends, then finish (see Session.serve).
	serve(s *Session)

	// write writes frames, from byte off of the first, with one vectored
	// write that does not wait for the socket. The caller holds
	// stateRunning. When the kernel does not take everything, the rest
	// becomes s.pending, the transport arranges for it to be finished,
	// and write reports true: the writing side (stateRunning) stays taken
	// until then. On an error the frames are released and the session
	// aborted.
	write(s *Session, sc *scratch, frames []*Frame, off int) bool

	// blocking reports whether writes wait for the connection (a
	// net.Conn that is not a socket): then no worker may drain the
	// session, and each drain that others start gets a goroutine of its
	// own (scheduler.run).
	blocking() bool

	// resume lets the reader paused at the read gate read again; the
	// caller has just cleared stateReadPaused (see gate.go).
	resume(s *Session)

	// shutdown stops the connection both ways, once (closeTransport calls
	// it under the coldPart's mu): the reader sees the end and writes fail.
	shutdown(s *Session)

	// release lets go of the connection and of the session's Reader, at
	// the end of finish, when nobody reads or writes any more.
	release(s *Session)

	// linger reads and discards what the client still sends, for
	// CloseTimeout at most, after a close frame sent for a protocol error
	// (wire.Linger).
	linger(s *Session)

	// remoteAddr is the client's network address (Session.RemoteAddr).
	remoteAddr(s *Session) net.Addr
}

// newTransport puts the session on its transport: the event loop takes a
// plain TCP connection over when it runs; every other connection (TLS,
// other systems, Pollers = 0) gets a goroutine.
func (s *Session) newTransport(u wire.Upgraded) transport {
	if t := s.takeOver(u); t != nil {
		return t
	}
	return newNetConn(s, u)
}
