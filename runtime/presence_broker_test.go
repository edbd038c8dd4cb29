package runtime_test

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// presenceBus shares the rooms' presence of several runtimes in memory,
// as a PresenceBroker does over NATS, but only when the test says
// (sync, expire), so that each step is deterministic. Messages go over
// its memBus.
type presenceBus struct {
	memBus
	mu     sync.Mutex
	shares map[string][]*memShare // by room, the live ones and those left at shutdown
	n      int
}

// presenceNode is one runtime's PresenceBroker on a presenceBus.
type presenceNode struct {
	*memNode
	bus *presenceBus
}

func (b *presenceBus) presenceNode(name string) *presenceNode {
	return &presenceNode{memNode: b.node(name), bus: b}
}

// memShare is one room's presence shared by one node.
type memShare struct {
	bus    *presenceBus
	id     string // the node's instance, as others name it
	room   string
	here   iter.Seq2[string, any]
	others func(string, map[string]any)
	dirty  atomic.Bool

	mu            sync.Mutex
	stopped, gone bool
	keys          map[string]any // as last sent
}

func (n *presenceNode) SharePresence(room string, here iter.Seq2[string, any], others func(string, map[string]any)) (runtime.SharedPresence, error) {
	b := n.bus
	b.mu.Lock()
	b.n++
	s := &memShare{bus: b, id: fmt.Sprintf("%s-%d", n.name, b.n), room: room, here: here, others: others}
	known := slices.Clone(b.shares[room])
	if b.shares == nil {
		b.shares = make(map[string][]*memShare)
	}
	b.shares[room] = append(b.shares[room], s)
	b.mu.Unlock()
	for _, o := range known {
		if keys := o.sent(); len(keys) > 0 {
			others(o.id, keys)
		}
	}
	return s, nil
}

func (s *memShare) Changed() { s.dirty.Store(true) }

func (s *memShare) Stop(gone bool) {
	if !gone && s.dirty.Swap(false) {
		s.read()
	}
	s.mu.Lock()
	s.stopped, s.gone = true, gone
	s.mu.Unlock()
}

// read reads here, as the keys to send.
func (s *memShare) read() {
	keys := maps.Collect(s.here)
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

// sent returns a copy of the keys last sent.
func (s *memShare) sent() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.keys)
}

func (s *memShare) state() (stopped, gone bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped, s.gone
}

// sync sends the keys of every share that changed to the other shares of
// its room, and takes away those of the shares stopped for good.
func (b *presenceBus) sync() {
	for _, s := range b.all() {
		switch stopped, gone := s.state(); {
		case stopped && gone:
			b.drop(s)
		case stopped: // left at shutdown, until expire
		case s.dirty.Swap(false):
			s.read()
			b.tell(s, s.sent())
		}
	}
}

// expire takes away the keys the shares of node left at shutdown: their
// time to live is over.
func (b *presenceBus) expire(node string) {
	for _, s := range b.all() {
		if stopped, gone := s.state(); stopped && !gone && strings.HasPrefix(s.id, node+"-") {
			b.drop(s)
		}
	}
}

func (b *presenceBus) all() []*memShare {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []*memShare
	for _, list := range b.shares {
		all = append(all, list...)
	}
	return all
}

// drop takes s away from its room, and tells the others.
func (b *presenceBus) drop(s *memShare) {
	b.mu.Lock()
	list := b.shares[s.room]
	if i := slices.Index(list, s); i >= 0 {
		b.shares[s.room] = slices.Delete(list, i, i+1)
	}
	b.mu.Unlock()
	b.tell(s, nil)
}

// tell gives keys, as s's, to the live shares of its room but s.
func (b *presenceBus) tell(s *memShare, keys map[string]any) {
	b.mu.Lock()
	to := slices.Clone(b.shares[s.room])
	b.mu.Unlock()
	for _, o := range to {
		if stopped, _ := o.state(); o != s && !stopped {
			o.others(s.id, maps.Clone(keys))
		}
	}
}

// presenceNodes is a runtime per node on one presenceBus, whose rooms
// track presence by the user the client names in its URL (?user=), and
// what each node's Changed said.
type presenceNodes struct {
	bus  *presenceBus
	rts  map[string]*runtime.Runtime
	urls map[string]string

	mu      sync.Mutex
	changes map[string][]string // by node
}

func newPresenceNodes(t *testing.T, grace time.Duration, names ...string) *presenceNodes {
	t.Helper()
	ns := &presenceNodes{bus: &presenceBus{}, rts: map[string]*runtime.Runtime{}, urls: map[string]string{}, changes: map[string][]string{}}
	for _, name := range names {
		ns.rts[name], ns.urls[name] = start(t, roomCommands,
			runtime.WithBroker(ns.bus.presenceNode(name)),
			runtime.WithAdmit(func(r *http.Request) (runtime.Admission, error) {
				return runtime.Admission{Identity: r.URL.Query().Get("user")}, nil
			}),
			runtime.WithRoomPresence(func(string) *runtime.Presence {
				return &runtime.Presence{
					Who: func(s *session.Session) (string, any) {
						u, _ := session.Identity[string](s)
						return u, strings.ToUpper(u)
					},
					Grace: grace,
					Changed: func(r *runtime.Room, key string, info any, present bool) {
						ns.mu.Lock()
						defer ns.mu.Unlock()
						what := "leave "
						if present {
							what = "join "
						}
						ns.changes[name] = append(ns.changes[name], fmt.Sprint(what, key, " ", info))
					},
				}
			}))
	}
	return ns
}

// dial connects user to node.
func (ns *presenceNodes) dial(t *testing.T, node, user string) *wire.Conn {
	t.Helper()
	return dial(t, ns.urls[node]+"?user="+user)
}

// told returns what node's Changed was told since the last call, and
// forgets it.
func (ns *presenceNodes) told(node string) []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	got := ns.changes[node]
	ns.changes[node] = nil
	return got
}

// present returns who is present in room on node, "-" if the room is not
// there.
func (ns *presenceNodes) present(t *testing.T, node, room string) string {
	t.Helper()
	r, ok := ns.rts[node].Room(room)
	if !ok {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(maps.Collect(r.Present())))
	if n := r.PresentCount(); n != len(keys) {
		t.Errorf("%s: PresentCount %d, Present yields %v", node, n, keys)
	}
	return strings.Join(keys, " ")
}

// TestPresenceAcrossNodes: with a PresenceBroker, a room's presence is
// that of every node, each key once however many nodes it is on;
// Changed is told on each node of each arrival and departure of the
// union, once, and of nothing else; the keys already on other nodes when
// a node's room is made are its start, not arrivals.
func TestPresenceAcrossNodes(t *testing.T) {
	ns := newPresenceNodes(t, time.Hour, "a", "b", "c")
	conns := map[string]*wire.Conn{}
	for _, step := range []struct {
		do      string            // "NODE USER join|leave|end", or "sync"
		told    map[string]string // by node, what Changed was told; none if absent
		present map[string]string // by node, who is present
	}{
		{do: "a alice join", told: map[string]string{"a": "join alice ALICE"}, present: map[string]string{"a": "alice", "b": "-"}},
		{do: "sync", present: map[string]string{"a": "alice", "b": "-"}},
		// b's room starts with alice: only bob arrives.
		{do: "b bob join", told: map[string]string{"b": "join bob BOB"}, present: map[string]string{"a": "alice", "b": "alice bob"}},
		{do: "sync", told: map[string]string{"a": "join bob BOB"}, present: map[string]string{"a": "alice bob", "b": "alice bob"}},
		// alice's second tab, on b: nothing changes anywhere.
		{do: "b alice join", present: map[string]string{"a": "alice bob", "b": "alice bob"}},
		{do: "sync", present: map[string]string{"a": "alice bob", "b": "alice bob"}},
		{do: "c carol join", told: map[string]string{"c": "join carol CAROL"}, present: map[string]string{"c": "alice bob carol"}},
		{do: "sync", told: map[string]string{"a": "join carol CAROL", "b": "join carol CAROL"},
			present: map[string]string{"a": "alice bob carol", "b": "alice bob carol", "c": "alice bob carol"}},
		// alice leaves a: she is still on b. a's room goes (its last
		// member), and a is told nothing of the keys it forgets.
		{do: "a alice leave", present: map[string]string{"a": "-", "b": "alice bob carol"}},
		{do: "sync", present: map[string]string{"b": "alice bob carol", "c": "alice bob carol"}},
		{do: "b alice leave", told: map[string]string{"b": "leave alice ALICE"}, present: map[string]string{"b": "bob carol"}},
		{do: "sync", told: map[string]string{"c": "leave alice ALICE"}, present: map[string]string{"b": "bob carol", "c": "bob carol"}},
		// carol's connection drops: her grace holds her, and c's room.
		{do: "c carol end", present: map[string]string{"c": "bob carol"}},
		{do: "sync", present: map[string]string{"b": "bob carol", "c": "bob carol"}},
		// She comes back to b within it: nobody sees her leave or join.
		{do: "b carol join", present: map[string]string{"b": "bob carol"}},
		{do: "sync", present: map[string]string{"b": "bob carol", "c": "bob carol"}},
	} {
		f := strings.Fields(step.do)
		switch {
		case f[0] == "sync":
			ns.bus.sync()
		case f[2] == "join":
			c := ns.dial(t, f[0], f[1])
			conns[f[0]+" "+f[1]] = c
			ask(t, c, "join lobby")
		case f[2] == "leave":
			ask(t, conns[f[0]+" "+f[1]], "leave lobby")
		case f[2] == "end":
			conns[f[0]+" "+f[1]].CloseNow()
			eventually(t, bound, step.do, func() bool { r, ok := ns.rts[f[0]].Room("lobby"); return ok && r.Len() == 0 })
		}
		for _, node := range []string{"a", "b", "c"} {
			var want []string
			if w := step.told[node]; w != "" {
				want = []string{w}
			}
			if got := ns.told(node); !slices.Equal(got, want) {
				t.Errorf("%s: %s told %q, want %q", step.do, node, got, want)
			}
			if want, ok := step.present[node]; ok {
				if got := ns.present(t, node, "lobby"); got != want {
					t.Errorf("%s: present on %s: %q, want %q", step.do, node, got, want)
				}
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}

// TestPresenceNodeStops: a node that shuts down leaves its users to the
// other nodes (SharedPresence.Stop(false)): they stay present there until
// their keys expire, then depart, unless they came back on another node
// meanwhile: then nobody sees them leave. A room whose presence is
// shared, and whose last user leaves for good, takes its keys away at
// once (Stop(true)).
func TestPresenceNodeStops(t *testing.T) {
	ns := newPresenceNodes(t, time.Hour, "a", "b")
	alice, carol := ns.dial(t, "a", "alice"), ns.dial(t, "a", "carol")
	ask(t, alice, "join lobby")
	ask(t, carol, "join lobby")
	ask(t, ns.dial(t, "b", "bob"), "join lobby")
	ns.bus.sync()
	if got := ns.present(t, "b", "lobby"); got != "alice bob carol" {
		t.Fatalf("present on b: %q", got)
	}
	ns.told("a")
	ns.told("b")

	alice.CloseNow() // their connections drop as a's end: their graces begin
	carol.CloseNow()
	eventually(t, bound, "a's sessions to end", func() bool { return ns.rts["a"].Len() == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := ns.rts["a"].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ns.bus.sync()
	if got, told := ns.present(t, "b", "lobby"), ns.told("b"); got != "alice bob carol" || told != nil {
		t.Fatalf("a shut down: present on b %q, told %q; want a's users still there, nothing told", got, told)
	}
	ask(t, ns.dial(t, "b", "alice"), "join lobby") // alice is back, on b
	ns.bus.sync()
	ns.bus.expire("a")
	if got, told := ns.present(t, "b", "lobby"), ns.told("b"); got != "alice bob" || !slices.Equal(told, []string{"leave carol CAROL"}) {
		t.Fatalf("a's keys expired: present on b %q, told %q; want carol gone, alice not", got, told)
	}
}

// TestSignalLocal: SignalLocal reaches the members of its node only,
// where Signal crosses to the others.
func TestSignalLocal(t *testing.T) {
	bus := &memBus{}
	cmds := handler{msg: func(s *session.Session, m session.Message) error {
		f := strings.Fields(string(m.Data))
		rt := runtime.Of(s)
		if f[0] == "join" {
			rt.Join(f[1], s)
			return s.Send(wire.OpText, []byte("ok"))
		}
		r, _ := rt.Room(f[1])
		e := &keyedMsg{posMsg{text: f[2], variants: 2}}
		var err error
		if f[0] == "local" {
			_, err = r.SignalLocal(context.Background(), s, e)
		} else {
			_, err = r.Signal(context.Background(), s, e)
		}
		return s.Send(wire.OpText, fmt.Appendf(nil, "ok %v", err))
	}}
	opts := []runtime.Option{runtime.WithSubprotocols("v0", "v1"), runtime.WithMessageRate(-1, 0)}
	_, urlA := start(t, cmds, append(opts, runtime.WithBroker(bus.node("a")))...)
	_, urlB := start(t, cmds, append(opts, runtime.WithBroker(bus.node("b")))...)
	a1, a2, b1 := dial(t, urlA), dial(t, urlA), dial(t, urlB)
	for _, c := range []*wire.Conn{a1, a2, b1} {
		ask(t, c, "join lobby")
	}
	if got := ask(t, a1, "local lobby x"); got != "ok <nil>" {
		t.Fatalf("SignalLocal: %q", got)
	}
	if got := next(t, a2); got != "0 0 x" {
		t.Fatalf("a2 got %q", got)
	}
	ask(t, a1, "signal lobby y")
	next(t, a2)
	if got := next(t, b1); got != "0 0 y" {
		t.Fatalf("b1 got %q, want the Signal y alone: SignalLocal x crossed?", got)
	}
}
