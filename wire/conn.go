package wire

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/internal/bufpool"
)

// DefaultCloseTimeout bounds the closing handshake.
const DefaultCloseTimeout = 5 * time.Second

// Options are the settings of a connection that Accept and Dial share. The
// zero value means the defaults.
type Options struct {
	// MaxMessageSize is the longest message accepted, in bytes. A longer one
	// fails the connection with StatusMessageTooBig (1009).
	// Defaults to DefaultMaxMessageSize (16 MiB).
	MaxMessageSize int64
	// ReadBufferSize is the size of the pooled read buffer; messages that fit
	// in it are returned without a copy. Defaults to DefaultReadBufferSize.
	ReadBufferSize int
	// CloseTimeout bounds the whole of Close: sending the close frame
	// (waiting for another write to finish, if need be) and waiting for the
	// peer's. It bounds likewise the close frame sent when the peer breaks
	// the protocol or closes. Defaults to DefaultCloseTimeout.
	CloseTimeout time.Duration
	// OnPing, if set, is called by Read with the payload of every ping,
	// before the pong is sent. OnPong likewise for every pong. They run on
	// the goroutine calling Read; the payload is valid only during the
	// call.
	OnPing func(payload []byte)
	OnPong func(payload []byte)
	// Compression turns on permessage-deflate (RFC 7692): Accept takes
	// the first offer of the client it can honour (every valid one), Dial
	// makes one and checks the answer, both in the mode given (see
	// CompressionMode). Conn.Compression tells what was agreed. Defaults
	// to CompressionDisabled.
	Compression CompressionMode
	// CompressionThreshold is the length from which a message goes out
	// compressed, once compression is agreed: shorter ones are sent as
	// they are. A message sent in fragments with WriteFrame is compressed
	// whatever its length, unless its first frame is also its last.
	// Defaults to DefaultCompressionThreshold; a negative value compresses
	// every message.
	CompressionThreshold int
}

// Conn is a WebSocket connection, server or client side. Get one from Accept
// or Dial.
//
// One goroutine may read (Read or ReadMessage) while any number write:
// writes are serialised inside Conn, so frames never interleave. Read
// answers pings and the closing handshake itself, so a connection must be
// read for those to work.
//
// Lock order: readMu, then wlock; an interrupter's mutex is taken alone.
type Conn struct {
	nc          net.Conn
	rd          Reader
	server      bool
	vectored    bool // nc writes net.Buffers with one writev
	subprotocol string
	opts        Options
	compression CompressionParams
	deflate     *connDeflate // nil unless compression was agreed

	readMu   sync.Mutex    // held by the reading goroutine
	readDone chan struct{} // closed when reading has ended
	rint     interrupter   // ends a read when its context ends
	pongOwed bool          // readMu guards pongOwed, pongLen and pong
	pongLen  uint8
	pong     [MaxControlPayload]byte // payload of the ping not yet answered

	wlock     writeLock
	wint      interrupter // ends a write when its context ends
	closeSent bool        // wlock guards closeSent, wfrag, werr and the scratch
	wfrag     Opcode      // opcode of the fragmented message being sent, or 0
	werr      error       // sticky write error
	whdr      [MaxHeaderSize]byte
	wctl      [MaxControlPayload]byte
	warr      [2][]byte
	wbufs     net.Buffers

	closeOnce sync.Once
}

// connDeflate is how a Conn compresses what it sends.
type connDeflate struct {
	takeover  bool // compress against the messages before, with cw
	bits      int  // the window, 8 to 15
	threshold int

	cw *compressor // wlock guards cw: the Conn's own with takeover, or the pooled one of a message in fragments
}

func newConn(nc net.Conn, server bool, buffered []byte, subprotocol string, cp CompressionParams, o *Options) *Conn {
	c := &Conn{
		nc:          nc,
		server:      server,
		subprotocol: subprotocol,
		readDone:    make(chan struct{}),
		wlock:       writeLock{wake: make(chan struct{}, 1)},
	}
	if o != nil {
		c.opts = *o
	}
	if c.opts.CloseTimeout <= 0 {
		c.opts.CloseTimeout = DefaultCloseTimeout
	}
	if cp.Enabled {
		c.compression = cp
		d := &connDeflate{threshold: c.opts.CompressionThreshold}
		d.takeover, d.bits = cp.sends(server, c.opts.Compression)
		switch {
		case d.threshold == 0:
			d.threshold = DefaultCompressionThreshold
		case d.threshold < 0:
			d.threshold = 0
		}
		c.deflate = d
	}
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		c.vectored = true
	}
	c.rd.Reset(nc, &ReaderOptions{
		Server:         server,
		MaxMessageSize: c.opts.MaxMessageSize,
		ReadBufferSize: c.opts.ReadBufferSize,
		Buffered:       buffered,
		Compression:    cp,
	})
	return c
}

// Subprotocol returns the subprotocol the handshake chose, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// Compression returns the permessage-deflate parameters the handshake
// agreed on; Enabled is false when it agreed on none.
func (c *Conn) Compression() CompressionParams { return c.compression }

// NetConn returns the underlying connection. Reading from or writing to it
// corrupts the WebSocket stream; it is there for deadlines and addresses.
// Deadlines work as Read and Write describe.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Read returns the next text or binary message, waiting for it until ctx
// ends. The payload is valid only until the next call of Read or
// ReadMessage: copy it to keep it.
//
// Pings are answered with pongs, and a close frame is answered and returned
// as a CloseError. When the peer breaks the protocol, Read fails the
// connection with the matching close code and returns the *ProtocolError.
// Those errors, and the transport's, are final: the connection is closed by
// then.
//
// When ctx ends first, Read returns ctx.Err() and the connection stays
// usable: a message half received is kept, and a later Read returns it
// whole. A read deadline set with NetConn().SetReadDeadline does the same,
// with an error matching os.ErrDeadlineExceeded; reading goes on once the
// deadline is moved. (A Read whose ctx ends clears that deadline.) A ping
// read before ctx ended is answered all the same, by this Read or, if its
// pong could not go out in time, by the next.
//
// On the steady path Read does not allocate when ctx cannot end, as with
// context.Background; otherwise it makes the allocations of
// context.AfterFunc.
func (c *Conn) Read(ctx context.Context) (Opcode, []byte, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if ctx.Done() == nil {
		return c.readMessage(ctx)
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	stop := c.rint.arm(ctx, c.nc, false)
	op, p, err := c.readMessage(ctx)
	if c.rint.disarm(stop, c.nc, false) && errors.Is(err, os.ErrDeadlineExceeded) {
		err = ctx.Err()
	}
	return op, p, err
}

// ReadMessage is Read(context.Background()): it waits for the next message
// as long as it takes, or until a read deadline set with
// NetConn().SetReadDeadline passes.
func (c *Conn) ReadMessage() (Opcode, []byte, error) {
	return c.Read(context.Background())
}

func (c *Conn) readMessage(ctx context.Context) (Opcode, []byte, error) {
	if c.pongOwed {
		if err := c.answerPing(ctx, c.pong[:c.pongLen]); err != nil {
			return 0, nil, c.fail(err)
		}
	}
	for {
		op, p, err := c.rd.Next()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, nil, err // the Reader resumes where it stopped
			}
			return 0, nil, c.fail(err)
		}
		switch op {
		case OpPing:
			if c.opts.OnPing != nil {
				c.opts.OnPing(p)
			}
			if err := c.answerPing(ctx, p); err != nil {
				return 0, nil, c.fail(err)
			}
		case OpPong:
			if c.opts.OnPong != nil {
				c.opts.OnPong(p)
			}
		case OpClose:
			return 0, nil, c.fail(c.peerClosed(p))
		default:
			return op, p, nil
		}
	}
}

// answerPing sends the pong for a ping. A pong that could not go out before
// ctx ended or a write deadline passed is kept, for the next read to send,
// and reading goes on: the read sees ctx's end itself. Only the latest such
// pong is kept, as RFC 6455 section 5.5.3 allows. Once our close frame is
// sent, no pong is due. Any other error ends the connection.
func (c *Conn) answerPing(ctx context.Context, p []byte) error {
	err := c.writeFrame(ctx, OpPong, true, p)
	var cut *cutError
	switch {
	case err == nil:
	case errors.As(err, &cut):
		return err
	case errors.Is(err, ErrClosed):
	case interrupted(err):
		c.pongLen = uint8(copy(c.pong[:], p))
		c.pongOwed = true
		return nil
	default:
		return err
	}
	c.pongOwed = false
	return nil
}

// interrupted reports whether err is a context's end or a deadline, which
// leave the connection usable.
func interrupted(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// peerClosed answers a close frame and returns what Read reports.
func (c *Conn) peerClosed(p []byte) error {
	code, reason, err := ParseClosePayload(p)
	if err != nil {
		return err
	}
	ce := CloseError{Code: code, Reason: string(reason)}
	// Echo the code, as RFC 6455 section 5.5.1 suggests; if we had sent
	// our close frame already, that was the answer. The echo is best
	// effort: a peer that drops the connection right after its close frame
	// must still be reported as having closed.
	ctx, cancel := c.closeContext()
	c.writeClose(ctx, code, "")
	cancel()
	return ce
}

// closeContext bounds what ending the connection writes and waits for: a
// peer that does not read must not hold it longer than CloseTimeout.
func (c *Conn) closeContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.opts.CloseTimeout)
}

// fail ends reading with err: a protocol error is reported to the peer with
// its close code, and the transport lingers until the peer has read it;
// otherwise the transport is closed at once.
func (c *Conn) fail(err error) error {
	select {
	case <-c.readDone:
		return err // failed already; err is the Reader's sticky error
	default:
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		ctx, cancel := c.closeContext()
		if c.writeClose(ctx, pe.Code, pe.Msg) == nil {
			deadline, _ := ctx.Deadline()
			c.closeOnce.Do(func() { Linger(c.nc, time.Until(deadline)) })
		}
		cancel()
	}
	c.closeTransport()
	c.rd.err = err
	c.rd.Release() // Next does not touch its buffers once err is set
	close(c.readDone)
	return err
}

// WriteMessage is Write(context.Background(), op, p): it waits as long as
// the peer takes, or until a write deadline set with
// NetConn().SetWriteDeadline passes.
func (c *Conn) WriteMessage(op Opcode, p []byte) error {
	return c.Write(context.Background(), op, p)
}

// Write writes p as one message of type op (OpText or OpBinary; any other
// is ErrWriteNotData) in one frame, waiting until ctx ends. A server writes
// header and payload with one vectored write and does not copy p; a client
// masks a pooled copy. Text must be valid UTF-8: it is not checked here.
//
// When compression was agreed, a message of CompressionThreshold bytes or
// more is compressed into a pooled buffer first. Without context takeover
// that happens before Write waits for the connection, and a message that
// does not shrink goes out as it is. With context takeover it happens in
// turn, with the connection's compressor, and a Write that ctx or a
// deadline ends once the message is compressed closes the connection, as
// one that cuts a frame does: the compressor has moved on, and the peer's
// decompressor could not follow it.
//
// When ctx ends, or a write deadline set with NetConn().SetWriteDeadline
// passes, before any of the frame went out (while another write held the
// connection, or the peer's window was full), Write returns ctx.Err() (or
// the deadline error) and the connection is as it was. When that happens
// with part of the frame sent, the peer would wait for the rest forever:
// the connection is closed, and the error matches ErrClosed. (Over TLS,
// crypto/tls refuses every write after one has timed out.)
//
// A frame that RFC 6455 forbids is refused with a *UsageError (see the
// ErrWrite values) and nothing is sent. On the steady path Write does not
// allocate when ctx cannot end, as with context.Background, compressed or
// not: the compressor and its output buffer are pooled (with context
// takeover, the connection's own compressor is made once, for its first
// compressed message).
func (c *Conn) Write(ctx context.Context, op Opcode, p []byte) error {
	if op != OpText && op != OpBinary {
		return ErrWriteNotData
	}
	return c.writeFrame(ctx, op, true, p)
}

// WriteFrame writes one frame, for sending a message in fragments: the first
// frame has the message's opcode, the others OpContinuation, and the last
// has fin set. Pings and pongs may be sent between fragments; another
// message may not. A frame out of that order, a reserved opcode, a close
// frame (Close sends it), or a control frame without fin or longer than
// 125 bytes is refused with a *UsageError and nothing is sent. Deadlines
// work as for Write.
//
// When compression was agreed, a message in fragments is compressed as one
// deflate stream, each frame carrying what its fragment compressed to, the
// first with RSV1 set; a write that fails in the middle of it closes the
// connection (see Write). A message of one frame is compressed as Write
// would.
func (c *Conn) WriteFrame(op Opcode, fin bool, p []byte) error {
	return c.writeFrame(context.Background(), op, fin, p)
}

// Ping sends a ping with payload p (at most 125 bytes, or
// ErrWriteControlTooLong).
func (c *Conn) Ping(p []byte) error { return c.writeFrame(context.Background(), OpPing, true, p) }

// Pong sends an unsolicited pong with payload p (at most 125 bytes, or
// ErrWriteControlTooLong).
func (c *Conn) Pong(p []byte) error { return c.writeFrame(context.Background(), OpPong, true, p) }

// writeFrame sends a frame other than close, refusing what RFC 6455
// forbids: the rules on a frame alone are checked before the write lock,
// the order of fragments under it.
func (c *Conn) writeFrame(ctx context.Context, op Opcode, fin bool, p []byte) error {
	switch {
	case op.IsReserved():
		return ErrWriteReservedOpcode
	case op == OpClose:
		return ErrWriteClose
	case op.IsControl() && !fin:
		return ErrWriteFragmentedControl
	case op.IsControl() && len(p) > MaxControlPayload:
		return ErrWriteControlTooLong
	}
	var rsv uint8
	inTurn := false // compressed under the write lock
	if d := c.deflate; d != nil && !op.IsControl() {
		whole := fin && op != OpContinuation
		switch {
		case whole && len(p) < d.threshold:
		case whole && !d.takeover:
			// On its own: compressed before waiting for the lock.
			bp := bufpool.Get(CompressBound(len(p)))
			defer bufpool.Put(bp)
			if z := appendAlone((*bp)[:0], p, d.bits); len(z) < len(p) {
				p, rsv = z, RSV1
			}
		default:
			inTurn = true // against the messages before, or in fragments
		}
	}
	if err := c.wlock.lock(ctx); err != nil {
		return err
	}
	defer c.wlock.unlock()
	switch {
	case c.closeSent:
		return ErrClosed
	case op == OpContinuation && c.wfrag == 0:
		return ErrWriteUnexpectedContinue
	case (op == OpText || op == OpBinary) && c.wfrag != 0:
		return ErrWriteExpectedContinue
	}
	var err error
	if inTurn {
		err = c.writeDeflated(ctx, op, fin, p)
	} else {
		err = c.writeLocked(ctx, op, fin, rsv, p)
	}
	if err != nil {
		return err
	}
	if !op.IsControl() {
		if fin {
			c.wfrag = 0
		} else if op != OpContinuation {
			c.wfrag = op
		}
	}
	return nil
}

// writeClose sends a close frame once; later calls return ErrClosed.
func (c *Conn) writeClose(ctx context.Context, code StatusCode, reason string) error {
	if err := c.wlock.lock(ctx); err != nil {
		return err
	}
	defer c.wlock.unlock()
	if c.closeSent {
		return ErrClosed
	}
	c.closeSent = true
	return c.writeLocked(ctx, OpClose, true, 0, AppendClosePayload(c.wctl[:0], code, reason))
}

// writeDeflated compresses a frame's payload with the connection's
// compressor (context takeover), or with the one of the message in
// fragments it belongs to, and sends it; the first frame of a message has
// RSV1 set. Once the compressor has taken p in, the frame must reach the
// peer: a write that fails, even before its first byte, closes the
// connection. The caller holds the write lock.
func (c *Conn) writeDeflated(ctx context.Context, op Opcode, fin bool, p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	if err := ctx.Err(); err != nil {
		return err // nothing compressed yet
	}
	d := c.deflate
	var rsv uint8
	if op != OpContinuation {
		rsv = RSV1
		switch {
		case !d.takeover:
			d.cw = getCompressor(d.bits)
			d.cw.fw.Reset(d.cw)
		case d.cw == nil:
			d.cw = newCompressor(d.bits) // the connection's, from its first compressed message on
		}
	}
	bp := bufpool.Get(CompressBound(len(p)))
	err := c.writeLocked(ctx, op, fin, rsv, d.cw.appendDeflate((*bp)[:0], p, fin))
	bufpool.Put(bp)
	if fin && !d.takeover {
		putCompressor(d.cw)
		d.cw = nil
	}
	if err != nil && c.werr == nil {
		c.werr = &cutError{cause: err, compressed: true}
		c.closeTransport()
		return c.werr
	}
	return err
}

// writeLock serialises writes. It is a mutex whose waiters can give up
// when their context ends, as they must when the write holding it is
// blocked on a peer that does not read, which sync.Mutex does not allow:
// an atomic state word for the path without contention, as cheap as a
// sync.Mutex (a channel used as the lock cost twice as much per write), and
// a one-slot channel that wakes a waiter.
type writeLock struct {
	state atomic.Int32 // unlocked, locked, or contended: waiters may sleep
	wake  chan struct{}
}

const (
	unlocked int32 = iota
	locked
	contended
)

// lock takes the lock, or gives up when ctx ends.
func (l *writeLock) lock(ctx context.Context) error {
	if l.state.CompareAndSwap(unlocked, locked) {
		return nil
	}
	for l.state.Swap(contended) != unlocked {
		select {
		case <-l.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// unlock releases the lock and, if someone may be waiting, wakes one
// waiter, which tries again. A wake-up left for a waiter that gave up
// makes a later one try once more, no harm done.
func (l *writeLock) unlock() {
	if l.state.Swap(unlocked) == contended {
		select {
		case l.wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// writeLocked writes a frame, ended by ctx or a write deadline. One that
// ends it before any byte went out leaves the connection as it was; one
// that cuts the frame closes it. Other errors stick.
func (c *Conn) writeLocked(ctx context.Context, op Opcode, fin bool, rsv uint8, p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	if ctx.Done() == nil {
		n, err := c.send(op, fin, rsv, p)
		return c.writeFailed(err, n, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := c.wint.arm(ctx, c.nc, true)
	n, err := c.send(op, fin, rsv, p)
	if c.wint.disarm(stop, c.nc, true) && errors.Is(err, os.ErrDeadlineExceeded) {
		return c.writeFailed(err, n, ctx.Err())
	}
	return c.writeFailed(err, n, err)
}

// writeFailed classifies the error of a write that sent n bytes: a
// deadline that passed before the first byte leaves the connection as it
// was and returns cause (the deadline's error or ctx's); one that cut the
// frame closes the connection.
func (c *Conn) writeFailed(err error, n int64, cause error) error {
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrDeadlineExceeded):
		c.werr = err
	case n == 0:
		return cause
	default:
		c.werr = &cutError{cause: cause}
		c.closeTransport()
	}
	return c.werr
}

// send writes a frame and returns the bytes written.
func (c *Conn) send(op Opcode, fin bool, rsv uint8, p []byte) (int64, error) {
	h := Header{Fin: fin, Rsv: rsv, Opcode: op, Length: int64(len(p))}
	switch {
	case !c.server:
		h.Masked = true
		key := rand.Uint32()
		h.Key = [4]byte{byte(key), byte(key >> 8), byte(key >> 16), byte(key >> 24)}
		return c.writeMasked(h, p)
	case c.vectored:
		c.warr = [2][]byte{AppendHeader(c.whdr[:0], h), p}
		c.wbufs = c.warr[:]
		n, err := c.wbufs.WriteTo(c.nc)
		c.warr = [2][]byte{} // do not keep the caller's payload alive
		return n, err
	default:
		bp := bufpool.Get(MaxHeaderSize + len(p))
		n, err := c.nc.Write(append(AppendHeader((*bp)[:0], h), p...))
		bufpool.Put(bp)
		return int64(n), err
	}
}

// maskChunk bounds the buffer a client masks its payload in: longer
// payloads are masked and written a chunk at a time.
const maskChunk = 64 << 10

// writeMasked writes a client frame: the payload is masked into a pooled
// copy (the caller's bytes are not touched), in chunks of at most maskChunk.
func (c *Conn) writeMasked(h Header, p []byte) (int64, error) {
	bp := bufpool.Get(MaxHeaderSize + min(len(p), maskChunk))
	defer bufpool.Put(bp)
	b := AppendHeader((*bp)[:0], h)
	pos := 0
	var sent int64
	for {
		n := min(len(p), cap(b)-len(b))
		start := len(b)
		b = append(b, p[:n]...)
		pos = Mask(b[start:], h.Key, pos)
		p = p[n:]
		m, err := c.nc.Write(b)
		sent += int64(m)
		if err != nil || len(p) == 0 {
			return sent, err
		}
		b = b[:0]
	}
}

// Close performs the closing handshake: it sends a close frame with code and
// reason, waits for the peer's close frame, and closes the transport, all
// within CloseTimeout. A code that may not be sent is replaced by
// StatusInternalError, and the reason is made valid UTF-8 and cut to 123
// bytes (see AppendClosePayload). If another goroutine is in Read, that
// call sees the peer's answer and returns it; otherwise Close reads and
// discards messages until the answer comes. A write blocked on a peer that
// does not read holds Close until CloseTimeout at most: then the transport
// is closed, which ends that write too.
//
// Close may be called from any goroutine; once a close frame has been
// sent, it closes the transport and returns ErrClosed.
func (c *Conn) Close(code StatusCode, reason string) error {
	ctx, cancel := c.closeContext()
	defer cancel()
	if err := c.writeClose(ctx, code, reason); err != nil {
		c.closeTransport()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("websocket: close frame not sent within CloseTimeout (%v): %w", c.opts.CloseTimeout, err)
		}
		return err
	}
	if c.readMu.TryLock() {
		deadline, _ := ctx.Deadline()
		c.nc.SetReadDeadline(deadline)
		for {
			if _, _, err := c.readMessage(ctx); err != nil {
				if interrupted(err) { // no answer in time
					c.fail(ErrClosed)
				}
				break
			}
		}
		c.readMu.Unlock()
	} else {
		select {
		case <-c.readDone:
		case <-ctx.Done():
		}
	}
	c.closeTransport()
	return nil
}

// Linger closes nc after a close frame was written on it while the peer may
// still be sending: it shuts down the sending side, then reads and discards
// until the peer closes or d passes. Closing a socket with unread bytes makes
// the kernel reset the connection, and the peer may lose the close frame
// that says why.
func Linger(nc net.Conn, d time.Duration) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(d))
	bp := bufpool.Get(4 << 10)
	for {
		if _, err := nc.Read(*bp); err != nil {
			break
		}
	}
	bufpool.Put(bp)
	nc.Close()
}

// CloseNow closes the transport at once, without a closing handshake.
func (c *Conn) CloseNow() error { return c.closeTransport() }

func (c *Conn) closeTransport() error {
	err := ErrClosed
	c.closeOnce.Do(func() { err = c.nc.Close() })
	return err
}

// interrupter ends a read or a write blocked on a net.Conn when a context
// ends, by moving the connection's deadline to the past, and clears the
// deadline afterwards. The function context.AfterFunc runs may run late,
// after the call it was armed for has returned: gen tells it so, and it
// then leaves the deadline alone.
type interrupter struct {
	mu    sync.Mutex
	gen   uint64 // mu guards gen and fired
	fired bool
}

// arm makes ctx's end interrupt the read (or write) on nc. The caller
// passes what it returns to disarm once the read or write returns.
func (g *interrupter) arm(ctx context.Context, nc net.Conn, write bool) (stop func() bool) {
	g.mu.Lock()
	g.gen++
	gen := g.gen
	g.mu.Unlock()
	return context.AfterFunc(ctx, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gen == gen {
			g.fired = true
			setDeadline(nc, write, time.Unix(1, 0))
		}
	})
}

// disarm undoes arm and reports whether ctx's end moved the deadline, which
// it then clears.
func (g *interrupter) disarm(stop func() bool, nc net.Conn, write bool) bool {
	if stop() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen++
	fired := g.fired
	if fired {
		g.fired = false
		setDeadline(nc, write, time.Time{})
	}
	return fired
}

func setDeadline(nc net.Conn, write bool, t time.Time) {
	if write {
		nc.SetWriteDeadline(t)
	} else {
		nc.SetReadDeadline(t)
	}
}
