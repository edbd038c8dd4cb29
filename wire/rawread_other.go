//go:build !unix

package wire

const rawReadSupported = false

func (rd *Reader) onReadable(fd uintptr) bool { panic("unreachable") }
