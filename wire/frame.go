package wire

import (
	"encoding/binary"
	"strconv"
)

// Opcode is the kind of a frame (RFC 6455 section 5.2).
type Opcode uint8

// The opcodes RFC 6455 defines. The others are reserved and fail the
// connection with StatusProtocolError when received.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// IsReserved reports whether op is one of the opcodes RFC 6455 reserves for
// future use (0x3-0x7 and 0xB-0xF).
func (op Opcode) IsReserved() bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return false
	}
	return true
}

func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode(" + strconv.Itoa(int(op)) + ")"
}

// The reserved bits of the first header byte.
const (
	RSV1 uint8 = 0x40
	RSV2 uint8 = 0x20
	RSV3 uint8 = 0x10
)

// MaxHeaderSize is the length of the longest frame header: 2 bytes, an
// 8-byte extended length and a 4-byte masking key.
const MaxHeaderSize = 14

// MaxControlPayload is the longest payload a control frame may carry.
const MaxControlPayload = 125

// Header is a parsed frame header (RFC 6455 section 5.2).
type Header struct {
	Fin    bool
	Rsv    uint8 // RSV1|RSV2|RSV3 bits, as they stand in the first byte
	Opcode Opcode
	Masked bool
	Key    [4]byte // masking key; meaningful only when Masked
	Length int64   // payload length
}

// Size returns the number of bytes h takes on the wire.
func (h *Header) Size() int {
	n := 2
	switch {
	case h.Length > 0xFFFF:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// ParseHeader parses the frame header at the start of b. It returns the
// header and its size in bytes; n is 0 (and err nil) while b is too short to
// hold the whole header. Only the framing itself is checked here (a 64-bit
// length must have its top bit clear); opcodes, reserved bits and masking are
// the reader's to judge, since what is allowed depends on the side and the
// extensions in use.
//
// ParseHeader does not allocate and does not look at the payload.
func ParseHeader(b []byte) (h Header, n int, err error) {
	n, err = parseHeader(b, &h)
	return h, n, err
}

// parseHeader is ParseHeader writing into h, which is several times faster
// on the reader's path than returning the struct.
func parseHeader(b []byte, h *Header) (int, error) {
	n, length := peekHeader(b)
	switch {
	case length < 0:
		return 0, ErrLengthOverflow
	case n == 0:
		return 0, nil
	}
	b0, masked := b[0], b[1]&0x80 != 0
	if masked {
		copy(h.Key[:], b[n-4:n])
	}
	h.Fin = b0&0x80 != 0
	h.Rsv = b0 & 0x70
	h.Opcode = Opcode(b0 & 0x0F)
	h.Masked = masked
	h.Length = length
	return n, nil
}

// peekHeader returns the size of the header at the start of b and the
// payload length it announces, or a size of 0 when the header is not whole
// yet. The length is negative when it does not fit an int64 (a 64-bit
// length with its top bit set: ErrLengthOverflow), as soon as its bytes
// are there.
func peekHeader(b []byte) (int, int64) {
	if len(b) < 2 {
		return 0, 0
	}
	n, length := 2, int64(b[1]&0x7F)
	switch length {
	case 126:
		if len(b) < 4 {
			return 0, 0
		}
		n, length = 4, int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if len(b) < 10 {
			return 0, 0
		}
		n, length = 10, int64(binary.BigEndian.Uint64(b[2:10]))
		if length < 0 {
			return 0, length
		}
	}
	if b[1]&0x80 != 0 {
		n += 4 // the masking key
	}
	if len(b) < n {
		return 0, 0
	}
	return n, length
}

// AppendHeader appends the wire form of h to dst, using the shortest length
// encoding. It does not allocate when dst has MaxHeaderSize bytes of spare
// capacity.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := byte(h.Opcode&0x0F) | h.Rsv&0x70
	if h.Fin {
		b0 |= 0x80
	}
	var m byte
	if h.Masked {
		m = 0x80
	}
	switch {
	case h.Length <= 125:
		dst = append(dst, b0, m|byte(h.Length))
	case h.Length <= 0xFFFF:
		dst = append(dst, b0, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Key[:]...)
	}
	return dst
}

// AppendFrame appends a whole frame with header h and the given payload to
// dst. h.Length is set from the payload. When h.Masked, the appended copy of
// the payload is masked with h.Key; payload itself is never modified.
func AppendFrame(dst []byte, h Header, payload []byte) []byte {
	h.Length = int64(len(payload))
	dst = AppendHeader(dst, h)
	start := len(dst)
	dst = append(dst, payload...)
	if h.Masked {
		Mask(dst[start:], h.Key, 0)
	}
	return dst
}
