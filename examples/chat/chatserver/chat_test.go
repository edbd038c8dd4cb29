package chatserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// Shorter names for the events.
const (
	join     = codec.EventJoin
	leave    = codec.EventLeave
	presence = codec.EventPresence
	send     = chatserver.EventSend
	private  = chatserver.EventPrivate
	typing   = chatserver.EventTyping
	rooms    = chatserver.EventRooms
	msg      = chatserver.EventMsg
)

// Presence settings of the tests: a grace far longer than any test, so
// that a user who comes back always does so within it, and none, so that
// a leave is told at once.
const (
	longGrace = time.Hour
	noGrace   = -1
)

func text(s string) chatserver.SendRequest { return chatserver.SendRequest{Text: s} }

// message takes the next chat.msg in room and returns it with its
// position.
func message(c *client, room string) (chatserver.Message, position) {
	c.t.Helper()
	e := c.next("a message in "+room, func(e envelope) bool { return e.Event == msg && e.Room == room })
	var m chatserver.Message
	if err := json.Unmarshal(e.Data, &m); err != nil {
		c.t.Fatalf("%s: %s: %v", c.name, e, err)
	}
	return m, position{e.Epoch, e.Offset}
}

// wantMessages takes the next len(texts) chat.msg events in room, which
// must be texts, in order.
func wantMessages(c *client, room string, texts ...string) {
	c.t.Helper()
	for _, want := range texts {
		if m, _ := message(c, room); m.Text != want {
			c.t.Fatalf("%s got %q in %s, want %q", c.name, m.Text, room, want)
		}
	}
}

// isPresence matches the room.presence events of room about key.
func isPresence(room, key string) func(envelope) bool {
	return func(e envelope) bool {
		if e.Event != presence || e.Room != room {
			return false
		}
		var p codec.PresenceEvent
		return json.Unmarshal(e.Data, &p) == nil && p.Key == key
	}
}

// wantPresence takes the next room.presence event of room about key,
// which must say that key is present, or not.
func wantPresence(c *client, room, key string, present bool) {
	c.t.Helper()
	e := c.next(fmt.Sprintf("presence of %s in %s", key, room), isPresence(room, key))
	var p codec.PresenceEvent
	json.Unmarshal(e.Data, &p)
	if p.Present != present {
		c.t.Fatalf("%s was told %s is present: %v, want %v", c.name, key, p.Present, present)
	}
}

// waitFor polls cond until it holds, within bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, bound)
		}
	}
}

// members returns how many connections are in the server's room.
func members(srv *chatserver.Server, room string) int {
	r, ok := chatserver.RuntimeOf(srv).Room(room)
	if !ok {
		return 0
	}
	return r.Len()
}

// whileAway waits for the server to see that the member of room other
// than c has dropped, then has c say n things there, "missed 1" to
// "missed n", and returns them.
func whileAway(t *testing.T, srv *chatserver.Server, c *client, room string, n int) []string {
	t.Helper()
	waitFor(t, "the drop on the server", func() bool { return members(srv, room) == 1 })
	var said []string
	for i := 1; i <= n; i++ {
		said = append(said, fmt.Sprint("missed ", i))
		c.ok(send, room, text(said[i-1]))
	}
	return said
}

// roomList returns the room list, as c asks for it.
func roomList(c *client) []chatserver.RoomInfo {
	c.t.Helper()
	var out []chatserver.RoomInfo
	if err := json.Unmarshal(c.ok(rooms, "", nil), &out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

func TestJoinAndSend(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	j := alice.join("lobby", 0)
	if st := alice.checkState(j); j.Recovered || j.Replayed != 0 || !slices.Equal(present(j.Present), []string{"alice"}) || st.MaxLength != 2000 {
		t.Fatalf("alice's join: %+v, state %+v", j, st)
	}
	if j := bob.join("lobby", 0); !slices.Equal(present(j.Present), []string{"alice", "bob"}) {
		t.Fatalf("bob's join: present %q", present(j.Present))
	}

	alice.ok(send, "lobby", text("hello <b>bob</b>"))
	for _, c := range []*client{alice, bob} {
		m, p := message(c, "lobby")
		if m.From != "alice" || m.Text != "hello <b>bob</b>" || m.At == 0 || p != (position{j.Epoch, 1}) {
			t.Errorf("%s got %+v at %+v", c.name, m, p)
		}
	}
	bob.emit(send, "lobby", text("hi")) // an event without an id: no reply
	for _, c := range []*client{alice, bob} {
		if m, p := message(c, "lobby"); m.From != "bob" || m.Text != "hi" || p != (position{j.Epoch, 2}) {
			t.Errorf("%s got %+v at %+v", c.name, m, p)
		}
	}
}

// TestPresence: the members of a room are told who arrives and who
// leaves, the arriving user too, after its join's reply; a user's second
// connection is the same member, announced neither as it joins nor as it
// leaves.
func TestPresence(t *testing.T) {
	_, url := server(t, chatserver.Config{Grace: noGrace})
	alice, bob, carol := dial(t, url, "alice"), dial(t, url, "bob"), dial(t, url, "carol")
	alice.join("lobby", 0)
	wantPresence(alice, "lobby", "alice", true)

	bob.join("lobby", 0)
	wantPresence(alice, "lobby", "bob", true)
	wantPresence(bob, "lobby", "bob", true)
	if j := carol.join("lobby", 0); !slices.Equal(present(j.Present), []string{"alice", "bob", "carol"}) {
		t.Fatalf("carol's join: present %q", present(j.Present))
	}
	wantPresence(alice, "lobby", "carol", true)
	wantPresence(bob, "lobby", "carol", true)

	bob.ok(leave, "lobby", nil)
	wantPresence(alice, "lobby", "bob", false)
	wantPresence(carol, "lobby", "bob", false)
	bob.fails(chatserver.CodeNotJoined, send, "lobby", text("still here?"))

	carol.drop() // a connection that ends leaves its rooms
	wantPresence(alice, "lobby", "carol", false)

	// Alice in a second tab: one member, who gets what the room says.
	tab := dialAs(t, url, "alice", "alice's second tab")
	if j := tab.join("lobby", 0); !slices.Equal(present(j.Present), []string{"alice"}) {
		t.Fatalf("the second tab's join: present %q", present(j.Present))
	}
	alice.ok(send, "lobby", text("to both tabs"))
	wantMessages(tab, "lobby", "to both tabs")
	tab.ok(leave, "lobby", nil)
	alice.ok(send, "lobby", text("barrier"))
	wantMessages(alice, "lobby", "to both tabs", "barrier")
	if alice.has(isPresence("lobby", "alice")) || tab.has(isPresence("lobby", "alice")) {
		t.Error("alice's second tab was announced")
	}
}

// TestPresenceGrace: a user whose connection drops and who comes back
// within the grace period was never gone: the others are told nothing,
// and the room lists the user meanwhile.
func TestPresenceGrace(t *testing.T) {
	srv, url := server(t, chatserver.Config{Grace: longGrace})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby", 0)
	bob.join("lobby", 0)
	wantPresence(alice, "lobby", "bob", true)

	alice.drop()
	waitFor(t, "alice's drop on the server", func() bool { return members(srv, "lobby") == 1 })
	if got := roomList(bob); !slices.Contains(got, chatserver.RoomInfo{Name: "lobby", Members: 2}) {
		t.Errorf("the room list during alice's grace: %+v", got)
	}
	bob.ok(send, "lobby", text("are you there?"))

	again := dialAs(t, url, "alice", "alice again")
	if j := again.join("lobby", 0); !slices.Equal(present(j.Present), []string{"alice", "bob"}) {
		t.Fatalf("alice's join again: present %q", present(j.Present))
	}
	bob.ok(send, "lobby", text("barrier"))
	wantMessages(bob, "lobby", "are you there?", "barrier")
	wantMessages(again, "lobby", "barrier")
	if bob.has(isPresence("lobby", "alice")) {
		t.Error("bob was told of alice's drop or of her return")
	}
}

// TestPresenceGraceOver: a user who does not come back within the grace
// period is seen to leave once it is over.
func TestPresenceGraceOver(t *testing.T) {
	_, url := server(t, chatserver.Config{Grace: 10 * time.Millisecond})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby", 0)
	bob.join("lobby", 0)
	alice.drop()
	wantPresence(bob, "lobby", "alice", false)
	if got := roomList(bob); !slices.Contains(got, chatserver.RoomInfo{Name: "lobby", Members: 1}) {
		t.Errorf("the room list after alice left: %+v", got)
	}
}

func TestRoomList(t *testing.T) {
	_, url := server(t, chatserver.Config{Rooms: []string{"lobby", "help"}, Grace: noGrace})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")

	if got, want := roomList(alice), []chatserver.RoomInfo{{Name: "help"}, {Name: "lobby"}}; !slices.Equal(got, want) {
		t.Fatalf("rooms %+v, want %+v", got, want)
	}
	alice.join("games", 0)
	bob.join("games", 0)
	bob.join("lobby", 0)
	tab := dialAs(t, url, "bob", "bob's second tab") // a user counts once
	tab.join("lobby", 0)
	want := []chatserver.RoomInfo{{Name: "games", Members: 2}, {Name: "help"}, {Name: "lobby", Members: 1}}
	if got := roomList(alice); !slices.Equal(got, want) {
		t.Fatalf("rooms %+v, want %+v", got, want)
	}
	alice.ok(leave, "games", nil)
	bob.ok(leave, "games", nil)
	want = []chatserver.RoomInfo{{Name: "help"}, {Name: "lobby", Members: 1}} // empty rooms are not listed
	if got := roomList(alice); !slices.Equal(got, want) {
		t.Fatalf("rooms %+v, want %+v", got, want)
	}
}

// TestHistoryOnJoin: a client that joins asks for the room's last
// messages, which follow the join's reply, in order, then what is said
// after.
func TestHistoryOnJoin(t *testing.T) {
	_, url := server(t, chatserver.Config{Rate: 1e6})
	alice, bob, carol, dave := dial(t, url, "alice"), dial(t, url, "bob"), dial(t, url, "carol"), dial(t, url, "dave")
	first := alice.join("lobby", 100)
	const sent = 105
	for i := 1; i <= sent; i++ {
		alice.emit(send, "lobby", text(fmt.Sprintf("message %d", i)))
	}
	alice.ok(send, "lobby", text("last")) // replied to after the 105 are handled

	j := bob.join("lobby", 100)
	if j.Recovered || j.Replayed != 100 || j.Epoch != first.Epoch || j.Offset != 6 {
		t.Fatalf("bob's join: %+v, want the last 100 of 106 messages, after offset 6", j)
	}
	for i := range 100 { // the last 100 of 106: 7 to 106
		want := fmt.Sprintf("message %d", 7+i)
		if i == 99 {
			want = "last"
		}
		if m, p := message(bob, "lobby"); m.Text != want || m.From != "alice" || p != (position{j.Epoch, uint64(7 + i)}) {
			t.Fatalf("bob's message %d: %+v at %+v, want %q", i, m, p, want)
		}
	}
	// What is said after the join follows, once.
	alice.ok(send, "lobby", text("after"))
	if m, p := message(bob, "lobby"); m.Text != "after" || p.offset != 107 {
		t.Fatalf("bob got %+v at %+v after joining, want message 107", m, p)
	}

	if j := carol.join("lobby", 3); j.Replayed != 3 {
		t.Fatalf("carol's join: %+v, want 3 messages", j)
	}
	wantMessages(carol, "lobby", "message 105", "last", "after")
	if j := dave.join("lobby", 0); j.Replayed != 0 || j.Offset != 107 {
		t.Fatalf("dave's join: %+v, want no message, at offset 107", j)
	}
	alice.ok(send, "lobby", text("fresh"))
	wantMessages(dave, "lobby", "fresh")
	wantMessages(carol, "lobby", "fresh")
}

// TestRecover: a client that comes back on a new connection with the
// position it last saw gets every message it missed, once, in order,
// before the room's next one; from a position the room cannot serve, it
// is told so and gets the latest messages instead.
func TestRecover(t *testing.T) {
	srv, url := server(t, chatserver.Config{Grace: longGrace})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby", 0)
	bob.join("lobby", 0)
	for _, s := range []string{"one", "two", "three"} {
		bob.ok(send, "lobby", text(s))
	}
	wantMessages(alice, "lobby", "one", "two", "three")
	seen := alice.position("lobby")

	alice.drop()
	missed := whileAway(t, srv, bob, "lobby", 5)

	again := dialAs(t, url, "alice", "alice again")
	r := again.rejoin("lobby", seen, 100)
	if !r.Recovered || r.Replayed != 5 || r.Epoch != seen.epoch || r.Offset != seen.offset {
		t.Fatalf("alice's rejoin from %+v: %+v, want the 5 she missed", seen, r)
	}
	for i, want := range missed {
		if m, p := message(again, "lobby"); m.Text != want || p != (position{seen.epoch, seen.offset + uint64(i+1)}) {
			t.Fatalf("alice's message %d: %+v at %+v, want %q", i, m, p, want)
		}
	}
	bob.ok(send, "lobby", text("live"))
	wantMessages(again, "lobby", "live")
	again.ok(rooms, "", nil) // after anything else the room sent her
	if again.has(func(e envelope) bool { return e.Event == msg }) {
		t.Error("alice got a message twice")
	}

	// Another epoch: the room cannot tell what she missed.
	third := dialAs(t, url, "alice", "alice's third")
	r = third.rejoin("lobby", position{seen.epoch ^ 1, seen.offset}, 2)
	if r.Recovered || r.Replayed != 2 {
		t.Fatalf("a rejoin from another epoch: %+v, want not recovered, the 2 latest", r)
	}
	wantMessages(third, "lobby", "missed 5", "live")
}

// TestReconnect: a client that reconnects by itself (codec.WithReconnect)
// comes back into its room after its network failed: it is told it
// recovered, it gets what it missed, once and in order, and the room never
// saw it leave.
func TestReconnect(t *testing.T) {
	srv, url := server(t, chatserver.Config{Grace: longGrace})
	bob := dial(t, url, "bob")
	bob.join("lobby", 0)
	link := newNetwork() // alice's
	resumed := make(chan codec.Joined, 1)
	cookie := login(t, url, "alice")
	alice := dialCookie(t, url, "alice", "alice", cookie,
		codec.WithReconnect(true),
		codec.WithDialOptions(wire.DialOptions{Header: cookieHeader(cookie), NetDialContext: link.dial}),
		codec.WithOnResume(func(j codec.Joined) {
			select {
			case resumed <- j:
			default: // a second one: the first is what the test reads
			}
		}))
	alice.join("lobby", 100)
	wantPresence(bob, "lobby", "alice", true)
	bob.ok(send, "lobby", text("before"))
	wantMessages(alice, "lobby", "before")

	link.down()
	missed := whileAway(t, srv, bob, "lobby", 5)
	link.restore()
	select {
	case j := <-resumed:
		if j.Room != "lobby" || !j.Recovered || j.Replayed != len(missed) || !slices.Equal(present(j.Present), []string{"alice", "bob"}) {
			t.Fatalf("alice's re-join: %+v, want the %d she missed", j, len(missed))
		}
	case <-time.After(bound):
		t.Fatalf("alice did not re-join in %v", bound)
	}
	wantMessages(alice, "lobby", missed...)
	bob.ok(send, "lobby", text("after"))
	wantMessages(alice, "lobby", "after")
	alice.ok(rooms, "", nil) // after anything else the room sent her
	if alice.has(func(e envelope) bool { return e.Event == msg }) {
		t.Error("alice got a message twice")
	}
	wantMessages(bob, "lobby", append(append([]string{"before"}, missed...), "after")...)
	if bob.has(isPresence("lobby", "alice")) {
		t.Error("bob was told of alice's drop or of her return")
	}
}

// TestRecoverTrimmed: a client that missed more than the room keeps is
// told it did not recover, and gets the latest messages the room has.
func TestRecoverTrimmed(t *testing.T) {
	srv, url := server(t, chatserver.Config{History: 3, Grace: longGrace})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby", 0)
	bob.join("lobby", 0)
	bob.ok(send, "lobby", text("seen"))
	wantMessages(alice, "lobby", "seen")
	seen := alice.position("lobby")
	alice.drop()
	whileAway(t, srv, bob, "lobby", 5)
	again := dialAs(t, url, "alice", "alice again")
	if r := again.rejoin("lobby", seen, 100); r.Recovered || r.Replayed != 3 {
		t.Fatalf("alice's rejoin: %+v, want not recovered, the 3 the room keeps", r)
	}
	wantMessages(again, "lobby", "missed 3", "missed 4", "missed 5")
}

// TestTyping: typing is told to the others, live, and never kept: a
// client that joins, or comes back, gets the messages and not the typing.
func TestTyping(t *testing.T) {
	srv, url := server(t, chatserver.Config{Grace: longGrace})
	alice, bob, carol := dial(t, url, "alice"), dial(t, url, "bob"), dial(t, url, "carol")
	alice.join("lobby", 0)
	bob.join("lobby", 0)

	alice.emit(typing, "lobby", nil)
	if ty := event[chatserver.Typing](bob, typing, "lobby"); ty.Nick != "alice" {
		t.Fatalf("bob got typing %+v", ty)
	}
	alice.ok(send, "lobby", text("done typing"))
	wantMessages(alice, "lobby", "done typing")
	wantMessages(bob, "lobby", "done typing")
	if alice.has(func(e envelope) bool { return e.Event == typing }) {
		t.Error("alice was told that she is typing")
	}

	seen := bob.position("lobby")
	bob.drop()
	waitFor(t, "bob's drop on the server", func() bool { return members(srv, "lobby") == 1 })
	alice.emit(typing, "lobby", nil)
	alice.ok(send, "lobby", text("while you were away"))

	again := dialAs(t, url, "bob", "bob again")
	if r := again.rejoin("lobby", seen, 100); !r.Recovered || r.Replayed != 1 {
		t.Fatalf("bob's rejoin: %+v, want the one message he missed", r)
	}
	if j := carol.join("lobby", 100); j.Replayed != 2 {
		t.Fatalf("carol's join: %+v, want the 2 messages", j)
	}
	alice.ok(send, "lobby", text("barrier"))
	wantMessages(again, "lobby", "while you were away", "barrier")
	wantMessages(carol, "lobby", "done typing", "while you were away", "barrier")
	for _, c := range []*client{again, carol} {
		if c.has(func(e envelope) bool { return e.Event == typing }) {
			t.Errorf("%s was replayed a typing event", c.name)
		}
	}

	again.ok(leave, "lobby", nil)
	again.emit(typing, "lobby", nil)
	if err := again.errorEvent(); err.Code != chatserver.CodeNotJoined {
		t.Fatalf("typing out of the room: %v", err)
	}
}

func TestPrivateMessage(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice, bob, carol := dial(t, url, "alice"), dial(t, url, "bob"), dial(t, url, "carol")
	tab := dialAs(t, url, "bob", "bob's second tab")
	for _, c := range []*client{alice, bob, carol, tab} {
		c.join("lobby", 0)
	}

	alice.ok(private, "lobby", chatserver.PrivateRequest{To: "bob", Text: "psst"})
	for _, c := range []*client{bob, tab, alice} {
		p := event[chatserver.Private](c, private, "")
		if p.From != "alice" || p.To != "bob" || p.Text != "psst" || p.Room != "lobby" || p.At == 0 {
			t.Errorf("%s got %+v", c.name, p)
		}
	}
	// Carol gets alice's next room message; a private message to her
	// would have been queued before it.
	alice.ok(send, "lobby", text("hello all"))
	wantMessages(carol, "lobby", "hello all")
	if carol.has(func(e envelope) bool { return e.Event == private }) {
		t.Error("carol got a private message between alice and bob")
	}

	alice.fails(chatserver.CodeNoSuchUser, private, "lobby", chatserver.PrivateRequest{To: "dave", Text: "hi"})
	alice.fails(chatserver.CodeNotJoined, private, "games", chatserver.PrivateRequest{To: "bob", Text: "hi"})
	alice.fails(chatserver.CodeEmpty, private, "lobby", chatserver.PrivateRequest{To: "bob", Text: " "})
}

// TestMessageRate has a client send three times its burst at once: the
// runtime reads it more slowly instead of refusing anything, so every
// message is published, in order, with no error, and the runtime counts
// the throttling.
func TestMessageRate(t *testing.T) {
	const burst = 4
	srv, url := server(t, chatserver.Config{Rate: 20, Burst: burst, Runtime: []runtime.Option{
		// A paused session reads again at the timer's next tick once the
		// rate allows: a short tick keeps the test short.
		runtime.WithTick(10 * time.Millisecond),
	}})
	alice := dial(t, url, "alice")
	alice.join("lobby", 0)
	const n = 3 * burst
	var want []string
	for i := range n {
		want = append(want, fmt.Sprint("message ", i))
		alice.emit(send, "lobby", text(want[i]))
	}
	alice.ok(send, "lobby", text("last")) // a request is slowed too, not refused
	wantMessages(alice, "lobby", append(want, "last")...)
	if alice.has(func(e envelope) bool { return e.Event == codec.EventError }) {
		t.Error("the flood got an error event")
	}
	if c := chatserver.RuntimeOf(srv).Counters().Throttled.Load(); c == 0 {
		t.Error("the runtime never slowed the client (Counters().Throttled is 0)")
	}
}

// TestRuntimeRoomLimit: the runtime's MaxRoomsPerSession, set below the
// chat's RoomsPerClient, refuses a join with too_many_rooms too, and the
// refused room neither sends the client anything nor hears of it.
func TestRuntimeRoomLimit(t *testing.T) {
	_, url := server(t, chatserver.Config{Runtime: []runtime.Option{
		runtime.WithLimits(runtime.Limits{MaxRoomsPerSession: 2}), // the other limits at their defaults
	}})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	bob.join("games", 0)
	alice.join("lobby", 0)
	alice.join("random", 0)
	alice.join("random", 0) // joining again is no new room

	err := alice.fails(chatserver.CodeTooManyRooms, join, "games", nil)
	if !strings.Contains(err.Message, "leave one first") {
		t.Errorf("too_many_rooms message %q", err.Message)
	}
	alice.emit(join, "games", nil)
	if err := alice.errorEvent(); err.Code != chatserver.CodeTooManyRooms {
		t.Fatalf("error event %v, want too_many_rooms", err)
	}
	// Bob's ack comes once his message is in every member's mailbox,
	// alice's reply after whatever her mailbox held.
	bob.ok(send, "games", text("anyone?"))
	alice.ok(rooms, "", nil)
	if alice.has(func(e envelope) bool { return e.Room == "games" }) {
		t.Error("alice got something of the room she was refused")
	}
	wantMessages(bob, "games", "anyone?")
	if bob.has(isPresence("games", "alice")) {
		t.Error("the room was told of a refused join")
	}

	alice.ok(leave, "random", nil) // makes room
	alice.join("games", 0)
	wantPresence(bob, "games", "alice", true)
}

// TestRoomLimits: RoomsPerClient bounds the rooms of a connection, and
// MaxRooms those of the server, the empty rooms that keep their history
// included.
func TestRoomLimits(t *testing.T) {
	_, url := server(t, chatserver.Config{Rooms: []string{"lobby"}, MaxRooms: 3, RoomsPerClient: 2})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby", 0)
	alice.join("a", 0)
	alice.fails(chatserver.CodeTooManyRooms, join, "b", nil) // per client

	// An empty room keeps its history...
	bob.join("b", 0)
	bob.ok(send, "b", text("kept"))
	bob.ok(leave, "b", nil)
	if j := bob.join("b", 10); j.Replayed != 1 {
		t.Fatalf("b after it was empty: %+v, want its message", j)
	}
	wantMessages(bob, "b", "kept", "kept")
	bob.ok(leave, "b", nil)
	// ...and its place: lobby, a and b are three.
	err := bob.fails(chatserver.CodeTooManyRooms, join, "c", nil)
	if err.Message != "the server has 3 rooms, as many as it keeps; join one of them" {
		t.Errorf("too_many_rooms message %q", err.Message)
	}
	bob.join("b", 0)
	bob.join("lobby", 0)
}

// TestLinger: with no Linger, a room and its history go with its last
// member, except the fixed rooms, which keep theirs while the server
// runs.
func TestLinger(t *testing.T) {
	srv, url := server(t, chatserver.Config{Rooms: []string{"lobby"}, Linger: -1})
	bob := dial(t, url, "bob")
	for _, room := range []string{"lobby", "b"} {
		bob.join(room, 0)
		bob.ok(send, room, text("said in "+room))
		wantMessages(bob, room, "said in "+room)
		bob.ok(leave, room, nil)
	}
	if _, ok := chatserver.RuntimeOf(srv).Room("b"); ok {
		t.Error("room b is still there once empty")
	}
	if j := bob.join("b", 10); j.Replayed != 0 {
		t.Errorf("b made again: %+v, want no history", j)
	}
	if j := bob.join("lobby", 10); j.Replayed != 1 {
		t.Fatalf("lobby after it was empty: %+v, want its message", j)
	}
	wantMessages(bob, "lobby", "said in lobby")
}

func TestOversizeMessage(t *testing.T) {
	_, url := server(t, chatserver.Config{MaxLength: 10})
	alice := dial(t, url, "alice")
	if st := alice.checkState(alice.join("lobby", 0)); st.MaxLength != 10 {
		t.Errorf("state %+v, want maxLength 10", st)
	}

	for _, tc := range []struct {
		text string
		code string // "" for accepted
	}{
		{"0123456789", ""},
		{"éééééééééé", ""}, // 10 characters in 20 bytes
		{"01234567890", chatserver.CodeTooLong},
		{"héllo wörld", chatserver.CodeTooLong}, // 11 characters
		{"", chatserver.CodeEmpty},
		{" \n\t", chatserver.CodeEmpty},
	} {
		_, err := alice.request(send, "lobby", text(tc.text))
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%q: %v", tc.text, err)
		case tc.code != "" && (err == nil || err.Code != tc.code):
			t.Errorf("%q: error %v, want %s", tc.text, err, tc.code)
		}
	}
	err := alice.fails(chatserver.CodeTooLong, send, "lobby", text(strings.Repeat("x", 25)))
	if err.Message != "the message is 25 characters long; the limit is 10" {
		t.Errorf("too_long message %q", err.Message)
	}
	alice.emit(send, "lobby", text(strings.Repeat("y", 11)))
	if err := alice.errorEvent(); err.Code != chatserver.CodeTooLong {
		t.Errorf("error event %v, want too_long", err)
	}

	// A message no page would send, longer than the frame limit, ends the
	// connection with 1009.
	alice.emit(send, "lobby", text(strings.Repeat("z", 70<<10)))
	if code := alice.closed(); code != wire.StatusMessageTooBig {
		t.Errorf("closed with %v, want 1009", code)
	}
}

// TestSignedName: whatever a client puts in its join, its name in the room
// is the one it signed in with, as the author of its messages, private
// messages and typing events; it takes no other user's place.
func TestSignedName(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby", 0)

	// Bob claims to be alice, as an older page's join would say.
	if r := bob.joinWith("lobby", map[string]string{"nick": "alice", "token": "guess"}); !slices.Equal(present(r.Present), []string{"alice", "bob"}) {
		t.Fatalf("bob's join: present %q", present(r.Present))
	}
	wantPresence(alice, "lobby", "bob", true)
	bob.ok(send, "lobby", map[string]string{"text": "I am alice", "from": "alice"})
	for _, c := range []*client{alice, bob} {
		if m, _ := message(c, "lobby"); m.From != "bob" || m.Text != "I am alice" {
			t.Errorf("%s got %+v", c.name, m)
		}
	}
	bob.ok(private, "lobby", map[string]string{"to": "alice", "text": "psst", "from": "carol"})
	if p := event[chatserver.Private](alice, private, ""); p.From != "bob" || p.To != "alice" {
		t.Errorf("alice got %+v", p)
	}
	bob.emit(typing, "lobby", map[string]string{"nick": "alice"})
	if ty := event[chatserver.Typing](alice, typing, "lobby"); ty.Nick != "bob" {
		t.Errorf("alice got typing %+v", ty)
	}
	// Alice is still there, on her own connection.
	alice.ok(send, "lobby", text("still me"))
	if m, _ := message(bob, "lobby"); m.From != "alice" || m.Text != "still me" {
		t.Errorf("bob got %+v", m)
	}
}

func TestBadRoomNames(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice := dial(t, url, "alice")
	alice.fails(codec.CodeBadRequest, join, "", nil) // the Router's own
	for _, room := range []string{" ", strings.Repeat("r", 41), "a\tb", "a\u200bb", " lobby", "lobby "} {
		alice.fails(chatserver.CodeBadRoom, join, room, nil)
	}
	alice.join(strings.Repeat("r", 40), 0) // the longest name
	alice.join("café ☕", 0)
	zoe := dial(t, url, "Zoë")
	zoe.join("café ☕", 0)
	wantPresence(alice, "café ☕", "Zoë", true)
}

func TestPage(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html", `<script type="module" src="app.js">`},
		{"/app.js", "text/javascript", "import { connect } from './shockwave.js'"},
		{"/shockwave.js", "text/javascript", "export function connect"},
		{"/style.css", "text/css", "@media"},
		{"/icon.svg", "image/svg+xml", "<svg"},
	} {
		resp, err := http.Get(url + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: %s, %s, %d bytes", tc.path, resp.Status, resp.Header.Get("Content-Type"), len(body))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
	}
	resp, err := http.Get(url + "/ws") // not an upgrade
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode >= 500 {
		t.Errorf("GET /ws without an upgrade: %s", resp.Status)
	}
}

// TestChurn has clients join, talk in and leave rooms all at once, to let
// the race detector look at the locking, and checks that each member gets
// a room's messages in the order of their positions and that every room
// ends empty.
func TestChurn(t *testing.T) {
	_, url := server(t, chatserver.Config{Rate: 1e6, Grace: noGrace})
	const clients, rounds = 8, 15
	roomNames := []string{"lobby", "random", "games"}
	var cs []*client
	for i := range clients {
		cs = append(cs, dial(t, url, fmt.Sprint("client ", i)))
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				room := roomNames[(i+r)%len(roomNames)]
				// Events, not c.ok: t.Fatal must not be called off the
				// test's goroutine.
				emit := func(event string, data any) bool {
					err := c.c.Emit(t.Context(), event, data, codec.InRoom(room))
					if err != nil {
						t.Error(err)
					}
					return err == nil
				}
				if !emit(join, nil) || !emit(send, text(fmt.Sprint(i, " in round ", r))) {
					return
				}
				if r%2 == 0 && !emit(leave, nil) {
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range cs {
		c.ok(rooms, "", nil) // every event before it is handled
		c.mu.Lock()
		last := map[string]position{}
		for _, e := range c.got {
			switch e.Event {
			case msg:
				p, q := last[e.Room], position{e.Epoch, e.Offset}
				if q.epoch == 0 || q.offset == 0 || p.epoch != 0 && (q.epoch != p.epoch || q.offset <= p.offset) {
					t.Errorf("%s: a message in %s at %+v after %+v", c.name, e.Room, q, p)
				}
				last[e.Room] = q
			case codec.EventError:
				t.Errorf("%s: %v", c.name, e.Err)
			}
		}
		c.mu.Unlock()
	}
	for _, c := range cs {
		c.drop()
	}
	probe := dial(t, url, "probe")
	waitFor(t, "rooms without members", func() bool {
		return !slices.ContainsFunc(roomList(probe), func(r chatserver.RoomInfo) bool { return r.Members > 0 })
	})
}

// TestMessagePack has a client that chose MessagePack by subprotocol talk
// with a JSON client: each gets the room's messages in its own codec.
func TestMessagePack(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice := dial(t, url, "alice")
	alice.join("lobby", 0)

	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	bob, err := codec.Dial(ctx, wsURL(url), codec.WithClientCodecs(codec.MsgPack),
		codec.WithHeader(cookieHeader(login(t, url, "bob"))))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if bob.Codec() != codec.MsgPack {
		t.Fatalf("bob speaks %s", bob.Codec().Name())
	}
	msgs := make(chan codec.Meta, 10)
	codec.Listen(bob, msg, func(m chatserver.Message, meta codec.Meta) {
		if m.From == "alice" && m.Text == "hello from JSON" {
			msgs <- meta
		}
	})
	j, err := bob.Join(ctx, "lobby")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	var st chatserver.State
	if err := j.State(&st); err != nil || st.Nick != "bob" || !slices.Equal(present(j.Present), []string{"alice", "bob"}) {
		t.Fatalf("bob's join: %+v, state %+v, %v", j, st, err)
	}
	if err := bob.Emit(ctx, send, map[string]any{"text": "hello from msgpack"}, codec.InRoom("lobby")); err != nil {
		t.Fatal(err)
	}
	if m, _ := message(alice, "lobby"); m.From != "bob" || m.Text != "hello from msgpack" {
		t.Fatalf("alice got %+v", m)
	}
	alice.ok(send, "lobby", text("hello from JSON"))
	select {
	case meta := <-msgs:
		if meta.Room != "lobby" || meta.Epoch != j.Epoch || meta.Offset != 2 {
			t.Fatalf("bob got alice's message in %q at %d/%d", meta.Room, meta.Epoch, meta.Offset)
		}
	case <-time.After(bound):
		t.Fatal("bob did not get alice's message")
	}
}
