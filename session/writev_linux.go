package session

import (
	"syscall"
	"unsafe"
)

const rawWriteSupported = true

// sysScratch holds the iovecs of one vectored write.
type sysScratch struct {
	iov []syscall.Iovec
	msg syscall.Msghdr        // the event loop's sendmsg
	fn  func(fd uintptr) bool // writeFD, bound once
	n   int
	err error
}

func (ss *sysScratch) init() {
	ss.iov = make([]syscall.Iovec, 0, 2*maxBatch)
	ss.fn = ss.writeFD
}

// writev writes frames, from byte off of the first, with one writev(2)
// that never waits: on EAGAIN it reports 0 bytes written. It does not
// allocate.
func (sc *scratch) writev(raw syscall.RawConn, frames []*Frame, off int) (int, error) {
	ss := &sc.sys
	ss.prepare(frames, off)
	if err := raw.Write(ss.fn); err != nil {
		return 0, err
	}
	clear(ss.iov) // drop the pointers into frames
	return ss.n, ss.err
}

// writevFD is writev on a descriptor of the event loop, from byte off of
// the first frame.
func (sc *scratch) writevFD(fd int32, frames []*Frame, off int) (int, error) {
	ss := &sc.sys
	ss.prepare(frames, off)
	for {
		// A raw system call: the socket never blocks, so the goroutine
		// need not let go of its P (and the runtime's monitor thread, which
		// takes the P of a system call it sees twice, has nothing to take:
		// on a busy event loop that cost thousands of thread switches a
		// second).
		n, e := ss.sendRaw(fd)
		if ss.setResult(n, e) {
			break
		}
	}
	clear(ss.iov)
	ss.msg = syscall.Msghdr{}
	return ss.n, ss.err
}

// prepare makes the iovecs of frames, skipping off bytes of the first.
func (ss *sysScratch) prepare(frames []*Frame, off int) {
	ss.iov = ss.iov[:0]
	for _, f := range frames {
		a, b := f.parts(off)
		ss.iov = appendIovec(ss.iov, a)
		ss.iov = appendIovec(ss.iov, b)
		off = 0
	}
	ss.n, ss.err = 0, nil
}

func (ss *sysScratch) writeFD(fd uintptr) bool {
	for {
		n, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&ss.iov[0])), uintptr(len(ss.iov)))
		if ss.setResult(n, e) {
			return true // never wait for writability here
		}
	}
}

// setResult records the outcome of a writev: EAGAIN is 0 bytes written. It
// reports false for EINTR, when the call is to be made again.
func (ss *sysScratch) setResult(n uintptr, e syscall.Errno) bool {
	switch e {
	case 0:
		ss.n = int(n)
	case syscall.EINTR:
		return false
	case syscall.EAGAIN:
	default:
		ss.err = e
	}
	return true
}

func appendIovec(iov []syscall.Iovec, b []byte) []syscall.Iovec {
	if len(b) == 0 {
		return iov
	}
	v := syscall.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return append(iov, v)
}
