package wire

import (
	"io"
	"syscall"

	"github.com/shockwave-go/shockwave/internal/bufpool"
)

// Default limits.
const (
	DefaultMaxMessageSize = 16 << 20
	DefaultReadBufferSize = 16 << 10
	minReadBufferSize     = 512 // holds any header plus a whole control frame
)

// Reader reads WebSocket messages from a byte stream: it parses frames,
// unmasks them, reassembles fragmented messages, validates UTF-8 in text
// messages as the bytes arrive and enforces the size limit. It returns
// control frames as they come, between the fragments of a message if need
// be, and leaves answering them to its caller (Conn does that).
//
// Memory: bytes are read into a pooled buffer, and a message that fits in it
// is returned in place (zero copy). A message that does not fit, or that
// arrives in fragments, is assembled in a pooled buffer of its size class,
// with the payload read straight into it. When the stream is a socket that
// offers syscall.Conn (TCP, Unix), the read buffer goes back to its pool
// whenever the socket has nothing to read, so an idle connection holds no
// buffer at all.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	src     io.Reader
	raw     syscall.RawConn // nil when src is not a socket
	rawFn   func(fd uintptr) bool
	rawDst  []byte // where rawFn reads to; nil means the read buffer
	rawN    int
	rawErr  error
	bufSize int

	bufp *[]byte // read buffer; nil while it holds nothing
	r, w int     // unread bytes are (*bufp)[r:w]

	msgp   *[]byte // assembly buffer of the message in progress or last returned
	fragOp Opcode  // opcode of the fragmented message in progress, 0 if none
	utf8   UTF8Validator

	server bool  // frames must be masked (we are the server)
	rsvOK  uint8 // reserved bits an extension has claimed
	maxMsg int64
	err    error // sticky
}

// ReaderOptions configure a Reader. The zero value means the defaults.
type ReaderOptions struct {
	// Server says that frames come from a client and must be masked.
	// Otherwise they must not be.
	Server bool
	// MaxMessageSize is the longest message, in bytes, after reassembly.
	// A longer one fails with ErrMessageTooBig (close code 1009) as soon as
	// a frame header announces it. Defaults to DefaultMaxMessageSize.
	MaxMessageSize int64
	// ReadBufferSize is the size of the pooled read buffer. Defaults to
	// DefaultReadBufferSize; at least 512.
	ReadBufferSize int
	// Buffered holds bytes already read from src (such as what an HTTP
	// server buffered after the handshake). They are read first.
	Buffered []byte
}

// NewReader returns a Reader of src.
func NewReader(src io.Reader, opts *ReaderOptions) *Reader {
	rd := &Reader{}
	rd.Reset(src, opts)
	return rd
}

// Reset makes rd a new Reader of src, for embedding a Reader by value. A
// Reader must not be copied once used: it refers to itself.
func (rd *Reader) Reset(src io.Reader, opts *ReaderOptions) {
	rd.Release()
	var o ReaderOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = DefaultReadBufferSize
	}
	o.ReadBufferSize = max(o.ReadBufferSize, minReadBufferSize)
	*rd = Reader{src: src, bufSize: o.ReadBufferSize, server: o.Server, maxMsg: o.MaxMessageSize}
	if sc, ok := src.(syscall.Conn); ok && rawReadSupported {
		if raw, err := sc.SyscallConn(); err == nil {
			rd.raw = raw
			rd.rawFn = rd.onReadable
		}
	}
	if len(o.Buffered) > 0 {
		rd.bufp = bufpool.Get(max(rd.bufSize, len(o.Buffered)))
		rd.w = copy(*rd.bufp, o.Buffered)
	}
}

// Next returns the next message, or the next control frame. The payload is
// unmasked and, for text, valid UTF-8. It is valid only until the next call
// of Next: copy it to keep it.
//
// An error is sticky: a *ProtocolError says how the peer broke the protocol
// (its Code is the close code to fail the connection with); any other error
// comes from the stream. On the steady path Next does not allocate.
func (rd *Reader) Next() (Opcode, []byte, error) {
	if rd.err != nil {
		return 0, nil, rd.err
	}
	if rd.fragOp == 0 && rd.msgp != nil {
		bufpool.Put(rd.msgp)
		rd.msgp = nil
	}
	if rd.r == rd.w && rd.raw != nil {
		rd.releaseBuf()
	}
	op, p, err := rd.next()
	if err != nil {
		rd.err = err
		rd.Release()
	}
	return op, p, err
}

// HasFrame reports whether a whole frame is already buffered, so that the
// next call of Next returns without reading from the stream (or fails at
// once). A caller that batches its writes can hold them while it is true,
// and write everything before a Next that would block.
func (rd *Reader) HasFrame() bool {
	if rd.err != nil {
		return true
	}
	if rd.bufp == nil {
		return false
	}
	var h Header
	n, err := parseHeader((*rd.bufp)[rd.r:rd.w], &h)
	return err != nil || n > 0 && int64(rd.w-rd.r-n) >= h.Length
}

// Release returns the Reader's buffers to their pools. A Reader whose Next
// has failed has already done so. Call it when abandoning a Reader.
func (rd *Reader) Release() {
	rd.releaseBuf()
	if rd.msgp != nil {
		bufpool.Put(rd.msgp)
		rd.msgp = nil
	}
}

func (rd *Reader) releaseBuf() {
	if rd.bufp != nil {
		bufpool.Put(rd.bufp)
		rd.bufp = nil
	}
	rd.r, rd.w = 0, 0
}

func (rd *Reader) next() (Opcode, []byte, error) {
	var h Header
	for {
		if err := rd.readHeader(&h); err != nil {
			return 0, nil, err
		}
		if err := rd.check(&h); err != nil {
			return 0, nil, err
		}
		if h.Opcode.IsControl() {
			p, err := rd.readInPlace(&h, false)
			return h.Opcode, p, err
		}
		text := h.Opcode == OpText || h.Opcode == OpContinuation && rd.fragOp == OpText
		if h.Opcode != OpContinuation {
			if h.Length > rd.maxMsg {
				return 0, nil, ErrMessageTooBig
			}
			rd.utf8.Reset()
			if h.Fin && int64(rd.bufSize) >= int64(MaxHeaderSize)+h.Length {
				p, err := rd.readInPlace(&h, text)
				if err == nil && text && !rd.utf8.Complete() {
					err = ErrInvalidUTF8
				}
				return h.Opcode, p, err
			}
			rd.fragOp = h.Opcode
			if rd.msgp != nil {
				*rd.msgp = (*rd.msgp)[:0]
			}
		} else if rd.msgLen()+h.Length > rd.maxMsg {
			return 0, nil, ErrMessageTooBig
		}
		if err := rd.readAppend(&h, text); err != nil {
			return 0, nil, err
		}
		if h.Fin {
			op := rd.fragOp
			rd.fragOp = 0
			if text && !rd.utf8.Complete() {
				return 0, nil, ErrInvalidUTF8
			}
			return op, *rd.msgp, nil
		}
	}
}

func (rd *Reader) msgLen() int64 {
	if rd.msgp == nil {
		return 0
	}
	return int64(len(*rd.msgp))
}

// check applies the rules of RFC 6455 section 5 to a header.
func (rd *Reader) check(h *Header) error {
	switch {
	case h.Rsv&^rd.rsvOK != 0:
		return ErrReservedBits
	case h.Opcode.IsReserved():
		return ErrReservedOpcode
	case rd.server && !h.Masked:
		return ErrUnmasked
	case !rd.server && h.Masked:
		return ErrMasked
	case h.Opcode.IsControl():
		if !h.Fin {
			return ErrFragmentedControl
		}
		if h.Length > MaxControlPayload {
			return ErrControlTooLong
		}
	case h.Opcode == OpContinuation:
		if rd.fragOp == 0 {
			return ErrUnexpectedContinue
		}
	case rd.fragOp != 0:
		return ErrExpectedContinue
	}
	return nil
}

func (rd *Reader) readHeader(h *Header) error {
	for {
		if rd.bufp != nil {
			n, err := parseHeader((*rd.bufp)[rd.r:rd.w], h)
			if err != nil || n > 0 {
				rd.r += n
				return err
			}
			if len(*rd.bufp)-rd.r < MaxHeaderSize {
				rd.compact()
			}
		}
		if err := rd.fill(); err != nil {
			if err == io.EOF && (rd.w > rd.r || rd.fragOp != 0) {
				err = io.ErrUnexpectedEOF // inside a header or a message
			}
			return err
		}
	}
}

// compact moves the unread bytes to the front of the read buffer.
func (rd *Reader) compact() {
	n := copy(*rd.bufp, (*rd.bufp)[rd.r:rd.w])
	rd.r, rd.w = 0, n
}

// fill reads more bytes into the read buffer, after rd.w.
func (rd *Reader) fill() error {
	if rd.raw != nil {
		rd.rawDst = nil
		return rd.rawRead()
	}
	if rd.bufp == nil {
		rd.bufp = bufpool.Get(rd.bufSize)
	}
	n, err := rd.src.Read((*rd.bufp)[rd.w:])
	rd.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readDirect reads straight into p, bypassing the read buffer.
func (rd *Reader) readDirect(p []byte) (int, error) {
	if rd.raw != nil {
		rd.rawDst = p
		err := rd.rawRead()
		rd.rawDst = nil
		return rd.rawN, err
	}
	n, err := rd.src.Read(p)
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err
}

func (rd *Reader) rawRead() error {
	rd.rawN, rd.rawErr = 0, nil
	if err := rd.raw.Read(rd.rawFn); err != nil {
		return err
	}
	if rd.rawErr != nil {
		return rd.rawErr
	}
	if rd.rawN == 0 {
		return io.EOF
	}
	if rd.rawDst == nil {
		rd.w += rd.rawN
	}
	return nil
}

// readInPlace reads a frame's payload into the read buffer and returns it
// there, unmasked (and, if text, fed to the UTF-8 validator as it arrives).
// The caller has made sure the frame fits in the buffer.
func (rd *Reader) readInPlace(h *Header, text bool) ([]byte, error) {
	n := int(h.Length)
	if rd.bufp != nil && rd.r+n > len(*rd.bufp) {
		rd.compact()
	}
	done, pos := 0, 0
	for {
		if rd.bufp != nil {
			avail := min(rd.w-rd.r, n)
			if chunk := (*rd.bufp)[rd.r+done : rd.r+avail]; len(chunk) > 0 {
				if h.Masked {
					pos = Mask(chunk, h.Key, pos)
				}
				if text && !rd.utf8.Write(chunk) {
					return nil, ErrInvalidUTF8
				}
				done = avail
			}
			if done == n {
				p := (*rd.bufp)[rd.r : rd.r+n]
				rd.r += n
				return p, nil
			}
		}
		if err := rd.fill(); err != nil {
			return nil, unexpected(err)
		}
	}
}

// readAppend appends a frame's payload to the assembly buffer, unmasking it
// and validating UTF-8 as it arrives. Bytes already in the read buffer are
// copied; the rest is read straight into the assembly buffer. That buffer
// grows by size class and is sized for the whole frame up front only up to
// 1 MiB, so a peer that announces a long frame and sends little costs little.
func (rd *Reader) readAppend(h *Header, text bool) error {
	need := int(h.Length)
	start := int(rd.msgLen())
	end := start + need
	rd.reserve(start, min(end, start+max(1<<20, rd.w-rd.r)))
	pos, got := 0, 0
	for got < need {
		buf := (*rd.msgp)[:cap(*rd.msgp)]
		if start+got == len(buf) {
			rd.reserve(start+got, min(end, 2*len(buf)))
			buf = (*rd.msgp)[:cap(*rd.msgp)]
		}
		dst := buf[start+got : min(end, len(buf))]
		var n int
		if rd.r < rd.w {
			n = copy(dst, (*rd.bufp)[rd.r:rd.w])
			rd.r += n
		} else {
			var err error
			if n, err = rd.readDirect(dst); err != nil {
				return unexpected(err)
			}
		}
		chunk := dst[:n]
		if h.Masked {
			pos = Mask(chunk, h.Key, pos)
		}
		if text && !rd.utf8.Write(chunk) {
			return ErrInvalidUTF8
		}
		got += n
	}
	*rd.msgp = (*rd.msgp)[:end]
	return nil
}

// reserve makes the assembly buffer hold at least n bytes, keeping its
// first keep bytes.
func (rd *Reader) reserve(keep, n int) {
	if rd.msgp != nil && cap(*rd.msgp) >= n {
		*rd.msgp = (*rd.msgp)[:keep]
		return
	}
	nb := bufpool.Get(n)
	if rd.msgp != nil {
		copy(*nb, (*rd.msgp)[:keep])
		bufpool.Put(rd.msgp)
	}
	*nb = (*nb)[:keep]
	rd.msgp = nb
}

// unexpected turns the end of the stream inside a frame into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
