package wire

import (
	"encoding/binary"
	"math/bits"
)

// Mask XORs b in place with the masking key, as RFC 6455 section 5.3 says,
// and returns the key position for the byte that follows b. pos is the key
// position of b[0] (0 to 3): masking a payload in pieces gives the same
// result as masking it whole when each call is given the position the one
// before returned.
//
// Mask works eight bytes at a time (32 per loop), or with SSE2 or AVX2 on
// amd64, and does not allocate.
func Mask(b []byte, key [4]byte, pos int) int {
	return maskWords(b, binary.LittleEndian.Uint32(key[:]), pos)
}

// maskImpl is one implementation of maskWords, for tests and benchmarks.
type maskImpl struct {
	name string
	fn   func(b []byte, key uint32, pos int) int
}

// maskGo is the portable implementation of maskWords: Mask with the key as
// a little-endian word.
func maskGo(b []byte, key uint32, pos int) int {
	end := (pos + len(b)) & 3
	if len(b) < 8 {
		for i := range b {
			b[i] ^= byte(key >> (8 * ((pos + i) & 3)))
		}
		return end
	}
	// Rotate the key so that its low byte lines up with b[0].
	k32 := bits.RotateLeft32(key, -8*(pos&3))
	k := uint64(k32)<<32 | uint64(k32)
	for len(b) >= 32 {
		v := b[:32:32]
		binary.LittleEndian.PutUint64(v[0:], binary.LittleEndian.Uint64(v[0:])^k)
		binary.LittleEndian.PutUint64(v[8:], binary.LittleEndian.Uint64(v[8:])^k)
		binary.LittleEndian.PutUint64(v[16:], binary.LittleEndian.Uint64(v[16:])^k)
		binary.LittleEndian.PutUint64(v[24:], binary.LittleEndian.Uint64(v[24:])^k)
		b = b[32:]
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(k >> (8 * i))
	}
	return end
}
