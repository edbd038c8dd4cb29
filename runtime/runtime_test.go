package runtime_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

func start(t testing.TB, h session.Handler, opts ...runtime.Option) (*runtime.Runtime, string) {
	t.Helper()
	rt, err := runtime.New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return rt, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t testing.TB, url string) *wire.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := wire.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

var echo = session.HandlerFunc(func(s *session.Session, m session.Message) error {
	return s.Send(m.Op, m.Data)
})

func TestEcho(t *testing.T) {
	_, url := start(t, echo)
	c := dial(t, url)
	for _, n := range []int{0, 10, 1000, 100_000} {
		p := []byte(strings.Repeat("x", n))
		if err := c.WriteMessage(wire.OpText, p); err != nil {
			t.Fatal(err)
		}
		op, got, err := c.ReadMessage()
		if err != nil || op != wire.OpText || string(got) != string(p) {
			t.Fatalf("n=%d: %v %d %v", n, op, len(got), err)
		}
	}
	c.Close(wire.StatusNormalClosure, "")
}

type roomHandler struct {
	session.NopHandler
	rt **runtime.Runtime
}

func (h roomHandler) OnOpen(s *session.Session) error {
	(*h.rt).Join("lobby", s)
	return nil
}

func (h roomHandler) OnMessage(s *session.Session, m session.Message) error {
	r, _ := (*h.rt).Room("lobby")
	r.Broadcast(m.Op, m.Data)
	return nil
}

func TestRoomBroadcast(t *testing.T) {
	var rtp *runtime.Runtime
	rt, url := start(t, roomHandler{rt: &rtp})
	rtp = rt
	const n = 20
	conns := make([]*wire.Conn, n)
	for i := range conns {
		conns[i] = dial(t, url)
	}
	waitFor(t, func() bool { r, ok := rt.Room("lobby"); return ok && r.Len() == n })
	if err := conns[0].WriteMessage(wire.OpText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		_, p, err := c.ReadMessage()
		if err != nil || string(p) != "hello" {
			t.Fatalf("conn %d: %q %v", i, p, err)
		}
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
