package runtime_test

import (
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// TestSessionLimits checks that the Runtime's options reach its sessions,
// on both transports: each limit acts, with its close code, and is
// counted. session's own tests cover how each works.
func TestSessionLimits(t *testing.T) { eachTransport(t, testSessionLimits) }

func testSessionLimits(t *testing.T) {
	echo := session.HandlerFunc(func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) })
	t.Run("inbound memory", func(t *testing.T) {
		rt, url := start(t, echo, runtime.WithMemoryBudget(64<<10, -1))
		c := dial(t, url)
		wantEcho(t, c, "small")
		if err := c.WriteMessage(wire.OpBinary, make([]byte, 100_000)); err != nil {
			t.Fatal(err)
		}
		wantClose(t, readUntilError(c), wire.StatusTryAgainLater, "*")
		if n := rt.Counters().InboundBudget.Load(); n != 1 {
			t.Fatalf("Counters().InboundBudget = %d", n)
		}
		waitFor(t, func() bool { in, _ := rt.MemoryInUse(); return in == 0 })
	})
	t.Run("message rate", func(t *testing.T) {
		rt, url := start(t, echo, runtime.WithMessageRate(100, 5), runtime.WithTick(5*time.Millisecond))
		c := dial(t, url)
		for range 20 {
			if err := c.WriteMessage(wire.OpText, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		c.NetConn().SetReadDeadline(time.Now().Add(bound))
		for i := range 20 {
			if _, p, err := c.ReadMessage(); err != nil || string(p) != "x" {
				t.Fatalf("echo %d: %q %v", i, p, err)
			}
		}
		if rt.Counters().Throttled.Load() == 0 {
			t.Fatal("Counters().Throttled = 0")
		}
	})
	t.Run("message timeout", func(t *testing.T) {
		rt, url := start(t, echo, runtime.WithMessageTimeout(50*time.Millisecond), runtime.WithTick(5*time.Millisecond))
		c := dial(t, url)
		// A frame begun and never finished.
		if err := c.WriteFrame(wire.OpBinary, false, []byte("begun")); err != nil {
			t.Fatal(err)
		}
		wantClose(t, readUntilError(c), wire.StatusPolicyViolation, "message timeout")
		if n := rt.Counters().MessageTimeouts.Load(); n != 1 {
			t.Fatalf("Counters().MessageTimeouts = %d", n)
		}
	})
}
