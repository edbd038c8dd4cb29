package session

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// The goroutine-per-connection transport: the connection stays a
// net.Conn, and the goroutine that calls serve reads it and runs the
// callbacks. It serves TLS connections, every connection where there is
// no event loop, and every one when Pollers is 0.
//
// Writes are the drainer's: on a socket, one vectored write that does not
// wait (sysScratch.writev); what the kernel does not take at once goes to
// writeSlow, a goroutine of the session's own that waits up to
// WriteTimeout. On a net.Conn that is not a socket every write blocks, so
// no worker drains such a session (blocking): the reader drains between
// callbacks, and a drain that others start gets a goroutine.

// netConn is a session's connection on the goroutine transport.
type netConn struct {
	net.Conn
	raw  syscall.RawConn               // for non-blocking writes; nil when Conn is not a socket
	gate atomic.Pointer[chan struct{}] // wakes the reader paused at the read gate; made by its first pause
}

// newNetConn is the transport of s on u.Conn, and gives s its Reader.
func newNetConn(s *Session, u wire.Upgraded) *netConn {
	c := &netConn{Conn: u.Conn}
	if sc, ok := u.Conn.(syscall.Conn); ok && rawWriteSupported {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	o := s.readerOptions(u.Buffered)
	o.OnRead = s.bytesCame
	s.rd = wire.NewReader(u.Conn, o)
	return c
}

// serve runs the whole session on the calling goroutine, and returns once
// it has ended.
func (c *netConn) serve(s *Session) {
	err := s.open()
	if err == nil {
		err = c.readLoop(s)
	}
	s.finish(err)
}

func (c *netConn) readLoop(s *Session) error {
	for {
		if s.gateShut() {
			c.waitGate(s)
		}
		op, p, err := s.rd.Next()
		if err == nil {
			err = s.handle(op, p)
		}
		if err != nil {
			return err
		}
	}
}

// waitGate is the pause at the read gate: the reader waits until the gate
// reopens (resume).
func (c *netConn) waitGate(s *Session) {
	ch := c.gate.Load()
	if ch == nil { // the reader's alone: no other goroutine makes it
		b := make(chan struct{}, 1)
		ch = &b
		c.gate.Store(ch)
	}
	if !s.pause() {
		return
	}
	for s.state.Load()&stateReadPaused != 0 {
		<-*ch // a token may be stale: the flag says
	}
}

func (c *netConn) resume(s *Session) {
	if ch := c.gate.Load(); ch != nil { // made before the flag was set
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
}

func (c *netConn) write(s *Session, sc *scratch, frames []*Frame, off int) bool {
	if c.raw == nil {
		c.writeBlocking(s, frames, off)
		return false
	}
	n, err := sc.writev(c.raw, frames, off)
	if err != nil {
		s.writeFailed(frames, err)
		return false
	}
	if obs := s.cfg.Observer; obs != nil {
		depth, waited := s.observation(frames)
		defer obs.Wrote(completed(frames, n+off), n, depth, waited) // once the frames are done
	}
	rest, off := s.wrote(frames, off, n)
	if rest == nil {
		return false
	}
	s.setPending(rest, off)
	s.sched.spawn(func() { c.writeSlow(s) })
	return true
}

func (c *netConn) blocking() bool { return c.raw == nil }

// writeSlow finishes a write the kernel could not take at once, waiting up
// to WriteTimeout, then goes on draining. It runs on a goroutine of its
// own, holding stateRunning, so only this session waits.
func (c *netConn) writeSlow(s *Session) {
	frames, off := s.takePending()
	c.writeBlocking(s, frames, off)
	s.drain()
}

// writeBlocking writes frames, the first from byte off on, waiting up to
// WriteTimeout.
func (c *netConn) writeBlocking(s *Session, frames []*Frame, off int) {
	bufs := make(net.Buffers, 0, 2*len(frames))
	for i, f := range frames {
		from := off
		if i > 0 {
			from = 0
		}
		a, b := f.parts(from)
		bufs = append(bufs, a)
		if len(b) > 0 {
			bufs = append(bufs, b)
		}
	}
	c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	n, err := bufs.WriteTo(c.Conn)
	c.SetWriteDeadline(time.Time{})
	written := len(frames)
	if err != nil {
		written = completed(frames, int(n)+off)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			s.cfg.Counters.WriteTimeouts.Add(1)
			err = ErrTimeout
		}
	}
	if obs := s.cfg.Observer; obs != nil && n > 0 {
		depth, waited := s.observation(frames)
		obs.Wrote(written, int(n), depth, waited)
	}
	for i, f := range frames {
		if i < written {
			s.done(f)
		} else {
			s.unsent(f, err)
		}
	}
	if err != nil {
		s.abort(err)
	}
}

func (c *netConn) shutdown(*Session) { c.Close() }

func (c *netConn) release(s *Session) {
	s.rd.Release()
	s.rd = nil
}

func (c *netConn) linger(s *Session) { wire.Linger(c.Conn, s.cfg.CloseTimeout) }

func (c *netConn) remoteAddr(*Session) net.Addr { return c.RemoteAddr() }
