package cluster

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
	"github.com/shockwave-go/shockwave/session"
)

// presenceTTL is the time to live of the presence entries in these tests:
// how long a stopped node's users stay present on the others.
const presenceTTL = 2 * time.Second

// startPresenceNATS starts a NATS server with JetStream on 127.0.0.1;
// stopped at the test's end.
func startPresenceNATS(t testing.TB) *server.Server {
	t.Helper()
	return startJetStream(t, -1, t.TempDir())
}

// card is a user's presence info: it crosses nodes as JSON, and arrives
// as map[string]any{"name": ...}.
type card struct {
	Name string `json:"name"`
}

// pnode is a node whose rooms track presence by the user the client names
// in its URL (?user=), with the user's name in capitals as its info, and
// tell their members (codec.Router.PublishPresence); it records what its
// Changed heard.
type pnode struct {
	*node
	mu      sync.Mutex
	changes []string // "+user" or "-user", in order
}

// startPresence starts a pnode on the NATS server at url with a Presence
// of grace, and a Broker with PresenceTTL presenceTTL.
func startPresence(t testing.TB, url, name string, grace time.Duration) *pnode {
	t.Helper()
	n := &pnode{}
	// The events are encoded as the node's own Router would: the same
	// codecs, in the same order.
	events := codec.NewRouter(codec.JSON)
	n.node = startNodeRT(t, url, name, []natsbroker.Option{natsbroker.WithPresenceTTL(presenceTTL)}, []runtime.Option{
		runtime.WithAdmit(func(r *http.Request) (runtime.Admission, error) {
			return runtime.Admission{Identity: r.URL.Query().Get("user")}, nil
		}),
		runtime.WithRoomPresence(func(string) *runtime.Presence {
			return &runtime.Presence{
				Who: func(s *session.Session) (string, any) {
					u, _ := session.Identity[string](s)
					return u, card{Name: strings.ToUpper(u)}
				},
				Grace: grace,
				Changed: func(r *runtime.Room, key string, info any, present bool) {
					n.mu.Lock()
					n.changes = append(n.changes, sign(present)+key)
					n.mu.Unlock()
					events.PublishPresence(r, key, info, present)
				},
			}
		}),
	}, nats.NoEcho())
	return n
}

func sign(present bool) string {
	if present {
		return "+"
	}
	return "-"
}

// told returns what the node's Changed heard.
func (n *pnode) told() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.changes)
}

// settled waits until the node has put its entry: a room made on another
// node after that starts with its users.
func (n *pnode) settled(t testing.TB) {
	t.Helper()
	eventually(t, n.name+"'s entry", func() bool { return n.b.Stats().Presence.Puts > 0 })
}

// count returns how many are present in room on the node, -1 when it
// has no such room.
func (n *pnode) count(room string) int {
	r, ok := n.rt.Room(room)
	if !ok {
		return -1
	}
	return r.PresentCount()
}

// user is a client of one user in one room, with its join's reply and
// the presence events it got after it.
type user struct {
	name, room string
	c          *codec.Client
	joined     codec.Joined

	mu     sync.Mutex
	events []string // "+user" or "-user"
	infos  map[string]any
	errs   []error
}

// join connects name to n and joins room.
func (n *pnode) join(t testing.TB, name, room string) *user {
	t.Helper()
	u := &user{name: name, room: room, infos: map[string]any{}}
	c, err := codec.Dial(ctx(t), n.url+"?user="+name, codec.WithClientCodecs(codec.JSON), codec.WithReconnect(false),
		codec.WithClientErrorHandler(func(event string, err error) { u.fail(fmt.Errorf("%s: %w", event, err)) }))
	if err != nil {
		t.Fatal(err)
	}
	u.c = c
	t.Cleanup(func() { c.CloseNow() })
	codec.Listen(c, codec.EventPresence, func(ev codec.PresenceEvent, m codec.Meta) {
		u.mu.Lock()
		defer u.mu.Unlock()
		if m.Room != room {
			u.errs = append(u.errs, fmt.Errorf("a presence event of %q", m.Room))
			return
		}
		u.events = append(u.events, sign(ev.Present)+ev.Key)
		if ev.Present {
			u.infos[ev.Key] = ev.Info
		}
	})
	if u.joined, err = c.Join(ctx(t), room); err != nil {
		t.Fatalf("%s: join %q on %s: %v", name, room, n.name, err)
	}
	return u
}

func (u *user) fail(err error) {
	u.mu.Lock()
	u.errs = append(u.errs, err)
	u.mu.Unlock()
}

// got returns the presence events u got, failing t with u's errors.
func (u *user) got(t testing.TB) []string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.errs) > 0 {
		t.Fatalf("%s: %v", u.name, u.errs)
	}
	return slices.Clone(u.events)
}

// view returns who u sees present: its reply's list, then its events.
func (u *user) view(t testing.TB) []string {
	t.Helper()
	v := maps.Clone(u.joined.Present)
	for _, e := range u.got(t) {
		if e[0] == '+' {
			v[e[1:]] = true
		} else {
			delete(v, e[1:])
		}
	}
	return slices.Sorted(maps.Keys(v))
}

// converge waits until every node of ns with room counts want present,
// and every user of us sees exactly want.
func converge(t testing.TB, room string, ns []*pnode, us []*user, want ...string) {
	t.Helper()
	slices.Sort(want)
	eventually(t, fmt.Sprintf("presence in %q to be %v everywhere", room, want), func() bool {
		for _, n := range ns {
			if c := n.count(room); c != -1 && c != len(want) {
				return false
			}
		}
		for _, u := range us {
			if !slices.Equal(u.view(t), want) {
				return false
			}
		}
		return true
	})
}

// TestPresenceConverges: three nodes, users spread over them, joining one
// after the other: every node counts every user once, wherever connected
// (a user on two nodes once), each join's reply lists those there were,
// with their info as JSON, and every user then sees each arrival and
// departure once, its own arrival first; a second session of a user on
// another node, and the end of one of two, change nothing anywhere. A
// value in the bucket that does not decode is dropped and counted.
func TestPresenceConverges(t *testing.T) {
	s := startPresenceNATS(t)
	a := startPresence(t, s.ClientURL(), "a", time.Hour)
	b := startPresence(t, s.ClientURL(), "b", time.Hour)
	c := startPresence(t, s.ClientURL(), "c", time.Hour)
	nodes := []*pnode{a, b, c}
	const room = "lobby"

	// An observer on each node first, so that each node watches the room
	// before the users come: each step below then converges everywhere.
	// Each node's entry is in the bucket (its first put) before the next
	// node's room is made, which starts with it.
	var everyone []string
	var watching []*user
	for _, n := range nodes {
		watching = append(watching, n.join(t, "o"+n.name, room))
		everyone = append(everyone, "o"+n.name)
		n.settled(t)
		converge(t, room, nodes, nil, everyone...)
	}
	converge(t, room, nodes, watching, everyone...)

	names := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	var us []*user
	for i, name := range names {
		u := nodes[i%3].join(t, name, room)
		everyone = append(everyone, name)
		want := slices.Sorted(slices.Values(everyone))
		if got := slices.Sorted(maps.Keys(u.joined.Present)); !slices.Equal(got, want) || u.joined.Count != len(want) {
			t.Fatalf("%s's reply: present %v (count %d), want %v", name, got, u.joined.Count, want)
		}
		for k, info := range u.joined.Present {
			if want := map[string]any{"name": strings.ToUpper(k)}; !reflect.DeepEqual(info, want) {
				t.Errorf("%s's reply: %s's info %#v, want %#v", name, k, info, want)
			}
		}
		us = append(us, u)
		converge(t, room, nodes, append(slices.Clone(watching), us...), everyone...)
	}
	for i, u := range us {
		var want []string
		for _, name := range names[i:] {
			want = append(want, "+"+name)
		}
		if got := u.got(t); !slices.Equal(got, want) {
			t.Errorf("%s got %v, want %v: its own arrival, then each later one once", u.name, got, want)
		}
		for k, info := range u.infos {
			if want := map[string]any{"name": strings.ToUpper(k)}; !reflect.DeepEqual(info, want) {
				t.Errorf("%s: %s's info %#v, want %#v", u.name, k, info, want)
			}
		}
	}
	// Each node heard each arrival once, but those there were when its
	// room was made, its start.
	for i, n := range nodes {
		if got, want := n.told(), everyone[i:]; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(plus(want)))) {
			t.Errorf("%s's Changed heard %v, want each of %v arrive once", n.name, got, want)
		}
	}

	// u1's second session, on c, then u6's departure: only that is seen.
	u1c := c.join(t, "u1", room)
	if u1c.joined.Count != len(everyone) {
		t.Errorf("u1's second session: count %d, want %d", u1c.joined.Count, len(everyone))
	}
	if err := us[5].c.Leave(ctx(t), room); err != nil {
		t.Fatal(err)
	}
	everyone = slices.DeleteFunc(everyone, func(s string) bool { return s == "u6" })
	listening := append(slices.Clone(watching), us[1:5]...) // u1 and u6 leave
	converge(t, room, nodes, listening, everyone...)
	// u1's first session leaves, then her second: one departure.
	if err := us[0].c.Leave(ctx(t), room); err != nil {
		t.Fatal(err)
	}
	if err := u1c.c.Leave(ctx(t), room); err != nil {
		t.Fatal(err)
	}
	everyone = slices.DeleteFunc(everyone, func(s string) bool { return s == "u1" })
	converge(t, room, nodes, listening, everyone...)
	for _, u := range listening {
		got := u.got(t)
		if tail := got[len(got)-2:]; !slices.Equal(tail, []string{"-u6", "-u1"}) || count(got, "+u1") > 1 {
			t.Errorf("%s got %v, want u6's departure, then u1's, once each, and nothing of u1's second session", u.name, got)
		}
	}
	for _, n := range nodes {
		if got := n.told(); count(got, "-u1") != 1 || count(got, "+u1") > 1 {
			t.Errorf("%s's Changed heard %v: u1 arrived or departed twice", n.name, got)
		}
		st := n.b.Stats().Presence
		if st.Puts == 0 || st.Updates == 0 || st.Rooms != 1 || st.Malformed != 0 || st.Errors != (natsbroker.PresenceStats{}).Errors {
			t.Errorf("%s: %+v", n.name, st)
		}
		if m := n.metric(t, "shockwave.broker.presence.puts", ""); m < 1 {
			t.Errorf("%s: shockwave.broker.presence.puts %d", n.name, m)
		}
	}

	// A value that does not decode, as if from another node: dropped,
	// counted, and nobody sees a change.
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx(t), "sw_presence")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx(t), room+".zz.bad-1", []byte("not an entry")); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		eventually(t, n.name+" to drop the malformed entry", func() bool { return n.b.Stats().Presence.Malformed == 1 })
		if m := n.metric(t, "shockwave.broker.presence.dropped", "malformed"); m != 1 {
			t.Errorf("%s: shockwave.broker.presence.dropped{malformed} %d", n.name, m)
		}
		if got := n.count(room); got != len(everyone) {
			t.Errorf("%s counts %d present, want %d", n.name, got, len(everyone))
		}
	}
}

// TestPresenceNoStorm: a user whose connection drops and who reconnects
// to another node within the grace period is seen to leave or join by
// nobody, on any node, neither then nor when the first node's grace ends.
func TestPresenceNoStorm(t *testing.T) {
	const grace = 2 * time.Second
	s := startPresenceNATS(t)
	a := startPresence(t, s.ClientURL(), "a", grace)
	b := startPresence(t, s.ClientURL(), "b", grace)
	c := startPresence(t, s.ClientURL(), "c", grace)
	nodes := []*pnode{a, b, c}
	const room = "hall"
	wa := a.join(t, "wa", room)
	a.settled(t)
	wc := c.join(t, "wc", room)
	converge(t, room, nodes, []*user{wa, wc}, "wa", "wc")
	roamer := b.join(t, "roamer", room) // b's only user in the room
	converge(t, room, nodes, []*user{wa, wc, roamer}, "wa", "wc", "roamer")

	roamer.c.CloseNow()
	back := c.join(t, "roamer", room)
	if got := slices.Sorted(maps.Keys(back.joined.Present)); !slices.Equal(got, []string{"roamer", "wa", "wc"}) {
		t.Errorf("the roamer's reply on c: %v", got)
	}
	// b's room goes when the roamer's grace there ends: b deletes its
	// entry, as the roamer is on c.
	eventually(t, "b's room to go, its grace over", func() bool { return b.count(room) == -1 })
	// Someone new, on b: once everyone has seen her, nothing else was
	// seen.
	late := b.join(t, "late", room)
	converge(t, room, nodes, []*user{wa, wc, back, late}, "wa", "wc", "roamer", "late")
	for _, tc := range []struct {
		u    *user
		want []string
	}{
		{wa, []string{"+wa", "+wc", "+roamer", "+late"}},
		{wc, []string{"+wc", "+roamer", "+late"}},
		{back, []string{"+late"}},
		{late, []string{"+late"}},
	} {
		if got := tc.u.got(t); !slices.Equal(got, tc.want) {
			t.Errorf("%s got %v, want %v", tc.u.name, got, tc.want)
		}
	}
	for _, n := range nodes {
		if got := n.told(); slices.Contains(got, "-roamer") || count(got, "+roamer") > 1 {
			t.Errorf("%s's Changed heard %v: the roamer left or joined twice", n.name, got)
		}
	}
}

// TestPresenceNodeStops: a node that stops leaves its users' entries to
// expire: one who reconnects to another node within the time to live is
// never seen to leave; one who does not departs on every other node,
// within it, once; the expiry is counted.
func TestPresenceNodeStops(t *testing.T) {
	s := startPresenceNATS(t)
	a := startPresence(t, s.ClientURL(), "a", time.Hour)
	b := startPresence(t, s.ClientURL(), "b", time.Hour)
	c := startPresence(t, s.ClientURL(), "c", time.Hour)
	nodes := []*pnode{a, b, c}
	const room = "lobby"
	x := a.join(t, "x", room)
	a.settled(t)
	y := b.join(t, "y", room)
	converge(t, room, nodes, []*user{x, y}, "x", "y")
	c.join(t, "z1", room)
	c.join(t, "z2", room)
	converge(t, room, nodes, []*user{x, y}, "x", "y", "z1", "z2")

	c.stop(t)
	z1 := a.join(t, "z1", room) // back, on a, within the TTL
	if z1.joined.Count != 4 {
		t.Errorf("z1's reply on a: count %d, want 4: z2 still there, until c's entry expires", z1.joined.Count)
	}
	survivors := nodes[:2]
	converge(t, room, survivors, []*user{x, y, z1}, "x", "y", "z1")
	for _, u := range []*user{x, y} {
		got := u.got(t)
		if n := len(got); got[n-1] != "-z2" || slices.Contains(got, "-z1") || count(got, "+z1") > 1 {
			t.Errorf("%s got %v, want z2's departure once, and nothing of z1's move", u.name, got)
		}
	}
	for _, n := range survivors {
		eventually(t, n.name+" to count the expiry", func() bool { return n.b.Stats().Presence.Expired >= 1 })
		if m := n.metric(t, "shockwave.broker.presence.expired", ""); m < 1 {
			t.Errorf("%s: shockwave.broker.presence.expired %d", n.name, m)
		}
	}
}

// TestPresenceNATSRestart: the NATS server restarts, losing the bucket
// (it is in memory): the nodes make it again, put their entries again and
// watch afresh, so that the presence converges again, and arrivals and
// departures on one node reach the other.
func TestPresenceNATSRestart(t *testing.T) {
	dir := t.TempDir()
	s := startJetStream(t, -1, dir)
	port := natsPort(s)
	a := startPresence(t, s.ClientURL(), "a", time.Hour)
	b := startPresence(t, s.ClientURL(), "b", time.Hour)
	nodes := []*pnode{a, b}
	const room = "lobby"
	x := a.join(t, "x", room)
	a.settled(t)
	y := b.join(t, "y", room)
	converge(t, room, nodes, []*user{x, y}, "x", "y")

	stopNATS(s)
	s = startJetStream(t, port, dir)
	eventually(t, "the nodes to reconnect", func() bool { return a.nc.IsConnected() && b.nc.IsConnected() })
	converge(t, room, nodes, []*user{x, y}, "x", "y")
	z := a.join(t, "z", room)
	converge(t, room, nodes, []*user{x, y, z}, "x", "y", "z")
	if err := x.c.Leave(ctx(t), room); err != nil {
		t.Fatal(err)
	}
	converge(t, room, nodes, []*user{y, z}, "y", "z")
	if got := y.got(t); got[len(got)-2] != "+z" || got[len(got)-1] != "-x" {
		t.Errorf("y got %v, want z's arrival and x's departure, from the other node, last", got)
	}
}

// TestPresenceNoJetStream: on a NATS server without JetStream, a node
// still serves rooms with presence, its own alone, and counts the
// failure.
func TestPresenceNoJetStream(t *testing.T) {
	s := startNATS(t, -1)
	a := startPresence(t, s.ClientURL(), "a", time.Hour)
	u := a.join(t, "alice", "lobby")
	if u.joined.Count != 1 {
		t.Errorf("count %d", u.joined.Count)
	}
	eventually(t, "the bucket's failure to be counted", func() bool { return a.b.Stats().Presence.Errors.Bucket >= 1 })
	if m := a.metric(t, "shockwave.broker.presence.errors", "bucket"); m < 1 {
		t.Errorf("shockwave.broker.presence.errors{bucket} %d", m)
	}
	stopped := make(chan struct{})
	go func() {
		a.stop(t)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(bound):
		t.Fatal("the node did not stop")
	}
}

// plus returns each of names as an arrival.
func plus(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "+" + n
	}
	return out
}

// count returns how many times e is in list.
func count(list []string, e string) int {
	n := 0
	for _, x := range list {
		if x == e {
			n++
		}
	}
	return n
}
