//go:build !linux

package session

import (
	"net"

	"github.com/shockwave-go/shockwave/wire"
)

const pollSupported = false

// The event loop is Linux's; elsewhere these are never called.

type poller struct{}

func (p *poller) watchWrite(s *Session, on bool) { panic("unreachable") }

type pollers struct{ ps []*poller }

func startPollers(sc *scheduler, n int) error { return errNoPoller }

func (pp *pollers) pick() *poller { panic("unreachable") }

func (pp *pollers) close() {}

func (s *Session) takeOver(nc net.Conn) bool { return false }

func (s *Session) servePolled()  { panic("unreachable") }
func (s *Session) resumePolled() { panic("unreachable") }
func (s *Session) shutdownFD()   { panic("unreachable") }
func (s *Session) releaseFD()    { panic("unreachable") }
func (s *Session) linger()       { wire.Linger(s.conn.Conn, s.cfg.CloseTimeout) }

type fdReader Session

func (*fdReader) Read([]byte) (int, error) { panic("unreachable") }
