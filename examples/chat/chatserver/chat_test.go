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
	join     = chatserver.EventJoin
	leave    = chatserver.EventLeave
	send     = chatserver.EventSend
	private  = chatserver.EventPrivate
	typing   = chatserver.EventTyping
	rooms    = chatserver.EventRooms
	msg      = chatserver.EventMsg
	presence = chatserver.EventPresence
)

func text(s string) chatserver.SendRequest { return chatserver.SendRequest{Text: s} }

func TestJoinAndSend(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	if st := alice.join("lobby"); len(st.Members) != 1 || len(st.History) != 0 || st.MaxLength != 2000 {
		t.Fatalf("alice's state: %+v", st)
	}
	if st := bob.join("lobby"); !slices.Equal(st.Members, []string{"alice", "bob"}) {
		t.Fatalf("bob's members: %q", st.Members)
	}

	alice.ok(send, "lobby", text("hello <b>bob</b>"))
	for _, c := range []*client{alice, bob} {
		m := event[chatserver.Message](c, msg, "lobby")
		if m.ID != 1 || m.From != "alice" || m.Text != "hello <b>bob</b>" || m.At == 0 {
			t.Errorf("%s got %+v", c.name, m)
		}
	}
	bob.emit(send, "lobby", text("hi")) // an event without an id: no reply
	for _, c := range []*client{alice, bob} {
		if m := event[chatserver.Message](c, msg, "lobby"); m.ID != 2 || m.From != "bob" || m.Text != "hi" {
			t.Errorf("%s got %+v", c.name, m)
		}
	}
}

func TestPresence(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice, bob, carol := dial(t, url, "alice"), dial(t, url, "bob"), dial(t, url, "carol")
	alice.join("lobby")

	wantPresence := func(c *client, nick, action string, count int) {
		t.Helper()
		p := event[chatserver.Presence](c, presence, "lobby")
		if p != (chatserver.Presence{Nick: nick, Action: action, Count: count}) {
			t.Fatalf("%s got presence %+v, want %s %s (%d)", c.name, p, nick, action, count)
		}
	}
	bob.join("lobby")
	wantPresence(alice, "bob", "join", 2)
	if st := carol.join("lobby"); !slices.Equal(st.Members, []string{"alice", "bob", "carol"}) {
		t.Fatalf("carol's members: %q", st.Members)
	}
	wantPresence(alice, "carol", "join", 3)
	wantPresence(bob, "carol", "join", 3)

	bob.ok(leave, "lobby", nil)
	wantPresence(alice, "bob", "leave", 2)
	wantPresence(carol, "bob", "leave", 2)
	bob.fails(chatserver.CodeNotJoined, send, "lobby", text("still here?"))

	carol.drop() // a connection that ends leaves its rooms
	wantPresence(alice, "carol", "leave", 1)

	// A client never sees its own join or leave.
	alice.ok(send, "lobby", text("barrier"))
	event[chatserver.Message](alice, msg, "lobby")
	if alice.has(func(e envelope) bool { return e.Event == presence }) {
		t.Error("alice got a presence event of her own")
	}
}

func TestRoomList(t *testing.T) {
	_, url := server(t, chatserver.Config{Rooms: []string{"lobby", "help"}})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")

	list := func() []chatserver.RoomInfo {
		var out []chatserver.RoomInfo
		if err := json.Unmarshal(alice.ok(rooms, "", nil), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got, want := list(), []chatserver.RoomInfo{{Name: "help"}, {Name: "lobby"}}; !slices.Equal(got, want) {
		t.Fatalf("rooms %+v, want %+v", got, want)
	}
	alice.join("games")
	bob.join("games")
	bob.join("lobby")
	want := []chatserver.RoomInfo{{Name: "games", Members: 2}, {Name: "help"}, {Name: "lobby", Members: 1}}
	if got := list(); !slices.Equal(got, want) {
		t.Fatalf("rooms %+v, want %+v", got, want)
	}
	alice.ok(leave, "games", nil)
	bob.ok(leave, "games", nil)
	want = []chatserver.RoomInfo{{Name: "help"}, {Name: "lobby", Members: 1}} // empty rooms are not listed
	if got := list(); !slices.Equal(got, want) {
		t.Fatalf("rooms %+v, want %+v", got, want)
	}
}

func TestHistoryOnJoin(t *testing.T) {
	_, url := server(t, chatserver.Config{Rate: 1e6})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby")
	const sent = 105
	for i := 1; i <= sent; i++ {
		alice.emit(send, "lobby", text(fmt.Sprintf("message %d", i)))
	}
	alice.ok(send, "lobby", text("last")) // replied to after the 105 are handled

	st := bob.join("lobby")
	if len(st.History) != 100 {
		t.Fatalf("history of %d messages, want the last 100", len(st.History))
	}
	for i, m := range st.History { // the last 100 of 106: 7 to 106
		want := fmt.Sprintf("message %d", 7+i)
		if i == 99 {
			want = "last"
		}
		if m.ID != uint64(7+i) || m.Text != want || m.From != "alice" {
			t.Fatalf("history[%d] = %+v, want message %d", i, m, 7+i)
		}
	}
	// What is said after the join follows the state, once.
	alice.ok(send, "lobby", text("after"))
	if m := event[chatserver.Message](bob, msg, "lobby"); m.ID != 107 || m.Text != "after" {
		t.Fatalf("bob got %+v after joining, want message 107", m)
	}
}

func TestPrivateMessage(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice, bob, carol := dial(t, url, "alice"), dial(t, url, "bob"), dial(t, url, "carol")
	alice.join("lobby")
	bob.join("lobby")
	carol.join("lobby")

	alice.ok(private, "lobby", chatserver.PrivateRequest{To: "bob", Text: "psst"})
	for _, c := range []*client{bob, alice} {
		p := event[chatserver.Private](c, private, "")
		if p.From != "alice" || p.To != "bob" || p.Text != "psst" || p.Room != "lobby" || p.At == 0 {
			t.Errorf("%s got %+v", c.name, p)
		}
	}
	// Carol gets alice's next room message; a private message to her
	// would have been queued before it.
	alice.ok(send, "lobby", text("hello all"))
	event[chatserver.Message](carol, msg, "lobby")
	if carol.has(func(e envelope) bool { return e.Event == private }) {
		t.Error("carol got a private message between alice and bob")
	}

	alice.fails(chatserver.CodeNoSuchUser, private, "lobby", chatserver.PrivateRequest{To: "dave", Text: "hi"})
	alice.fails(chatserver.CodeNotJoined, private, "games", chatserver.PrivateRequest{To: "bob", Text: "hi"})
	alice.fails(chatserver.CodeEmpty, private, "lobby", chatserver.PrivateRequest{To: "bob", Text: " "})
}

func TestTyping(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby")
	bob.join("lobby")

	alice.emit(typing, "lobby", nil)
	if ty := event[chatserver.Typing](bob, typing, "lobby"); ty.Nick != "alice" {
		t.Fatalf("bob got typing %+v", ty)
	}
	alice.ok(send, "lobby", text("done typing"))
	event[chatserver.Message](alice, msg, "lobby")
	if alice.has(func(e envelope) bool { return e.Event == typing }) {
		t.Error("alice was told that she is typing")
	}
	bob.ok(leave, "lobby", nil)
	bob.emit(typing, "lobby", nil)
	if err := bob.errorEvent(); err.Code != chatserver.CodeNotJoined {
		t.Fatalf("typing out of the room: %v", err)
	}
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
	alice.join("lobby")
	const n = 3 * burst
	for i := range n {
		alice.emit(send, "lobby", text(fmt.Sprint("message ", i)))
	}
	alice.ok(send, "lobby", text("last")) // a request is slowed too, not refused
	for i := range n + 1 {
		want := fmt.Sprint("message ", i)
		if i == n {
			want = "last"
		}
		if m := event[chatserver.Message](alice, msg, "lobby"); m.ID != uint64(i+1) || m.Text != want {
			t.Fatalf("message %d: %+v, want %q", i+1, m, want)
		}
	}
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
	bob.join("games")
	alice.join("lobby")
	alice.join("random")
	alice.join("random") // joining again is no new room

	err := alice.fails(chatserver.CodeTooManyRooms, join, "games", nil)
	if err.Message != "this connection is in too many rooms to join games; leave one first" {
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
	if alice.has(func(e envelope) bool { return e.Room == "games" || e.Event == chatserver.EventState }) {
		t.Error("alice got something of the room she was refused")
	}
	event[chatserver.Message](bob, msg, "games")
	if bob.has(func(e envelope) bool { return e.Event == presence }) {
		t.Error("the room was told of a refused join")
	}

	alice.ok(leave, "random", nil) // makes room
	alice.join("games")
	if p := event[chatserver.Presence](bob, presence, "games"); p.Nick != "alice" || p.Action != "join" {
		t.Fatalf("bob got %+v", p)
	}
}

func TestOversizeMessage(t *testing.T) {
	_, url := server(t, chatserver.Config{MaxLength: 10})
	alice := dial(t, url, "alice")
	alice.join("lobby")

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
	alice.join("lobby")

	// Bob claims to be alice, as an older page's join would say.
	bob.ok(join, "lobby", map[string]string{"nick": "alice", "token": "guess"})
	st := event[chatserver.State](bob, chatserver.EventState, "")
	if st.Nick != "bob" || !slices.Equal(st.Members, []string{"alice", "bob"}) {
		t.Fatalf("bob's state: %+v", st)
	}
	if p := event[chatserver.Presence](alice, presence, "lobby"); p.Nick != "bob" || p.Action != "join" {
		t.Fatalf("alice got %+v", p)
	}
	bob.ok(send, "lobby", map[string]string{"text": "I am alice", "from": "alice"})
	for _, c := range []*client{alice, bob} {
		if m := event[chatserver.Message](c, msg, "lobby"); m.From != "bob" || m.Text != "I am alice" {
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
	if m := event[chatserver.Message](bob, msg, "lobby"); m.From != "alice" || m.Text != "still me" {
		t.Errorf("bob got %+v", m)
	}
}

func TestBadRoomNames(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice := dial(t, url, "alice")
	for _, room := range []string{"", strings.Repeat("r", 41), "a\tb", "a\u200bb"} {
		alice.fails(chatserver.CodeBadRoom, join, room, nil)
	}
	alice.join(strings.Repeat("r", 40)) // the longest name
	alice.join("café ☕")
	zoe := dial(t, url, "Zoë")
	zoe.join("café ☕")
}

func TestReconnect(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby")
	bob.join("lobby")
	event[chatserver.Presence](alice, presence, "lobby")
	for _, s := range []string{"one", "two", "three"} {
		alice.ok(send, "lobby", text(s))
		event[chatserver.Message](bob, msg, "lobby")
	}

	// Alice's network drops; the server notices, bob sees her go.
	alice.drop()
	if p := event[chatserver.Presence](bob, presence, "lobby"); p.Nick != "alice" || p.Action != "leave" {
		t.Fatalf("bob got %+v", p)
	}
	bob.ok(send, "lobby", text("while you were away"))
	event[chatserver.Message](bob, msg, "lobby")

	// She comes back on a new connection, rejoins, and gets the history.
	alice2 := dialAs(t, url, "alice", "alice again")
	st := alice2.join("lobby")
	var texts []string
	for _, m := range st.History {
		texts = append(texts, m.Text)
	}
	if want := []string{"one", "two", "three", "while you were away"}; !slices.Equal(texts, want) {
		t.Fatalf("history %q, want %q", texts, want)
	}
	if !slices.Equal(st.Members, []string{"alice", "bob"}) {
		t.Fatalf("members %q", st.Members)
	}
	if p := event[chatserver.Presence](bob, presence, "lobby"); p.Nick != "alice" || p.Action != "join" {
		t.Fatalf("bob got %+v", p)
	}

	// Alice again, before the server has noticed the old connection is
	// gone: the new one takes her place and the old one is closed with
	// 4001. Nobody else can.
	alice3 := dialAs(t, url, "alice", "alice's third")
	alice3.join("lobby")
	if code := alice2.closed(); code != chatserver.StatusReplaced {
		t.Fatalf("the replaced connection closed with %v, want 4001", code)
	}
	alice3.ok(send, "lobby", text("back"))
	if m := event[chatserver.Message](bob, msg, "lobby"); m.From != "alice" || m.Text != "back" {
		t.Fatalf("bob got %+v", m)
	}
	if bob.has(func(e envelope) bool { return e.Event == presence }) {
		t.Error("a takeover was announced as a leave or join")
	}
	mallory := dial(t, url, "mallory")
	mallory.ok(join, "lobby", map[string]string{"nick": "alice", "token": "tab-1"})
	if st := event[chatserver.State](mallory, chatserver.EventState, ""); st.Nick != "mallory" {
		t.Fatalf("mallory joined as %q", st.Nick)
	}
	alice3.ok(send, "lobby", text("still here"))
	event[chatserver.Message](bob, msg, "lobby")
}

func TestRoomLimits(t *testing.T) {
	_, url := server(t, chatserver.Config{Rooms: []string{"lobby"}, MaxRooms: 3, RoomsPerClient: 2})
	alice, bob := dial(t, url, "alice"), dial(t, url, "bob")
	alice.join("lobby")
	alice.join("a")
	alice.fails(chatserver.CodeTooManyRooms, join, "b", nil) // per client

	// An empty room keeps its history...
	bob.join("b")
	bob.ok(send, "b", text("kept"))
	bob.ok(leave, "b", nil)
	if st := bob.join("b"); len(st.History) != 1 || st.History[0].Text != "kept" {
		t.Fatalf("history of b after it was empty: %+v", st.History)
	}
	bob.ok(leave, "b", nil)
	// ...until a new room needs its place.
	bob.join("c")
	bob.fails(chatserver.CodeTooManyRooms, join, "d", nil) // lobby, a, c are in use
	bob.ok(leave, "c", nil)
	if st := bob.join("b"); len(st.History) != 0 {
		t.Fatalf("b was evicted, yet has history %+v", st.History)
	}
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
// the race detector look at the locking, and checks that each room numbers
// its messages in the order its members see them and that every room ends
// empty.
func TestChurn(t *testing.T) {
	_, url := server(t, chatserver.Config{Rate: 1e6})
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
		last := map[string]uint64{}
		for _, e := range c.got {
			switch e.Event {
			case msg:
				var m chatserver.Message
				if err := json.Unmarshal(e.Data, &m); err != nil {
					t.Fatal(err)
				}
				if m.ID <= last[e.Room] {
					t.Errorf("%s: message %d in %s after %d", c.name, m.ID, e.Room, last[e.Room])
				}
				last[e.Room] = m.ID
			case "error":
				t.Errorf("%s: %v", c.name, e.Err)
			}
		}
		c.mu.Unlock()
	}
	for _, c := range cs {
		c.drop()
	}
	probe := dial(t, url, "probe")
	deadline := time.Now().Add(bound)
	for {
		var list []chatserver.RoomInfo
		if err := json.Unmarshal(probe.ok(rooms, "", nil), &list); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list, func(r chatserver.RoomInfo) bool { return r.Members > 0 }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rooms still have members after everyone left: %+v", list)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMessagePack has a client that chose MessagePack by subprotocol talk
// with a JSON client: each gets the room's messages in its own codec.
func TestMessagePack(t *testing.T) {
	_, url := server(t, chatserver.Config{})
	alice := dial(t, url, "alice")
	alice.join("lobby")

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
	states := make(chan chatserver.State, 1)
	msgs := make(chan codec.Meta, 10)
	codec.Listen(bob, chatserver.EventState, func(st chatserver.State, _ codec.Meta) { states <- st })
	codec.Listen(bob, msg, func(m chatserver.Message, meta codec.Meta) {
		if m.From == "alice" && m.Text == "hello from JSON" {
			msgs <- meta
		}
	})
	if _, err := codec.Request[struct{}](ctx, bob, join, nil, codec.InRoom("lobby")); err != nil {
		t.Fatalf("join: %v", err)
	}
	select {
	case st := <-states: // before the join's reply
		if st.Room != "lobby" || st.Nick != "bob" {
			t.Fatalf("bob's state %+v", st)
		}
	default:
		t.Fatal("no state before the join's reply")
	}
	if err := bob.Emit(ctx, send, map[string]any{"text": "hello from msgpack"}, codec.InRoom("lobby")); err != nil {
		t.Fatal(err)
	}
	if m := event[chatserver.Message](alice, msg, "lobby"); m.From != "bob" || m.Text != "hello from msgpack" {
		t.Fatalf("alice got %+v", m)
	}
	alice.ok(send, "lobby", text("hello from JSON"))
	select {
	case meta := <-msgs:
		if meta.Room != "lobby" {
			t.Fatalf("bob got alice's message in %q", meta.Room)
		}
	case <-time.After(bound):
		t.Fatal("bob did not get alice's message")
	}
}
