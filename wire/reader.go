package wire

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/internal/bufpool"
)

// Default limits.
const (
	DefaultMaxMessageSize = 16 << 20
	DefaultReadBufferSize = 16 << 10
	minReadBufferSize     = 512 // holds any header plus a whole control frame
)

// ErrWouldBlock is what a Reader's source returns from Read, with no bytes,
// when it has nothing to read now but may have later, as a non-blocking
// socket does. Next then returns it too, without its progress: the frame
// and the message in progress stay where they were, and the next call of
// Next reads on from there. It is the one error of Next that does not stick.
var ErrWouldBlock = errors.New("wire: no data available now")

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
// A Reader also reads from a non-blocking source, one that returns
// ErrWouldBlock when it has nothing to give: Next returns ErrWouldBlock, and
// the next call resumes the frame in progress. Then too the read buffer goes
// back to its pool when it holds no unread bytes (and a few unread bytes
// wait in a 512-byte buffer), and the assembly buffer is kept only while a
// message is half read, so a Reader with nothing pending holds no memory
// (see Holding).
//
// A Reader is not safe for concurrent use.
type Reader struct {
	src     io.Reader
	raw     *rawReads // nil when src is not a socket
	bufSize int

	bufp *[]byte // read buffer; nil while it holds nothing
	r, w int     // unread bytes are (*bufp)[r:w]

	msgp   *[]byte // assembly buffer of the message in progress or last returned
	fragOp Opcode  // opcode of the fragmented message in progress, 0 if none
	utf8   UTF8Validator
	server bool  // frames must be masked (we are the server)
	rsvOK  uint8 // reserved bits an extension has claimed
	small  bool  // a connection read without RawConn (TLS): wait for a message in a small buffer

	// permessage-deflate, when negotiated (rsvOK has RSV1).
	compressed bool   // the message in progress is compressed
	takeover   bool   // the peer compresses with context takeover: keep window
	window     []byte // the last 32 KiB inflated, with takeover; nil until used

	// The frame in progress, kept here so that Next can stop when the
	// source would block and resume where it stopped.
	stage uint8 // stageHeader, stageInPlace or stageAppend
	text  bool  // the frame's payload is text, checked as it arrives
	h     Header
	done  int // payload bytes unmasked (and checked) so far

	maxMsg int64
	budget *Budget
	onRead func()
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
	// Budget, if set, is shared by many Readers and caps the bytes they
	// hold at once in assembly buffers (messages that do not fit in the
	// read buffer, or arrive in fragments). A Reader that would go over
	// it fails with ErrBudgetExhausted (close code 1013, try again later).
	// Read buffers are not counted: each is bounded by ReadBufferSize.
	Budget *Budget
	// OnRead, if set, is called on the reading goroutine after every read
	// from src that brought bytes, before they are parsed: for a caller
	// that watches whether a peer sends anything at all (a heartbeat),
	// not only whether its messages are whole.
	OnRead func()
	// Compression is what the handshake agreed on (Upgraded.Compression).
	// When Enabled, a data message whose first frame has RSV1 set is
	// inflated before Next returns it; MaxMessageSize bounds it inflated
	// (and, with a little room for deflate's overhead, as it comes), and
	// the output grows with the bytes inflated, never past the limit, so
	// that a compression bomb costs at most MaxMessageSize before it
	// fails with ErrMessageTooBig. When the peer compresses with context
	// takeover, the Reader keeps a 32 KiB window of what it inflated for
	// as long as it reads the stream, and is then never Idle.
	Compression CompressionParams
}

// Where next is in a frame.
const (
	stageHeader  = iota // between frames, or in a header not yet whole
	stageInPlace        // in a payload read into the read buffer
	stageAppend         // in a payload appended to the assembly buffer
)

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
	*rd = Reader{src: src, bufSize: o.ReadBufferSize, server: o.Server, maxMsg: o.MaxMessageSize, budget: o.Budget, onRead: o.OnRead}
	if o.Compression.Enabled {
		rd.rsvOK = RSV1
		rd.takeover = o.Compression.peerTakeover(o.Server)
	}
	if sc, ok := src.(syscall.Conn); ok && rawReadSupported {
		if conn, err := sc.SyscallConn(); err == nil {
			rd.raw = &rawReads{conn: conn}
			rd.raw.fn = rd.onReadable
		}
	}
	if _, conn := src.(net.Conn); conn && rd.raw == nil {
		// A connection that blocks in Read and offers no RawConn, as
		// crypto/tls's: an idle one would hold its whole read buffer
		// while it waits (16 KiB a TLS session). It waits in a small one,
		// which grows when the bytes come.
		rd.small = true
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
// When the source returns ErrWouldBlock, so does Next; the next call resumes
// where this one stopped. So it is for a read deadline that passes (an
// error matching os.ErrDeadlineExceeded): Next returns it, and reads on
// from where it stopped once the deadline is moved. Any other error is
// sticky: a *ProtocolError says how the peer broke the protocol (its Code
// is the close code to fail the connection with); any other error comes
// from the stream. On the steady path Next does not allocate, inflating
// included: the decompressor and the output buffer are pooled (with
// context takeover, the 32 KiB window is made once).
func (rd *Reader) Next() (Opcode, []byte, error) {
	if rd.err != nil {
		return 0, nil, rd.err
	}
	if rd.fragOp == 0 {
		rd.putMsg()
	}
	if rd.r == rd.w && (rd.raw != nil || rd.small) {
		rd.releaseBuf()
	}
	op, p, err := rd.next()
	if err != nil {
		wouldBlock := err == ErrWouldBlock || errors.Is(err, ErrWouldBlock) // the first test is the event loop's, every burst
		if wouldBlock || errors.Is(err, os.ErrDeadlineExceeded) {
			// The message in progress, if any, keeps its assembly buffer;
			// an empty read buffer goes back to its pool, and a few bytes
			// move to a smaller one.
			rd.shrinkBuf()
			if wouldBlock {
				err = ErrWouldBlock
			}
			return 0, nil, err
		}
		rd.err = err
		rd.Release()
	}
	return op, p, err
}

// Holding returns the bytes of buffers the Reader holds now: the capacity
// of its read buffer, of its assembly buffer and of its inflate window.
// It is zero when the last call of Next returned ErrWouldBlock with no
// frame or fragmented message in progress (and no window kept for a peer
// that compresses with context takeover), and after a sticky error or
// Release.
func (rd *Reader) Holding() int {
	n := cap(rd.window)
	if rd.bufp != nil {
		n += cap(*rd.bufp)
	}
	if rd.msgp != nil {
		n += cap(*rd.msgp)
	}
	return n
}

// Idle reports whether the Reader is between messages with nothing to
// keep: no frame or fragmented message begun, no buffer held, no inflate
// window, no error. Reset then loses nothing, so an idle Reader may go
// back to a pool and another one take over the stream later. A Reader
// whose source has just returned ErrWouldBlock at the end of a frame is
// idle, unless its peer compresses with context takeover and it has
// inflated a message.
func (rd *Reader) Idle() bool {
	return rd.err == nil && rd.stage == stageHeader && rd.fragOp == 0 && rd.bufp == nil && rd.msgp == nil && rd.window == nil
}

// Pending reports whether bytes of a frame or of a fragmented message have
// been read and not yet returned by Next: the peer is in the middle of
// sending something.
func (rd *Reader) Pending() bool {
	return rd.err == nil && (rd.w > rd.r || rd.stage != stageHeader || rd.fragOp != 0)
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
	switch rd.stage {
	case stageInPlace:
		return int64(rd.w-rd.r) >= rd.h.Length
	case stageAppend:
		return int64(rd.w-rd.r) >= rd.h.Length-int64(rd.done)
	}
	n, length := peekHeader((*rd.bufp)[rd.r:rd.w])
	return length < 0 || n > 0 && int64(rd.w-rd.r-n) >= length
}

// Detach hands over the buffer that holds p, the message Next returned
// last, when the Reader assembled it in a buffer of its own (a message in
// fragments, one longer than the read buffer, or one inflated): the
// Reader forgets the buffer and takes another for its next message, and
// the buffer, p in it, is the caller's for good. Its bytes stay taken from
// the Budget, since the buffer still exists: the caller gives them back
// (Budget.Give of its capacity) when it lets the buffer go. For any other
// p it returns nil, and p is the Reader's as usual (valid until the next
// call of Next).
//
// The session package sends a long message back this way without copying
// it: the buffer becomes the payload of the reply.
func (rd *Reader) Detach(p []byte) *[]byte {
	bp := rd.msgp
	if bp == nil || len(p) == 0 || len(*bp) != len(p) || &(*bp)[0] != &p[0] || rd.stage != stageHeader || rd.fragOp != 0 {
		return nil
	}
	rd.msgp = nil
	return bp
}

// Release returns the Reader's buffers to their pools, and drops its
// inflate window. A Reader whose Next has failed has already done so.
// Call it when abandoning a Reader.
func (rd *Reader) Release() {
	rd.releaseBuf()
	rd.putMsg()
	rd.window = nil
}

// smallBuf is the smallest read buffer of a Reader that waits with a few
// bytes of a frame: a peer that sends a header byte and goes quiet pins
// 512 bytes, not a whole read buffer. The next fill grows it back.
const smallBuf = 512

// shrinkBuf gives the read buffer back if it holds nothing, or trades it
// for the smallest size class that holds its unread bytes with room for
// one more, so that what a waiting Reader keeps is in proportion to what
// it was sent. It is for a Reader about to wait: a raw read resumes into
// the room left (a full buffer would take no bytes, which reads as the end
// of the stream).
func (rd *Reader) shrinkBuf() {
	n := rd.w - rd.r
	if n == 0 {
		rd.releaseBuf()
		return
	}
	if c := bufpool.Cap(max(n+1, smallBuf)); rd.bufp != nil && c < len(*rd.bufp) {
		rd.moveBuf(c)
	}
}

// moveBuf moves the unread bytes to the front of a new pooled buffer of
// length size, and gives the old one back.
func (rd *Reader) moveBuf(size int) {
	bp := bufpool.Get(size)
	rd.w = copy(*bp, (*rd.bufp)[rd.r:rd.w])
	rd.r = 0
	bufpool.Put(rd.bufp)
	rd.bufp = bp
}

func (rd *Reader) releaseBuf() {
	if rd.bufp != nil {
		bufpool.Put(rd.bufp)
		rd.bufp = nil
	}
	rd.r, rd.w = 0, 0
}

// next reads on from where the last call stopped until a message or a
// control frame is whole. Its progress is kept in rd, so that it can return
// when the source would block and be called again.
func (rd *Reader) next() (Opcode, []byte, error) {
	for {
		switch rd.stage {
		case stageHeader:
			if rd.r == rd.w && rd.fragOp == 0 {
				// Nothing buffered between messages: read first, so
				// that a message that comes whole takes nextWhole.
				rd.r, rd.w = 0, 0
				if err := rd.fill(); err != nil {
					return 0, nil, err
				}
			}
			if op, p, ok, err := rd.nextWhole(); ok {
				return op, p, err
			}
			if err := rd.startFrame(); err != nil {
				return 0, nil, err
			}
		case stageInPlace:
			p, err := rd.readInPlace()
			if err != nil {
				return 0, nil, err
			}
			rd.stage = stageHeader
			if rd.text && !rd.utf8.Complete() {
				return 0, nil, ErrInvalidUTF8
			}
			return rd.h.Opcode, p, nil
		default: // stageAppend
			if err := rd.readAppend(); err != nil {
				return 0, nil, err
			}
			rd.stage = stageHeader
			if rd.h.Fin {
				op := rd.fragOp
				rd.fragOp = 0
				if rd.compressed {
					p, err := rd.inflate(op == OpText)
					if err != nil {
						return 0, nil, err
					}
					return op, p, nil
				}
				if rd.text && !rd.utf8.Complete() {
					return 0, nil, ErrInvalidUTF8
				}
				return op, *rd.msgp, nil
			}
		}
	}
}

// nextWhole is next's common case in one piece: a message in a single
// text or binary frame, uncompressed, that is in the read buffer whole.
// For anything else (a control frame, a fragment, a frame still coming, a
// header that breaks a rule) it reports false, having changed nothing,
// and the general path takes it: startFrame, then readInPlace, whose
// checks these are. On a stream of 1 KiB messages the general path's
// steps were a fifth of the instructions above the kernel.
func (rd *Reader) nextWhole() (Opcode, []byte, bool, error) {
	if rd.bufp == nil || rd.fragOp != 0 {
		return 0, nil, false, nil
	}
	b := (*rd.bufp)[rd.r:rd.w]
	if len(b) < 2 {
		return 0, nil, false, nil
	}
	// FIN and no reserved bit; masked if and only if the peer is a client.
	op := Opcode(b[0] & 0x0F)
	if b[0]&0xF0 != 0x80 || op != OpText && op != OpBinary || (b[1]&0x80 != 0) != rd.server {
		return 0, nil, false, nil
	}
	n, length := peekHeader(b)
	if n == 0 || length < 0 || length > int64(len(b)-n) || length > rd.maxMsg {
		return 0, nil, false, nil
	}
	p := b[n : n+int(length)]
	if rd.server {
		maskWords(p, binary.LittleEndian.Uint32(b[n-4:n]), 0)
	}
	rd.r += n + len(p)
	rd.compressed, rd.text = false, false
	if op == OpText && !utf8.Valid(p) {
		return 0, nil, true, ErrInvalidUTF8
	}
	return op, p, true, nil
}

// startFrame reads and checks the next header and decides where the
// payload goes: in place, in the read buffer, for control frames and for
// whole messages that fit it; otherwise appended to the assembly buffer.
func (rd *Reader) startFrame() error {
	h := &rd.h
	if err := rd.readHeader(h); err != nil {
		return err
	}
	if err := rd.check(h); err != nil {
		return err
	}
	rd.done = 0
	if h.Opcode.IsControl() {
		rd.text = false
		rd.stage = stageInPlace
		return nil
	}
	if h.Opcode != OpContinuation {
		// A compressed message is assembled whole, then inflated; its
		// text is checked once inflated.
		rd.compressed = h.Rsv&RSV1 != 0
		if h.Length > rd.wireLimit() {
			return ErrMessageTooBig
		}
		rd.utf8.Reset()
		rd.text = h.Opcode == OpText && !rd.compressed
		if h.Fin && h.Length <= int64(rd.bufSize-MaxHeaderSize) && !rd.compressed {
			rd.stage = stageInPlace
			return nil
		}
		rd.fragOp = h.Opcode
		if rd.msgp != nil {
			*rd.msgp = (*rd.msgp)[:0]
		}
	} else if h.Length > rd.wireLimit()-rd.msgLen() { // not msgLen+Length: it may overflow
		return ErrMessageTooBig
	} else {
		rd.text = rd.fragOp == OpText && !rd.compressed
	}
	// The assembly buffer is sized for what has arrived, not for what the
	// header announces: a peer that announces a long frame and sends
	// little costs little. readAppend grows it as bytes come.
	start := int(rd.msgLen())
	if err := rd.reserve(start, max(minAssembly, start+int(min(h.Length, int64(rd.w-rd.r))))); err != nil {
		return err
	}
	rd.stage = stageAppend
	return nil
}

// minAssembly is the smallest assembly buffer, for a frame whose payload
// has not arrived yet.
const minAssembly = 512

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
	case h.Rsv != 0 && (h.Opcode.IsControl() || h.Opcode == OpContinuation):
		return ErrCompressedFrame // RSV1, the only bit claimed, on a frame it may not mark
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

// rawReads is what a Reader of a blocking socket needs to read it through
// syscall.RawConn, so that its read buffer is borrowed only while bytes
// come: a separate allocation, as most Readers (on the event loop, or of
// other streams) have no use for it.
type rawReads struct {
	conn syscall.RawConn
	fn   func(fd uintptr) bool // onReadable, bound once
	dst  []byte                // where fn reads to; nil means the read buffer
	n    int
	err  error
}

// fill reads more bytes into the read buffer, after rd.w.
func (rd *Reader) fill() error {
	if rd.bufp != nil && len(*rd.bufp) < rd.bufSize {
		rd.moveBuf(rd.bufSize) // shrunk while waiting: bytes are coming
	}
	if rd.raw != nil {
		rd.raw.dst = nil
		return rd.rawRead()
	}
	if rd.bufp == nil {
		size := rd.bufSize
		if rd.small && rd.stage == stageHeader {
			size = smallBuf // between frames: the next fill grows it
		}
		rd.bufp = bufpool.Get(size)
	}
	n, err := rd.readSrc((*rd.bufp)[rd.w:])
	rd.w += n
	return err
}

// maxEmptyReads is how many reads in a row may bring neither bytes nor an
// error (net.Pipe does, for an empty write) before the source is taken
// as broken, as bufio does.
const maxEmptyReads = 100

// readSrc reads from src into p, past empty reads.
func (rd *Reader) readSrc(p []byte) (int, error) {
	for range maxEmptyReads {
		n, err := rd.src.Read(p)
		if n > 0 {
			rd.read()
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// readDirect reads straight into p, bypassing the read buffer.
func (rd *Reader) readDirect(p []byte) (int, error) {
	if rd.raw != nil {
		rd.raw.dst = p
		err := rd.rawRead()
		rd.raw.dst = nil
		return rd.raw.n, err
	}
	return rd.readSrc(p)
}

func (rd *Reader) rawRead() error {
	raw := rd.raw
	raw.n, raw.err = 0, nil
	if err := raw.conn.Read(raw.fn); err != nil {
		return err
	}
	if raw.err != nil {
		return raw.err
	}
	if raw.n == 0 {
		return io.EOF
	}
	if raw.dst == nil {
		rd.w += raw.n
	}
	rd.read()
	return nil
}

// read tells OnRead that bytes came.
func (rd *Reader) read() {
	if rd.onRead != nil {
		rd.onRead()
	}
}

// readInPlace reads the payload of the frame in progress into the read
// buffer and returns it there, unmasked (and, if text, fed to the UTF-8
// validator as it arrives). startFrame has made sure the frame fits in the
// buffer. The payload starts at rd.r; its first rd.done bytes have been
// unmasked and checked already.
func (rd *Reader) readInPlace() ([]byte, error) {
	n := int(rd.h.Length)
	for {
		if rd.bufp != nil {
			buf, r, done := *rd.bufp, rd.r, rd.done
			if avail := min(rd.w-r, n); avail > done {
				chunk := buf[r+done : r+avail]
				if rd.h.Masked {
					Mask(chunk, rd.h.Key, done&3)
				}
				if rd.text && !rd.utf8.Write(chunk) {
					return nil, ErrInvalidUTF8
				}
				rd.done, done = avail, avail
			}
			if done == n {
				rd.r = r + n
				return buf[r : r+n], nil
			}
			if r+n > len(buf) {
				rd.compact()
			}
		}
		if err := rd.fill(); err != nil {
			return nil, unexpected(err)
		}
	}
}

// readAppend appends the payload of the frame in progress to the assembly
// buffer, unmasking it and validating UTF-8 as it arrives. Bytes already in
// the read buffer are copied; the rest is read straight into the assembly
// buffer, which grows by size class, but for a rest shorter than half the
// read buffer, which is read through it with what follows. The assembly buffer's length counts
// the bytes appended so far, rd.done of them from this frame.
func (rd *Reader) readAppend() error {
	need := int(rd.h.Length)
	for rd.done < need {
		at := len(*rd.msgp)
		left := need - rd.done
		buf := (*rd.msgp)[:cap(*rd.msgp)]
		if at == len(buf) {
			// Full: grow by as much again (the next size class), so the
			// buffer stays within a few times the bytes received.
			if err := rd.reserve(at, at+min(left, len(buf))); err != nil {
				return err
			}
			buf = (*rd.msgp)[:cap(*rd.msgp)]
		}
		dst := buf[at : at+min(left, len(buf)-at)]
		var n int
		if rd.r < rd.w {
			n = copy(dst, (*rd.bufp)[rd.r:rd.w])
			rd.r += n
		} else if left < rd.bufSize/2 {
			// A short rest (a fragment, the end of a frame): read it
			// into the read buffer, which takes the frames after it in
			// the same read, rather than read it alone.
			rd.r, rd.w = 0, 0
			if err := rd.fill(); err != nil {
				return unexpected(err)
			}
			continue
		} else {
			var err error
			if n, err = rd.readDirect(dst); err != nil {
				return unexpected(err)
			}
		}
		chunk := dst[:n]
		if rd.h.Masked {
			Mask(chunk, rd.h.Key, rd.done&3)
		}
		if rd.text && !rd.utf8.Write(chunk) {
			return ErrInvalidUTF8
		}
		rd.done += n
		*rd.msgp = (*rd.msgp)[:at+n]
	}
	return nil
}

// reserve makes the assembly buffer hold at least n bytes, keeping its
// first keep bytes. The new buffer is taken from the budget before the old
// one is given back: for a moment both exist.
func (rd *Reader) reserve(keep, n int) error {
	if rd.msgp != nil && cap(*rd.msgp) >= n {
		*rd.msgp = (*rd.msgp)[:keep]
		return nil
	}
	if !rd.budget.take(int64(bufpool.Cap(n))) {
		return ErrBudgetExhausted
	}
	nb := bufpool.Get(n)
	if rd.msgp != nil {
		copy(*nb, (*rd.msgp)[:keep])
		rd.putMsg()
	}
	*nb = (*nb)[:keep]
	rd.msgp = nb
	return nil
}

// putMsg gives the assembly buffer back to its pool and to the budget.
func (rd *Reader) putMsg() {
	if rd.msgp != nil {
		rd.budget.Give(int64(cap(*rd.msgp)))
		bufpool.Put(rd.msgp)
		rd.msgp = nil
	}
}

// unexpected turns the end of the stream inside a frame into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ErrBudgetExhausted is the error of a Reader whose message would take its
// Budget past the limit: too many large messages are being received at
// once. The peer is told to try again later.
var ErrBudgetExhausted = &ProtocolError{StatusTryAgainLater, "memory budget for incoming messages exhausted"}

// Budget caps the bytes that many Readers, or many senders, hold at once.
// Safe for concurrent use. A nil *Budget has no limit.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a Budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit returns the budget's limit, in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// InUse returns the bytes taken and not yet given back.
func (b *Budget) InUse() int64 { return b.used.Load() }

// Take takes n bytes from the budget, even past its limit: for memory
// that is already in use and is refused later (see Exceeded).
func (b *Budget) Take(n int64) { b.used.Add(n) }

// Exceeded reports whether more bytes are taken than the limit.
func (b *Budget) Exceeded() bool { return b.used.Load() > b.limit }

// Give gives back n bytes taken.
func (b *Budget) Give(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

// take takes n bytes if that leaves the budget within its limit, and
// reports whether it did: a Reader's assembly buffer.
func (b *Budget) take(n int64) bool {
	if b == nil {
		return true
	}
	for {
		u := b.used.Load()
		if n > b.limit-u { // not u+n > limit: it may overflow
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}
