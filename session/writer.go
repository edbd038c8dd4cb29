package session

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// maxBatch is the most frames one vectored write carries (IOV_MAX is 1024).
const maxBatch = 256 // frames; each takes up to two iovecs

// tryAcquire takes the writing side if it is free and there is work.
func (s *Session) tryAcquire() bool {
	for {
		st := s.state.Load()
		if st&(stateRunning|stateInHandler) != 0 || !s.hasWork() {
			return false
		}
		if s.state.CompareAndSwap(st, st|stateRunning) {
			return true
		}
	}
}

func (s *Session) hasWork() bool {
	// The close frame is work only once no Enqueue is in progress: the
	// last one to finish kicks the session again.
	return s.queueLen() > 0 || s.ctl.Load() != nil || s.ping.Load() != nil ||
		s.closeF.Load() != nil && s.state.Load()>>senderShift == 0
}

func (s *Session) queueLen() int {
	if mb := s.mb.Load(); mb != nil {
		return mb.Len()
	}
	return 0
}

// kick hands the session to the scheduler if it has work and nobody is on
// it. st is a recent state, to skip the work when it is clearly not needed.
func (s *Session) kick(st uint64) {
	if st&(stateRunning|stateInHandler) == 0 && s.tryAcquire() {
		s.sched.run(s)
	}
}

// drainOwn drains on the calling goroutine (the reader's, between
// callbacks): an echo is written without a goroutine hop.
func (s *Session) drainOwn() {
	if s.tryAcquire() {
		s.drain()
	}
}

// drain writes what is queued. The caller holds stateRunning; drain gives it
// up, unless it hands the writing to writeSlow, which then does.
func (s *Session) drain() {
	for {
		if s.flush() {
			return
		}
		if s.state.And(^stateRunning)&stateReadPaused != 0 {
			s.reopen() // the reader waits for the mailbox to go down
		}
		if !s.tryAcquire() {
			return
		}
	}
}

// flush writes batches until the queue is empty. It returns true if it
// handed the rest to writeSlow.
func (s *Session) flush() bool {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	if s.pending != nil && s.flushPending(sc) {
		return true // what the kernel did not take last time: still waiting
	}
	for {
		st := s.state.Load()
		frames := sc.frames[:0]
		if f := s.ctl.Swap(nil); f != nil {
			frames = append(frames, f)
		}
		if f := s.ping.Swap(nil); f != nil {
			frames = append(frames, f)
		}
		if mb := s.mb.Load(); mb != nil {
			frames = mb.PopBatch(frames)
		}
		if st&(stateDiscard|stateClosed|stateCloseSent) != 0 {
			frames = s.discard(frames, st)
		}
		// The close frame goes last: after every frame accepted before
		// Close (no Enqueue is in progress, the mailbox is empty).
		if len(frames) < cap(frames) && st&stateClosing != 0 && st>>senderShift == 0 && s.queueLen() == 0 {
			if cf := s.closeF.Swap(nil); cf != nil {
				if st&stateClosed != 0 {
					s.done(cf)
				} else {
					s.state.Or(stateCloseSent) // nothing may follow it
					frames = append(frames, cf)
				}
			}
		}
		if len(frames) == 0 {
			return false
		}
		if dz := s.agreed().dz; dz != nil && !dz.shared {
			s.deflateOwn(dz, frames)
		}
		if s.write(sc, frames) {
			return true
		}
	}
}

// discard releases frames unwritten: data frames when the session is
// discarding, every frame once the close frame is out or the transport is
// closed.
func (s *Session) discard(frames []*Frame, st uint64) []*Frame {
	keepControl := st&(stateClosed|stateCloseSent) == 0
	keep := frames[:0]
	for _, f := range frames {
		if keepControl && f.op.IsControl() {
			keep = append(keep, f)
			continue
		}
		s.unsent(f, ErrClosed)
	}
	return keep
}

// done accounts for a frame that has left the queue, written or not.
func (s *Session) done(f *Frame) {
	s.queued.Add(-int64(f.Len()))
	if f.op == wire.OpClose {
		s.closingAt.CompareAndSwap(0, s.sched.Now())
		s.markCloseSent()
	}
	s.delivered(f, nil)
	f.Release()
}

// unsent accounts for a frame that left the queue unwritten, because of
// why.
func (s *Session) unsent(f *Frame, why error) {
	s.queued.Add(-int64(f.Len()))
	s.refuse(f, why)
}

// refuse releases a frame that was not written, because of why.
func (s *Session) refuse(f *Frame, why error) {
	s.delivered(f, why)
	f.Release()
}

// delivered tells the tracer, if f is traced, that f was written (why is
// nil) or not, and why. Untraced, it costs two loads.
func (s *Session) delivered(f *Frame, why error) {
	if t := f.trace.Load(); t != nil && s.cfg.Tracer != nil {
		s.cfg.Tracer.Delivered(t.ctx, s, t.since, why)
	}
}

func (s *Session) markCloseSent() {
	if s.state.Or(stateSent)&stateSent == 0 {
		if ch := s.sentCh.Load(); ch != nil {
			close(*ch)
		}
	}
}

// write writes frames with one vectored write that does not wait for the
// socket. What the kernel does not take goes to writeSlow on a goroutine
// of its own, and write reports true.
func (s *Session) write(sc *scratch, frames []*Frame) bool {
	if s.fd >= 0 {
		return s.writePolled(sc, frames, 0)
	}
	if s.conn.raw == nil {
		s.writeBlocking(frames, 0)
		return false
	}
	n, err := sc.writev(s.conn.raw, frames)
	if err != nil {
		for _, f := range frames {
			s.unsent(f, err)
		}
		s.abort(err)
		return false
	}
	if obs := s.cfg.Observer; obs != nil {
		depth, waited := s.observation(frames)
		defer obs.Wrote(completed(frames, n), n, depth, waited) // once the frames are done
	}
	for i, f := range frames {
		if n < f.Len() {
			s.setPending(frames[i:], n)
			go s.writeSlow()
			return true
		}
		n -= f.Len()
		s.done(f)
	}
	return false
}

// flushPending writes what the kernel did not take last time, on the
// event loop. It reports whether the session still waits for room.
func (s *Session) flushPending(sc *scratch) bool {
	frames, off := s.takePending()
	return s.writePolled(sc, frames, off)
}

// writePolled writes frames on the event loop, from byte off of the first,
// without waiting. When the kernel does not take it all, the rest becomes
// s.pending and the session waits for room: it keeps stateRunning, its
// poller hands it to a worker when the socket turns writable (EPOLLOUT),
// and the worker's drain comes back to flushPending. It reports whether the
// session waits. s.pending is a slice of its own only while a write waits,
// so that a quiet session keeps no array of frame pointers.
func (s *Session) writePolled(sc *scratch, frames []*Frame, off int) bool {
	n, err := sc.writevFD(s.fd, frames, off)
	if err != nil {
		for _, f := range frames {
			s.unsent(f, err)
		}
		s.abort(err)
		return false
	}
	if obs := s.cfg.Observer; obs != nil && n > 0 {
		depth, waited := s.observation(frames)
		obs.Wrote(completed(frames, n+off), n, depth, waited)
	}
	n += off
	i := 0
	for ; i < len(frames) && n >= frames[i].Len(); i++ {
		n -= frames[i].Len()
		s.done(frames[i])
	}
	if i == len(frames) {
		return false
	}
	s.setPending(frames[i:], n)
	// Wait for room: from here on, pending is the poller's to hand to a
	// worker. Watching EPOLLOUT reports room that came before at once.
	s.stalledAt.Store(s.sched.Now())
	s.state.Or(stateWantWrite)
	s.poller.watchWrite(s, true)
	return true
}

// pendingWrite is a write the kernel has not fully taken: frames, the
// first of them from byte off on. A session has one only while it waits
// for room, so that a quiet session keeps no array of frame pointers.
type pendingWrite struct {
	frames []*Frame
	off    int
}

func (s *Session) setPending(frames []*Frame, off int) {
	s.pending = &pendingWrite{frames: append([]*Frame(nil), frames...), off: off}
}

func (s *Session) takePending() ([]*Frame, int) {
	p := s.pending
	if p == nil {
		return nil, 0
	}
	s.pending = nil
	return p.frames, p.off
}

// discardAll releases every frame the session still holds, once nobody
// will write any more.
func (s *Session) discardAll() {
	frames, _ := s.takePending()
	for _, f := range frames {
		s.unsent(f, ErrClosed)
	}
	for _, slot := range []*atomic.Pointer[Frame]{&s.ctl, &s.ping, &s.closeF} {
		if f := slot.Swap(nil); f != nil {
			s.unsent(f, ErrClosed)
		}
	}
	if mb := s.mb.Load(); mb != nil {
		for f, ok := mb.Pop(); ok; f, ok = mb.Pop() {
			s.unsent(f, ErrClosed)
		}
	}
}

// observation returns, for the metrics of a write of frames, the
// mailbox's depth and how long the oldest data frame waited. The frames
// must not have been released.
func (s *Session) observation(frames []*Frame) (depth int, waited time.Duration) {
	for _, f := range frames {
		if at := f.queued.Load(); at != 0 {
			waited = time.Duration(time.Now().UnixNano() - at)
			break
		}
	}
	return len(frames) + s.queueLen(), waited
}

// completed returns how many of frames n bytes finish.
func completed(frames []*Frame, n int) int {
	for i, f := range frames {
		if n < f.Len() {
			return i
		}
		n -= f.Len()
	}
	return len(frames)
}

// writeSlow finishes a write the kernel could not take at once, waiting up
// to WriteTimeout, then goes on draining. It runs on a goroutine of its
// own, holding stateRunning, so only this session waits.
func (s *Session) writeSlow() {
	s.writeBlocking(s.takePending())
	s.drain()
}

// writeBlocking writes frames, the first from byte off on, waiting up to
// WriteTimeout.
func (s *Session) writeBlocking(frames []*Frame, off int) {
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
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	n, err := bufs.WriteTo(s.conn.Conn)
	s.conn.SetWriteDeadline(time.Time{})
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

// scratch is a drainer's working memory, pooled so that draining does not
// allocate.
type scratch struct {
	frames []*Frame
	sys    sysScratch
}

var scratchPool = sync.Pool{New: func() any {
	sc := &scratch{frames: make([]*Frame, 0, maxBatch)}
	sc.sys.init()
	return sc
}}
