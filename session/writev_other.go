//go:build !linux

package session

import "syscall"

const rawWriteSupported = false

type sysScratch struct{}

func (ss *sysScratch) init() {}

func (sc *scratch) writev(raw syscall.RawConn, frames []*Frame, off int) (int, error) {
	panic("unreachable")
}

func (sc *scratch) writevFD(fd int32, frames []*Frame, off int) (int, error) {
	panic("unreachable")
}
