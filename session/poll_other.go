//go:build !linux

package session

import (
	"net"

	"github.com/shockwave-go/shockwave/wire"
)

const pollSupported = false

// The event loop is Linux's; elsewhere these are never called.

type poller struct{}

type pollers struct{ ps []*poller }

func startPollers(sc *Scheduler, n int) error { return errNoPoller }

func (pp *pollers) pick() *poller { panic("unreachable") }

func (pp *pollers) close() {}

func (s *Session) takeOver(nc net.Conn) bool { return false }

func (s *Session) servePolled() { panic("unreachable") }
func (s *Session) shutdownFD()  { panic("unreachable") }
func (s *Session) releaseFD()   { panic("unreachable") }
func (s *Session) linger()      { wire.Linger(s.nc, s.cfg.CloseTimeout) }

func writable(fd int32) bool { panic("unreachable") }

type fdReader struct{ fd int32 }

func (fdReader) Read([]byte) (int, error) { panic("unreachable") }
