package load

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/shockwave-go/shockwave/tests/bench/internal/wsraw"
	"github.com/shockwave-go/shockwave/wire"
)

// What the engine does with compressed messages (Config.Deflate), and the
// stamp of room messages in whatever form the payload takes.
//
// Every compressed message is checked, but few are inflated: a server
// compresses without context takeover (wsraw.DeflateOffer), so the same
// payload comes compressed to the same bytes, whether the server
// compressed a broadcast once for all members or each copy anew. The
// first message with a given body is inflated and compared with what was
// sent; a message whose body is byte for byte one checked before is as
// good, and carries the same stamp. That keeps the generator's CPU per
// message near what it is without compression.

// zcache holds the compressed bodies checked lately, with their stamps.
type zcache struct {
	seed  maphash.Seed
	m     map[uint64]int
	ents  []zentry
	next  int
	inf   wsraw.Inflater
	out   []byte // inflated payload
	stats struct{ compressed, inflated int64 }
}

type zentry struct {
	hash  uint64
	body  []byte
	stamp [2 * metaLen]byte
	used  bool
}

func (z *zcache) init(n int) {
	z.seed = maphash.MakeSeed()
	z.m = make(map[uint64]int, n)
	z.ents = make([]zentry, n)
}

// compressedChunk takes a piece of a compressed message received by c;
// once it has the whole body, it checks it.
func (e *engine) compressedChunk(c *conn, ch wsraw.Chunk) {
	body := ch.Data
	if !(ch.Start && ch.End && ch.Fin && ch.Op != wire.OpContinuation) { // not the whole message in place
		if len(c.zbuf)+len(body) > 2*len(e.expect)+1024 {
			e.fail(c, fmt.Errorf("compressed message longer than %d bytes", 2*len(e.expect)+1024))
			return
		}
		c.zbuf = append(c.zbuf, body...)
		if !ch.End || !ch.Fin {
			return
		}
		body = c.zbuf
	}
	if err := e.inflated(c, body); err != nil {
		e.fail(c, err)
		return
	}
	c.zbuf = c.zbuf[:0]
	c.inMsg = false
	e.message(c)
}

// inflated checks the compressed body of a whole message received by c,
// and leaves its stamp in c.stamp.
func (e *engine) inflated(c *conn, body []byte) error {
	z := &e.z
	z.stats.compressed++
	h := maphash.Bytes(z.seed, body)
	if i, ok := z.m[h]; ok && bytes.Equal(z.ents[i].body, body) {
		c.stamp = z.ents[i].stamp
		return nil
	}
	z.stats.inflated++
	var err error
	z.out, err = z.inf.Inflate(z.out[:0], body, len(e.expect))
	switch {
	case errors.Is(err, wsraw.ErrTooLong):
		return fmt.Errorf("message longer than the %d bytes sent, inflated", len(e.expect))
	case err != nil:
		return err
	case len(z.out) != len(e.expect):
		return fmt.Errorf("message of %d bytes inflated, want %d", len(z.out), len(e.expect))
	case !e.check(c.stamp[:], 0, z.out):
		return errors.New("inflated bytes differ from those sent")
	}
	// Remember it in place of the oldest.
	ent := &z.ents[z.next]
	if ent.used && z.m[ent.hash] == z.next {
		delete(z.m, ent.hash)
	}
	ent.hash, ent.body, ent.stamp, ent.used = h, append(ent.body[:0], body...), c.stamp, true
	z.m[h] = z.next
	z.next = (z.next + 1) % len(z.ents)
	return nil
}

// check reports whether d, payload bytes from offset off of a message, are
// those sent, but for the stamp of a room message, which it copies to
// stamp.
func (e *engine) check(stamp []byte, off int, d []byte) bool {
	if lo, hi := e.stampOff, e.stampOff+e.stampLen; off < hi && off+len(d) > lo {
		if off < lo {
			if !bytes.Equal(d[:lo-off], e.expect[off:lo]) {
				return false
			}
			d, off = d[lo-off:], lo
		}
		k := copy(stamp[off-lo:hi-lo], d)
		d, off = d[k:], off+k
	}
	return bytes.Equal(d, e.expect[off:off+len(d)])
}

// putStamp writes meta to p as the payload carries it: as it is, or in
// hexadecimal in text messages.
func (e *engine) putStamp(p []byte, meta *[metaLen]byte) {
	if e.stampLen == metaLen {
		copy(p, meta[:])
		return
	}
	hex.Encode(p, meta[:])
}

// getStamp reads the stamp p of a received message into meta; it reports
// false if it is not hexadecimal where it should be.
func (e *engine) getStamp(meta *[metaLen]byte, p []byte) bool {
	if e.stampLen == metaLen {
		copy(meta[:], p)
		return true
	}
	_, err := hex.Decode(meta[:], p)
	return err == nil
}
