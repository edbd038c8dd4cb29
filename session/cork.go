package session

import (
	"runtime"

	"github.com/shockwave-go/shockwave/internal/bufpool"
	"github.com/shockwave-go/shockwave/wire"
)

// The cork: replies sent while the reader handles messages are appended,
// encoded, to one buffer (Session.cork, a Frame of its own) instead of
// each taking a pooled Frame, a buffer and a trip through the mailbox;
// the reader writes that buffer, ahead of the mailbox, when it drains
// (drainOwn). It is what uWebSockets does with its loop's cork buffer,
// and on small echoes and streams the frame's life was most of the CPU
// spent above the kernel.
//
// The reader opens the cork before a callback (openCork) when the writing
// side is free; while it is open no drainer can start (tryAcquire, kick
// and retireMailbox refuse on stateCorkOpen, as on stateInHandler), so
// nothing is written before the cork's bytes. A Send takes the cork
// (stateCorkBusy, a CAS) only while the mailbox is empty, so that no frame
// queued before it can be written after it. When the cork is full, or a
// reply is long, Send queues a Frame as usual, and the ones after it
// follow it into the mailbox. The reader closes the cork (closeCork)
// before it drains and before it answers a ping, and so does the end
// (discardAll), waiting for a Send that holds it, which is a few
// instructions. flush writes the cork after the pong and ping slots and
// ahead of the mailbox. Once the pools are warm, nothing allocates.
//
// The cork is not used when an Observer counts frames written or when
// the session compresses: both work frame by frame.

// corkSize is the cork's buffer; corkMaxReply the longest reply it takes.
// The cork is as large as the event loop's read buffer (loopReadBuffer),
// so that the replies to what one read brought fit in it: with 16 KiB,
// three quarters of a stream of 1 KiB echoes went the mailbox's way, a
// Frame each, and streaming 1 KiB took 0.88 µs of server CPU a message
// against 0.76 µs (medians of five alternated runs). It is borrowed for a
// turn only.
const (
	corkSize     = 64 << 10
	corkMaxReply = 4 << 10
)

// openCork opens the cork for the callbacks to come, if the session can
// use one and nobody is writing.
func (s *Session) openCork() {
	if s.cfg.Observer != nil || s.agreed().dz != nil {
		return
	}
	for {
		st := s.state.Load()
		if st&(stateCorkOpen|stateRunning|stateClosing|stateClosed) != 0 {
			return
		}
		if s.state.CompareAndSwap(st, st|stateCorkOpen) {
			return
		}
	}
}

// closeCork closes the cork: from then on its bytes are ordinary work
// for a drainer, ahead of the mailbox (see flush).
func (s *Session) closeCork() {
	for {
		st := s.state.Load()
		switch {
		case st&stateCorkOpen == 0:
			return
		case st&stateCorkBusy != 0:
			runtime.Gosched() // a Send is appending
		case s.state.CompareAndSwap(st, st&^stateCorkOpen):
			return
		}
	}
}

// corkReply appends a single-frame message of type op carrying p to the
// cork, and reports whether it did.
func (s *Session) corkReply(op wire.Opcode, p []byte) bool {
	st := s.state.Load()
	if st&(stateCorkOpen|stateCorkBusy|stateRunning|stateClosing|stateClosed) != stateCorkOpen ||
		len(p) > corkMaxReply || op != wire.OpText && op != wire.OpBinary { // control frames have slots of their own
		return false
	}
	if s.queueLen() != 0 || !s.state.CompareAndSwap(st, st|stateCorkBusy) {
		return false
	}
	ok := s.appendCork(op, p)
	s.state.And(^stateCorkBusy)
	return ok
}

// appendCork does corkReply's work; the caller holds stateCorkBusy.
func (s *Session) appendCork(op wire.Opcode, p []byte) bool {
	f := s.cork.Load()
	if f == nil {
		b := s.cfg.OutboundBudget
		if b != nil && b.Exceeded() {
			return false // the mailbox's way: its policy decides
		}
		f = framePool.Get().(*Frame)
		f.op = wire.OpBinary // whole frames, none of them a close frame (see done)
		f.bufp = bufpool.Get(corkSize)
		f.head, f.body = nil, (*f.bufp)[:0]
		f.refs.Store(1)
		if b != nil {
			f.count(b)
		}
		s.cork.Store(f)
	}
	h := wire.Header{Fin: true, Opcode: op, Length: int64(len(p))}
	n := h.Size() + len(p)
	if n > cap(f.body)-len(f.body) {
		return false
	}
	f.body = append(wire.AppendHeader(f.body, h), p...)
	s.queued.Add(int64(n))
	return true
}
