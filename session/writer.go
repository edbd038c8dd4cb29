package session

import (
	"runtime"
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
		if st&(stateRunning|stateInHandler|stateCorkOpen) != 0 || !s.hasWork() {
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
	return s.queueLen() > 0 || s.cork.Load() != nil || s.ctl.Load() != nil || s.ping.Load() != nil ||
		s.closeQueued() && s.state.Load()>>senderShift == 0
}

// closeQueued reports whether the close frame waits in its slot (in the
// coldPart: a session without one has none).
func (s *Session) closeQueued() bool {
	c := s.cold.Load()
	return c != nil && c.closeF.Load() != nil
}

// takeCloseFrame empties the close frame's slot, and returns what it held.
func (s *Session) takeCloseFrame() *Frame {
	if c := s.cold.Load(); c != nil {
		return c.closeF.Swap(nil)
	}
	return nil
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
	if st&(stateRunning|stateInHandler|stateCorkOpen) == 0 && s.tryAcquire() {
		s.sched.run(s)
	}
}

// drainOwn drains on the calling goroutine (the reader's, between
// callbacks): an echo is written without a goroutine hop.
func (s *Session) drainOwn() {
	s.closeCork()
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
	if s.pending != nil {
		// What the kernel did not take last time (on the event loop; the
		// goroutine transport's writeSlow takes it before it drains).
		if frames, off := s.takePending(); s.tr.write(s, sc, frames, off) {
			return true // still waiting
		}
	}
	for {
		st := s.state.Load()
		// The slots are looked at before they are taken: a load costs
		// nothing beside a swap, and the last round finds them empty.
		frames := takeSlot(&s.ctl, sc.frames[:0])
		frames = takeSlot(&s.ping, frames)
		// The replies corked, before anything queued after them; a pong
		// goes first, as the reader flushes the cork before it answers a
		// ping (see handle).
		frames = takeSlot(&s.cork, frames)
		if mb := s.mb.Load(); mb != nil {
			frames = mb.PopBatch(frames)
		}
		if st&(stateDiscard|stateClosed|stateCloseSent) != 0 {
			frames = s.discard(frames, st)
		}
		// The close frame goes last: after every frame accepted before
		// Close (no Enqueue is in progress, the mailbox is empty).
		if len(frames) < cap(frames) && st&stateClosing != 0 && st>>senderShift == 0 && s.queueLen() == 0 {
			if cf := s.takeCloseFrame(); cf != nil {
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
		if s.tr.write(s, sc, frames, 0) {
			return true
		}
	}
}

// takeSlot appends the frame in slot to frames, if there is one, and
// empties the slot.
func takeSlot(slot *atomic.Pointer[Frame], frames []*Frame) []*Frame {
	if slot.Load() == nil {
		return frames
	}
	if f := slot.Swap(nil); f != nil {
		frames = append(frames, f)
	}
	return frames
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
		s.coldPart().closingAt.CompareAndSwap(0, s.sched.Now())
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
	// waitCloseSent makes the coldPart before it stores sentCh, and
	// looks at stateSent after: if it missed stateSent, this sees both.
	if s.state.Or(stateSent)&stateSent == 0 {
		if c := s.cold.Load(); c != nil {
			if ch := c.sentCh.Load(); ch != nil {
				close(*ch)
			}
		}
	}
}

// wrote accounts for a vectored write of frames, from byte off of the
// first, that took n bytes: the frames it finished are done. It returns
// what is left, the first frame from byte off on, or nil.
func (s *Session) wrote(frames []*Frame, off, n int) ([]*Frame, int) {
	n += off
	for i, f := range frames {
		if n < f.Len() {
			return frames[i:], n
		}
		n -= f.Len()
		s.done(f)
	}
	return nil, 0
}

// writeFailed releases frames that a write failed to write, and aborts
// the session with err.
func (s *Session) writeFailed(frames []*Frame, err error) {
	for _, f := range frames {
		s.unsent(f, err)
	}
	s.abort(err)
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

// stopWriting takes the writing side (stateRunning) for good, once the
// transport is shut down, and releases every frame still held: after it,
// no drainer is in the session and none will come. finish calls it.
//
// The wait for the holder of stateRunning to let go is bounded by what
// the holder does: a drainer's flush, whose writes fail at once on a
// shut-down socket; writeSlow, whose write fails likewise (and has
// WriteTimeout); retireMailbox, a few instructions. A write waiting for
// room on the event loop holds it without a goroutine: it gets one here,
// to fail and let go.
func (s *Session) stopWriting() {
	for i := 0; ; i++ {
		st := s.state.Load()
		if st&stateRunning == 0 && s.state.CompareAndSwap(st, st|stateRunning) {
			break
		}
		if s.takeWantWrite() {
			s.sched.spawn(s.drain)
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	s.discardAll()
}

// takeWantWrite clears stateWantWrite and reports whether it was set: the
// caller then continues the waiting write.
func (s *Session) takeWantWrite() bool {
	return s.state.And(^stateWantWrite)&stateWantWrite != 0
}

// discardAll releases every frame the session still holds, once nobody
// will write any more.
func (s *Session) discardAll() {
	s.closeCork()
	frames, _ := s.takePending()
	for _, f := range frames {
		s.unsent(f, ErrClosed)
	}
	// finish calls it after closeTransport, which made the coldPart.
	for _, slot := range []*atomic.Pointer[Frame]{&s.cork, &s.ctl, &s.ping, &s.coldPart().closeF} {
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
