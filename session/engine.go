package session

import (
	"context"
	"net"
	"time"

	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/wire"
)

// The runtime starts sessions through internal/engine, which keeps the
// machinery out of this package's API.
func init() { engine.Register(startEngine) }

// sessions is the engine of one Runtime: the scheduler its sessions share
// and their settings.
type sessions struct {
	sched *scheduler
	cfg   *settings
}

func startEngine(c config) engine.Engine[*Session, Handler] {
	return &sessions{
		sched: newScheduler(schedulerConfig{Workers: c.Workers, Tick: c.Tick, Sessions: c.Sessions, Pollers: c.Pollers}),
		cfg:   newSettings(c),
	}
}

func (e *sessions) New(u wire.Upgraded, h Handler) *Session { return newSession(u, h, e.sched, e.cfg) }
func (e *sessions) Serve(s *Session)                        { s.serve() }
func (e *sessions) EventLoop() bool                         { return e.sched.polling() }
func (e *sessions) Close()                                  { e.sched.Close() }

func (e *sessions) Listen(ctx context.Context, ln net.Listener, timeout time.Duration, blocking bool, hs func(engine.Handshake[*Session, Handler])) error {
	return e.sched.listen(ctx, e.cfg, ln, timeout, blocking, hs)
}
