package codec

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

// positioned is an envelope as received, with its position.
type positioned struct {
	E string  `json:"e" msgpack:"e"`
	R string  `json:"r" msgpack:"r"`
	G uint64  `json:"g" msgpack:"g"`
	O uint64  `json:"o" msgpack:"o"`
	I *uint64 `json:"i" msgpack:"i"`
	D any     `json:"d" msgpack:"d"`
	X *Error  `json:"x" msgpack:"x"`
}

func (c *client) readPositioned() positioned {
	c.t.Helper()
	c.conn.NetConn().SetReadDeadline(time.Now().Add(bound))
	_, p, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var e positioned
	if err := c.codec.Decode(p, &e); err != nil {
		c.t.Fatalf("envelope %q: %v", p, err)
	}
	return e
}

// TestRouterResume: in a room that keeps history, what the Router
// publishes carries its position ("g", "o"); a client that joins again
// with the last position it saw is told it recovered, then gets what it
// missed, in its codec; one with a position the room cannot serve, or a
// first join, is told it did not, then gets the latest messages it asked
// for.
func TestRouterResume(t *testing.T) {
	r := NewRouter(JSON)
	rt, url := serve(t, r, runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 16} }))
	r.HandleRooms(rt, Rooms{})
	On(r, "say", func(s *session.Session, ev Event[string]) error {
		room, _ := rt.Room(ev.Room)
		_, err := r.PublishContext(ev.Ctx, room, "said", ev.Data)
		return err
	})
	for _, c := range []Codec{JSON, MsgPack} {
		t.Run(c.Name(), func(t *testing.T) {
			room := "room-" + c.Name()
			a := dialCodec(t, url, c)
			a.send(env{E: EventJoin, R: room, I: 1})
			if got := a.readPositioned(); got.D.(map[string]any)["recovered"] != false {
				t.Fatalf("first join's reply %+v", got)
			}
			var last positioned
			for i := range 3 {
				a.send(env{E: "say", R: room, D: fmt.Sprint("m", i+1)})
				last = a.readPositioned()
				if last.E != "said" || last.O != uint64(i+1) || last.G == 0 || last.D != fmt.Sprint("m", i+1) {
					t.Fatalf("message %d: %+v", i+1, last)
				}
			}

			b := dialCodec(t, url, c)
			b.send(env{E: EventJoin, R: room, I: 7, D: JoinRequest{Epoch: last.G, Offset: 1}})
			if got := b.readPositioned(); got.I == nil || *got.I != 7 || fmt.Sprint(got.D) != fmt.Sprintf("map[g:%v o:1 recovered:true replayed:2]", got.D.(map[string]any)["g"]) {
				t.Fatalf("first: %+v, want the join's reply, recovered, 2 replayed", got)
			}
			for o := uint64(2); o <= 3; o++ {
				if got := b.readPositioned(); got.O != o || got.G != last.G || got.D != fmt.Sprint("m", o) {
					t.Fatalf("replay: %+v, want offset %d", got, o)
				}
			}

			// A first join asking for the 2 latest messages gets them
			// after its reply, at the position before them.
			n := dialCodec(t, url, c)
			n.send(env{E: EventJoin, R: room, I: 9, D: JoinRequest{Recent: 2}})
			if got := n.readPositioned(); got.I == nil || *got.I != 9 || fmt.Sprint(got.D) != fmt.Sprintf("map[g:%v o:1 recovered:false replayed:2]", got.D.(map[string]any)["g"]) {
				t.Fatalf("first join with recent: %+v", got)
			}
			for o := uint64(2); o <= 3; o++ {
				if got := n.readPositioned(); got.O != o || got.D != fmt.Sprint("m", o) {
					t.Fatalf("recent: %+v, want offset %d", got, o)
				}
			}

			d := dialCodec(t, url, c)
			d.send(env{E: EventJoin, R: room, I: 8, D: JoinRequest{Epoch: last.G + 1, Offset: 1}})
			if got := d.readPositioned(); got.I == nil || *got.I != 8 || got.D.(map[string]any)["recovered"] != false {
				t.Fatalf("join with another epoch: %+v, want the reply, not recovered", got)
			}
		})
	}
}

// TestRouterPresence: with PublishPresence as the room's Changed, members
// are told of arrivals and departures of users, and a join's reply lists
// who is there, up to Rooms.MaxPresent, and says how many; the room's
// history does not keep them.
func TestRouterPresence(t *testing.T) {
	r := NewRouter(JSON)
	rt, url := serve(t, r,
		runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 8} }),
		runtime.WithAdmit(func(req *http.Request) (runtime.Admission, error) {
			return runtime.Admission{Identity: req.URL.Query().Get("user")}, nil
		}),
		runtime.WithRoomPresence(func(string) *runtime.Presence {
			return &runtime.Presence{
				Who: func(s *session.Session) (string, any) {
					u, _ := session.Identity[string](s)
					return u, map[string]string{"name": strings.ToUpper(u)}
				},
				Changed: r.PublishPresence,
			}
		}))
	r.HandleRooms(rt, Rooms{MaxPresent: 1})
	alice := dialCodec(t, url+"?user=alice", JSON)
	alice.send(env{E: EventJoin, R: "lobby", I: 1})
	reply := alice.readPositioned()
	epoch := reply.D.(map[string]any)["g"]
	if fmt.Sprint(reply.D) != fmt.Sprintf("map[count:1 g:%v present:map[alice:map[name:ALICE]] recovered:false]", epoch) {
		t.Fatalf("alice's join reply: %v", reply.D)
	}
	if got := alice.readPositioned(); got.E != EventPresence { // her own arrival, after the reply
		t.Fatalf("alice's own arrival: %+v", got)
	}
	bob := dialCodec(t, url+"?user=bob", JSON)
	bob.send(env{E: EventJoin, R: "lobby", I: 1})
	if got := bob.readPositioned(); fmt.Sprint(got.D) != fmt.Sprintf("map[count:2 g:%v recovered:false]", epoch) {
		t.Fatalf("bob's join reply: %v", got.D)
	}
	bob.readPositioned() // his own arrival
	if got := alice.readPositioned(); got.E != EventPresence || fmt.Sprint(got.D) != "map[info:map[name:BOB] key:bob present:true]" {
		t.Fatalf("alice told of bob: %+v", got)
	}
	bob.conn.CloseNow()
	if got := alice.readPositioned(); got.E != EventPresence || fmt.Sprint(got.D) != "map[info:map[name:BOB] key:bob present:false]" {
		t.Fatalf("alice told of bob's departure: %+v", got)
	}
	// Alice, on a second connection, resumes from her first reply's
	// position: the room published nothing since, presence is not kept.
	again := dialCodec(t, url+"?user=alice", JSON)
	again.send(env{E: EventJoin, R: "lobby", I: 2, D: JoinRequest{Epoch: uint64(epoch.(float64))}})
	if got := again.readPositioned(); fmt.Sprint(got.D) != fmt.Sprintf("map[count:1 g:%v present:map[alice:map[name:ALICE]] recovered:true]", epoch) {
		t.Fatalf("alice's resume: %v, want recovered, nothing replayed", got.D)
	}
}

// TestRouterJoinState: Rooms.State's value is the join's reply's state,
// made at the reply's position; its error is the reply's error, and the
// session is then not in the room.
func TestRouterJoinState(t *testing.T) {
	r := NewRouter(JSON)
	rt, url := serve(t, r, runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 16} }))
	r.HandleRooms(rt, Rooms{State: func(s *session.Session, res runtime.Resumption) (any, error) {
		if res.Room.Name() == "closed" {
			return nil, &Error{Code: "closed", Message: "the room is closed"}
		}
		return map[string]any{"at": res.At.Offset, "members": res.Room.Len()}, nil
	}})
	On(r, "say", func(s *session.Session, ev Event[string]) error {
		room, _ := rt.Room(ev.Room)
		_, err := r.PublishContext(ev.Ctx, room, "said", ev.Data)
		return err
	})
	a := dialCodec(t, url, JSON)
	a.send(env{E: EventJoin, R: "lobby", I: 1})
	if got := a.readPositioned(); fmt.Sprint(got.D.(map[string]any)["state"]) != "map[at:0 members:1]" {
		t.Fatalf("first join's reply %+v", got)
	}
	a.send(env{E: "say", R: "lobby", D: "hi"})
	a.readPositioned()
	b := dialCodec(t, url, JSON)
	b.send(env{E: EventJoin, R: "lobby", I: 2})
	if got := b.readPositioned(); fmt.Sprint(got.D.(map[string]any)["state"]) != "map[at:1 members:2]" {
		t.Fatalf("second join's reply %+v", got)
	}
	b.send(env{E: EventJoin, R: "closed", I: 3})
	if got := b.readPositioned(); got.X == nil || got.X.Code != "closed" {
		t.Fatalf("refused join's reply %+v", got)
	}
	if room, ok := rt.Room("closed"); ok && room.Len() > 0 {
		t.Fatalf("the refused session stayed in the room: %d members", room.Len())
	}
}
