//go:build !linux

package session

import (
	"context"
	"net"
	"time"

	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/wire"
)

const pollSupported = false

// The event loop is Linux's (poll_linux.go, loop_linux.go): elsewhere no
// scheduler has pollers, and every session is on the goroutine transport.

type poller struct{}

type pollers struct{ ps []*poller }

func startPollers(sc *scheduler, n int) error { return errNoPoller }

func (pp *pollers) close() {}

func (pp *pollers) sweep(now int64) {}

func (sc *scheduler) listen(context.Context, *settings, net.Listener, time.Duration, bool, func(engine.Handshake[*Session, Handler])) error {
	return engine.ErrNoEventLoop
}

type loopConn struct{}

func (s *Session) takeOver(u wire.Upgraded) transport { return nil }
