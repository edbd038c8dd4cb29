package cluster

import (
	"slices"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/shockwave-go/shockwave/codec"
)

// TestNATSRestart: the NATS server stops in the middle of a run and comes
// back on the same port. Meanwhile the publishing node's own members get
// everything; afterwards every node has reconnected and subscribed again
// by itself, and messages flow. What the other nodes missed is what the
// metrics say:
//   - with no reconnect buffer (nats.ReconnectBufSize(-1)), each publish
//     of the outage fails, and is counted as an error (reason
//     disconnected): exactly the messages the other members did not get;
//   - with NATS' default buffer, the publishes of the outage succeed, and
//     NATS sends them once reconnected: a node that has not subscribed
//     again by then misses them, which no one counts. What arrives still
//     arrives once and in order.
func TestNATSRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []nats.Option
		buffered bool
	}{
		{"no reconnect buffer", []nats.Option{nats.ReconnectBufSize(-1)}, false},
		{"reconnect buffer", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startNATS(t, -1)
			port, url := natsPort(s), s.ClientURL()
			a := startNode(t, url, "a", append(tc.opts, nats.NoEcho())...)
			b := startNode(t, url, "b", append(tc.opts, nats.NoEcho())...)
			c := startNode(t, url, "c", append(tc.opts, nats.NoEcho())...)
			nodes := []*node{a, b, c}
			a1, b1, c1 := a.dial(t, "a1", codec.JSON), b.dial(t, "b1", codec.MsgPack), c.dial(t, "c1", codec.JSON)
			for _, m := range []*member{a1, b1, c1} {
				m.join(t, "live")
			}
			waitInterest(t, s, "live", a, b, c)
			for i := 1; i <= 5; i++ {
				a1.say(t, "live", i)
			}
			for _, m := range []*member{a1, b1, c1} {
				m.wait(t, 5)
			}

			stopNATS(s)
			eventually(t, "every node to see NATS gone", func() bool {
				return !a.nc.IsConnected() && !b.nc.IsConnected() && !c.nc.IsConnected()
			})
			for i := 6; i <= 10; i++ {
				a1.say(t, "live", i)
			}
			if got := seqs(a1.wait(t, 10), "a1"); !slices.Equal(got, upTo(1, 10)) {
				t.Fatalf("a1 got %v of its own during the outage, want 1 to 10", got)
			}
			outage := func() bool { return a.b.Stats().Errors.Disconnected == 5 }
			if tc.buffered {
				outage = func() bool { return a.b.Stats().Published == 10 }
			}
			eventually(t, "a's publishes of the outage to be counted", outage)

			s = startNATS(t, port)
			eventually(t, "every node to reconnect by itself", func() bool {
				return a.nc.IsConnected() && b.nc.IsConnected() && c.nc.IsConnected()
			})
			waitInterest(t, s, "live", a, b, c)
			for i := 11; i <= 15; i++ {
				a1.say(t, "live", i)
				b1.say(t, "live", i)
			}

			st := a.b.Stats()
			lost := st.Errors.Disconnected
			if m := a.metric(t, "shockwave.broker.errors", "disconnected"); m != lost {
				t.Errorf("shockwave.broker.errors{disconnected} %d, Stats %d", m, lost)
			}
			for _, m := range []*member{b1, c1} {
				var got []int
				eventually(t, m.name+" to get a1's 15th", func() bool {
					got = seqs(m.received(t), "a1")
					return len(got) > 0 && got[len(got)-1] == 15
				})
				missed := 15 - int64(len(got))
				switch {
				case !tc.buffered && !slices.Equal(got, upTo(1, 15, [2]int{6, 10})):
					t.Errorf("%s got a1's %v, want all but the outage's 6 to 10", m.name, got)
				case !tc.buffered && missed != lost:
					t.Errorf("%s missed %d, a counted %d", m.name, missed, lost)
				case tc.buffered && (!slices.IsSorted(got) || slices.Compact(slices.Clone(got)) == nil ||
					len(slices.Compact(slices.Clone(got))) != len(got) || !isSuperset(got, upTo(1, 15, [2]int{6, 10}))):
					t.Errorf("%s got a1's %v: not once and in order, or missing more than the outage's", m.name, got)
				case tc.buffered:
					t.Logf("%s got %d of the 5 messages a published into its reconnect buffer (%d errors)", m.name, 5-missed, lost)
				}
			}
			for _, m := range []*member{a1, c1} {
				eventually(t, m.name+" to get b1's 5", func() bool { return len(seqs(m.received(t), "b1")) == 5 })
			}
			for _, n := range nodes {
				if st := n.b.Stats(); st.Dropped.SlowConsumer+st.Dropped.Malformed != 0 || st.Errors.Subscribe != 0 {
					t.Errorf("%s: %+v", n.name, st)
				}
			}
		})
	}
}

// isSuperset reports whether every element of sub is in s.
func isSuperset(s, sub []int) bool {
	for _, v := range sub {
		if !slices.Contains(s, v) {
			return false
		}
	}
	return true
}

// TestNodeStops: a node shuts down (its Runtime, then its Broker): its
// members are told, its subscriptions go, and the other nodes go on
// serving the room between them.
func TestNodeStops(t *testing.T) {
	s := startNATS(t, -1)
	a := startNode(t, s.ClientURL(), "a", nats.NoEcho())
	b := startNode(t, s.ClientURL(), "b", nats.NoEcho())
	c := startNode(t, s.ClientURL(), "c", nats.NoEcho())
	a1, b1, c1 := a.dial(t, "a1", codec.JSON), b.dial(t, "b1", codec.MsgPack), c.dial(t, "c1", codec.JSON)
	for _, m := range []*member{a1, b1, c1} {
		m.join(t, "lobby")
	}
	waitInterest(t, s, "lobby", a, b, c)

	c.stop(t)
	select {
	case <-c1.c.Done():
	case <-ctx(t).Done():
		t.Fatal("c's member was not disconnected")
	}
	waitInterest(t, s, "lobby", a, b)
	if st := c.b.Stats(); st.Subscriptions != 0 {
		t.Errorf("c after it stopped: %+v", st)
	}
	a1.say(t, "lobby", 1)
	b1.say(t, "lobby", 1)
	for _, m := range []*member{a1, b1} {
		g := m.wait(t, 2)
		if !slices.Equal(seqs(g, "a1"), []int{1}) || !slices.Equal(seqs(g, "b1"), []int{1}) {
			t.Errorf("%s got %+v", m.name, g)
		}
	}
}
