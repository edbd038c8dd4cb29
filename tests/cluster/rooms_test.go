package cluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
)

// TestRooms: members on two of three nodes, JSON and MessagePack mixed,
// each get every message of the room once, in order per publisher, in
// their codec; the node without members holds no subscription to the
// room, and a node whose members leave drops its own. A node that hears
// its own messages (no nats.NoEcho) does not deliver them twice. The
// counts of every node are exact, and its metrics say the same.
func TestRooms(t *testing.T) {
	s := startNATS(t, -1)
	a := startNode(t, s.ClientURL(), "a", nats.NoEcho())
	b := startNode(t, s.ClientURL(), "b", nats.NoEcho())
	c := startNode(t, s.ClientURL(), "c") // hears itself

	a1, a2 := a.dial(t, "a1", codec.JSON), a.dial(t, "a2", codec.MsgPack)
	b1, b2 := b.dial(t, "b1", codec.MsgPack), b.dial(t, "b2", codec.JSON)
	c1, bo := c.dial(t, "c1", codec.JSON), b.dial(t, "bo", codec.MsgPack)
	lobby := []*member{a1, a2, b1, b2}
	for _, m := range lobby {
		m.join(t, "lobby")
	}
	c1.join(t, "other")
	bo.join(t, "other")
	waitInterest(t, s, "lobby", a, b)
	waitInterest(t, s, "other", b, c)
	if n := c.b.Stats().Subscriptions; n != 1 {
		t.Fatalf("c subscribes to %d rooms, want 1: other", n)
	}

	const n = 20
	for i := 1; i <= n; i++ {
		a1.say(t, "lobby", i)
		b1.say(t, "lobby", i)
	}
	for _, m := range lobby {
		g := m.wait(t, 2*n)
		for _, from := range []string{"a1", "b1"} {
			if got := seqs(g, from); !slices.Equal(got, upTo(1, n)) {
				t.Errorf("%s got %s's %v, want 1 to %d once and in order", m.name, from, got, n)
			}
		}
		for _, e := range g {
			if e.event != "said" || e.room != "lobby" {
				t.Errorf("%s got %+v", m.name, e)
			}
		}
	}
	b2.emit(t, "signal", "lobby", Said{From: "b2", Seq: 1})
	for _, m := range lobby {
		if g := m.wait(t, 2*n+1); g[2*n] != (got{"signaled", "lobby", Said{"b2", 1}, 0}) {
			t.Errorf("%s got %+v, want b2's signal", m.name, g[2*n])
		}
	}

	// c hears its own message come back before bo's answer, and drops it.
	c1.say(t, "other", 1)
	bo.wait(t, 1)
	bo.say(t, "other", 2)
	want := []got{{"said", "other", Said{"c1", 1}, 0}, {"said", "other", Said{"bo", 2}, 0}}
	if g := c1.wait(t, 2); !slices.Equal(g, want) {
		t.Errorf("c1 got %+v, want %+v", g, want)
	}
	if g := c1.received(t); len(g) != 2 {
		t.Errorf("c1 got %+v: its own message twice?", g)
	}

	for _, tc := range []struct {
		n                   *node
		published, received int64
	}{
		{a, n, n + 1},         // a1's; b1's and the signal
		{b, n + 1 + 1, n + 1}, // b1's, the signal, bo's; a1's and c1's
		{c, 1, 1},             // c1's; bo's
	} {
		st := tc.n.b.Stats()
		if st.Published != tc.published || st.Received != tc.received || st.Dropped.SlowConsumer+st.Dropped.Malformed != 0 {
			t.Errorf("%s: %+v, want %d published and %d received", tc.n.name, st, tc.published, tc.received)
		}
		if m := tc.n.metric(t, "shockwave.broker.published", ""); m != st.Published {
			t.Errorf("%s: shockwave.broker.published %d, Stats %d", tc.n.name, m, st.Published)
		}
		if m := tc.n.metric(t, "shockwave.broker.received", ""); m != st.Received {
			t.Errorf("%s: shockwave.broker.received %d, Stats %d", tc.n.name, m, st.Received)
		}
	}

	// a's members leave: a's room goes, and its subscription.
	for _, m := range []*member{a1, a2} {
		if err := m.c.Leave(ctx(t), "lobby"); err != nil {
			t.Fatal(err)
		}
	}
	waitInterest(t, s, "lobby", b)
	eventually(t, "a to hold no subscription", func() bool { return a.b.Stats().Subscriptions == 0 })
	if m := a.metric(t, "shockwave.broker.subscriptions", ""); m != 0 {
		t.Errorf("shockwave.broker.subscriptions %d", m)
	}
}

// TestRoomNames: rooms whose names are not subject tokens (dots,
// wildcards, spaces, other scripts, one that looks like another's
// encoding) each get a subject of their own, and their messages cross
// to them alone: Publish, and Broadcast (one variant, no key).
func TestRoomNames(t *testing.T) {
	rooms := []string{
		"lobby", "~lobby", "a.b", "~YS5i", "a", "*", ">", "sw.r.>", "a.*.c",
		"two words", "tab\there", "café ☕", "日本語", strings.Repeat("é", 128),
	}
	s := startNATS(t, -1)
	a := startNode(t, s.ClientURL(), "a", nats.NoEcho())
	b := startNode(t, s.ClientURL(), "b", nats.NoEcho())
	x, y := a.dial(t, "x", codec.JSON), b.dial(t, "y", codec.JSON)
	x.join(t, rooms...)
	y.join(t, rooms...)
	subjects := map[string]bool{}
	for _, room := range rooms {
		waitInterest(t, s, room, a, b)
		subjects[natsbroker.Subject("sw", room)] = true
	}
	if len(subjects) != len(rooms) {
		t.Fatalf("%d subjects for %d rooms", len(subjects), len(rooms))
	}

	for i, room := range rooms {
		x.emit(t, "say", room, Said{From: "x", Seq: i})
		x.emit(t, "shout", room, Said{From: "x", Seq: i})
	}
	g := y.wait(t, 2*len(rooms))
	seen := map[string]int{}
	for _, e := range g {
		i := slices.Index(rooms, e.room)
		if i < 0 || e.Seq != i {
			t.Errorf("y got %+v: to another room's subject?", e)
		}
		seen[e.event+" "+e.room]++
	}
	for _, room := range rooms {
		for _, ev := range []string{"said", "shouted"} {
			if k := seen[ev+" "+room]; k != 1 {
				t.Errorf("%s in %q: %d times", ev, room, k)
			}
		}
	}
}
