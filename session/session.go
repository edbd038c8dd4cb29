package session

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/mailbox"
	"github.com/shockwave-go/shockwave/wire"
)

// Bits of Session.state. The bits from senderShift up count the Enqueue
// calls in progress, so that a close frame is written only after every
// frame accepted before it. Who sets and clears each bit, and the
// transitions: docs/architecture.md, "The state word".
const (
	stateRunning    uint64 = 1 << iota // a drainer owns the writing side
	stateInHandler                     // the reader is in a callback and drains when it returns
	stateClosing                       // a close frame is on its way: no new frames
	stateClosed                        // the transport is closed
	stateDiscard                       // drop queued frames instead of writing them
	stateCloseSent                     // the close frame is written or being written
	stateRetiring                      // the timer is taking the empty mailbox away
	stateSent                          // the close frame is written, or writing is over (see sentCh)
	stateWantWrite                     // event loop: the drainer waits for room in the send buffer
	stateReadPaused                    // the reader stopped at the read gate (see gate.go)
	stateHup                           // event loop: the client hung up, or the socket failed (see fdReader.Read)
	stateCorkOpen                      // the reader lets Send append replies to the cork (see corkReply)
	stateCorkBusy                      // a Send is appending to the cork

	senderShift        = 13
	senderOne   uint64 = 1 << senderShift
)

var lastID atomic.Uint64

// Session is the actor of one WebSocket connection: its handler's callbacks,
// never concurrent, and a bounded mailbox of frames to write. It is not a
// goroutine of its own: its callbacks run on the goroutine reading the
// connection (on the event loop, its poller's, in turns), and its mailbox
// is drained by whichever goroutine finds the session idle with work to do
// — the reader after a callback (so an echo costs no goroutine hop), or one
// of the scheduler's workers when another goroutine sends. Whoever drains
// writes everything pending in one vectored write, without blocking: what
// the kernel does not take at once is left to a goroutine started for that
// session alone (on the event loop, to the socket's next EPOLLOUT), so a
// client that stops reading never holds up anyone else. Short replies
// sent from a callback skip the mailbox: they are appended to the reader's
// cork and written before it (see cork.go).
//
// What a live, idle session never needs (the closing handshake's state,
// the cause of its end, its Context) is a coldPart apart, allocated on
// first need, so that an idle session fits the 240-byte size class (see
// TestSessionSize).
//
// Send, Enqueue, Close and the accessors are safe for concurrent use.
type Session struct {
	id    uint64
	tr    transport             // the connection, chosen once (see transport.go)
	hs    unique.Handle[agreed] // what the handshake agreed on, interned (zero for nothing)
	h     Handler
	cfg   *settings
	sched *scheduler
	rd    *wire.Reader // the reader's; on the event loop, from a pool while bytes come (see readOne)

	state  atomic.Uint64
	mb     atomic.Pointer[mailbox.Queue[*Frame]] // from a pool while frames come (see mailbox)
	queued atomic.Int64                          // bytes accepted and not yet written
	ctl    atomic.Pointer[Frame]                 // a pong to send, ahead of the mailbox
	ping   atomic.Pointer[Frame]                 // a heartbeat ping, likewise
	cold   atomic.Pointer[coldPart]              // made on first need (see coldPart): nil while the session lives quietly
	lend   atomic.Pointer[Frame]                 // the message in the callback, in a frame for Send to take (see offer)
	cork   atomic.Pointer[Frame]                 // the callbacks' replies in one buffer, written before the mailbox (see corkReply)

	pending   *pendingWrite // what the kernel has not taken; the drainer's (the holder of stateRunning)
	stalledAt atomic.Int64  // since when the drainer waits for room (stateWantWrite), for WriteTimeout

	loop      loopConn     // the socket, on the event loop (loop_linux.go)
	closeCode atomic.Int32 // the code of the close frame sent, or 0; in loop's padding, it costs nothing here

	lastRead atomic.Int64 // scheduler clock of the last bytes read
	msgStart atomic.Int64 // when the message arriving now began, or 0 (MessageTimeout)
	tat      atomic.Int64 // when the client's messages are paid for (MessageRate); the reader's
	pingSent atomic.Int64 // when the unanswered ping was sent, or 0

	value any                      // user state, see State; owned by the callbacks
	who   atomic.Pointer[admitted] // who the client is, if the runtime was told (see Authorize)
}

// coldPart is what a session needs only once it starts closing, when
// Context is first called, or when a slow consumer's trace is recorded:
// a live, idle session has none. Session.coldPart makes it, once.
type coldPart struct {
	mu    sync.Mutex // guards cause and ctx, and closing the transport
	cause error
	ctx   *sessionContext // made by the first call of Context

	closeF    atomic.Pointer[Frame]         // the close frame, sent after the mailbox
	sentCh    atomic.Pointer[chan struct{}] // made by finish when it waits for stateSent
	closingAt atomic.Int64                  // when the close frame was written (the handshake's clock), or 0
	slowTrace atomic.Pointer[frameTrace]    // the traced frame that made it a slow consumer, if any
	dropped   atomic.Uint64                 // frames the backpressure policy dropped (see Dropped)
}

// coldPart returns the session's coldPart, making it on first need; a
// CAS makes concurrent first callers agree on one. Who only looks (and
// must not allocate for an idle session) loads s.cold and checks for nil.
func (s *Session) coldPart() *coldPart {
	if c := s.cold.Load(); c != nil {
		return c
	}
	if c := new(coldPart); s.cold.CompareAndSwap(nil, c) {
		return c
	}
	return s.cold.Load()
}

// sessionContext is a session's context, apart: few sessions ask for one.
type sessionContext struct {
	context.Context
	cancel context.CancelFunc
}

// newSession makes the session of a connection upgraded by wire.Upgrade,
// on sched, with cfg. It does nothing until serve is called.
func newSession(u wire.Upgraded, h Handler, sched *scheduler, cfg *settings) *Session {
	s := makeSession(u, h, sched, cfg)
	s.tr = s.newTransport(u)
	s.lastRead.Store(sched.Now())
	return s
}

// makeSession makes a session of what the handshake agreed on, with no
// transport yet.
func makeSession(u wire.Upgraded, h Handler, sched *scheduler, cfg *settings) *Session {
	s := &Session{
		id:    lastID.Add(1),
		h:     h,
		cfg:   cfg,
		sched: sched,
	}
	if a := (agreed{u.Subprotocol, deflateOf(u.Compression, cfg.Compression)}); a != (agreed{}) {
		s.hs = unique.Make(a)
	}
	s.setClient(u.Client)
	return s
}

func (s *Session) readerOptions(buffered []byte) *wire.ReaderOptions {
	return &wire.ReaderOptions{
		Server:         true,
		MaxMessageSize: s.cfg.MaxMessageSize,
		ReadBufferSize: s.cfg.ReadBufferSize,
		Buffered:       buffered,
		Budget:         s.cfg.InboundBudget,
		Compression:    s.Compression(),
	}
}

// bytesCame is told by the reader that bytes arrived: the client is not
// silent, and the message it sends has begun, if none had.
func (s *Session) bytesCame() {
	now := s.sched.Now()
	if s.lastRead.Load() != now {
		s.lastRead.Store(now)
	}
	if s.msgStart.Load() == 0 {
		s.msgStart.Store(now)
	}
}

// frameRead restarts the MessageTimeout clock after a frame: with no
// bytes of another one waiting it stops, otherwise the next message's
// clock starts now. A control frame between the fragments of a message
// leaves the message's clock running.
func (s *Session) frameRead(control bool) {
	if !s.rd.Pending() {
		s.msgStart.Store(0)
	} else if !control {
		s.msgStart.Store(s.sched.Now())
	}
}

// ID returns the session's process-unique id.
func (s *Session) ID() uint64 { return s.id }

// Subprotocol returns the subprotocol chosen in the handshake, or "".
func (s *Session) Subprotocol() string {
	return s.agreed().sub
}

// RemoteAddr returns the client's network address.
func (s *Session) RemoteAddr() net.Addr { return s.tr.remoteAddr(s) }

// Dropped returns how many frames sent to this session were dropped by the
// backpressure policy.
func (s *Session) Dropped() uint64 {
	if c := s.cold.Load(); c != nil {
		return c.dropped.Load()
	}
	return 0
}

// Context returns a context that is canceled when the session ends. In
// OnClose, when the runtime traces, it carries the span of the session's
// end, so that what OnClose sends (a departure announced to a room) is
// part of that trace.
func (s *Session) Context() context.Context {
	c := s.coldPart()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx == nil {
		ctx, cancel := context.WithCancel(context.Background())
		c.ctx = &sessionContext{ctx, cancel}
		if s.state.Load()&stateClosed != 0 {
			cancel()
		}
	}
	return c.ctx.Context
}

// State returns the session's user state of type T, creating a zero T on
// first use. Like everything a handler keeps per session, it needs no lock
// when used from the session's callbacks only. A session keeps one value
// of each type asked for: two packages that each keep their own type of
// state per session do not clobber each other's (use types of your own,
// not string or int, to keep them apart). One type costs nothing beyond
// the value; more are kept in a small list.
func State[T any](s *Session) *T {
	switch v := s.value.(type) {
	case *T:
		return v
	case nil:
		n := new(T)
		s.value = n
		return n
	case *states:
		for _, x := range *v {
			if t, ok := x.(*T); ok {
				return t
			}
		}
		n := new(T)
		*v = append(*v, n)
		return n
	default: // a value of another type: keep both
		n := new(T)
		s.value = &states{v, n}
		return n
	}
}

// states are a session's values of State, when it has more than one type.
type states []any

// Send copies p into a frame of type op and queues it; it never blocks.
// It returns ErrClosed when the session is closing, and ErrDropped or
// ErrSlowConsumer when the backpressure policy refused the frame.
//
// The one exception to the copy: a long message sent back whole during
// its own OnMessage (an echo, a relay) may become the frame itself, its
// buffer handed over by the reader. So do not change a Message's Data
// after sending it.
func (s *Session) Send(op wire.Opcode, p []byte) error {
	if f := s.take(p); f != nil {
		return s.Enqueue(f.claim(op), s.cfg.Policy)
	}
	if s.corkReply(op, p) {
		return nil
	}
	return s.Enqueue(NewFrame(op, p), s.cfg.Policy)
}

// lendMin is the shortest message the reader offers to Send without a
// copy: below it, copying costs less than the pools' round trips.
const lendMin = 4 << 10

// offer puts p, the message about to be handed to OnMessage, in a frame
// of its own for Send to take without a copy (take), when the Reader
// assembled it in a buffer it can let go (wire.Reader.Detach). The frame
// holds the reader's reference, which withdraw drops after the callback:
// whether Send took the frame or not, the buffer lives until then, as
// Message.Data promises, and the frame's last Release gives it back.
func (s *Session) offer(p []byte) *Frame {
	if len(p) < lendMin {
		return nil
	}
	bp := s.rd.Detach(p)
	if bp == nil {
		return nil
	}
	f := lentFrame(bp, s.cfg.InboundBudget)
	s.lend.Store(f)
	return f
}

// withdraw ends the offer of f once the callback has returned.
func (s *Session) withdraw(f *Frame) {
	s.lend.Store(nil)
	f.Release()
}

// take returns the frame on offer if p is its payload, once: Send was
// given the message being handled, whole.
func (s *Session) take(p []byte) *Frame {
	f := s.lend.Load()
	if f == nil || len(p) != len(f.body) || &p[0] != &f.body[0] || !s.lend.CompareAndSwap(f, nil) {
		return nil
	}
	return f
}

// SendContext is Send in the context of ctx, such as a Message's: when
// ctx is traced, the frame's delivery (its write to the client, or why it
// was not written) is recorded in ctx's trace.
func (s *Session) SendContext(ctx context.Context, op wire.Opcode, p []byte) error {
	f := NewFrame(op, p)
	s.traceFrame(ctx, f)
	return s.Enqueue(f, s.cfg.Policy)
}

// SendFrame queues a reference to f, as a room broadcast does; see
// Enqueue.
func (s *Session) SendFrame(f *Frame) error { return s.Enqueue(f, s.cfg.Policy) }

// SendFrameContext is SendFrame in the context of ctx: when ctx is traced
// and f carries no context yet, f's deliveries are recorded in ctx's trace
// (see Frame.SetContext).
func (s *Session) SendFrameContext(ctx context.Context, f *Frame) error {
	s.traceFrame(ctx, f)
	return s.Enqueue(f, s.cfg.Policy)
}

// traceFrame gives f the context ctx when ctx is traced.
func (s *Session) traceFrame(ctx context.Context, f *Frame) {
	if t := s.cfg.Tracer; t != nil && t.Traced(ctx) {
		f.SetContext(ctx)
	}
}

// Enqueue queues f for writing under the given backpressure policy. It
// takes over one reference to f whatever it returns: the caller must not
// Release it. It never blocks and does not allocate.
func (s *Session) Enqueue(f *Frame, p Policy) error {
	st := s.state.Add(senderOne)
	if st&(stateClosing|stateClosed) != 0 {
		s.state.Add(^(senderOne - 1))
		s.refuse(f, ErrClosed)
		return ErrClosed
	}
	// A moment: retireMailbox holds stateRetiring for a few instructions
	// that neither block nor wait for a sender (it starts only while none
	// is counted in), so the wait ends once the timer's goroutine has run
	// them; Gosched lets it run if it was preempted there.
	for st&stateRetiring != 0 {
		runtime.Gosched()
		st = s.state.Load()
	}
	if dz := s.agreed().dz; dz != nil && dz.shared {
		f = s.shareDeflated(f)
	}
	err := s.push(f, p)
	s.kick(s.state.Add(^(senderOne - 1)))
	return err
}

// mailbox returns the mailbox, taking one from its pool when the session
// has none: a session that is never sent anything does not pay for one,
// and one that has been quiet for a tick gave it back (see retireMailbox).
// Only senders call it.
func (s *Session) mailbox() *mailbox.Queue[*Frame] {
	if q := s.mb.Load(); q != nil {
		return q
	}
	pool := &mailboxPools[bits.Len(uint(max(s.cfg.MailboxSize, 2)-1))]
	q, _ := pool.Get().(*mailbox.Queue[*Frame])
	if q == nil {
		q = mailbox.New[*Frame](s.cfg.MailboxSize)
	}
	if s.mb.CompareAndSwap(nil, q) {
		return q
	}
	pool.Put(q)
	return s.mb.Load()
}

// mailboxPools hold empty mailboxes, by capacity (log2).
var mailboxPools [31]sync.Pool

// retireMailbox gives an empty mailbox back to its pool, so that a session
// holds no mailbox (4 KiB at the default size) while it is quiet. The
// timer calls it once a tick; it gives up whenever the session is busy.
// While it works it holds stateRunning, so no drainer pops, and
// stateRetiring, so that a sender that comes meanwhile waits for it (and
// no sender was counted in when it started).
func (s *Session) retireMailbox() {
	mb := s.mb.Load()
	if mb == nil || mb.Len() != 0 {
		return
	}
	st := s.state.Load()
	if st&(stateRunning|stateInHandler|stateCorkOpen|stateRetiring) != 0 || st>>senderShift != 0 ||
		!s.state.CompareAndSwap(st, st|stateRunning|stateRetiring) {
		return
	}
	if mb.Len() == 0 {
		s.mb.Store(nil)
		mailboxPools[bits.Len(uint(mb.Cap()-1))].Put(mb)
	}
	s.state.And(^(stateRunning | stateRetiring))
	s.kick(s.state.Load()) // work that came meanwhile
}

func (s *Session) push(f *Frame, p Policy) error {
	mb := s.mailbox()
	if s.cfg.Observer != nil && f.queued.Load() == 0 {
		f.queued.CompareAndSwap(0, time.Now().UnixNano()) // for the mailbox wait metric
	}
	n := int64(f.Len())
	over := false
	if b := s.cfg.OutboundBudget; b != nil {
		f.count(b)
		over = b.Exceeded() && s.queued.Load() >= s.cfg.backlog
	}
	for tries := 0; ; tries++ {
		q := s.queued.Add(n)
		if !over && (q == n || q <= s.cfg.MaxQueuedBytes) && mb.TryPush(f) {
			return nil
		}
		s.queued.Add(-n)
		if over {
			s.cfg.Counters.OutboundBudget.Add(1)
			if p != PolicyClose {
				s.coldPart().dropped.Add(1)
				s.cfg.Counters.DroppedNewest.Add(1) // this frame, whatever the policy
				s.refuse(f, ErrOverBudget)
				return ErrOverBudget
			}
		}
		if p == PolicyDropOldest && tries < 64 {
			if old, ok := mb.Pop(); ok {
				s.queued.Add(-int64(old.Len()))
				s.refuse(old, errDroppedOldest)
				s.coldPart().dropped.Add(1)
				s.cfg.Counters.DroppedOldest.Add(1)
			}
			// Retry even when there was nothing to drop: the drainer
			// emptied the mailbox meanwhile, and f goes in. When the
			// bytes being written are what is over MaxQueuedBytes, the
			// tries run out and f, the only one left, is dropped.
			continue
		}
		if p == PolicyClose {
			if ft := f.trace.Load(); ft != nil {
				s.coldPart().slowTrace.CompareAndSwap(nil, ft) // the trace that made it slow, for the end's span
			}
			s.refuse(f, ErrSlowConsumer)
			s.closeSlow()
			return ErrSlowConsumer
		}
		s.refuse(f, ErrDropped)
		s.coldPart().dropped.Add(1)
		if p == PolicyDropOldest {
			s.cfg.Counters.DroppedOldest.Add(1)
		} else {
			s.cfg.Counters.DroppedNewest.Add(1)
		}
		return ErrDropped
	}
}

// errDroppedOldest is what a frame dropped by PolicyDropOldest, to make
// room, is told: ErrDropped, and which policy.
var errDroppedOldest = fmt.Errorf("%w (%w)", ErrDropped, engine.ErrDroppedOldest)

func (s *Session) closeSlow() {
	if !s.claimClose() {
		return
	}
	s.cfg.Counters.ClosedSlow.Add(1)
	if s.cfg.AbortSlow {
		s.abort(ErrSlowConsumer)
		return
	}
	s.state.Or(stateDiscard)
	// Its backlog is discarded and its close frame may never get through:
	// the closing clock starts now, not when it is written.
	s.coldPart().closingAt.CompareAndSwap(0, s.sched.Now())
	s.queueClose(ErrSlowConsumer)
}

// Close starts the closing handshake: frames already queued are written,
// then a close frame with code and reason (cut to 123 bytes); the session
// ends when the client answers, or after CloseTimeout. It returns at once,
// and is safe to call from callbacks and more than once (the first wins).
func (s *Session) Close(code wire.StatusCode, reason string) {
	s.startClose(wire.CloseError{Code: code, Reason: reason})
}

// startClose records cause and queues the close frame, once. It reports
// whether this call did it.
func (s *Session) startClose(cause error) bool {
	if !s.claimClose() {
		return false
	}
	s.queueClose(cause)
	return true
}

// claimClose sets stateClosing, and reports whether this call did: the
// one that did queues the close frame (queueClose), or aborts. A limit
// that closes a session counts in between, so that its count is there
// before the session can end.
func (s *Session) claimClose() bool {
	for {
		st := s.state.Load()
		if st&(stateClosing|stateClosed) != 0 {
			return false
		}
		if s.state.CompareAndSwap(st, st|stateClosing) {
			return true
		}
	}
}

// queueClose records cause and queues the close frame that says it, after
// claimClose.
func (s *Session) queueClose(cause error) {
	code, reason := s.closeFor(cause)
	if cc, ok := cause.(clientClosed); ok {
		cause = cc.CloseError // the session ends for the client's close
	}
	s.setCause(cause)
	s.closeCode.Store(int32(code))
	cf := newCloseFrame(code, reason)
	s.queued.Add(int64(cf.Len()))
	s.coldPart().closeF.Store(cf)
	s.kick(s.state.Load())
	s.reopen() // the client's answer must be read
}

func (s *Session) setCause(err error) {
	c := s.coldPart()
	c.mu.Lock()
	if c.cause == nil {
		c.cause = err
	}
	c.mu.Unlock()
}

// serve runs the session: OnOpen, then reading and OnMessage until the
// session ends, then OnClose. On the goroutine transport it does all that
// on the calling goroutine and returns when the connection is closed. On
// the event loop (see schedulerConfig.Pollers) it returns as soon as the
// session waits for its client, and the rest runs when there is work;
// OnClose says when it has ended.
func (s *Session) serve() { s.tr.serve(s) }

// open runs OnOpen, and writes what it sent.
func (s *Session) open() error {
	if err := s.call(func() error { return s.h.OnOpen(s) }); err != nil {
		return handlerError{err}
	}
	s.drainOwn()
	return nil
}

// handle handles a message or control frame read from the client: it
// answers pings, ends on a close frame, and calls OnMessage.
func (s *Session) handle(op wire.Opcode, p []byte) error {
	s.frameRead(op.IsControl())
	switch op {
	case wire.OpPing:
		if s.ctl.Load() != nil || s.queueLen() > 0 || s.cork.Load() != nil {
			// Uncork: each ping gets its pong, after what the
			// messages before it caused.
			s.drainOwn()
		}
		pong := NewFrame(wire.OpPong, p)
		s.queued.Add(int64(pong.Len()))
		if old := s.ctl.Swap(pong); old != nil {
			s.done(old) // answer the latest ping only (RFC 6455 5.5.3)
		}
	case wire.OpPong:
	case wire.OpClose:
		code, reason, err := wire.ParseClosePayload(p)
		if err != nil {
			return err
		}
		return wire.CloseError{Code: code, Reason: string(reason)}
	default:
		if s.state.Load()&stateClosing != 0 {
			break // closing: messages are discarded (RFC 6455 1.4)
		}
		s.charge()
		s.state.Or(stateInHandler)
		s.openCork()
		lent := s.offer(p)
		err := s.onMessage(Message{Op: op, Data: p})
		if lent != nil {
			s.withdraw(lent)
		}
		s.state.And(^stateInHandler)
		if err != nil {
			return handlerError{err}
		}
	}
	// Cork: while the next frame is already buffered, keep what the
	// callbacks sent for one vectored write before the next read that
	// may block. Sends from elsewhere during a callback wait too (their
	// kick saw stateInHandler), so every frame read ends here.
	// The read buffer bounds the batch, and so does half the mailbox:
	// a burst of small messages must not overflow it.
	if !s.rd.HasFrame() || s.corkFull() {
		s.drainOwn()
	}
	return nil
}

// corkFull reports whether the cork holds enough: half the mailbox's
// frames or bytes, or a full batch.
func (s *Session) corkFull() bool {
	n := s.queueLen()
	return n > 0 && (n >= min(s.cfg.MailboxSize/2, maxBatch) || s.queued.Load() >= s.cfg.MaxQueuedBytes/2)
}

// call runs a callback, turning a panic into an error.
func (s *Session) call(f func() error) (err error) {
	defer s.recoverPanic(&err)
	return f()
}

// onMessage is call of OnMessage, without a closure: it runs for every
// message.
func (s *Session) onMessage(m Message) (err error) {
	defer s.recoverPanic(&err)
	return s.h.OnMessage(s, m)
}

// recoverPanic, deferred by a callback's caller, turns the callback's
// panic into the error *err.
func (s *Session) recoverPanic(err *error) {
	if v := recover(); v != nil {
		*err = &PanicError{Value: v}
		if s.cfg.OnError != nil {
			s.cfg.OnError(s, *err)
		}
	}
}

// PanicError is the cause of a session closed because a callback panicked.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return fmt.Sprintf("session: handler panic: %v", e.Value) }

// handlerError marks an error returned by a callback.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }

// finish ends the session after the reader stopped with cause.
func (s *Session) finish(cause error) {
	var ce wire.CloseError
	var pe *wire.ProtocolError
	var he handlerError
	linger := false
	switch {
	case errors.As(cause, &he):
		// A callback failed or panicked.
		cause = he.err
		s.startClose(cause)
	case errors.As(cause, &ce):
		// The client closed: echo its code, unless this answers our close.
		s.startClose(clientClosed{ce})
	case errors.As(cause, &pe):
		// The stream cannot be parsed any more: after the close frame,
		// linger so the client reads it before the connection goes.
		switch pe.Code {
		case wire.StatusMessageTooBig:
			s.cfg.Counters.TooBig.Add(1)
		case wire.StatusTryAgainLater:
			s.cfg.Counters.InboundBudget.Add(1)
		}
		linger = s.startClose(cause)
	}
	if s.state.Load()&stateClosing != 0 {
		s.drainOwn()
		s.waitCloseSent()
	}
	s.setCause(cause)
	if linger && s.state.Load()&stateClosed == 0 {
		s.tr.linger(s)
	}
	s.closeTransport()
	s.stopWriting()
	s.tr.release(s)
	c := s.coldPart() // closeTransport made it
	c.mu.Lock()
	cause = c.cause
	if c.ctx != nil {
		c.ctx.cancel()
	}
	c.mu.Unlock()
	if t := s.cfg.Tracer; t != nil {
		s.traceEnd(t, cause)
	}
	s.call(func() error { s.h.OnClose(s, cause); return nil })
}

// traceEnd gives OnClose a Context that carries the trace of the
// session's end, when the tracer has one.
func (s *Session) traceEnd(t engine.Tracer[*Session], cause error) {
	base := s.Context()
	c := s.coldPart()
	var slow context.Context
	if ft := c.slowTrace.Load(); ft != nil {
		slow = ft.ctx
	}
	if ctx := t.Closing(base, s, cause, slow); ctx != nil {
		c.mu.Lock()
		c.ctx.Context = ctx
		c.mu.Unlock()
	}
}

// waitCloseSent waits until the close frame is written, or writing is
// over, for CloseTimeout at most.
func (s *Session) waitCloseSent() {
	ch := make(chan struct{})
	s.coldPart().sentCh.Store(&ch)
	if s.state.Load()&stateSent != 0 {
		return // markCloseSent came first: it may have missed ch
	}
	t := time.NewTimer(s.cfg.CloseTimeout)
	select {
	case <-ch:
	case <-t.C:
	}
	t.Stop()
}

// closeTransport closes the connection once and releases what the session
// holds.
func (s *Session) closeTransport() {
	// Under mu, so that a second caller returns once the transport is
	// closed (finish releases the descriptor next).
	c := s.coldPart()
	c.mu.Lock()
	first := s.state.Or(stateClosed|stateClosing)&stateClosed == 0
	if first {
		s.tr.shutdown(s)
	}
	c.mu.Unlock()
	if first {
		s.markCloseSent()
		s.kick(s.state.Load()) // a drainer releases what is queued
		s.reopen()             // a paused reader sees the end
	}
}

// abort ends the session at once with cause, without a closing handshake.
func (s *Session) abort(cause error) {
	s.setCause(cause)
	s.closeTransport()
}

// handshakeTimedOut ends a session whose client did not answer its close
// frame in time: the cause it closed for stays, joined with ErrTimeout.
func (s *Session) handshakeTimedOut() {
	c := s.coldPart()
	c.mu.Lock()
	c.cause = errors.Join(c.cause, ErrTimeout)
	c.mu.Unlock()
	s.closeTransport()
}

// CloseCode returns the code of the close frame the session sent (its own,
// or the echo of the client's), or wire.StatusAbnormalClosure (1006) if it
// sent none. It is meant for OnClose: before the end it may still change.
func (s *Session) CloseCode() wire.StatusCode {
	if c := s.closeCode.Load(); c != 0 {
		return wire.StatusCode(c)
	}
	return wire.StatusAbnormalClosure
}

// CloseNow closes the connection at once, without a closing handshake;
// OnClose sees ErrClosed unless the session was already closing.
func (s *Session) CloseNow() { s.abort(ErrClosed) }

// closeFor is the one place that maps why the server closes a session to
// the code and reason of its close frame: its own limits here, the rest
// (protocol errors, close errors, a callback's error or panic) through
// wire.CodeOf.
func (s *Session) closeFor(why error) (wire.StatusCode, string) {
	var cc clientClosed
	var ce wire.CloseError
	var pe *wire.ProtocolError
	switch {
	case errors.As(why, &cc):
		return cc.Code, "" // the echo of the client's close
	case errors.Is(why, ErrSlowConsumer):
		return s.cfg.SlowCode, "slow consumer"
	case errors.Is(why, ErrMessageTimeout):
		return wire.StatusPolicyViolation, "message timeout"
	case errors.Is(why, errIdle):
		return wire.StatusGoingAway, "idle timeout"
	case errors.Is(why, ErrExpired):
		return wire.StatusUnauthorized, "credentials expired"
	case errors.As(why, &pe):
		return wire.CodeOf(why), pe.Msg
	case errors.As(why, &ce):
		return wire.CodeOf(why), ce.Reason // Close, or a callback's CloseError
	}
	return wire.StatusInternalError, "internal error" // a callback's other error, or a panic
}

// clientClosed is the client's close frame, as the cause of our echo.
type clientClosed struct{ wire.CloseError }

// errIdle is the cause of a session closed by IdleTimeout.
var errIdle = fmt.Errorf("%w: idle", ErrTimeout)
