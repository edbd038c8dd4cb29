//go:build linux && !amd64 && !arm64

package session

import (
	"syscall"
	"unsafe"
)

// recvRaw reads from a non-blocking socket with read: on these systems
// recvfrom may go through socketcall.
func recvRaw(fd int32, p []byte) (uintptr, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return n, e
}

// sendRaw writes ss.iov to a non-blocking socket with writev.
func (ss *sysScratch) sendRaw(fd int32) (uintptr, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&ss.iov[0])), uintptr(len(ss.iov)))
	return n, e
}
