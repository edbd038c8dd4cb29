package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// memBus is a bus in memory between the Brokers of several nodes (memNode):
// a message one node publishes to a room reaches the subscriptions of the
// other nodes to it, at once, in order.
type memBus struct {
	mu   sync.Mutex
	subs map[string][]*memSub
}

type memSub struct {
	node    *memNode
	deliver func(context.Context, runtime.Carried)
}

// memNode is one node's Broker on a memBus.
type memNode struct {
	bus  *memBus
	name string
}

func (b *memBus) node(name string) *memNode { return &memNode{bus: b, name: name} }

func (n *memNode) Subscribe(room string, deliver func(context.Context, runtime.Carried)) (func(), error) {
	if strings.HasPrefix(room, "refused") {
		return nil, errors.New("memBus: refused")
	}
	sub := &memSub{node: n, deliver: deliver}
	n.bus.mu.Lock()
	defer n.bus.mu.Unlock()
	if n.bus.subs == nil {
		n.bus.subs = make(map[string][]*memSub)
	}
	n.bus.subs[room] = append(n.bus.subs[room], sub)
	return func() {
		n.bus.mu.Lock()
		defer n.bus.mu.Unlock()
		list := n.bus.subs[room]
		for i, s := range list {
			if s == sub {
				n.bus.subs[room] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(n.bus.subs[room]) == 0 {
			delete(n.bus.subs, room)
		}
	}, nil
}

func (n *memNode) Publish(ctx context.Context, room string, m runtime.Carried) error {
	// A copy, as a real bus would send: m is not the broker's to keep.
	c := runtime.Carried{Variants: make([]runtime.Variant, len(m.Variants))}
	for i, v := range m.Variants {
		c.Variants[i] = runtime.Variant{Key: v.Key, Op: v.Op, Data: append([]byte(nil), v.Data...)}
	}
	n.bus.mu.Lock()
	var to []*memSub
	for _, s := range n.bus.subs[room] {
		if s.node != n {
			to = append(to, s)
		}
	}
	n.bus.mu.Unlock()
	for _, s := range to {
		s.deliver(ctx, c)
	}
	return nil
}

// subscribed returns how many subscriptions room has on the bus.
func (b *memBus) subscribed(room string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs[room])
}

// busCommands is roomCommands with publishes: "broadcast ROOM TEXT",
// "frame ROOM TEXT" and "publish ROOM TEXT" (an Encoder of two variants,
// keyed by subprotocol, or not when ROOM starts with "unkeyed").
var busCommands = handler{msg: func(s *session.Session, m session.Message) error {
	f := strings.Fields(string(m.Data))
	rt := runtime.Of(s)
	switch f[0] {
	case "join":
		rt.Join(f[1], s)
	case "leave":
		rt.Leave(f[1], s)
	case "broadcast", "frame", "publish":
		r, ok := rt.Room(f[1])
		if !ok {
			return s.Send(wire.OpText, []byte("no room"))
		}
		switch f[0] {
		case "broadcast":
			r.Broadcast(wire.OpText, []byte(f[2]))
		case "frame":
			fr := session.NewFrame(wire.OpText, []byte(f[2]))
			r.BroadcastFrame(fr, nil)
			fr.Release()
		case "publish":
			var e runtime.Encoder = &keyedMsg{posMsg{text: f[2], variants: 2}}
			if strings.HasPrefix(f[1], "unkeyed") {
				e = &posMsg{text: f[2], variants: 2}
			}
			if _, _, err := r.Publish(context.Background(), nil, e); err != nil {
				return s.Send(wire.OpText, []byte("error: "+err.Error()))
			}
		}
	}
	return s.Send(wire.OpText, []byte("ok"))
}}

// keyedMsg is a posMsg whose variants are for the subprotocols v0 and v1.
type keyedMsg struct{ posMsg }

func (m *keyedMsg) Key(v int) string { return fmt.Sprintf("v%d", v) }

// TestBroker: with a Broker, what one node publishes to a room reaches the
// room's members on the other nodes, in the variant of their subprotocol,
// and its own members once; a node subscribes to a room while it has
// members there, and not before or after.
func TestBroker(t *testing.T) {
	bus := &memBus{}
	opts := []runtime.Option{runtime.WithSubprotocols("v0", "v1"), runtime.WithMessageRate(-1, 0)}
	_, urlA := start(t, busCommands, append(opts, runtime.WithBroker(bus.node("a")))...)
	rtB, urlB := start(t, busCommands, append(opts, runtime.WithBroker(bus.node("b")))...)

	a := dial(t, urlA)
	b0, err := dialCtx(urlB, &wire.DialOptions{Subprotocols: []string{"v0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b0.CloseNow()
	b1, err := dialCtx(urlB, &wire.DialOptions{Subprotocols: []string{"v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b1.CloseNow()
	if n := bus.subscribed("lobby"); n != 0 {
		t.Fatalf("%d subscriptions before anyone joined", n)
	}
	for _, c := range []*wire.Conn{a, b0, b1} {
		ask(t, c, "join lobby")
	}
	if n := bus.subscribed("lobby"); n != 2 {
		t.Fatalf("%d subscriptions, want one per node", n)
	}

	for _, tc := range []struct {
		cmd            string
		a, b0, b1      string // what each member gets
		publisherReply string
	}{
		{"broadcast lobby hi", "hi", "hi", "hi", "ok"},
		{"frame lobby there", "there", "there", "there", "ok"},
		{"publish lobby x", "0 0 x", "0 0 x", "v1:0 0 x", "ok"},
	} {
		if got := ask(t, a, tc.cmd); got != tc.a {
			t.Fatalf("%s: the publisher got %q first, want its own copy %q", tc.cmd, got, tc.a)
		}
		if got := next(t, a); got != tc.publisherReply {
			t.Fatalf("%s: then %q", tc.cmd, got)
		}
		if got := next(t, b0); got != tc.b0 {
			t.Errorf("%s: b0 got %q, want %q", tc.cmd, got, tc.b0)
		}
		if got := next(t, b1); got != tc.b1 {
			t.Errorf("%s: b1 got %q, want %q", tc.cmd, got, tc.b1)
		}
	}

	// From b's side, a's member gets it once.
	ask(t, b0, "broadcast lobby back")
	next(t, b1)
	if got := next(t, a); got != "back" {
		t.Fatalf("a got %q", got)
	}

	// When b's members leave, b's room goes, and its subscription.
	ask(t, b0, "leave lobby")
	ask(t, b1, "leave lobby")
	eventually(t, bound, "b's room to go", func() bool { _, ok := rtB.Room("lobby"); return !ok })
	if n := bus.subscribed("lobby"); n != 1 {
		t.Fatalf("%d subscriptions after b's members left, want a's alone", n)
	}
}

// TestBrokerRefusals: an Encoder of several variants without keys
// reaches the publisher's node only, with ErrNotCarried; a room whose
// subscription failed still works here, and tries again at its next join;
// New refuses a Broker with rooms that keep history or presence.
func TestBrokerRefusals(t *testing.T) {
	bus := &memBus{}
	opts := []runtime.Option{runtime.WithMessageRate(-1, 0)}
	_, urlA := start(t, busCommands, append(opts, runtime.WithBroker(bus.node("a")))...)
	_, urlB := start(t, busCommands, append(opts, runtime.WithBroker(bus.node("b")))...)
	a, b := dial(t, urlA), dial(t, urlB)
	ask(t, a, "join unkeyed")
	ask(t, b, "join unkeyed")
	if got := ask(t, a, "publish unkeyed x"); got != "0 0 x" {
		t.Fatalf("the publisher's own member got %q", got)
	}
	if got := next(t, a); !strings.Contains(got, runtime.ErrNotCarried.Error()) {
		t.Fatalf("publish of unkeyed variants: %q, want ErrNotCarried", got)
	}
	ask(t, b, "broadcast unkeyed y") // b's member gets its own; a's, this one only
	if got := next(t, b); got != "ok" {
		t.Fatalf("b: %q", got)
	}
	if got := next(t, a); got != "y" {
		t.Fatalf("a got %q, want y alone: the unkeyed message did not cross", got)
	}

	ask(t, a, "join refused")
	if got := ask(t, a, "broadcast refused z"); got != "z" {
		t.Fatalf("a room without a subscription, here: %q", got)
	}
	if n := bus.subscribed("refused"); n != 0 {
		t.Fatalf("%d subscriptions of a refused room", n)
	}

	for _, o := range []runtime.Option{
		runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 1} }),
		runtime.WithRoomPresence(func(string) *runtime.Presence { return nil }),
	} {
		if _, err := runtime.New(busCommands, runtime.WithBroker(bus.node("c")), o); err == nil || !strings.Contains(err.Error(), "Broker") {
			t.Errorf("New with a Broker and history or presence: %v", err)
		}
	}
}
