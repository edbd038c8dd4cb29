//go:build unix

package wire

import (
	"syscall"

	"github.com/shockwave-go/shockwave/internal/bufpool"
)

const rawReadSupported = true

// onReadable is called by the runtime poller with the socket's descriptor.
// It reads into rd.raw.dst, or into the read buffer, which it borrows only for
// the read: when the socket has nothing to give, before the goroutine
// parks, the buffer goes back to its pool if it holds no unread bytes, or
// is traded for a small one if it holds a few (see shrinkBuf).
func (rd *Reader) onReadable(fd uintptr) bool {
	dst := rd.raw.dst
	if dst == nil {
		if rd.bufp == nil {
			rd.bufp = bufpool.Get(rd.bufSize)
		} else if rd.w == len(*rd.bufp) && rd.w < rd.bufSize {
			rd.moveBuf(rd.bufSize) // shrunk while waiting, and full: bytes are coming
		}
		dst = (*rd.bufp)[rd.w:]
	}
	for {
		n, err := syscall.Read(int(fd), dst)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			// The goroutine is about to park. When reading into the
			// assembly buffer, the read buffer is empty: it goes back too.
			rd.shrinkBuf()
			return false
		}
		rd.raw.n, rd.raw.err = max(n, 0), err
		return true
	}
}
