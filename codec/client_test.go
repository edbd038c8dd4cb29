package codec_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// within bounds every wait of these tests: never reached by a correct run.
const within = 20 * time.Second

// noLeaks checks, after every other cleanup of the test (registered
// later, so run earlier), that the test left no goroutine behind.
func noLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

type sum struct {
	A int `json:"a"`
	B int `json:"b"`
}

// serverTrace is the span context the "traced" handler sends its event in.
var serverTrace = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c},
	SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31},
	TraceFlags: trace.FlagsSampled,
})

// fixture is a Router on a runtime over loopback, with the handlers the
// tests use, and the codec its clients speak.
type fixture struct {
	t     *testing.T
	r     *codec.Router
	rt    *runtime.Runtime
	url   string
	codec codec.Codec

	waiting chan struct{} // a value each time "wait" starts waiting
	release chan struct{} // closed to end every "wait"
	once    sync.Once
}

func newFixture(t *testing.T, cd codec.Codec) *fixture {
	t.Helper()
	noLeaks(t)
	f := &fixture{t: t, codec: cd, waiting: make(chan struct{}, 16), release: make(chan struct{})}
	r := codec.NewRouter(codec.JSON)
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...), runtime.WithMessageRate(-1, 0))
	if err != nil {
		t.Fatal(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	t.Cleanup(f.releaseAll) // before the shutdown, which waits for the handlers

	codec.On(r, "echo", func(s *session.Session, m ChatMessage) error {
		m.Text = strings.ToUpper(m.Text)
		return r.Emit(s, "echoed", m)
	})
	codec.Handle(r, "add", func(s *session.Session, q sum) (int, error) {
		if q.A < 0 || q.B < 0 {
			return 0, &codec.Error{Code: "negative", Message: "positive numbers only"}
		}
		return q.A + q.B, nil
	})
	codec.On(r, "boom", func(*session.Session, struct{}) error { return errors.New("secret") })
	codec.On(r, "hang up", func(*session.Session, struct{}) error {
		return wire.CloseError{Code: 4001, Reason: "go away"}
	})
	// close first closes the session before it can answer.
	codec.Handle(r, "close first", func(s *session.Session, _ struct{}) (string, error) {
		s.Close(4002, "bye")
		return "never sent", nil
	})
	codec.Handle(r, "wait", func(*session.Session, struct{}) (string, error) {
		f.waiting <- struct{}{}
		<-f.release
		return "late", nil
	})
	// burst sends n events "n", 1 to n, before its reply.
	codec.Handle(r, "burst", func(s *session.Session, n int) (int, error) {
		for i := 1; i <= n; i++ {
			if err := r.Emit(s, "n", i); err != nil {
				return 0, err
			}
		}
		return n, nil
	})
	// blobs sends n events "blob" of 4 KiB each.
	codec.On(r, "blobs", func(s *session.Session, n int) error {
		blob := strings.Repeat("x", 4<<10)
		for range n {
			if err := r.Emit(s, "blob", blob); err != nil {
				return err
			}
		}
		return nil
	})
	// say publishes its text to the envelope's room.
	codec.On(r, "say", func(s *session.Session, ev codec.Event[string]) error {
		room, ok := rt.Room(ev.Room)
		if !ok {
			return &codec.Error{Code: "no_room", Message: ev.Room}
		}
		_, err := r.Publish(room, "said", ev.Data)
		return err
	})
	// traced answers with the client's traceparent, after an event in a
	// trace of its own.
	codec.Handle(r, "traced", func(s *session.Session, ev codec.Event[struct{}]) (string, error) {
		ctx := trace.ContextWithSpanContext(context.Background(), serverTrace)
		return ev.Trace, r.EmitContext(ctx, s, "traced", nil)
	})
	f.r, f.rt, f.url = r, rt, "ws"+strings.TrimPrefix(srv.URL, "http")
	return f
}

func (f *fixture) releaseAll() { f.once.Do(func() { close(f.release) }) }

// dial connects a client speaking the fixture's codec, closed when the
// test ends.
func (f *fixture) dial(opts ...codec.ClientOption) *codec.Client {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	c, err := codec.Dial(ctx, f.url, append([]codec.ClientOption{codec.WithClientCodecs(f.codec)}, opts...)...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	if c.Codec() != f.codec {
		f.t.Fatalf("speaking %s, want %s", c.Codec().Name(), f.codec.Name())
	}
	return c
}

// ctx returns a context that ends with the test, or after within.
func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	return ctx
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(within):
		t.Fatalf("no %s after %v", what, within)
		panic("unreachable")
	}
}

// got is a value a listener received, with its Meta.
type got[T any] struct {
	v T
	m Meta
}

// Meta is codec.Meta, short.
type Meta = codec.Meta

// listen registers a listener that sends what it gets to the returned
// channel.
func listen[T any](c *codec.Client, event string) <-chan got[T] {
	ch := make(chan got[T], 100)
	codec.Listen(c, event, func(v T, m Meta) { ch <- got[T]{v, m} })
	return ch
}

// codeOf returns the code of err's *codec.Error, or "".
func codeOf(err error) string {
	var e *codec.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TestClient runs every case against a real Router in both codecs.
func TestClient(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"event round trip", func(t *testing.T, f *fixture) {
			c := f.dial()
			echoed := listen[ChatMessage](c, "echoed")
			if err := c.Emit(ctx(t), "echo", ChatMessage{From: "ada", Text: "hi"}); err != nil {
				t.Fatal(err)
			}
			g := receive(t, echoed, "echo")
			if g.v != (ChatMessage{From: "ada", Text: "HI"}) || g.m != (Meta{Event: "echoed"}) {
				t.Fatalf("got %+v, %+v", g.v, g.m)
			}
		}},
		{"request reply", func(t *testing.T, f *fixture) {
			c := f.dial()
			if n, err := codec.Request[int](ctx(t), c, "add", sum{2, 3}); n != 5 || err != nil {
				t.Fatalf("add: %d, %v", n, err)
			}
			// No payload: the handler's zero value. An On handler's
			// empty reply: a zero result.
			if n, err := codec.Request[int](ctx(t), c, "add", nil); n != 0 || err != nil {
				t.Fatalf("add without payload: %d, %v", n, err)
			}
			if v, err := codec.Request[ChatMessage](ctx(t), c, "echo", ChatMessage{}); v != (ChatMessage{}) || err != nil {
				t.Fatalf("echo: %+v, %v", v, err)
			}
		}},
		{"request errors", func(t *testing.T, f *fixture) {
			c := f.dial()
			for _, e := range []struct {
				event string
				v     any
				code  string
			}{
				{"add", sum{-1, 1}, "negative"},
				{"boom", nil, codec.CodeInternal},
				{"nope", nil, codec.CodeUnknownEvent},
				{"add", "not a sum", codec.CodeBadPayload},
				{codec.EventJoin, nil, codec.CodeBadRequest}, // no room
			} {
				n, err := codec.Request[int](ctx(t), c, e.event, e.v)
				if codeOf(err) != e.code || n != 0 {
					t.Errorf("%s %v: %d, %v; want code %s", e.event, e.v, n, err, e.code)
				}
			}
			var e *codec.Error
			_, err := codec.Request[int](ctx(t), c, "add", sum{-1, 1})
			if !errors.As(err, &e) || e.Message != "positive numbers only" {
				t.Errorf("add: %v", err)
			}
			// A reply that does not decode into the result's type: the
			// client's error, not the server's.
			s, err := codec.Request[string](ctx(t), c, "add", sum{1, 1})
			if err == nil || codeOf(err) != "" || !strings.Contains(err.Error(), `the reply to "add" does not decode`) || s != "" {
				t.Errorf("add as a string: %q, %v", s, err)
			}
			// A value that does not encode: nothing is sent.
			if _, err := codec.Request[int](ctx(t), c, "add", func() {}); err == nil {
				t.Error("a func was sent")
			}
			if n, err := codec.Request[int](ctx(t), c, "add", sum{1, 1}); n != 2 || err != nil {
				t.Fatalf("after the errors: %d, %v", n, err)
			}
		}},
		{"request timeout", func(t *testing.T, f *fixture) {
			c := f.dial(codec.WithRequestTimeout(100 * time.Millisecond))
			short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := codec.Request[string](short, c, "wait", nil)
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 50*time.Millisecond ||
				!strings.Contains(err.Error(), "no reply before the context ended") {
				t.Fatalf("with a deadline: %v after %v", err, time.Since(start))
			}
			// No deadline: RequestTimeout.
			start = time.Now()
			_, err = codec.Request[string](context.Background(), c, "wait", nil)
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 100*time.Millisecond ||
				!strings.Contains(err.Error(), "no reply within 100ms (RequestTimeout)") {
				t.Fatalf("without a deadline: %v after %v", err, time.Since(start))
			}
			canceled, cancel := context.WithCancel(context.Background())
			go func() { receive(t, f.waiting, "wait"); cancel() }()
			if _, err := codec.Request[string](canceled, c, "wait", nil); !errors.Is(err, context.Canceled) {
				t.Fatalf("canceled: %v", err)
			}
			// The late replies are dropped; the client carries on.
			f.releaseAll()
			if n, err := codec.Request[int](ctx(t), c, "add", sum{1, 2}); n != 3 || err != nil {
				t.Fatalf("after the timeouts: %d, %v", n, err)
			}
		}},
		{"join, publish, leave", func(t *testing.T, f *fixture) {
			a, b := f.dial(), f.dial()
			said := listen[string](b, "said")
			if _, err := b.Join(ctx(t), "lobby"); err != nil {
				t.Fatal(err)
			}
			if err := a.Emit(ctx(t), "say", "one", codec.InRoom("lobby")); err != nil {
				t.Fatal(err)
			}
			if g := receive(t, said, "one"); g.v != "one" || g.m != (Meta{Event: "said", Room: "lobby"}) {
				t.Fatalf("got %+v", g)
			}
			if err := b.Leave(ctx(t), "lobby"); err != nil {
				t.Fatal(err)
			}
			// a is in no room: it cannot say anything there until it
			// joins.
			if _, err := codec.Request[struct{}](ctx(t), a, "say", "two", codec.InRoom("lobby")); codeOf(err) != "no_room" {
				t.Fatalf("say in a room nobody is in: %v", err)
			}
			if _, err := a.Join(ctx(t), "lobby"); err != nil {
				t.Fatal(err)
			}
			if _, err := codec.Request[struct{}](ctx(t), a, "say", "three", codec.InRoom("lobby")); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Join(ctx(t), "lobby"); err != nil {
				t.Fatal(err)
			}
			if _, err := codec.Request[struct{}](ctx(t), a, "say", "four", codec.InRoom("lobby")); err != nil {
				t.Fatal(err)
			}
			// What was said while b was out never reaches it.
			if g := receive(t, said, "four"); g.v != "four" {
				t.Fatalf("b got %q, said while it was out", g.v)
			}
			if _, err := b.Join(ctx(t), strings.Repeat("r", 300)); codeOf(err) != codec.CodeBadRequest {
				t.Fatalf("a name too long: %v", err)
			}
			if err := b.Leave(ctx(t), ""); codeOf(err) != codec.CodeBadRequest {
				t.Fatalf("leave without a room: %v", err)
			}
		}},
		{"close while a request is pending", func(t *testing.T, f *fixture) {
			// The server is stuck in "wait" and will not answer the
			// close frame: CloseTimeout bounds Close.
			c := f.dial(codec.WithDialOptions(wire.DialOptions{Options: wire.Options{CloseTimeout: 100 * time.Millisecond}}))
			errc := make(chan error, 1)
			go func() {
				_, err := codec.Request[string](ctx(t), c, "wait", nil)
				errc <- err
			}()
			receive(t, f.waiting, "wait")
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < 100*time.Millisecond || d > within/2 {
				t.Errorf("Close took %v", d)
			}
			err := receive(t, errc, "the request's end")
			if !errors.Is(err, wire.ErrClosed) || !strings.Contains(err.Error(), "the client is closed") {
				t.Fatalf("pending request: %v", err)
			}
			select {
			case <-c.Done():
			default:
				t.Fatal("Close returned before the reader ended")
			}
			if !errors.Is(c.Err(), wire.ErrClosed) {
				t.Fatalf("Err %v", c.Err())
			}
			// Closed: everything fails at once, Close again is nil.
			if _, err := codec.Request[int](ctx(t), c, "add", sum{}); !errors.Is(err, wire.ErrClosed) {
				t.Fatalf("request after Close: %v", err)
			}
			if _, err := c.Join(ctx(t), "lobby"); !errors.Is(err, wire.ErrClosed) {
				t.Fatalf("join after Close: %v", err)
			}
			if err := c.Emit(ctx(t), "echo", nil); !errors.Is(err, wire.ErrClosed) {
				t.Fatalf("emit after Close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			// A server that answers: the closing handshake, 1000.
			d := f.dial()
			if err := d.Close(); err != nil || wire.CloseStatus(d.Err()) != wire.StatusNormalClosure {
				t.Fatalf("Close: %v, Err %v", err, d.Err())
			}
		}},
		{"server closes while a request is pending", func(t *testing.T, f *fixture) {
			c := f.dial()
			if _, err := codec.Request[string](ctx(t), c, "close first", nil); !errors.Is(err, wire.ErrClosed) || wire.CloseStatus(err) != 4002 {
				t.Fatalf("pending request: %v", err)
			}
			<-c.Done()
			if wire.CloseStatus(c.Err()) != 4002 {
				t.Fatalf("Err %v", c.Err())
			}
			if _, err := codec.Request[int](ctx(t), c, "add", sum{}); !errors.Is(err, wire.ErrClosed) || wire.CloseStatus(err) != 4002 {
				t.Fatalf("request after the close: %v", err)
			}
			// A handler's CloseError, on another client.
			d := f.dial()
			if _, err := codec.Request[struct{}](ctx(t), d, "hang up", nil); wire.CloseStatus(err) != 4001 || !errors.Is(err, wire.ErrClosed) {
				t.Fatalf("hang up: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Fatalf("Close after the server's close: %v", err)
			}
		}},
		{"handler order", func(t *testing.T, f *fixture) {
			c := f.dial()
			var seen []int // the reader's until the request returns
			codec.Listen(c, "n", func(n int, _ Meta) { seen = append(seen, n) })
			errs := listen[*codec.Error](c, codec.EventError)
			for round := range 3 {
				seen = seen[:0]
				n, err := codec.Request[int](ctx(t), c, "burst", 50)
				if err != nil || n != 50 {
					t.Fatal(n, err)
				}
				// Every event the handler sent was handled before the
				// request returned, in order.
				for i, v := range seen {
					if v != i+1 {
						t.Fatalf("round %d: %v", round, seen)
					}
				}
				if len(seen) != 50 {
					t.Fatalf("round %d: %d events before the reply", round, len(seen))
				}
			}
			// An error event is handled before a later reply too.
			if err := c.Emit(ctx(t), "nope", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := codec.Request[int](ctx(t), c, "add", nil); err != nil {
				t.Fatal(err)
			}
			select {
			case g := <-errs:
				if g.v.Code != codec.CodeUnknownEvent || g.m.Event != codec.EventError {
					t.Fatalf("error event %+v %+v", g.v, g.m)
				}
			default:
				t.Fatal("the error event was not handled before the next reply")
			}
			// Removed: no longer called.
			codec.Listen[int](c, "n", nil)
			if _, err := codec.Request[int](ctx(t), c, "burst", 3); err != nil || len(seen) != 50 {
				t.Fatalf("after removal: %v, %d events", err, len(seen))
			}
		}},
		{"close from a listener", func(t *testing.T, f *fixture) {
			c := f.dial()
			closed := make(chan error, 1)
			codec.Listen(c, "echoed", func(ChatMessage, Meta) { closed <- c.Close() })
			if err := c.Emit(ctx(t), "echo", ChatMessage{}); err != nil {
				t.Fatal(err)
			}
			if err := receive(t, closed, "Close"); err != nil {
				t.Fatal(err)
			}
			receive(t, c.Done(), "the reader's end")
			if wire.CloseStatus(c.Err()) != wire.StatusNormalClosure {
				t.Fatalf("Err %v", c.Err())
			}
		}},
		{"close waits for a running listener", func(t *testing.T, f *fixture) {
			c := f.dial()
			entered, hold := make(chan struct{}), make(chan struct{})
			codec.Listen(c, "echoed", func(ChatMessage, Meta) { close(entered); <-hold })
			if err := c.Emit(ctx(t), "echo", ChatMessage{}); err != nil {
				t.Fatal(err)
			}
			receive(t, entered, "the listener")
			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			select {
			case err := <-closed:
				t.Fatalf("Close returned (%v) while a listener ran", err)
			case <-time.After(50 * time.Millisecond):
			}
			close(hold)
			if err := receive(t, closed, "Close"); err != nil {
				t.Fatal(err)
			}
			select {
			case <-c.Done():
			default:
				t.Fatal("Close returned before the reader ended")
			}
		}},
		{"close while events stream in", func(t *testing.T, f *fixture) {
			// Close's closing handshake reads what comes before the
			// server's answer: never while a listener has a message
			// in hand (the race detector watches).
			for range 10 {
				c := f.dial()
				first := make(chan struct{}, 1)
				codec.Listen(c, "blob", func(string, Meta) {
					select {
					case first <- struct{}{}:
					default:
					}
				})
				if err := c.Emit(ctx(t), "blobs", 200); err != nil { // within the mailbox
					t.Fatal(err)
				}
				receive(t, first, "the first event")
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"close and close now at once", func(t *testing.T, f *fixture) {
			c := f.dial()
			codec.Listen(c, "n", func(n int, _ Meta) {
				if n == 10 {
					c.Close()
				}
			})
			if err := c.Emit(ctx(t), "burst", 200); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Go(func() { c.Close() })
			wg.Go(func() { c.CloseNow() })
			wg.Wait()
			receive(t, c.Done(), "the reader's end")
		}},
		{"close now", func(t *testing.T, f *fixture) {
			c := f.dial()
			if err := c.CloseNow(); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(c.Err(), wire.ErrClosed) {
				t.Fatalf("Err %v", c.Err())
			}
			// The server sees the connection go.
			for deadline := time.Now().Add(within); f.rt.Len() != 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d sessions left", f.rt.Len())
				}
			}
		}},
		{"trace", func(t *testing.T, f *fixture) {
			c := f.dial()
			traced := listen[struct{}](c, "traced")
			client := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
				SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
			})
			tp, err := codec.Request[string](trace.ContextWithSpanContext(ctx(t), client), c, "traced", nil)
			if want := "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-00"; tp != want || err != nil {
				t.Fatalf("the server got traceparent %q, %v; want %q", tp, err, want)
			}
			g := receive(t, traced, "traced")
			if want := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"; g.m.Traceparent != want {
				t.Fatalf("Meta.Traceparent %q, want %q", g.m.Traceparent, want)
			}
			if tp, _ := codec.Request[string](ctx(t), c, "traced", nil); tp != "" {
				t.Fatalf("traceparent %q without a span", tp)
			}
		}},
		{"payload that does not decode", func(t *testing.T, f *fixture) {
			reported := make(chan string, 1)
			c := f.dial(codec.WithClientErrorHandler(func(event string, err error) { reported <- event + ": " + err.Error() }))
			calls := listen[int](c, "echoed")
			if err := c.Emit(ctx(t), "echo", ChatMessage{Text: "x"}); err != nil {
				t.Fatal(err)
			}
			msg := receive(t, reported, "the report")
			if !strings.HasPrefix(msg, `echoed: codec: payload of "echoed" must be `) {
				t.Fatalf("reported %q", msg)
			}
			if len(calls) != 0 {
				t.Fatal("the listener was called")
			}
		}},
		{"many goroutines", func(t *testing.T, f *fixture) {
			c := f.dial()
			var wg sync.WaitGroup
			errs := make(chan error, 8*20)
			for g := range 8 {
				wg.Go(func() {
					for i := range 20 {
						n, err := codec.Request[int](ctx(t), c, "add", sum{g, i})
						if err == nil && n != g+i {
							err = fmt.Errorf("%d+%d = %d", g, i, n)
						}
						if err != nil {
							errs <- err
						}
						if err := c.Emit(ctx(t), "add", sum{g, i}); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		}},
	} {
		for _, cd := range []codec.Codec{codec.JSON, codec.MsgPack} {
			t.Run(tc.name+"/"+cd.Name(), func(t *testing.T) { tc.run(t, newFixture(t, cd)) })
		}
	}
}

// TestDialCodec: the client speaks the codec the server chose among those
// it offered, or its first when the server chose none.
func TestDialCodec(t *testing.T) {
	noLeaks(t)
	serve := func(def codec.Codec, subprotocols bool) string {
		r := codec.NewRouter(def)
		var opts []runtime.Option
		if subprotocols {
			opts = append(opts, runtime.WithSubprotocols(r.Subprotocols()...))
		}
		rt, err := runtime.New(r, opts...)
		if err != nil {
			t.Fatal(err)
		}
		codec.Handle(r, "codec", func(s *session.Session, _ struct{}) (string, error) { return r.Codec(s).Name(), nil })
		srv := httptest.NewServer(rt)
		t.Cleanup(func() { srv.Close(); rt.Shutdown(context.Background()) })
		return "ws" + strings.TrimPrefix(srv.URL, "http")
	}
	jsonFirst, msgpackFirst, none := serve(codec.JSON, true), serve(codec.MsgPack, true), serve(codec.JSON, false)
	for _, tc := range []struct {
		name   string
		url    string
		codecs []codec.Codec // nil: the default
		want   codec.Codec
	}{
		{"default to a JSON router", jsonFirst, nil, codec.JSON},
		{"default to a MsgPack router", msgpackFirst, nil, codec.MsgPack},
		{"MsgPack first to a JSON router", jsonFirst, []codec.Codec{codec.MsgPack, codec.JSON}, codec.JSON},
		{"MsgPack only", jsonFirst, []codec.Codec{codec.MsgPack}, codec.MsgPack},
		{"JSON only", msgpackFirst, []codec.Codec{codec.JSON}, codec.JSON},
		{"no subprotocol agreed", none, []codec.Codec{codec.JSON, codec.MsgPack}, codec.JSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []codec.ClientOption
			if tc.codecs != nil {
				opts = append(opts, codec.WithClientCodecs(tc.codecs...))
			}
			c, err := codec.Dial(ctx(t), tc.url, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			server, err := codec.Request[string](ctx(t), c, "codec", nil)
			if c.Codec() != tc.want || server != tc.want.Name() || err != nil {
				t.Fatalf("client speaks %s, server %q (%v); want %s", c.Codec().Name(), server, err, tc.want.Name())
			}
		})
	}

	for _, tc := range []struct {
		name string
		opt  codec.ClientOption
		want string
	}{
		{"no codec", codec.WithClientCodecs(), "no codec"},
		{"raw", codec.WithClientCodecs(codec.JSON, codec.Raw), "the raw codec cannot carry event envelopes"},
		{"no timeout", codec.WithRequestTimeout(0), "RequestTimeout 0s: must be positive"},
	} {
		if c, err := codec.Dial(ctx(t), jsonFirst, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestDialHeader: WithHeader's cookie reaches the server, and an upgrade
// refused without it fails with the status.
func TestDialHeader(t *testing.T) {
	noLeaks(t)
	r := codec.NewRouter(codec.JSON)
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c, err := req.Cookie("session"); err != nil || c.Value != "s3cret" {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		rt.ServeHTTP(w, req)
	}))
	t.Cleanup(func() { srv.Close(); rt.Shutdown(context.Background()) })
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	_, err = codec.Dial(ctx(t), url)
	var he *wire.HandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Fatalf("without the cookie: %v", err)
	}
	c, err := codec.Dial(ctx(t), url, codec.WithHeader(http.Header{"Cookie": {"session=s3cret"}}))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// WithDialOptions, and its Subprotocols replaced by the codecs'.
	c, err = codec.Dial(ctx(t), url, codec.WithDialOptions(wire.DialOptions{
		Header:       http.Header{"Cookie": {"session=s3cret"}},
		Subprotocols: []string{"chat.v9"},
	}), codec.WithClientCodecs(codec.MsgPack))
	if err != nil {
		t.Fatal(err)
	}
	if c.Codec() != codec.MsgPack {
		t.Errorf("speaking %s", c.Codec().Name())
	}
	c.Close()
}

// TestListenErrorType: the listener of error events takes an *Error or an
// Error, and nothing else.
func TestListenErrorType(t *testing.T) {
	f := newFixture(t, codec.JSON)
	c := f.dial()
	byValue := listen[codec.Error](c, codec.EventError)
	if err := c.Emit(ctx(t), "nope", nil); err != nil {
		t.Fatal(err)
	}
	if g := receive(t, byValue, "the error event"); g.v.Code != codec.CodeUnknownEvent {
		t.Fatalf("got %+v", g.v)
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), `"error" events carry an *Error, not string`) {
			t.Fatalf("panic %v", p)
		}
	}()
	codec.Listen(c, codec.EventError, func(string, Meta) {})
}

// TestRequestFromListener documents what a listener must not do: a request
// made from a listener cannot get its reply, which the reader would read
// after the listener returns, so it times out; the client carries on.
func TestRequestFromListener(t *testing.T) {
	f := newFixture(t, codec.JSON)
	c := f.dial(codec.WithRequestTimeout(50 * time.Millisecond))
	errc := make(chan error, 1)
	codec.Listen(c, "echoed", func(ChatMessage, Meta) {
		_, err := codec.Request[int](context.Background(), c, "add", sum{1, 1})
		errc <- err
	})
	if err := c.Emit(ctx(t), "echo", ChatMessage{}); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, errc, "the request's end"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request from a listener: %v", err)
	}
	if n, err := codec.Request[int](ctx(t), c, "add", sum{1, 1}); n != 2 || err != nil {
		t.Fatalf("after: %d, %v", n, err)
	}
}
