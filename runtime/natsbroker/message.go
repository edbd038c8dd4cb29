package natsbroker

import (
	"encoding/base64"
	"encoding/binary"
	"errors"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// The body of a message on a room's subject (format 1):
//
//	version  1 byte, 1
//	count    1 byte, the number of variants, 1 to runtime.MaxVariants
//	count times:
//	  key length   uvarint
//	  key          the subprotocol of the sessions that take the variant
//	  opcode       1 byte, wire.OpText (1) or wire.OpBinary (2)
//	  data length  uvarint
//	  data         the frame's payload
//
// and nothing after the last variant.
const formatVersion = 1

var (
	errFormat   = errors.New("natsbroker: not a message of a format this node reads")
	errVariants = errors.New("natsbroker: a message has 1 to runtime.MaxVariants variants")
	errOpcode   = errors.New("natsbroker: a variant's opcode is text or binary")
	errShort    = errors.New("natsbroker: a length past the end of the message")
	errTrailing = errors.New("natsbroker: bytes after the last variant")
)

// encodedLen returns the size of m's body, or an error if m cannot be
// encoded.
func encodedLen(m runtime.Carried) (int, error) {
	if len(m.Variants) < 1 || len(m.Variants) > runtime.MaxVariants {
		return 0, errVariants
	}
	n := 2
	for _, v := range m.Variants {
		if v.Op != wire.OpText && v.Op != wire.OpBinary {
			return 0, errOpcode
		}
		n += uvarintLen(len(v.Key)) + len(v.Key) + 1 + uvarintLen(len(v.Data)) + len(v.Data)
	}
	return n, nil
}

// appendMessage appends m's body to dst. m must have passed encodedLen.
func appendMessage(dst []byte, m runtime.Carried) []byte {
	dst = append(dst, formatVersion, byte(len(m.Variants)))
	for _, v := range m.Variants {
		dst = binary.AppendUvarint(dst, uint64(len(v.Key)))
		dst = append(dst, v.Key...)
		dst = append(dst, byte(v.Op))
		dst = binary.AppendUvarint(dst, uint64(len(v.Data)))
		dst = append(dst, v.Data...)
	}
	return dst
}

func uvarintLen(n int) int {
	l := 1
	for ; n >= 0x80; n >>= 7 {
		l++
	}
	return l
}

// decodeMessage decodes a body. The variants' Data are views of b; their
// Keys are copies. What it allocates is bounded by the bytes present (at
// most runtime.MaxVariants variants and their keys), whatever a length
// says; a length past the end is an error, never a panic.
func decodeMessage(b []byte) (runtime.Carried, error) {
	if len(b) < 2 || b[0] != formatVersion {
		return runtime.Carried{}, errFormat
	}
	n := int(b[1])
	if n < 1 || n > runtime.MaxVariants {
		return runtime.Carried{}, errVariants
	}
	rest := b[2:]
	vs := make([]runtime.Variant, n)
	for i := range vs {
		key, r, err := field(rest)
		if err != nil {
			return runtime.Carried{}, err
		}
		if len(r) == 0 {
			return runtime.Carried{}, errShort
		}
		op := wire.Opcode(r[0])
		if op != wire.OpText && op != wire.OpBinary {
			return runtime.Carried{}, errOpcode
		}
		data, r, err := field(r[1:])
		if err != nil {
			return runtime.Carried{}, err
		}
		vs[i] = runtime.Variant{Key: string(key), Op: op, Data: data}
		rest = r
	}
	if len(rest) != 0 {
		return runtime.Carried{}, errTrailing
	}
	return runtime.Carried{Variants: vs}, nil
}

// field splits a uvarint length and that many bytes off the front of b.
func field(b []byte) (f, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, errShort // truncated, or past 64 bits
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, errShort
	}
	return b[:n:n], b[n:], nil
}

// MaxRoomName is the longest room name, in bytes, that a Broker carries:
// its subject then stays well within a NATS server's control line (4 KiB
// by default), which a longer subject would overflow, costing the node
// its connection. The runtime's rooms are shorter by default
// (runtime.DefaultMaxRoomName, 256 bytes).
const MaxRoomName = 1024

// errRoomName is returned for a room name past MaxRoomName.
var errRoomName = errors.New("natsbroker: a room name is longer than MaxRoomName")

// Subject returns the subject of room's messages under prefix
// (Options.Prefix): prefix.r.<token>, with the token described in the
// package doc: what to give a tool that watches a room's traffic, such
// as the nats command's "nats sub".
func Subject(prefix, room string) string { return prefix + ".r." + token(room) }

// token returns the subject token of room: the name itself when it is
// a safe token (letters, digits, '-' and '_'), else '~' and the name in
// unpadded URL-safe base64. A safe name never starts with '~' and an
// encoded one always does, so no two rooms share a token.
func token(room string) string {
	if safe(room) {
		return room
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(room))
}

func safe(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
