//go:build amd64 && !purego

package wire

import "math/bits"

// maskAsmMin is the length from which maskWords hands over to assembly;
// below it the call and the vector setup cost as much as they save
// (measured on AMD Zen 5: the Go loop is as fast up to 96 bytes).
const maskAsmMin = 128

// useAVX2 selects the AVX2 loop. SSE2 is part of amd64 and always there.
var useAVX2 = hasAVX2()

// maskWords is Mask with the key as a little-endian word.
func maskWords(b []byte, key uint32, pos int) int {
	if len(b) < maskAsmMin {
		return maskGo(b, key, pos)
	}
	// Rotate the key so that its low byte lines up with b[0].
	k := bits.RotateLeft32(key, -8*(pos&3))
	if useAVX2 {
		maskAVX2(b, k)
	} else {
		maskSSE2(b, k)
	}
	return (pos + len(b)) & 3
}

// maskSSE2 XORs b with key repeated, key's low byte lining up with b[0].
//
//go:noescape
func maskSSE2(b []byte, key uint32)

// maskAVX2 is maskSSE2 with 32-byte vectors. The CPU must have AVX2.
//
//go:noescape
func maskAVX2(b []byte, key uint32)

// cpuid executes the CPUID instruction.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 returns XCR0, the register of the state the OS saves.
func xgetbv0() (eax, edx uint32)

// hasAVX2 reports whether the CPU has AVX2 and the OS saves the YMM
// registers.
func hasAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if ecx1&osxsave == 0 || ecx1&avx == 0 {
		return false
	}
	if xcr0, _ := xgetbv0(); xcr0&6 != 6 { // XMM and YMM state
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

func asmImpl(f func([]byte, uint32)) func([]byte, uint32, int) int {
	return func(b []byte, key uint32, pos int) int {
		f(b, bits.RotateLeft32(key, -8*(pos&3)))
		return (pos + len(b)) & 3
	}
}

// maskImpls lists the implementations of maskWords this machine can run.
func maskImpls() []maskImpl {
	impls := []maskImpl{{"go", maskGo}, {"sse2", asmImpl(maskSSE2)}}
	if useAVX2 {
		impls = append(impls, maskImpl{"avx2", asmImpl(maskAVX2)})
	}
	return impls
}
