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
// with the last position it saw gets what it missed, in its codec, before
// the reply, which says it recovered; one with a position the room cannot
// serve, or a first join, is told it did not.
func TestRouterResume(t *testing.T) {
	r := NewRouter(JSON)
	rt, url := serve(t, r, runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 16} }))
	r.HandleRooms(rt, nil)
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
			for o := uint64(2); o <= 3; o++ {
				if got := b.readPositioned(); got.O != o || got.G != last.G || got.D != fmt.Sprint("m", o) {
					t.Fatalf("replay: %+v, want offset %d", got, o)
				}
			}
			if got := b.readPositioned(); got.I == nil || *got.I != 7 || got.D.(map[string]any)["recovered"] != true {
				t.Fatalf("after the replay: %+v, want the join's reply, recovered", got)
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
// who is there.
func TestRouterPresence(t *testing.T) {
	r := NewRouter(JSON)
	rt, url := serve(t, r,
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
	r.HandleRooms(rt, nil)
	alice := dialCodec(t, url+"?user=alice", JSON)
	alice.send(env{E: EventJoin, R: "lobby", I: 1})
	if got := alice.readPositioned(); got.E != EventPresence { // her own arrival, before the reply
		t.Fatalf("alice's own arrival: %+v", got)
	}
	if got := alice.readPositioned(); fmt.Sprint(got.D) != "map[present:map[alice:map[name:ALICE]] recovered:false]" {
		t.Fatalf("alice's join reply: %v", got.D)
	}
	bob := dialCodec(t, url+"?user=bob", JSON)
	bob.send(env{E: EventJoin, R: "lobby", I: 1})
	bob.readPositioned() // his own arrival
	if got := bob.readPositioned(); fmt.Sprint(got.D) != "map[present:map[alice:map[name:ALICE] bob:map[name:BOB]] recovered:false]" {
		t.Fatalf("bob's join reply: %v", got.D)
	}
	if got := alice.readPositioned(); got.E != EventPresence || fmt.Sprint(got.D) != "map[info:map[name:BOB] key:bob present:true]" {
		t.Fatalf("alice told of bob: %+v", got)
	}
	bob.conn.CloseNow()
	if got := alice.readPositioned(); got.E != EventPresence || fmt.Sprint(got.D) != "map[info:map[name:BOB] key:bob present:false]" {
		t.Fatalf("alice told of bob's departure: %+v", got)
	}
}
