package runtime

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/shockwave-go/shockwave/session"
)

// fakePresence is a PresenceBroker whose other nodes the test plays:
// SharePresence hands the Runtime the keys of initial, and the test
// calls others itself.
type fakePresence struct {
	initial map[string]map[string]any
	room    string
	here    iter.Seq2[string, any]
	others  func(string, map[string]any)
	changed int  // Changed calls
	stopped bool // Stop was called
	gone    bool // Stop's
}

func (f *fakePresence) Subscribe(string, func(context.Context, Carried)) (func(), error) {
	return func() {}, nil
}
func (f *fakePresence) Publish(context.Context, string, Carried) error { return nil }

func (f *fakePresence) SharePresence(room string, here iter.Seq2[string, any], others func(string, map[string]any)) (SharedPresence, error) {
	f.room, f.here, f.others = room, here, others
	for node, keys := range f.initial {
		others(node, maps.Clone(keys))
	}
	return f, nil
}

func (f *fakePresence) Changed()       { f.changed++ }
func (f *fakePresence) Stop(gone bool) { f.stopped, f.gone = true, gone }

// TestPresenceUnion: a room's presence is the union of this node's keys
// and the other nodes': a key counts once wherever it is; Changed hears
// a key arrive when it enters the union and depart when it leaves it,
// and nothing when it only moves between nodes; this node's info wins
// over the others'; the Broker is told when this node's own keys change,
// and reads them (here) without the other nodes'. The keys there were
// when the room was shared are its start, not arrivals. When the last
// key held here goes, the room goes, the sharing stops for good, and the
// other nodes' news are ignored.
func TestPresenceUnion(t *testing.T) {
	fake := &fakePresence{initial: map[string]map[string]any{"x": {"zed": "Z"}}}
	var who string
	var told []string
	rt, err := New(nopHandler{}, WithBroker(fake), WithRoomPresence(func(string) *Presence {
		return &Presence{
			Who: func(*session.Session) (string, any) { return who, strings.ToUpper(who) },
			Changed: func(_ *Room, key string, info any, present bool) {
				told = append(told, fmt.Sprint(map[bool]string{true: "+", false: "-"}[present], key, " ", info))
			},
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Shutdown(context.Background()) })
	r := rt.room("lobby")
	p := r.presence

	for _, step := range []struct {
		do      string // "+KEY", "-KEY" (a session of it here), or "NODE: KEYS" ("-" for none)
		told    string // what Changed heard, "; "-separated
		present string // the union, KEY=INFO sorted
		here    string // this node's keys, as the Broker reads them
		changed int    // Changed calls so far
	}{
		{"+alice", "+alice ALICE", "alice=ALICE zed=Z", "alice", 1},
		{"y: alice bob", "+bob bob", "alice=ALICE bob=bob zed=Z", "alice", 1},
		{"+alice", "", "alice=ALICE bob=bob zed=Z", "alice", 1},
		{"-alice", "", "alice=ALICE bob=bob zed=Z", "alice", 1},
		{"x: -", "-zed Z", "alice=ALICE bob=bob", "alice", 1},
		{"y: bob", "", "alice=ALICE bob=bob", "alice", 1},
		{"z: bob carol", "+carol carol", "alice=ALICE bob=bob carol=carol", "alice", 1},
		{"+bob", "", "alice=ALICE bob=BOB carol=carol", "alice bob", 2},
		{"-bob", "", "alice=ALICE bob=BOB carol=carol", "alice", 3},
		{"y: -", "", "alice=ALICE bob=BOB carol=carol", "alice", 3},
		{"z: -", "-bob BOB; -carol carol", "alice=ALICE", "alice", 3},
		{"+dave", "+dave DAVE", "alice=ALICE dave=DAVE", "alice dave", 4},
		{"-dave", "-dave DAVE", "alice=ALICE", "alice", 5},
		{"-alice", "-alice ALICE", "", "", 6}, // the last key here: the room goes
		{"y: eve", "", "", "", 6},             // ignored
	} {
		told = nil
		if node, keys, ok := strings.Cut(step.do, ": "); ok {
			m := map[string]any{}
			for _, k := range strings.Fields(keys) {
				if k != "-" {
					m[k] = k
				}
			}
			fake.others(node, m)
		} else {
			who = step.do[1:]
			if step.do[0] == '+' {
				p.joined(r, nil)
			} else {
				p.left(r, nil, false)
			}
		}
		slices.Sort(told) // one step's departures come in map order
		if got := strings.Join(told, "; "); got != step.told {
			t.Errorf("%s: told %q, want %q", step.do, got, step.told)
		}
		var present []string
		for k, info := range r.Present() {
			present = append(present, fmt.Sprint(k, "=", info))
		}
		slices.Sort(present)
		if got := strings.Join(present, " "); got != step.present || r.PresentCount() != len(present) {
			t.Errorf("%s: present %q (count %d), want %q", step.do, got, r.PresentCount(), step.present)
		}
		if got := strings.Join(slices.Sorted(maps.Keys(maps.Collect(p.here))), " "); got != step.here {
			t.Errorf("%s: here %q, want %q", step.do, got, step.here)
		}
		if fake.changed != step.changed {
			t.Errorf("%s: the Broker was told of %d changes, want %d", step.do, fake.changed, step.changed)
		}
	}
	if !r.isDead() || !fake.stopped || !fake.gone {
		t.Errorf("the last key gone: room dead %v, sharing stopped %v, for good %v", r.isDead(), fake.stopped, fake.gone)
	}
	if fake.room != "lobby" {
		t.Errorf("shared %q", fake.room)
	}
}

// nopHandler is a session.Handler that does nothing.
type nopHandler struct{}

func (nopHandler) OnOpen(*session.Session) error                     { return nil }
func (nopHandler) OnMessage(*session.Session, session.Message) error { return nil }
func (nopHandler) OnClose(*session.Session, error)                   {}
