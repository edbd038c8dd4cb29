package wire

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// maskRef is the byte-by-byte masking of RFC 6455 section 5.3.
func maskRef(b []byte, key [4]byte, pos int) int {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

// TestMaskImpls checks every implementation of maskWords (the portable one
// and, on amd64, the SSE2 and AVX2 ones) against the byte-wise definition on
// every length from 0 to 300, every key position and every alignment, and
// that no byte outside the slice is touched.
func TestMaskImpls(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	kw := binary.LittleEndian.Uint32(key[:])
	rng := rand.New(rand.NewPCG(1, 2))
	const guard = 40
	src := make([]byte, 300+2*guard+8)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	impls := append(maskImpls(), maskImpl{"maskWords", maskWords})
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			got := make([]byte, len(src))
			want := make([]byte, len(src))
			for off := range 8 {
				for n := 0; n <= 300; n++ {
					for pos := range 4 {
						copy(got, src)
						copy(want, src)
						lo, hi := guard+off, guard+off+n
						wantEnd := maskRef(want[lo:hi], key, pos)
						end := impl.fn(got[lo:hi:hi], kw, pos)
						if end != wantEnd {
							t.Fatalf("off %d len %d pos %d: returned %d, want %d", off, n, pos, end, wantEnd)
						}
						if !bytes.Equal(got, want) {
							t.Fatalf("off %d len %d pos %d: wrong bytes", off, n, pos)
						}
					}
				}
			}
		})
	}
}

// TestMaskPieces checks that masking in pieces, passing on the returned
// position, equals masking whole, for every implementation and the exported
// Mask.
func TestMaskPieces(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	kw := binary.LittleEndian.Uint32(key[:])
	rng := rand.New(rand.NewPCG(3, 4))
	src := make([]byte, 5000)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	want := bytes.Clone(src)
	maskRef(want, key, 0)
	impls := append(maskImpls(), maskImpl{"Mask", func(b []byte, _ uint32, pos int) int { return Mask(b, key, pos) }})
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			for range 200 {
				got := bytes.Clone(src)
				pos := 0
				for b := got; len(b) > 0; {
					n := min(len(b), rng.IntN(300))
					pos = impl.fn(b[:n], kw, pos)
					b = b[n:]
				}
				if !bytes.Equal(got, want) {
					t.Fatal("masking in pieces differs from masking whole")
				}
			}
		})
	}
}

// TestMaskInvolution checks that masking twice restores the input.
func TestMaskInvolution(t *testing.T) {
	p := []byte("The quick brown fox jumps over the lazy dog, twice over, to be longer than sixty-four bytes.")
	orig := bytes.Clone(p)
	key := [4]byte{0xde, 0xad, 0xbe, 0xef}
	for pos := range 4 {
		Mask(p, key, pos)
		if bytes.Equal(p, orig) {
			t.Fatal("Mask changed nothing")
		}
		Mask(p, key, pos)
		if !bytes.Equal(p, orig) {
			t.Fatalf("pos %d: masking twice did not restore the input", pos)
		}
	}
}

// TestMaskRFCExample masks "Hello" with the key of RFC 6455 section 5.7.
func TestMaskRFCExample(t *testing.T) {
	p := []byte("Hello")
	if end := Mask(p, [4]byte{0x37, 0xfa, 0x21, 0x3d}, 0); end != 1 {
		t.Errorf("end = %d, want 1", end)
	}
	if want := []byte{0x7f, 0x9f, 0x4d, 0x51, 0x58}; !bytes.Equal(p, want) {
		t.Errorf("masked = % x, want % x", p, want)
	}
}

func TestMaskAllocs(t *testing.T) {
	b := make([]byte, 4096)
	key := [4]byte{1, 2, 3, 4}
	for _, n := range []int{7, 100, 4096} {
		if a := testing.AllocsPerRun(100, func() { Mask(b[:n], key, 1) }); a != 0 {
			t.Errorf("Mask of %d bytes: %v allocs, want 0", n, a)
		}
	}
}
