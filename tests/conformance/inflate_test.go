package conformance

import (
	"errors"
	"fmt"
)

// inflater inflates the server's compressed messages (RFC 1951), checking
// what a decompressor of the client's standard library would not: that no
// distance reaches further back than the server's LZ77 window of
// 2^server_max_window_bits bytes (RFC 7692 section 7.1.2.1), nor into the
// messages before when the server agreed to server_no_context_takeover,
// nor into messages it sent uncompressed. It is an implementation of its
// own, not the server's klauspost/compress, so the two do not share bugs.
type inflater struct {
	window   int    // the farthest a distance may reach
	takeover bool   // the server compresses against the messages before
	hist     []byte // with takeover, the last window bytes of the compressed messages before
}

// errWindow is a distance beyond the server's window or its history.
var errWindow = errors.New("distance beyond the window")

// inflate inflates the payload of one compressed message: the 00 00 ff ff
// that the sender took off is put back (RFC 7692 section 7.2.2), and the
// blocks are decoded until the input ends on a block boundary or a block
// has BFINAL set (section 7.2.3.3).
func (f *inflater) inflate(p []byte) ([]byte, error) {
	in := make([]byte, 0, len(p)+4)
	in = append(append(in, p...), 0x00, 0x00, 0xff, 0xff)
	base := 0
	var out []byte
	if f.takeover {
		out = append(out, f.hist...)
		base = len(f.hist)
	}
	d := decoder{in: in, out: out, base: base, window: f.window}
	if err := d.run(); err != nil {
		return nil, err
	}
	msg := d.out[base:]
	if f.takeover {
		keep := min(len(d.out), f.window)
		f.hist = append(f.hist[:0], d.out[len(d.out)-keep:]...)
	}
	return msg, nil
}

// decoder is the state of one inflate: the input and its bit buffer, and
// the output, whose first base bytes are the history of the messages
// before.
type decoder struct {
	in     []byte
	pos    int    // next byte of in to load
	bits   uint64 // loaded bits, least significant first
	nbits  uint
	out    []byte
	base   int
	window int
}

var errTruncated = errors.New("truncated deflate data")

// need loads bits until n are there, or fails at the input's end.
func (d *decoder) need(n uint) error {
	for d.nbits < n {
		if d.pos == len(d.in) {
			return errTruncated
		}
		d.bits |= uint64(d.in[d.pos]) << d.nbits
		d.pos++
		d.nbits += 8
	}
	return nil
}

// fill loads as many whole bytes as fit, without failing at the end.
func (d *decoder) fill() {
	for d.nbits <= 56 && d.pos < len(d.in) {
		d.bits |= uint64(d.in[d.pos]) << d.nbits
		d.pos++
		d.nbits += 8
	}
}

func (d *decoder) take(n uint) (uint32, error) {
	if err := d.need(n); err != nil {
		return 0, err
	}
	v := uint32(d.bits & (1<<n - 1))
	d.bits >>= n
	d.nbits -= n
	return v, nil
}

// atEnd reports that the input is used up but for the bits that pad the
// last byte.
func (d *decoder) atEnd() bool { return d.pos == len(d.in) && d.nbits < 8 }

func (d *decoder) run() error {
	for {
		if d.atEnd() {
			return nil // the appended empty stored block ended the last block
		}
		hdr, err := d.take(3)
		if err != nil {
			return err
		}
		switch hdr >> 1 {
		case 0:
			err = d.stored()
		case 1:
			err = d.codes(&fixedLit, &fixedDist)
		case 2:
			var lit, dist huffman
			if err = d.dynamic(&lit, &dist); err == nil {
				err = d.codes(&lit, &dist)
			}
		default:
			err = errors.New("deflate block of the reserved type 3")
		}
		if err != nil {
			return err
		}
		if hdr&1 != 0 {
			return nil // BFINAL: what follows (our 00 00 ff ff) is not deflate data
		}
	}
}

func (d *decoder) stored() error {
	d.bits >>= d.nbits % 8 // to the byte boundary
	d.nbits -= d.nbits % 8
	v, err := d.take(32)
	if err != nil {
		return err
	}
	n, nn := v&0xffff, v>>16
	if n != ^nn&0xffff {
		return fmt.Errorf("stored block length %#x with complement %#x", n, nn)
	}
	for ; n > 0 && d.nbits > 0; n-- { // bytes already in the bit buffer
		b, _ := d.take(8)
		d.out = append(d.out, byte(b))
	}
	if int(n) > len(d.in)-d.pos {
		return errTruncated
	}
	d.out = append(d.out, d.in[d.pos:d.pos+int(n)]...)
	d.pos += int(n)
	return nil
}

// huffman is a canonical Huffman code: a table of the codes of up to
// fastBits bits, indexed by the next fastBits input bits, and the counts
// and symbols of puff.c's decoding for the longer ones.
type huffman struct {
	fast   [1 << fastBits]uint16 // symbol<<4 | length, 0 when longer
	count  [16]uint16            // codes of each length
	symbol [288]uint16           // symbols in canonical order
}

const fastBits = 9

// build makes the code of the code lengths; incomplete codes are allowed
// (the distance code of a block with one distance, or none).
func (h *huffman) build(lengths []uint8) error {
	*h = huffman{}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return errors.New("over-subscribed Huffman code")
		}
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	// The fast table: walk the codes in canonical order.
	code, idx := 0, 0
	for l := 1; l <= fastBits; l++ {
		for range h.count[l] {
			rev := reverse(code, l)
			for j := rev; j < 1<<fastBits; j += 1 << l {
				h.fast[j] = h.symbol[idx]<<4 | uint16(l)
			}
			code++
			idx++
		}
		code <<= 1
	}
	return nil
}

func reverse(code, n int) int {
	r := 0
	for range n {
		r = r<<1 | code&1
		code >>= 1
	}
	return r
}

// decode reads one symbol.
func (d *decoder) decode(h *huffman) (int, error) {
	if d.nbits < 15 {
		d.fill()
	}
	if e := h.fast[d.bits&(1<<fastBits-1)]; e != 0 && uint(e&15) <= d.nbits {
		d.bits >>= e & 15
		d.nbits -= uint(e & 15)
		return int(e >> 4), nil
	}
	// puff.c's decode, one bit at a time from the peeked bits.
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		if uint(l) > d.nbits {
			return 0, errTruncated
		}
		code |= int(d.bits>>(l-1)) & 1
		count := int(h.count[l])
		if code-first < count {
			d.bits >>= l
			d.nbits -= uint(l)
			return int(h.symbol[index+code-first]), nil
		}
		index += count
		first = (first + count) << 1
		code <<= 1
	}
	return 0, errors.New("invalid Huffman code")
}

var lenBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
var lenExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
var distBase = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
var distExtra = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}

var fixedLit, fixedDist huffman

func init() {
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.build(l[:])
	var dl [30]uint8
	for i := range dl {
		dl[i] = 5
	}
	fixedDist.build(dl[:])
}

// codes decodes the symbols of a compressed block.
func (d *decoder) codes(lit, dist *huffman) error {
	for {
		sym, err := d.decode(lit)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			d.out = append(d.out, byte(sym))
			continue
		case sym == 256:
			return nil
		case sym > 285:
			return fmt.Errorf("invalid length symbol %d", sym)
		}
		sym -= 257
		e, err := d.take(uint(lenExtra[sym]))
		if err != nil {
			return err
		}
		n := int(lenBase[sym]) + int(e)
		ds, err := d.decode(dist)
		if err != nil {
			return err
		}
		if ds > 29 {
			return fmt.Errorf("invalid distance symbol %d", ds)
		}
		e, err = d.take(uint(distExtra[ds]))
		if err != nil {
			return err
		}
		dd := int(distBase[ds]) + int(e)
		switch {
		case dd > d.window:
			return fmt.Errorf("%w: %d bytes back, the window has %d", errWindow, dd, d.window)
		case dd > len(d.out):
			what := "the message"
			if d.base > 0 {
				what = "the message and the window of those before"
			}
			return fmt.Errorf("%w: %d bytes back, %s had %d", errWindow, dd, what, len(d.out))
		}
		for i := len(d.out) - dd; n > 0; n-- {
			d.out = append(d.out, d.out[i])
			i++
		}
	}
}

// dynamic reads the code lengths of a block with dynamic Huffman codes.
func (d *decoder) dynamic(lit, dist *huffman) error {
	v, err := d.take(14)
	if err != nil {
		return err
	}
	nlen, ndist, ncode := int(v&31)+257, int(v>>5&31)+1, int(v>>10)+4
	if nlen > 286 || ndist > 30 {
		return errors.New("too many length or distance codes")
	}
	order := [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	var cl [19]uint8
	for i := range ncode {
		v, err := d.take(3)
		if err != nil {
			return err
		}
		cl[order[i]] = uint8(v)
	}
	var lencode huffman
	if err := lencode.build(cl[:]); err != nil {
		return err
	}
	lengths := make([]uint8, nlen+ndist)
	for i := 0; i < len(lengths); {
		sym, err := d.decode(&lencode)
		if err != nil {
			return err
		}
		if sym < 16 {
			lengths[i] = uint8(sym)
			i++
			continue
		}
		var rep uint8
		var n uint32
		switch sym {
		case 16:
			if i == 0 {
				return errors.New("repeat with no length before")
			}
			rep = lengths[i-1]
			n, err = d.take(2)
			n += 3
		case 17:
			n, err = d.take(3)
			n += 3
		default:
			n, err = d.take(7)
			n += 11
		}
		if err != nil {
			return err
		}
		if i+int(n) > len(lengths) {
			return errors.New("code lengths repeated past their count")
		}
		for ; n > 0; n-- {
			lengths[i] = rep
			i++
		}
	}
	if lengths[256] == 0 {
		return errors.New("no end-of-block code")
	}
	if err := lit.build(lengths[:nlen]); err != nil {
		return err
	}
	return dist.build(lengths[nlen:])
}
