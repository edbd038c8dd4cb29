package session_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// burst writes n masked text frames "m0".."m<n-1>" to c in one write, so
// that the server reads them together.
func burst(t *testing.T, c *wire.Conn, n int) {
	t.Helper()
	var b []byte
	for i := range n {
		b = wire.AppendFrame(b, wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Key: [4]byte{1, 2, 3, 4}},
			[]byte(fmt.Sprintf("m%d", i)))
	}
	if _, err := c.NetConn().Write(b); err != nil {
		t.Fatal(err)
	}
}

// dialCork serves h with opts on a runtime and dials it.
func dialCork(t *testing.T, h session.Handler, opts ...runtime.Option) *wire.Conn {
	t.Helper()
	rt, err := runtime.New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { rt.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := wire.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.NetConn().SetDeadline(time.Now().Add(30 * time.Second)) // a hang fails, not stalls
	return c
}

// TestCorkBurstOverMailbox checks that the cork never holds more than the
// mailbox takes: a burst of many more messages than the mailbox holds is
// echoed whole, not closed as a slow consumer.
func TestCorkBurstOverMailbox(t *testing.T) {
	echo := session.HandlerFunc(func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) })
	c := dialCork(t, echo, runtime.WithMailbox(16, 1<<20, session.PolicyClose))
	const n = 2000
	burst(t, c, n)
	for i := range n {
		_, p, err := c.ReadMessage()
		if err != nil || string(p) != fmt.Sprintf("m%d", i) {
			t.Fatalf("echo %d: %q %v", i, p, err)
		}
	}
}

// TestCorkClose checks that a Close called while the reader corks is
// written even though the messages after it are discarded.
func TestCorkClose(t *testing.T) {
	closer := session.HandlerFunc(func(s *session.Session, m session.Message) error {
		s.Send(m.Op, m.Data)
		s.Close(wire.StatusNormalClosure, "bye")
		return nil
	})
	c := dialCork(t, closer)
	burst(t, c, 5)
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "m0" {
		t.Fatalf("echo: %q %v", p, err)
	}
	_, _, err := c.ReadMessage()
	if code := wire.CodeOf(err); code != wire.StatusNormalClosure {
		t.Fatalf("after the echo: %v (code %d), want the close frame 1000", err, code)
	}
}
