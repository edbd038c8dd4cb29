//go:build !amd64 || purego

package wire

// maskWords is Mask with the key as a little-endian word.
func maskWords(b []byte, key uint32, pos int) int { return maskGo(b, key, pos) }

// maskImpls lists the implementations of maskWords this machine can run.
func maskImpls() []maskImpl { return []maskImpl{{"go", maskGo}} }
