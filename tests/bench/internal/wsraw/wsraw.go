// Package wsraw is the client side of the bench: the opening handshake as
// fixed bytes, pre-masked frames built once, and an incremental parser of
// server frames that never copies payloads. The load generator and the
// micro-benchmarks use it so that every server is driven by the same lean
// client, whatever library it runs.
package wsraw

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/shockwave-go/shockwave/wire"
)

// Key is the Sec-WebSocket-Key every bench client sends, and Accept the
// answer a server must give (RFC 6455 1.3).
const (
	Key    = "dGhlIHNhbXBsZSBub25jZQ=="
	Accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// MaskKey is the masking key of every frame the bench clients send. A
// fixed key lets one pre-masked frame be written by any number of
// connections; servers must not (and do not) rely on keys being random.
var MaskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// Request returns the opening handshake for ws://host/path.
func Request(host, path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + Key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n")
}

// ErrIncomplete reports a response whose header has not fully arrived.
var ErrIncomplete = errors.New("wsraw: incomplete handshake response")

// Response checks the server's handshake answer at the start of b. It
// returns the length of the HTTP header, after which frames begin, or
// ErrIncomplete if b does not hold all of it yet.
func Response(b []byte) (int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > 8<<10 {
			return 0, errors.New("wsraw: handshake response too long")
		}
		return 0, ErrIncomplete
	}
	head := b[:end+4]
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 101")) {
		return 0, fmt.Errorf("wsraw: handshake refused: %q", line)
	}
	if !bytes.Contains(head, []byte(Accept)) {
		return 0, errors.New("wsraw: handshake response lacks the right Sec-WebSocket-Accept")
	}
	return end + 4, nil
}

// AppendMessage appends a masked message of type op carrying payload,
// split into frames of at most frag payload bytes (one frame if frag <= 0).
func AppendMessage(dst []byte, op wire.Opcode, payload []byte, frag int) []byte {
	if frag <= 0 || len(payload) <= frag {
		return wire.AppendFrame(dst, wire.Header{Fin: true, Opcode: op, Masked: true, Key: MaskKey}, payload)
	}
	for first := true; len(payload) > 0; first = false {
		n := min(frag, len(payload))
		h := wire.Header{Fin: n == len(payload), Opcode: wire.OpContinuation, Masked: true, Key: MaskKey}
		if first {
			h.Opcode = op
		}
		dst = wire.AppendFrame(dst, h, payload[:n])
		payload = payload[n:]
	}
	return dst
}

// Pattern returns n bytes of payload that are valid UTF-8 (printable
// ASCII) and differ from one offset to the next, so that a misplaced byte
// in an echo is caught.
func Pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(' ' + (i*7+i/95)%95)
	}
	return p
}

// Chunk is a piece of a server frame returned by Parser.Next.
type Chunk struct {
	Op         wire.Opcode // the frame's opcode (OpContinuation for continuations)
	Fin        bool        // the frame's FIN bit
	Compressed bool        // the frame's RSV1 bit (Parser.Deflate)
	Start      bool        // the chunk starts the frame's payload
	End        bool        // the chunk ends the frame
	Data       []byte      // payload bytes, in b
}

// Parser splits the byte stream from a server into frames, returning
// payloads in place, chunk by chunk, as the bytes arrive. The zero value is
// ready.
type Parser struct {
	// Deflate allows RSV1, which permessage-deflate sets on the first
	// frame of a compressed message; Chunk.Compressed reports it. Which
	// frames may carry it is the caller's to check.
	Deflate bool

	hdr    [wire.MaxHeaderSize]byte // a header cut by the end of a read
	hdrN   int
	remain int64 // payload bytes of the current frame still to come
	inBody bool
	fresh  bool // no chunk of the current frame returned yet
	op     wire.Opcode
	fin    bool
	rsv1   bool
}

// Errors of Parser.
var (
	ErrMaskedFrame = errors.New("wsraw: server sent a masked frame")
	ErrReserved    = errors.New("wsraw: server set reserved bits")
)

// Next returns the next chunk at the start of b and how many bytes of b it
// took. ok is false when b holds no more chunk: a partial header at its
// end has been saved, and n covers it.
func (p *Parser) Next(b []byte) (c Chunk, n int, ok bool, err error) {
	if !p.inBody {
		var h wire.Header
		var hn int
		if p.hdrN > 0 {
			// Complete the saved header with the first bytes of b.
			var tmp [wire.MaxHeaderSize]byte
			k := copy(tmp[:], p.hdr[:p.hdrN])
			k += copy(tmp[k:], b)
			h, hn, err = wire.ParseHeader(tmp[:k])
			if err != nil {
				return c, 0, false, err
			}
			if hn == 0 {
				p.hdrN += copy(p.hdr[p.hdrN:], b)
				return c, len(b), false, nil
			}
			n = hn - p.hdrN
			p.hdrN = 0
		} else {
			h, hn, err = wire.ParseHeader(b)
			if err != nil {
				return c, 0, false, err
			}
			if hn == 0 {
				p.hdrN = copy(p.hdr[:], b)
				return c, len(b), false, nil
			}
			n = hn
		}
		if h.Masked {
			return c, 0, false, ErrMaskedFrame
		}
		if h.Rsv != 0 && (!p.Deflate || h.Rsv != wire.RSV1) {
			return c, 0, false, ErrReserved
		}
		p.op, p.fin, p.remain, p.inBody, p.fresh = h.Opcode, h.Fin, h.Length, true, true
		p.rsv1 = h.Rsv != 0
	}
	b = b[n:]
	if len(b) == 0 && p.remain > 0 {
		return c, n, false, nil
	}
	k := int(min(int64(len(b)), p.remain))
	p.remain -= int64(k)
	c.Op, c.Fin, c.Compressed, c.Start, c.Data = p.op, p.fin, p.rsv1, p.fresh, b[:k]
	p.fresh = false
	if p.remain == 0 {
		c.End = true
		p.inBody = false
	}
	return c, n + k, true, nil
}
