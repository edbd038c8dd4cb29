package wire

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
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
	// CloseTimeout bounds how long Close waits for the peer's close frame.
	// Defaults to DefaultCloseTimeout.
	CloseTimeout time.Duration
	// OnPing, if set, is called by ReadMessage with the payload of every
	// ping, before the pong is sent. OnPong likewise for every pong. They run
	// on the goroutine calling ReadMessage; the payload is valid only during
	// the call.
	OnPing func(payload []byte)
	OnPong func(payload []byte)
}

// Conn is a WebSocket connection, server or client side. Get one from Accept
// or Dial.
//
// One goroutine may read (ReadMessage) while any number write: writes are
// serialised inside Conn, so frames never interleave. ReadMessage answers
// pings and the closing handshake itself, so a connection must be read for
// those to work.
type Conn struct {
	nc          net.Conn
	rd          Reader
	server      bool
	vectored    bool // nc writes net.Buffers with one writev
	subprotocol string
	opts        Options

	readMu   sync.Mutex
	readDone chan struct{} // closed when reading has ended

	wmu       sync.Mutex
	closeSent bool  // wmu guards closeSent, werr and the scratch below
	werr      error // sticky write error
	whdr      [MaxHeaderSize]byte
	wctl      [MaxControlPayload]byte
	warr      [2][]byte
	wbufs     net.Buffers

	closeOnce sync.Once
}

func newConn(nc net.Conn, server bool, buffered []byte, subprotocol string, o *Options) *Conn {
	c := &Conn{nc: nc, server: server, subprotocol: subprotocol, readDone: make(chan struct{})}
	if o != nil {
		c.opts = *o
	}
	if c.opts.CloseTimeout <= 0 {
		c.opts.CloseTimeout = DefaultCloseTimeout
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
	})
	return c
}

// Subprotocol returns the subprotocol the handshake chose, or "".
func (c *Conn) Subprotocol() string { return c.subprotocol }

// NetConn returns the underlying connection. Reading from or writing to it
// corrupts the WebSocket stream; it is there for deadlines and addresses.
func (c *Conn) NetConn() net.Conn { return c.nc }

// ReadMessage returns the next text or binary message. The payload is valid
// only until the next call of ReadMessage: copy it to keep it.
//
// Pings are answered with pongs, and a close frame is answered and returned
// as a CloseError. When the peer breaks the protocol, ReadMessage fails the
// connection with the matching close code and returns the *ProtocolError.
// Every error is final: the connection is closed by then. On the steady path
// ReadMessage does not allocate.
func (c *Conn) ReadMessage() (Opcode, []byte, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.readMessage()
}

func (c *Conn) readMessage() (Opcode, []byte, error) {
	for {
		op, p, err := c.rd.Next()
		if err != nil {
			return 0, nil, c.fail(err)
		}
		switch op {
		case OpPing:
			if c.opts.OnPing != nil {
				c.opts.OnPing(p)
			}
			if err := c.writeControl(OpPong, p); err != nil && !errors.Is(err, ErrClosed) {
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

// peerClosed answers a close frame and returns what ReadMessage reports.
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
	c.writeClose(code, "")
	return ce
}

// fail ends reading with err: a protocol error is reported to the peer with
// its close code, and the transport lingers until the peer has read it;
// otherwise the transport is closed at once.
func (c *Conn) fail(err error) error {
	var pe *ProtocolError
	if errors.As(err, &pe) && c.writeClose(pe.Code, pe.Msg) == nil {
		c.closeOnce.Do(func() { Linger(c.nc, c.opts.CloseTimeout) })
	}
	c.closeTransport()
	c.rd.err = err
	select {
	case <-c.readDone:
	default:
		close(c.readDone)
	}
	return err
}

// WriteMessage writes p as one message of type op (OpText or OpBinary) in
// one frame. A server writes header and payload with one vectored write and
// does not copy p; a client masks a pooled copy. It does not allocate on the
// steady path. Text must be valid UTF-8: it is not checked here.
func (c *Conn) WriteMessage(op Opcode, p []byte) error {
	return c.WriteFrame(op, true, p)
}

// WriteFrame writes one frame, for sending a message in fragments: the first
// frame has the message's opcode, the others OpContinuation, and the last
// has fin set. Control frames may be sent between fragments; another
// message may not.
func (c *Conn) WriteFrame(op Opcode, fin bool, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	return c.writeFrameLocked(op, fin, p)
}

// Ping sends a ping with payload p (at most 125 bytes).
func (c *Conn) Ping(p []byte) error { return c.writeControl(OpPing, p) }

// Pong sends an unsolicited pong with payload p (at most 125 bytes).
func (c *Conn) Pong(p []byte) error { return c.writeControl(OpPong, p) }

func (c *Conn) writeControl(op Opcode, p []byte) error {
	if len(p) > MaxControlPayload {
		return ErrControlTooLong
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	return c.writeFrameLocked(op, true, p)
}

// writeClose sends a close frame once; later calls return ErrClosed.
func (c *Conn) writeClose(code StatusCode, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	c.closeSent = true
	return c.writeFrameLocked(OpClose, true, AppendClosePayload(c.wctl[:0], code, reason))
}

func (c *Conn) writeFrameLocked(op Opcode, fin bool, p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	h := Header{Fin: fin, Opcode: op, Length: int64(len(p))}
	var err error
	switch {
	case !c.server:
		h.Masked = true
		key := rand.Uint32()
		h.Key = [4]byte{byte(key), byte(key >> 8), byte(key >> 16), byte(key >> 24)}
		err = c.writeMasked(h, p)
	case c.vectored:
		c.warr = [2][]byte{AppendHeader(c.whdr[:0], h), p}
		c.wbufs = c.warr[:]
		_, err = c.wbufs.WriteTo(c.nc)
		c.warr = [2][]byte{} // do not keep the caller's payload alive
	default:
		bp := bufpool.Get(MaxHeaderSize + len(p))
		_, err = c.nc.Write(append(AppendHeader((*bp)[:0], h), p...))
		bufpool.Put(bp)
	}
	if err != nil {
		c.werr = err
	}
	return err
}

// maskChunk bounds the buffer a client masks its payload in: longer
// payloads are masked and written a chunk at a time.
const maskChunk = 64 << 10

// writeMasked writes a client frame: the payload is masked into a pooled
// copy (the caller's bytes are not touched), in chunks of at most maskChunk.
func (c *Conn) writeMasked(h Header, p []byte) error {
	bp := bufpool.Get(MaxHeaderSize + min(len(p), maskChunk))
	defer bufpool.Put(bp)
	b := AppendHeader((*bp)[:0], h)
	pos := 0
	for {
		n := min(len(p), cap(b)-len(b))
		start := len(b)
		b = append(b, p[:n]...)
		pos = Mask(b[start:], h.Key, pos)
		p = p[n:]
		if _, err := c.nc.Write(b); err != nil || len(p) == 0 {
			return err
		}
		b = b[:0]
	}
}

// Close performs the closing handshake: it sends a close frame with code and
// reason (cut to 123 bytes), waits up to CloseTimeout for the peer's close
// frame, and closes the transport. If another goroutine is in ReadMessage,
// that call sees the peer's answer and returns it; otherwise Close reads and
// discards messages until the answer comes. Close may be called from any
// goroutine; once a close frame has been sent, it closes the transport and
// returns ErrClosed.
func (c *Conn) Close(code StatusCode, reason string) error {
	if err := c.writeClose(code, reason); err != nil {
		c.closeTransport()
		return err
	}
	if c.readMu.TryLock() {
		c.nc.SetReadDeadline(time.Now().Add(c.opts.CloseTimeout))
		for {
			if _, _, err := c.readMessage(); err != nil {
				break
			}
		}
		c.readMu.Unlock()
	} else {
		t := time.NewTimer(c.opts.CloseTimeout)
		select {
		case <-c.readDone:
		case <-t.C:
		}
		t.Stop()
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
