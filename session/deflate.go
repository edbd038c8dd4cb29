package session

import (
	"sync"
	"unique"

	"github.com/shockwave-go/shockwave/wire"
)

// deflate is how a session compresses what it sends, when its handshake
// agreed on permessage-deflate (agreed.dz; nil otherwise). A session
// compresses data frames of CompressionThreshold bytes of payload or more,
// in one of two ways:
//
//   - shared: its client takes frames compressed once for every session
//     (wire.CompressionParams.AcceptsShared) and the session compresses
//     without context takeover. Enqueue swaps a frame for its compressed
//     form (Frame.deflated), made by the first session to need it: a room
//     broadcast is compressed once, whatever the room's size.
//   - own: the session compresses with context takeover, or with a window
//     its client limited. Such frames are compressed by the drainer just
//     before they are written, with the session's compressor: with context
//     takeover each message is compressed against those before it, so it
//     must be compressed in the order of writing, and only once nothing can
//     drop it any more.
type deflate struct {
	params wire.CompressionParams
	z      wire.Compressor // own: the drainer's
	shared bool
}

// agreed is what a session's handshake agreed on beyond RFC 6455: its
// subprotocol and its permessage-deflate. Sessions keep it interned
// (Session.hs), so that what many share costs each a pointer: a deflate
// without context takeover has no state, and is shared too.
type agreed struct {
	sub string
	dz  *deflate // nil: no compression
}

// agreed returns what the session's handshake agreed on.
func (s *Session) agreed() agreed {
	if s.hs == (unique.Handle[agreed]{}) {
		return agreed{}
	}
	return s.hs.Value()
}

// deflateKey is what makes a deflate: the parameters agreed, in the
// runtime's mode.
type deflateKey struct {
	params wire.CompressionParams
	mode   wire.CompressionMode
}

// stateless holds the deflates without context takeover, one per
// deflateKey: a few hundred at most.
var stateless sync.Map // deflateKey → *deflate

// deflateOf returns the deflate of a session whose handshake agreed on p,
// in the runtime's mode: its own with context takeover, otherwise a
// shared one; nil when p is not enabled.
func deflateOf(p wire.CompressionParams, mode wire.CompressionMode) *deflate {
	if !p.Enabled {
		return nil
	}
	k := deflateKey{p, mode}
	if d, ok := stateless.Load(k); ok {
		return d.(*deflate)
	}
	d := &deflate{params: p, z: p.Compressor(true, mode)}
	if d.z.Takeover() {
		return d
	}
	d.shared = p.AcceptsShared()
	v, _ := stateless.LoadOrStore(k, d)
	return v.(*deflate)
}

// Compression returns the permessage-deflate parameters the session's
// handshake agreed on (see runtime.Options.Compression); Enabled is false
// when it agreed on none.
func (s *Session) Compression() wire.CompressionParams {
	if dz := s.agreed().dz; dz != nil {
		return dz.params
	}
	return wire.CompressionParams{}
}

// compressible reports whether f is a frame the session compresses: data
// of CompressionThreshold bytes or more.
func (s *Session) compressible(f *Frame) bool {
	return (f.op == wire.OpText || f.op == wire.OpBinary) && len(f.Payload()) >= s.cfg.CompressionThreshold
}

// shareDeflated returns, for a session whose client takes shared
// compressed frames, the compressed form of f holding the reference f
// held, or f itself when it is not to be compressed.
func (s *Session) shareDeflated(f *Frame) *Frame {
	if !s.compressible(f) {
		return f
	}
	z := f.deflated()
	if z == nil {
		return f
	}
	if t := f.trace.Load(); t != nil {
		z.trace.CompareAndSwap(nil, t)
	}
	z.Retain(1)
	f.Release()
	return z
}

// deflateOwn compresses, with the session's own compressor, the data
// frames of a batch the drainer is about to write, replacing each by a
// frame of its own. The caller holds stateRunning.
func (s *Session) deflateOwn(dz *deflate, frames []*Frame) {
	for i, f := range frames {
		if !s.compressible(f) {
			continue
		}
		z := compress(f.op, f.Payload(), &dz.z)
		if z == nil {
			continue
		}
		if t := f.trace.Load(); t != nil {
			z.trace.Store(t)
		}
		z.queued.Store(f.queued.Load())
		if b := s.cfg.OutboundBudget; b != nil {
			z.count(b)
		}
		s.queued.Add(int64(z.Len() - f.Len()))
		f.Release()
		frames[i] = z
	}
}
