package engine

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

type (
	fakeSession struct {
		cfg Config[*fakeSession, uint8, int]
	}
	fakeEngine struct {
		cfg Config[*fakeSession, uint8, int]
	}
)

func (e *fakeEngine) New(wire.Upgraded, string) *fakeSession { return &fakeSession{cfg: e.cfg} }
func (e *fakeEngine) Serve(*fakeSession)                     {}
func (e *fakeEngine) EventLoop() bool                        { return false }
func (e *fakeEngine) Listen(context.Context, net.Listener, time.Duration, bool, func(Handshake[*fakeSession, string])) error {
	return ErrNoEventLoop
}
func (e *fakeEngine) Close() {}

// TestStart: Start reaches the registered engine with the config it is
// given, and one asked for other types fails loudly, naming them.
func TestStart(t *testing.T) {
	defer func(f any) { start = f }(start)
	Register(func(c Config[*fakeSession, uint8, int]) Engine[*fakeSession, string] { return &fakeEngine{cfg: c} })

	e := Start[*fakeSession, string](Config[*fakeSession, uint8, int]{MailboxSize: 7})
	if s := e.New(wire.Upgraded{}, "h"); s.cfg.MailboxSize != 7 {
		t.Fatalf("the session's config: %+v", s.cfg)
	}

	defer func() {
		if v, _ := recover().(string); !strings.Contains(v, "no engine registered") {
			t.Fatalf("Start with other types: recovered %q", v)
		}
	}()
	Start[*fakeSession, int](Config[*fakeSession, uint8, int]{})
}
