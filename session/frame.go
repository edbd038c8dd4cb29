package session

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/internal/bufpool"
	"github.com/shockwave-go/shockwave/wire"
)

// Frame is one encoded server frame, header and payload in one pooled
// buffer, shared by reference: a room broadcast encodes a message once and
// hands the same *Frame to every member's mailbox. Each holder of a reference
// calls Release once; the last Release returns the buffer and the Frame to
// their pools.
//
// A Frame's bytes never change after NewFrame, so any number of sessions may
// write it at once.
type Frame struct {
	refs atomic.Int32
	op   wire.Opcode
	bufp *[]byte
	head []byte // the header, when it is not in front of the payload in *bufp
	body []byte // the rest of the frame, in *bufp
	hdr  [wire.MaxHeaderSize]byte

	budget atomic.Pointer[wire.Budget] // the OutboundBudget it counts against, if any
	trace  atomic.Pointer[frameTrace]  // the context of its deliveries, if traced (see SetContext)
	queued atomic.Int64                // when it was first queued, in Unix nanoseconds, if metrics are on

	// The frame compressed for every session that takes shared
	// compressed frames (see deflated): zip, holding one reference, is
	// set under zmu once, before ztried; it is nil when f is not to be
	// compressed, or is itself compressed.
	ztried atomic.Bool
	zmu    sync.Mutex
	zip    *Frame
}

// frameTrace is the context a traced frame is delivered in, and since
// when.
type frameTrace struct {
	ctx   context.Context
	since int64 // Unix nanoseconds
}

var framePool = sync.Pool{New: func() any { return new(Frame) }}

// NewFrame encodes a single-frame message of type op (wire.OpText or
// wire.OpBinary, or a control opcode) with a copy of payload, and returns it
// holding one reference. It does not allocate once the pools are warm.
func NewFrame(op wire.Opcode, payload []byte) *Frame { return newFrame(op, 0, payload) }

// newFrame is NewFrame with the reserved bits rsv (wire.RSV1 for a
// compressed payload).
func newFrame(op wire.Opcode, rsv uint8, payload []byte) *Frame {
	f := framePool.Get().(*Frame)
	f.op = op
	h := wire.Header{Fin: true, Rsv: rsv, Opcode: op, Length: int64(len(payload))}
	if n := len(payload); bufpool.Cap(n+wire.MaxHeaderSize) == bufpool.Cap(n) {
		// The header goes right-aligned in front of the payload, so the
		// frame is one contiguous run of bytes.
		f.bufp = bufpool.Get(wire.MaxHeaderSize + n)
		b := *f.bufp
		off := wire.MaxHeaderSize - h.Size()
		wire.AppendHeader(b[off:off], h)
		copy(b[wire.MaxHeaderSize:], payload)
		f.head, f.body = nil, b[off:]
	} else {
		// A payload that fills its buffer class (64 KiB, say) or is past
		// the largest: the header goes apart, so the payload's buffer is
		// not of the next class up (four times the size), and stays
		// pooled.
		f.bufp = bufpool.Get(n)
		copy(*f.bufp, payload)
		f.head, f.body = wire.AppendHeader(f.hdr[:0], h), *f.bufp
	}
	f.refs.Store(1)
	return f
}

// lentFrame makes a frame around bp, a message's whole buffer that a
// Reader detached (see Session.lend): the frame owns bp, gives it back at
// its last Release, and holds one reference, the reader's. Its header is
// written by the Send that takes it (claim). bp's bytes are still taken
// from b, the Reader's inbound budget, if any: the frame counts against b
// instead of the outbound budget (see count), and its last Release gives
// them back, so the budget bounds the buffer while it lives.
func lentFrame(bp *[]byte, b *wire.Budget) *Frame {
	f := framePool.Get().(*Frame)
	f.bufp, f.head, f.body = bp, nil, *bp
	if b != nil {
		f.budget.Store(b)
	}
	f.refs.Store(1)
	return f
}

// claim makes f, made by lentFrame, a single-frame message of type op,
// and takes a reference for the caller.
func (f *Frame) claim(op wire.Opcode) *Frame {
	f.op = op
	f.head = wire.AppendHeader(f.hdr[:0], wire.Header{Fin: true, Opcode: op, Length: int64(len(f.body))})
	f.Retain(1)
	return f
}

// newCloseFrame encodes a close frame carrying code and reason.
func newCloseFrame(code wire.StatusCode, reason string) *Frame {
	var p [wire.MaxControlPayload]byte
	return NewFrame(wire.OpClose, wire.AppendClosePayload(p[:0], code, reason))
}

// deflated returns f's payload compressed (permessage-deflate without
// context takeover, full window) in a frame of its own, made by the first
// caller and kept until f's last Release, so that a broadcast compresses
// its message once for all its receivers; the caller must Retain what it
// keeps. It returns nil for a frame that is not data, is compressed
// already, or does not shrink.
func (f *Frame) deflated() *Frame {
	if !f.ztried.Load() {
		f.zmu.Lock()
		if !f.ztried.Load() {
			var alone wire.Compressor // on its own, with the full window
			f.zip = compress(f.op, f.Payload(), &alone)
			f.ztried.Store(true)
		}
		f.zmu.Unlock()
	}
	return f.zip
}

// compress returns a frame of type op whose payload is p compressed by
// z, or nil when op is not a data opcode, or when p does not shrink and z
// compresses without context takeover (with it, z has taken p in: the
// frame must go out compressed).
func compress(op wire.Opcode, p []byte, z *wire.Compressor) *Frame {
	if op != wire.OpText && op != wire.OpBinary {
		return nil
	}
	bp := bufpool.Get(wire.CompressBound(len(p)))
	defer bufpool.Put(bp)
	zp := z.Append((*bp)[:0], p)
	if len(zp) >= len(p) && !z.Takeover() {
		return nil
	}
	zf := newFrame(op, wire.RSV1, zp)
	zf.ztried.Store(true) // compressed already
	return zf
}

// Opcode returns the frame's opcode.
func (f *Frame) Opcode() wire.Opcode { return f.op }

// Len returns the frame's length on the wire.
func (f *Frame) Len() int { return len(f.head) + len(f.body) }

// Payload returns the frame's payload, without its header: the bytes
// NewFrame was given. They are valid while the caller holds a reference,
// and must not be modified.
func (f *Frame) Payload() []byte {
	if f.head != nil {
		return f.body
	}
	// The header is in front, unmasked: 2, 4 or 10 bytes, as the length
	// needs.
	for _, hs := range [...]int{2, 4, 10} {
		h := wire.Header{Length: int64(len(f.body) - hs)}
		if h.Length >= 0 && h.Size() == hs {
			return f.body[hs:]
		}
	}
	return nil
}

// parts returns the frame's bytes from offset off on, in at most two
// pieces (the second may be empty). They must not be modified.
func (f *Frame) parts(off int) (a, b []byte) {
	if off < len(f.head) {
		return f.head[off:], f.body
	}
	return f.body[off-len(f.head):], nil
}

// SetContext makes ctx the context of f's deliveries: when the runtime
// traces (see runtime.Options.TracerProvider), each session's write of f,
// or its refusal or drop, is recorded in ctx's trace, timed from this
// call. The runtime's rooms call it for the frames they publish, and
// Session.SendContext for the frames it makes; a frame shared by several
// publishes keeps the first context set. It reports whether ctx became
// f's. It allocates; without tracing nobody needs to call it.
func (f *Frame) SetContext(ctx context.Context) bool {
	return f.trace.Load() == nil && f.trace.CompareAndSwap(nil, &frameTrace{ctx: ctx, since: time.Now().UnixNano()})
}

// Retain adds n references, for handing the frame to n more holders.
func (f *Frame) Retain(n int) { f.refs.Add(int32(n)) }

// Release drops one reference. After the last one the frame is recycled and
// must not be used.
func (f *Frame) Release() {
	switch n := f.refs.Add(-1); {
	case n == 0:
		if b := f.budget.Swap(nil); b != nil {
			b.Give(int64(cap(*f.bufp)))
		}
		f.trace.Store(nil)
		f.queued.Store(0)
		if z := f.zip; z != nil {
			f.zip = nil
			z.Release()
		}
		f.ztried.Store(false)
		bufpool.Put(f.bufp)
		f.bufp, f.head, f.body = nil, nil, nil
		framePool.Put(f)
	case n < 0:
		panic("session: Frame released more often than retained")
	}
}

// count makes the frame count against b until its last Release, once
// however many sessions it is queued to.
func (f *Frame) count(b *wire.Budget) {
	if f.budget.Load() == nil && f.budget.CompareAndSwap(nil, b) {
		b.Take(int64(cap(*f.bufp)))
	}
}
