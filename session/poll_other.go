//go:build !linux

package session

import (
	"github.com/shockwave-go/shockwave/wire"
)

const pollSupported = false

// The event loop is Linux's (poll_linux.go, loop_linux.go): elsewhere no
// scheduler has pollers, and every session is on the goroutine transport.

type poller struct{}

type pollers struct{ ps []*poller }

func startPollers(sc *scheduler, n int) error { return errNoPoller }

func (pp *pollers) close() {}

type loopConn struct{}

func (s *Session) takeOver(u wire.Upgraded) transport { return nil }
