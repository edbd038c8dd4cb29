package wire

import (
	"bytes"
	"io"
	"math"
	"strconv"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/shockwave-go/shockwave/internal/bufpool"
)

// CompressionMode says whether a connection compresses its messages with
// permessage-deflate (RFC 7692), and how. It is a setting of Options.
type CompressionMode uint8

const (
	// CompressionDisabled offers and accepts no compression. It is the
	// default, for now: compression costs CPU on both sides and saves
	// bytes only on messages that resemble text.
	CompressionDisabled CompressionMode = iota

	// CompressionNoContextTakeover compresses each message on its own,
	// and has the peer do the same: the handshake asks for
	// server_no_context_takeover and client_no_context_takeover. A
	// connection keeps no compression state between messages: its
	// compressors and decompressors come from pools for the length of one
	// message, so an idle connection holds none. This is the mode whose
	// frames can be compressed once and sent to many connections (see
	// AppendCompressed).
	CompressionNoContextTakeover

	// CompressionContextTakeover lets each side compress a message
	// against the messages it sent before (RFC 7692's context takeover),
	// unless the peer asks otherwise: small messages that resemble each
	// other, as chat messages do, shrink a good deal more. It costs memory
	// for the connection's life: the sending side keeps its own
	// compressor, about 800 KiB with github.com/klauspost/compress/flate
	// at level 1 (measured by TestCompressionMemory), and the receiving
	// side a 32 KiB window of what it inflated.
	CompressionContextTakeover
)

func (m CompressionMode) String() string {
	switch m {
	case CompressionDisabled:
		return "disabled"
	case CompressionNoContextTakeover:
		return "no-context-takeover"
	case CompressionContextTakeover:
		return "context-takeover"
	}
	return "CompressionMode(" + strconv.Itoa(int(m)) + ")"
}

// DefaultCompressionThreshold is the length under which a message is sent
// uncompressed when compression is on: deflate saves little on short
// messages, and costs the same few microseconds of fixed overhead.
const DefaultCompressionThreshold = 512

// CompressionParams are the permessage-deflate parameters a handshake
// agreed on (RFC 7692 section 7.1). The zero value means no compression.
type CompressionParams struct {
	// Enabled reports that permessage-deflate was negotiated: messages
	// may come compressed, and go out compressed from
	// CompressionThreshold bytes.
	Enabled bool
	// ServerNoContextTakeover: the server compresses each message on
	// its own. ClientNoContextTakeover: the client does.
	ServerNoContextTakeover bool
	ClientNoContextTakeover bool
	// ServerMaxWindowBits is the base-2 logarithm of the largest LZ77
	// window the server compresses with, 8 to 15 (32 KiB, when the
	// handshake did not limit it). ClientMaxWindowBits likewise for the
	// client.
	ServerMaxWindowBits int
	ClientMaxWindowBits int
}

// AcceptsShared reports whether a server may send, on a connection with
// these parameters, frames compressed once for many connections by
// AppendCompressed: compression is on and the client takes the full
// 32 KiB window. The server must then compress nothing else on that
// connection with context takeover, since the client's window would hold
// messages its compressor never saw; a connection whose server side
// compresses without context takeover never does.
func (p CompressionParams) AcceptsShared() bool {
	return p.Enabled && p.ServerMaxWindowBits == 15
}

// sends returns how a side compresses what it sends: with context
// takeover or not, and its window.
func (p CompressionParams) sends(server bool, mode CompressionMode) (takeover bool, bits int) {
	if server {
		return mode == CompressionContextTakeover && !p.ServerNoContextTakeover, p.ServerMaxWindowBits
	}
	return mode == CompressionContextTakeover && !p.ClientNoContextTakeover, p.ClientMaxWindowBits
}

// peerTakeover reports whether the peer of a side may compress with
// context takeover, so that the side must keep a window of what it
// inflated.
func (p CompressionParams) peerTakeover(server bool) bool {
	if server {
		return !p.ClientNoContextTakeover
	}
	return !p.ServerNoContextTakeover
}

// AppendCompressed appends payload compressed as the body of one
// permessage-deflate message (RFC 7692 section 7.2.1: deflate without
// context takeover and with the full 32 KiB window, ended by a sync flush
// whose last four bytes, 00 00 ff ff, are taken off) and returns the
// extended slice. The frame that carries it has the header
//
//	Header{Fin: true, Rsv: RSV1, Opcode: op, Length: int64(len(body))}
//
// built with AppendHeader like any other, so a broadcast compresses a
// message once and sends the same frame to every connection whose
// CompressionParams.AcceptsShared. Compressing takes about 5 µs for 1 KiB
// of JSON and 200 µs for 64 KiB of text on one core of a shared EPYC
// (BenchmarkCompress).
//
// It does not allocate when dst has room for the result, which is never
// more than CompressBound(len(payload)) bytes: the compressor comes from
// a pool (of compressors of about 800 KiB each, which the garbage
// collector empties).
func AppendCompressed(dst, payload []byte) []byte { return appendAlone(dst, payload, 15) }

// appendAlone appends payload compressed on its own, with a pooled
// compressor of a 2^bits window.
func appendAlone(dst, payload []byte, bits int) []byte {
	c := getCompressor(bits)
	c.fw.Reset(c)
	dst = c.appendDeflate(dst, payload, true)
	putCompressor(c)
	return dst
}

// Compressor compresses the messages one side of a connection sends, each
// in one frame, as its handshake agreed (CompressionParams.Compressor).
// Without context takeover it holds no state: each message is compressed
// on its own by a pooled compressor, as AppendCompressed does, with the
// agreed window. With context takeover it compresses each message against
// those before: the peer must then get every message it compressed, in
// the order it compressed them, and nothing else compressed. Its own
// compressor, about 800 KiB, is made for the first message and kept.
//
// The zero value compresses on its own with the full window. A Compressor
// is not safe for concurrent use.
type Compressor struct {
	takeover bool
	bits     int         // 8 to 15; 0 for 15
	own      *compressor // with takeover, from the first message on
}

// Compressor returns the Compressor of what one side of a connection
// with parameters p sends: the server's when server is true, the
// client's otherwise, for that side's Options.Compression mode.
func (p CompressionParams) Compressor(server bool, mode CompressionMode) Compressor {
	takeover, bits := p.sends(server, mode)
	return Compressor{takeover: takeover, bits: bits}
}

// Takeover reports whether z compresses with context takeover.
func (z *Compressor) Takeover() bool { return z.takeover }

// Append appends payload compressed as the body of one message (see
// AppendCompressed) and returns the extended slice. It does not allocate
// when dst has room for CompressBound(len(payload)) bytes, but for a
// compressor with context takeover's first message.
func (z *Compressor) Append(dst, payload []byte) []byte {
	bits := z.bits
	if bits == 0 {
		bits = 15
	}
	if !z.takeover {
		return appendAlone(dst, payload, bits)
	}
	if z.own == nil {
		z.own = newCompressor(bits)
	}
	return z.own.appendDeflate(dst, payload, true)
}

// CompressBound returns the most bytes AppendCompressed, or a Conn's
// compressor, makes of n bytes: the compressor never writes a block longer
// than its stored form, which costs 5 bytes per 65,535, and the sync flush
// adds 5.
func CompressBound(n int) int { return n + 5*(n/65535+2) + 8 }

// compressor is a flate.Writer that appends what it writes to a slice.
type compressor struct {
	fw   *flate.Writer
	out  []byte
	bits int
}

func (c *compressor) Write(p []byte) (int, error) {
	c.out = append(c.out, p...)
	return len(p), nil
}

// compressors pools compressors by window size, bits 8 to 15. A pooled
// one holds the state of no message: Reset before use.
var compressors [8]sync.Pool

// newCompressor returns a compressor of a 2^bits window: level 1 (the
// fastest) for the full window, and klauspost's windowed encoder for the
// smaller ones, which deflate implementations rarely offer.
func newCompressor(bits int) *compressor {
	c := &compressor{bits: bits}
	if bits == 15 {
		c.fw, _ = flate.NewWriter(c, flate.BestSpeed)
	} else {
		c.fw, _ = flate.NewWriterWindow(c, 1<<bits)
	}
	return c
}

func getCompressor(bits int) *compressor {
	if v := compressors[bits-8].Get(); v != nil {
		return v.(*compressor)
	}
	return newCompressor(bits)
}

func putCompressor(c *compressor) {
	c.out = nil
	compressors[c.bits-8].Put(c)
}

// appendDeflate appends p compressed to dst, ending with a sync flush,
// whose 00 00 ff ff tail is taken off when final (the end of a message:
// RFC 7692 section 7.2.1). A message sent in fragments keeps the tail of
// the others, which ends their deflate blocks.
func (c *compressor) appendDeflate(dst, p []byte, final bool) []byte {
	c.out = dst
	c.fw.Write(p) // c.Write does not fail, nor then does fw
	c.fw.Flush()
	out := c.out
	c.out = nil
	if final {
		out = out[:len(out)-4]
	}
	return out
}

// deflateTail is appended to a compressed message before it is inflated:
// the 00 00 ff ff a sender takes off (RFC 7692 section 7.2.2), then an
// empty final stored block, so that the decompressor ends with io.EOF at
// the message's end instead of asking for more.
var deflateTail = [...]byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflater is a pooled decompressor, about 40 KiB with its own 32 KiB
// window, and the reader of its input, a *bytes.Reader for the
// decompressor's fast path.
type inflater struct {
	fr      io.ReadCloser // a flate.Resetter
	src     bytes.Reader
	scratch [1]byte
}

// inflatePrimer is a deflate stream of one empty final block with dynamic
// Huffman tables: a literal table of the end-of-block code alone, and a
// distance table of the codes for distances from 16,385 on. An inflater
// reads it before it goes back to the pool: klauspost/compress's
// decompressor (as of v1.20.4) keeps its Huffman tables across Reset, and
// a block that declares an empty table is decoded with the one before,
// from another connection's message, where compress/flate and zlib fail.
// Decoding this stream replaces them with tables of no one's data, which
// turn most such blocks into errors too; it costs about a microsecond.
var inflatePrimer = [...]byte{0x05, 0xdd, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x90, 0xff, 0x6b, 0x23, 0x00}

var inflaters sync.Pool

// getInflater returns a decompressor of in, which ends with deflateTail,
// that starts from the window dict (nil without context takeover).
func getInflater(in, dict []byte) *inflater {
	f, _ := inflaters.Get().(*inflater)
	if f == nil {
		f = &inflater{}
		f.src.Reset(in)
		f.fr = flate.NewReaderDict(&f.src, dict)
		return f
	}
	f.src.Reset(in)
	f.fr.(flate.Resetter).Reset(&f.src, dict)
	return f
}

func putInflater(f *inflater) {
	f.src.Reset(inflatePrimer[:])
	f.fr.(flate.Resetter).Reset(&f.src, nil)
	if _, err := f.fr.Read(f.scratch[:]); err != io.EOF {
		return // never happens; the inflater is dropped
	}
	f.src.Reset(nil)
	inflaters.Put(f)
}

// maxWindow is the LZ77 window of deflate: what a receiver keeps of the
// messages it inflated when the peer compresses with context takeover.
const maxWindow = 32 << 10

// slide appends p to the window w, keeping its last maxWindow bytes.
func slide(w, p []byte) []byte {
	if len(p) >= maxWindow {
		return append(w[:0], p[len(p)-maxWindow:]...)
	}
	if drop := len(w) + len(p) - maxWindow; drop > 0 {
		w = w[:copy(w, w[drop:])]
	}
	return append(w, p...)
}

// wireLimit bounds the bytes of the message in progress as they come:
// MaxMessageSize, and for a compressed message a little more, since
// deflate makes data it cannot compress longer by 5 bytes in 65,535 (and
// zlib by less than 1 in 2,048).
func (rd *Reader) wireLimit() int64 {
	if !rd.compressed {
		return rd.maxMsg
	}
	slack := rd.maxMsg>>11 + 64
	if rd.maxMsg > math.MaxInt64-slack {
		return math.MaxInt64
	}
	return rd.maxMsg + slack
}

// inflate inflates the compressed message in the assembly buffer into a
// new assembly buffer, which takes its place, and checks the text of a
// text message. An empty payload is an empty message.
func (rd *Reader) inflate(text bool) ([]byte, error) {
	rd.compressed = false
	n := len(*rd.msgp)
	if n == 0 {
		return *rd.msgp, nil
	}
	if err := rd.reserve(n, n+len(deflateTail)); err != nil {
		return nil, err
	}
	in := append(*rd.msgp, deflateTail[:]...)
	f := getInflater(in, rd.window)
	outp, err := rd.inflateTo(f.fr, n)
	putInflater(f)
	if err != nil {
		return nil, err
	}
	rd.putMsg()
	rd.msgp = outp
	out := *outp
	if text && !ValidUTF8(out) {
		return nil, ErrInvalidUTF8
	}
	if rd.takeover {
		if rd.window == nil {
			rd.window = make([]byte, 0, maxWindow)
		}
		rd.window = slide(rd.window, out)
	}
	return out, nil
}

// inflateTo reads what fr inflates from n compressed bytes into a buffer
// of its own, taken from the budget, and returns it. The buffer starts at
// four times the compressed size and grows by size class as the bytes
// come, up to MaxMessageSize exactly: when it is full at the limit, one
// more byte from fr fails with ErrMessageTooBig. So a compression bomb
// makes the Reader hold at most MaxMessageSize of output (and allocate,
// on the way there, a third more in the smaller classes, when the pools
// are empty). Invalid deflate data fails with ErrInvalidDeflate.
func (rd *Reader) inflateTo(fr io.Reader, n int) (*[]byte, error) {
	limit := min(rd.maxMsg, int64(math.MaxInt)) // a []byte's length is an int
	outp, err := rd.takeOut(int(min(limit, int64(n)*4)))
	if err != nil {
		return nil, err
	}
	out := (*outp)[:0]
	for {
		if len(out) == cap(out) {
			if int64(len(out)) >= limit {
				var one [1]byte
				k, err := fr.Read(one[:])
				switch {
				case k > 0:
					err = ErrMessageTooBig
				case err == io.EOF:
					*outp = out
					return outp, nil
				case err == nil:
					continue
				default:
					err = ErrInvalidDeflate
				}
				rd.giveOut(outp)
				return nil, err
			}
			np, err := rd.takeOut(int(min(limit, int64(cap(out))*4)))
			if err != nil {
				rd.giveOut(outp)
				return nil, err
			}
			out = append((*np)[:0], out...)
			rd.giveOut(outp)
			outp = np
		}
		k, err := fr.Read(out[len(out):cap(out)])
		out = out[:len(out)+k]
		if err == io.EOF {
			*outp = out
			return outp, nil
		}
		if err != nil {
			rd.giveOut(outp)
			return nil, ErrInvalidDeflate
		}
	}
}

// takeOut takes a buffer of capacity n or more from the budget: a pooled
// one of n's size class, or exactly n bytes when that class is larger than
// MaxMessageSize, so that the output never holds more than the limit.
func (rd *Reader) takeOut(n int) (*[]byte, error) {
	size := bufpool.Cap(n)
	if int64(size) > rd.maxMsg {
		size = n
	}
	if !rd.budget.take(int64(size)) {
		return nil, ErrBudgetExhausted
	}
	if size != bufpool.Cap(n) {
		b := make([]byte, 0, size) // not of a class: dropped when given back
		return &b, nil
	}
	return bufpool.Get(n), nil
}

// giveOut gives back a buffer of takeOut.
func (rd *Reader) giveOut(bp *[]byte) {
	rd.budget.Give(int64(cap(*bp)))
	bufpool.Put(bp)
}
