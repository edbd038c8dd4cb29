package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
	"github.com/shockwave-go/shockwave/wire"
)

// keep is how many messages the durable rooms of these tests keep.
const keep = 100

// startDurable starts a node whose rooms keep history in the log, a
// JetStream stream (natsbroker.Broker as a runtime.Log).
func startDurable(t testing.TB, url, name string, opts ...nats.Option) *node {
	t.Helper()
	hist := runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: keep, Stamp: codec.Stamp} })
	return startNodeRT(t, url, name, []natsbroker.Option{natsbroker.WithLog(10*keep, 0)}, []runtime.Option{hist}, opts...)
}

// TestDurableRooms: three nodes, members on each, publishers on each: every
// member gets every message once, all members in the same order (the
// stream's), each with its position, increasing; a member that comes
// back on another node, even one that had no member in the room, gets
// exactly what it missed.
func TestDurableRooms(t *testing.T) {
	ns := startJetStream(t, -1, t.TempDir())
	nodes := []*node{startDurable(t, ns.ClientURL(), "a"), startDurable(t, ns.ClientURL(), "b"), startDurable(t, ns.ClientURL(), "c")}
	var members []*member
	for _, n := range nodes {
		for j := range 2 {
			m := n.dial(t, fmt.Sprintf("%s%d", n.name, j), codec.JSON)
			m.join(t, "chat")
			members = append(members, m)
		}
	}
	waitInterest(t, ns, "chat", nodes...)

	const n = 20
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			for seq := 1; seq <= n; seq++ {
				members[2*i].say(t, "chat", seq)
			}
		})
	}
	wg.Wait()
	var order []got
	for _, m := range members {
		g := m.wait(t, 3*n)
		for _, p := range []string{"a0", "b0", "c0"} {
			if s := seqs(g, p); !slices.Equal(s, upTo(1, n)) {
				t.Errorf("%s got %v from %s", m.name, s, p)
			}
		}
		for i := 1; i < len(g); i++ {
			if g[i].at <= g[i-1].at {
				t.Fatalf("%s: offsets not increasing: %+v then %+v", m.name, g[i-1], g[i])
			}
		}
		if order == nil {
			order = g
		} else if !slices.Equal(g, order) {
			t.Errorf("%s got the room in another order than %s", m.name, members[0].name)
		}
	}

	// A member with a load balancer in front, which sends it to a,
	// then, once its connection drops, to c.
	lb := newBalancer(nodes[0])
	mover := dialURL(t, "ws://balancer/", "mover", codec.JSON, codec.WithReconnect(true),
		codec.WithDialOptions(wire.DialOptions{NetDialContext: lb.dial}),
		codec.WithBackoff(codec.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond, Factor: 2}))
	mover.join(t, "chat")
	members[0].say(t, "chat", n+1)
	mover.wait(t, 1)
	lb.switchTo(nodes[2])
	for seq := n + 2; seq <= n+6; seq++ {
		members[2].say(t, "chat", seq) // b0, while mover is away
	}
	lb.drop()
	g := mover.wait(t, 6)
	want := append([]int{n + 1}, upTo(n+2, n+6)...)
	if s := append(seqs(g, "a0"), seqs(g, "b0")...); !slices.Equal(s, want) || len(g) != 6 {
		t.Errorf("mover got %+v, want a0's %d then b0's %v", g, n+1, want[1:])
	}

	// A node with no member in the room follows it when one comes: it
	// serves what the stream keeps, so a member that comes back there
	// recovers too.
	d := startDurable(t, ns.ClientURL(), "d")
	lb.switchTo(d)
	members[4].say(t, "chat", n+1) // c0
	mover.wait(t, 7)
	lb.drop()
	members[4].say(t, "chat", n+2)
	g = mover.wait(t, 8)
	if s := seqs(g, "c0"); !slices.Equal(s, []int{n + 1, n + 2}) || len(g) != 8 {
		t.Errorf("mover, on d, got %+v", g)
	}
	time.Sleep(50 * time.Millisecond) // nothing more comes
	if g := mover.received(t); len(g) != 8 {
		t.Errorf("mover got %d events, want 8: %+v", len(g), g)
	}
}

// TestDurableNATSRestart: the NATS server stops in the middle of a run and
// starts again on the same port and store: the members of a durable room
// get every message once and in order, published before, during and after
// the outage, and no node counts a gap.
func TestDurableNATSRestart(t *testing.T) {
	dir := t.TempDir()
	ns := startJetStream(t, -1, dir)
	port, url := natsPort(ns), ns.ClientURL()
	nodes := []*node{startDurable(t, url, "a"), startDurable(t, url, "b"), startDurable(t, url, "c")}
	var members []*member
	for _, nd := range nodes {
		m := nd.dial(t, nd.name+"0", codec.JSON)
		m.join(t, "chat")
		members = append(members, m)
	}
	waitInterest(t, ns, "chat", nodes...)

	const n = 60
	var said atomic.Int64
	var wg sync.WaitGroup
	for _, m := range members {
		wg.Go(func() {
			for seq := 1; seq <= n; seq++ {
				m.say(t, "chat", seq)
				said.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	eventually(t, "a third of the messages", func() bool { return said.Load() >= n })
	stopNATS(ns)
	stoppedAt := said.Load()
	time.Sleep(300 * time.Millisecond) // the publishes in the meantime wait for the stream
	ns = startJetStream(t, port, dir)
	wg.Wait()
	for _, m := range members {
		g := m.wait(t, 3*n)
		for _, p := range members {
			if s := seqs(g, p.name); !slices.Equal(s, upTo(1, n)) {
				t.Errorf("%s got %v from %s", m.name, s, p.name)
			}
		}
	}
	time.Sleep(50 * time.Millisecond)
	for _, m := range members {
		if g := m.received(t); len(g) != 3*n {
			t.Errorf("%s got %d messages, want %d", m.name, len(g), 3*n)
		}
	}
	for _, nd := range nodes {
		if st := nd.b.Stats(); st.Dropped.Gap != 0 || st.Dropped.Malformed != 0 {
			t.Errorf("%s: %+v", nd.name, st.Dropped)
		}
		if nd.nc.Stats().Reconnects == 0 {
			t.Errorf("%s did not reconnect: the outage was not one", nd.name)
		}
	}
	if at := stoppedAt; at >= 3*n {
		t.Errorf("every message was said before the outage (%d)", at)
	}
}

// balancer is a load balancer in front of nodes: the clients dial it, and
// it connects them to the node it points at.
type balancer struct {
	mu sync.Mutex
	to *node
	cs []net.Conn // the connections it made, closed by drop
}

func newBalancer(to *node) *balancer { return &balancer{to: to} }

// dial is the clients' wire.DialOptions.NetDialContext: whatever address
// they dial, it connects them to the node the balancer points at.
func (lb *balancer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	lb.mu.Lock()
	to := lb.to
	lb.mu.Unlock()
	if to == nil {
		return nil, errors.New("the balancer has no node")
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", to.srv.Listener.Addr().String())
	if err == nil {
		lb.mu.Lock()
		lb.cs = append(lb.cs, c)
		lb.mu.Unlock()
	}
	return c, err
}

// switchTo sends the next connections to n; nil refuses them.
func (lb *balancer) switchTo(n *node) {
	lb.mu.Lock()
	lb.to = n
	lb.mu.Unlock()
}

// drop closes every connection made so far, as a balancer that restarts.
func (lb *balancer) drop() {
	lb.mu.Lock()
	cs := lb.cs
	lb.cs = nil
	lb.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// TestDurableGap: a node's NATS connection is cut again and again while
// another node publishes: what the stream republished meanwhile is lost
// to it, and it reads it from the stream, after the reconnection or at
// the next message, so that its members get every message once and in
// order, and it counts no gap.
func TestDurableGap(t *testing.T) {
	ns := startJetStream(t, -1, t.TempDir())
	a, b := startDurable(t, ns.ClientURL(), "a"), startDurable(t, ns.ClientURL(), "b")
	pub, m := a.dial(t, "a0", codec.JSON), b.dial(t, "b0", codec.MsgPack)
	pub.join(t, "chat")
	m.join(t, "chat")
	waitInterest(t, ns, "chat", a, b)

	const n = 200
	done := make(chan struct{})
	var cuts sync.WaitGroup
	cuts.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(15 * time.Millisecond):
			}
			if id, err := b.nc.GetClientID(); err == nil {
				_ = ns.DisconnectClientByID(id)
			}
		}
	})
	for seq := 1; seq <= n; seq++ {
		pub.say(t, "chat", seq)
		time.Sleep(time.Millisecond)
	}
	close(done)
	cuts.Wait()
	deadline := time.Now().Add(bound)
	for len(m.received(t)) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	g := m.received(t)
	if len(g) < n {
		t.Fatalf("b0 got %d messages of %d: %v; b: %+v", len(g), n, seqs(g, "a0"), b.b.Stats().Dropped)
	}
	if s := seqs(g, "a0"); !slices.Equal(s, upTo(1, n)) {
		t.Errorf("b0 got %v", s)
	}
	time.Sleep(50 * time.Millisecond)
	if g := m.received(t); len(g) != n {
		t.Errorf("b0 got %d messages, want %d", len(g), n)
	}
	if b.nc.Stats().Reconnects == 0 {
		t.Error("b's connection was never cut")
	}
	if st := b.b.Stats(); st.Dropped.Gap != 0 {
		t.Errorf("b: %+v", st.Dropped)
	}
}

// TestDurableKeep: the stream keeps LogKeep messages of a room. A client
// that comes back, to a node that follows the room afresh, after more than
// that was published is not told it recovered (what the stream dropped is
// gone), and goes on with what follows; one within it recovers (see
// TestDurableRooms).
func TestDurableKeep(t *testing.T) {
	ns := startJetStream(t, -1, t.TempDir())
	const kept = 5
	hist := runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: kept, Stamp: codec.Stamp} })
	start := func(name string) *node {
		return startNodeRT(t, ns.ClientURL(), name, []natsbroker.Option{natsbroker.WithLog(kept, 0)}, []runtime.Option{hist})
	}
	a, b := start("a"), start("b")
	pub := a.dial(t, "p", codec.JSON)
	pub.join(t, "chat")

	lb := newBalancer(a)
	resumed := make(chan codec.Joined, 4)
	mover := dialURL(t, "ws://balancer/", "mover", codec.JSON, codec.WithReconnect(true),
		codec.WithDialOptions(wire.DialOptions{NetDialContext: lb.dial}),
		codec.WithBackoff(codec.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond, Factor: 2}),
		codec.WithOnResume(func(j codec.Joined) { resumed <- j }))
	mover.join(t, "chat")
	pub.say(t, "chat", 1)
	mover.wait(t, 1)
	lb.switchTo(nil) // away
	lb.drop()
	for seq := 2; seq <= 3*kept; seq++ {
		pub.say(t, "chat", seq)
	}
	pub.wait(t, 3*kept) // all stored
	lb.switchTo(b)
	select {
	case j := <-resumed:
		if j.Recovered || j.Replayed != 0 {
			t.Errorf("mover resumed on b with %+v: the stream kept only the last %d", j, kept)
		}
	case <-time.After(bound):
		t.Fatal("mover did not resume")
	}
	pub.say(t, "chat", 3*kept+1)
	g := mover.wait(t, 2)
	if s := seqs(g, "p"); !slices.Equal(s, []int{1, 3*kept + 1}) {
		t.Errorf("mover got %v, want 1 then %d", s, 3*kept+1)
	}
	if st := b.b.Stats(); st.Dropped.Gap != 0 {
		t.Errorf("b, which followed the room afresh, counted %+v", st.Dropped)
	}
}
