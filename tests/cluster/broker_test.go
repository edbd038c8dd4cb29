package cluster

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
	"github.com/shockwave-go/shockwave/wire"
)

// connect returns a connection to url, closed at the test's end.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the Broker counts
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// newBroker returns a Broker over nc, closed at the test's end.
func newBroker(t testing.TB, nc *nats.Conn, node string, opts ...natsbroker.Option) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(nc, append([]natsbroker.Option{natsbroker.WithNode(node),
		natsbroker.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// inbox collects what a subscription delivers.
type inbox struct {
	mu  sync.Mutex
	got []string
}

func (in *inbox) deliver(_ context.Context, m runtime.Carried) {
	in.mu.Lock()
	in.got = append(in.got, string(m.Variants[0].Data))
	in.mu.Unlock()
}

func (in *inbox) list() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.got...)
}

func text(s string) runtime.Carried {
	return runtime.Carried{Variants: []runtime.Variant{{Op: wire.OpText, Data: []byte(s)}}}
}

func flush(t testing.TB, ncs ...*nats.Conn) {
	t.Helper()
	for _, nc := range ncs {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrokerMessages: a Broker drops its own messages when its connection
// echoes them, delivers those of a publisher that is not a Broker (no
// Sw-Origin), and drops and counts a body that does not decode.
func TestBrokerMessages(t *testing.T) {
	s := startNATS(t, -1)
	xc, yc := connect(t, s.ClientURL()), connect(t, s.ClientURL())
	x, y := newBroker(t, xc, "x"), newBroker(t, yc, "y")
	var xin, yin inbox
	if _, err := x.Subscribe("r", xin.deliver); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Subscribe("r", yin.deliver); err != nil {
		t.Fatal(err)
	}
	subject := natsbroker.Subject("sw", "r")
	waitSubs(t, s, subject, 2)

	// A raw subscription keeps a body to send again, without headers.
	raw := make(chan *nats.Msg, 1)
	spy, err := yc.ChanSubscribe(subject, raw)
	if err != nil {
		t.Fatal(err)
	}
	waitSubs(t, s, subject, 3)
	if err := x.Publish(context.Background(), "r", text("1")); err != nil {
		t.Fatal(err)
	}
	body := (<-raw).Data
	spy.Unsubscribe()
	if err := yc.Publish(subject, []byte("junk")); err != nil {
		t.Fatal(err)
	}
	if err := yc.Publish(subject, body); err != nil { // "1" again, from no node
		t.Fatal(err)
	}
	if err := y.Publish(context.Background(), "r", text("2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "x to get y's message", func() bool { return len(xin.list()) == 2 })
	if got := xin.list(); got[0] != "1" || got[1] != "2" {
		t.Errorf("x got %q, want the anonymous 1 and y's 2, not its own", got)
	}
	// x's 3 reaches y after y's own 2 came back to it.
	if err := x.Publish(context.Background(), "r", text("3")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "y to get x's 3", func() bool { return len(yin.list()) >= 3 })
	if got := yin.list(); !slices.Equal(got, []string{"1", "1", "3"}) {
		t.Errorf("y got %q, want x's 1, the anonymous 1 and x's 3, not its own 2", got)
	}
	if st := x.Stats(); st.Dropped.Malformed != 1 || st.Received != 2 || st.Published != 2 {
		t.Errorf("x: %+v", st)
	}
}

// waitSubs waits until subject has n subscriptions on s.
func waitSubs(t testing.TB, s *server.Server, subject string, n int) {
	t.Helper()
	eventually(t, "the subscriptions", func() bool { return len(subscribers(t, s, subject)) == n })
}

// TestBrokerSlowConsumer: a room's subscription over its pending limits
// loses messages, and counts each: what was delivered and what was
// dropped add up to what was sent.
func TestBrokerSlowConsumer(t *testing.T) {
	s := startNATS(t, -1)
	xc, yc := connect(t, s.ClientURL()), connect(t, s.ClientURL())
	x := newBroker(t, xc, "x", natsbroker.WithPendingLimits(2, 1<<20))
	y := newBroker(t, yc, "y")
	entered, release := make(chan struct{}), make(chan struct{})
	var in inbox
	var once sync.Once
	if _, err := x.Subscribe("r", func(ctx context.Context, m runtime.Carried) {
		once.Do(func() { close(entered); <-release })
		in.deliver(ctx, m)
	}); err != nil {
		t.Fatal(err)
	}
	waitSubs(t, s, natsbroker.Subject("sw", "r"), 1)
	const sent = 20
	if err := y.Publish(context.Background(), "r", text("0")); err != nil {
		t.Fatal(err)
	}
	<-entered
	for i := 1; i < sent; i++ {
		if err := y.Publish(context.Background(), "r", text("m")); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, yc, xc) // x's client has taken every message in, or dropped it
	close(release)
	var st natsbroker.Stats
	eventually(t, "every message delivered or dropped", func() bool {
		st = x.Stats()
		return st.Received+st.Dropped.SlowConsumer == sent
	})
	if st.Dropped.SlowConsumer == 0 || int64(len(in.list())) != st.Received {
		t.Errorf("%+v, %d delivered", st, len(in.list()))
	}
}

// TestBrokerUnsubscribe: the function Subscribe returned waits for a
// delivery under way, and there is none after it returned.
func TestBrokerUnsubscribe(t *testing.T) {
	s := startNATS(t, -1)
	xc, yc := connect(t, s.ClientURL()), connect(t, s.ClientURL())
	x, y := newBroker(t, xc, "x"), newBroker(t, yc, "y")
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	calls, after := 0, false
	unsub, err := x.Subscribe("r", func(context.Context, runtime.Carried) {
		mu.Lock()
		calls++
		late := after
		mu.Unlock()
		if late {
			t.Error("a delivery after unsubscribe returned")
		}
		if calls == 1 {
			close(entered)
			<-release
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	waitSubs(t, s, natsbroker.Subject("sw", "r"), 1)
	for range 5 {
		if err := y.Publish(context.Background(), "r", text("m")); err != nil {
			t.Fatal(err)
		}
	}
	<-entered
	done := make(chan struct{})
	go func() {
		unsub()
		mu.Lock()
		after = true
		mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("unsubscribe returned during a delivery")
	default:
	}
	close(release)
	<-done
	if err := y.Publish(context.Background(), "r", text("late")); err != nil {
		t.Fatal(err)
	}
	flush(t, yc, xc)
	waitSubs(t, s, natsbroker.Subject("sw", "r"), 0)
	if st := x.Stats(); st.Subscriptions != 0 {
		t.Errorf("%+v", st)
	}
}
