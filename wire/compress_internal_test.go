package wire

import (
	"math/rand/v2"
	"testing"
)

// TestCompressBound: what the compressors make of data that does not
// compress, of every window, stays within CompressBound, so that the
// pooled buffer Conn compresses into never grows.
func TestCompressBound(t *testing.T) {
	rng := rand.NewChaCha8([32]byte{1})
	for bits := 8; bits <= 15; bits++ {
		c := newCompressor(bits)
		for _, n := range []int{0, 1, 100, 65535, 65536, 200_000} {
			p := make([]byte, n)
			rng.Read(p)
			for _, final := range []bool{true, false} {
				c.fw.Reset(c)
				if z := c.appendDeflate(nil, p, final); len(z) > CompressBound(n) {
					t.Errorf("window %d, %d bytes: %d compressed, bound %d", bits, n, len(z), CompressBound(n))
				}
			}
		}
	}
}
