package runtime_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// transports are those the tests run on, each test as a subtest per
// transport: the event loop (the default, where there is one) and a
// goroutine per session, both behind net/http (ServeHTTP); and the event
// loop serving the listener itself (Serve).
var transports = []struct {
	name string
	t    runtime.Transport
}{
	{"eventloop", runtime.TransportAuto},
	{"goroutine", runtime.TransportGoroutine},
	{"listener", runtime.TransportAuto},
}

// eachTransport runs test once per transport.
func eachTransport(t *testing.T, test func(t *testing.T)) {
	for _, tr := range transports {
		t.Run(tr.name, test)
	}
}

// transportOf returns the transport of the subtest t runs in.
func transportOf(t testing.TB) runtime.Transport {
	for _, tr := range transports {
		if strings.Contains(t.Name()+"/", "/"+tr.name+"/") {
			return tr.t
		}
	}
	return runtime.TransportAuto
}

// start serves h on a runtime of t's transport, shut down when t ends.
func start(t testing.TB, h session.Handler, opts ...runtime.Option) (*runtime.Runtime, string) {
	t.Helper()
	rt, err := runtime.New(h, append([]runtime.Option{runtime.WithTransport(transportOf(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if servesListener(t) {
		return rt, serve(t, rt)
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

func TestEcho(t *testing.T) { eachTransport(t, testEcho) }

func testEcho(t *testing.T) {
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

// roomHandler joins every session to the lobby and broadcasts what it
// sends there. The Runtime comes through rtRef: a session may open before
// the test's goroutine has it in hand, with nothing in between that the
// race detector can see (Serve's event loop reads sockets with raw system
// calls, which carry no happens-before edge, unlike net's).
type roomHandler struct {
	session.NopHandler
	rt *rtRef
}

func (h roomHandler) OnOpen(s *session.Session) error {
	h.rt.get().Join("lobby", s)
	return nil
}

func (h roomHandler) OnMessage(s *session.Session, m session.Message) error {
	r, _ := h.rt.get().Room("lobby")
	r.Broadcast(m.Op, m.Data)
	return nil
}

func TestRoomBroadcast(t *testing.T) { eachTransport(t, testRoomBroadcast) }

func testRoomBroadcast(t *testing.T) {
	var ref rtRef
	rt, url := start(t, roomHandler{rt: &ref})
	ref.p.Store(rt)
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

// TestEventLoopTurns checks the event loop's turns on one poller: echo of
// every size, a fragmented message longer than one turn, and a session
// whose callback blocks, which must not hold up the other sessions of its
// poller (the watchdog gives the poller a new goroutine).
func TestEventLoopTurns(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	h := session.HandlerFunc(func(s *session.Session, m session.Message) error {
		if string(m.Data) == "block" {
			<-release
		}
		return s.Send(m.Op, m.Data)
	})
	_, url := start(t, h, runtime.WithTransport(runtime.TransportAuto), runtime.WithPollers(1))
	a, b := dial(t, url), dial(t, url)
	for _, n := range []int{0, 10, 1000, 100_000, 1 << 20} {
		p := []byte(strings.Repeat("y", n))
		if err := a.WriteMessage(wire.OpBinary, p); err != nil {
			t.Fatal(err)
		}
		if _, got, err := a.ReadMessage(); err != nil || string(got) != string(p) {
			t.Fatalf("n=%d: %d bytes, %v", n, len(got), err)
		}
	}
	for i := range 200 { // more than one turn of 64 messages
		op := wire.OpContinuation
		if i == 0 {
			op = wire.OpText
		}
		if err := a.WriteFrame(op, i == 199, []byte{'a' + byte(i%26)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, got, err := a.ReadMessage(); err != nil || len(got) != 200 {
		t.Fatalf("fragmented: %d bytes, %v", len(got), err)
	}
	// a blocks in its callback; b, on the same poller, still gets its echoes.
	if err := a.WriteMessage(wire.OpText, []byte("block")); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		p := []byte(fmt.Sprint(i))
		if err := b.WriteMessage(wire.OpText, p); err != nil {
			t.Fatal(err)
		}
		if _, got, err := b.ReadMessage(); err != nil || string(got) != string(p) {
			t.Fatalf("b while a blocks: %q %v", got, err)
		}
	}
	once.Do(func() { close(release) })
	if _, got, err := a.ReadMessage(); err != nil || string(got) != "block" {
		t.Fatalf("a after the block: %q %v", got, err)
	}
}
