package codec_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// roomServer is a Router whose rooms keep history, over loopback: the
// server of the rooms and resume tests.
type roomServer struct {
	t     *testing.T
	r     *codec.Router
	rt    *runtime.Runtime
	srv   *httptest.Server
	url   string
	codec codec.Codec // what its clients speak

	waiting chan struct{} // a value each time "wait" starts waiting
	release chan struct{} // closed to end every "wait"
	refuse  atomic.Int32  // the status upgrades are refused with, if not 0
}

// roomConfig says how a roomServer's rooms behave.
type roomConfig struct {
	history  runtime.History
	presence *runtime.Presence // its Changed is set to PublishPresence
	rooms    codec.Rooms
}

// newRoomServer starts a roomServer. Its handlers:
//   - "say" (request or event) publishes its string to the envelope's
//     room, answering with how many members it reached;
//   - "in" answers whether the session is in the envelope's room;
//   - "kick" closes the session with the code it carries;
//   - "wait" answers once release is closed (at the test's end).
//
// A client's user (for presence) is the URL's "user" query.
func newRoomServer(t *testing.T, cd codec.Codec, cfg roomConfig) *roomServer {
	t.Helper()
	noLeaks(t)
	s := &roomServer{t: t, codec: cd, r: codec.NewRouter(codec.JSON), waiting: make(chan struct{}, 16), release: make(chan struct{})}
	opts := []runtime.Option{
		runtime.WithSubprotocols(s.r.Subprotocols()...),
		runtime.WithMessageRate(-1, 0),
		runtime.WithRoomHistory(func(string) runtime.History { return cfg.history }),
		runtime.WithAdmit(func(req *http.Request) (runtime.Admission, error) {
			if st := s.refuse.Load(); st != 0 {
				return runtime.Admission{}, &runtime.Refusal{Status: int(st), Message: "no"}
			}
			return runtime.Admission{Identity: req.URL.Query().Get("user")}, nil
		}),
	}
	if cfg.presence != nil {
		p := *cfg.presence
		p.Who = func(s *session.Session) (string, any) {
			u, _ := session.Identity[string](s)
			return u, strings.ToUpper(u)
		}
		p.Changed = s.r.PublishPresence
		opts = append(opts, runtime.WithRoomPresence(func(string) *runtime.Presence { return &p }))
	}
	rt, err := runtime.New(s.r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.rt = rt
	s.r.HandleRooms(rt, cfg.rooms)
	codec.Handle(s.r, "say", func(_ *session.Session, ev codec.Event[string]) (int, error) {
		room, ok := rt.Room(ev.Room)
		if !ok {
			return 0, &codec.Error{Code: "no_room", Message: ev.Room}
		}
		return s.r.PublishContext(ev.Ctx, room, "said", ev.Data)
	})
	codec.Handle(s.r, "in", func(ss *session.Session, ev codec.Event[struct{}]) (bool, error) {
		room, ok := rt.Room(ev.Room)
		return ok && room.Has(ss), nil
	})
	codec.On(s.r, "kick", func(ss *session.Session, code int) error {
		ss.Close(wire.StatusCode(code), "kicked")
		return nil
	})
	codec.Handle(s.r, "wait", func(*session.Session, struct{}) (string, error) {
		s.waiting <- struct{}{}
		<-s.release
		return "late", nil
	})
	s.srv = httptest.NewServer(rt)
	t.Cleanup(func() {
		s.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	t.Cleanup(func() { close(s.release) }) // before the shutdown, which waits for the handlers
	s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	return s
}

// dial connects a client of user (none when ""), closed when the test
// ends.
func (s *roomServer) dial(user string, opts ...codec.ClientOption) *codec.Client {
	s.t.Helper()
	url := s.url
	if user != "" {
		url += "?user=" + user
	}
	c, err := codec.Dial(ctx(s.t), url, append([]codec.ClientOption{codec.WithClientCodecs(s.codec)}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// say publishes text to room through c, and waits until it has.
func say(t *testing.T, c *codec.Client, room, text string) {
	t.Helper()
	if _, err := codec.Request[int](ctx(t), c, "say", text, codec.InRoom(room)); err != nil {
		t.Fatalf("say %q in %s: %v", text, room, err)
	}
}

// TestClientJoin: Join returns the server's reply, the room's state
// included, in both codecs; Recent's messages follow it, and every event
// of a room that keeps history carries its position in Meta, which the
// client keeps as the room's until Leave.
func TestClientJoin(t *testing.T) {
	type board struct {
		Cells []int  `json:"cells"`
		Turn  string `json:"turn"`
	}
	for _, cd := range []codec.Codec{codec.JSON, codec.MsgPack} {
		t.Run(cd.Name(), func(t *testing.T) {
			s := newRoomServer(t, cd, roomConfig{
				history: runtime.History{Size: 8},
				rooms: codec.Rooms{State: func(_ *session.Session, res runtime.Resumption) (any, error) {
					if res.Room.Name() == "bare" {
						return nil, nil
					}
					return board{Cells: []int{1, 2}, Turn: fmt.Sprint("at ", res.At.Offset)}, nil
				}},
			})
			a := s.dial("")
			j, err := a.Join(ctx(t), "game")
			if err != nil {
				t.Fatal(err)
			}
			if j.Room != "game" || j.Recovered || j.Replayed != 0 || j.Epoch == 0 || j.Offset != 0 || j.Present != nil {
				t.Fatalf("first join: %+v", j)
			}
			var b board
			if err := j.State(&b); err != nil || fmt.Sprint(b) != "{[1 2] at 0}" {
				t.Fatalf("state %+v, %v", b, err)
			}
			said := listen[string](a, "said")
			for i := range 3 {
				say(t, a, "game", fmt.Sprint("m", i+1))
				g := receive(t, said, "said")
				if want := (Meta{Event: "said", Room: "game", Epoch: j.Epoch, Offset: uint64(i + 1)}); g.m != want {
					t.Fatalf("meta %+v, want %+v", g.m, want)
				}
			}
			if e, o, ok := a.Position("game"); !ok || e != j.Epoch || o != 3 {
				t.Fatalf("position %d/%d %v", e, o, ok)
			}

			// Another client asks for the 2 latest: they follow the
			// reply, at the position before them.
			c := s.dial("")
			said2 := listen[string](c, "said")
			j2, err := c.Join(ctx(t), "game", codec.Recent(2))
			if err != nil {
				t.Fatal(err)
			}
			if j2.Recovered || j2.Replayed != 2 || j2.Epoch != j.Epoch || j2.Offset != 1 {
				t.Fatalf("join with Recent: %+v", j2)
			}
			if err := j2.State(&b); err != nil || b.Turn != "at 1" {
				t.Fatalf("state %+v, %v", b, err)
			}
			for o := uint64(2); o <= 3; o++ {
				if g := receive(t, said2, "replayed"); g.v != fmt.Sprint("m", o) || g.m.Offset != o {
					t.Fatalf("replayed %+v", g)
				}
			}
			if e, o, ok := c.Position("game"); !ok || e != j.Epoch || o != 3 {
				t.Fatalf("position after the replay %d/%d %v", e, o, ok)
			}

			// No state: v untouched, nil.
			j3, err := c.Join(ctx(t), "bare")
			if err != nil {
				t.Fatal(err)
			}
			b = board{Turn: "kept"}
			if err := j3.State(&b); err != nil || b.Turn != "kept" {
				t.Fatalf("no state: %+v, %v", b, err)
			}
			if e, o, ok := c.Position("bare"); !ok || e == 0 || o != 0 {
				t.Fatalf("the position in a room that has published nothing: %d/%d %v, want the epoch at offset 0", e, o, ok)
			}
			// A state that does not decode into v.
			var n int
			if err := j2.State(&n); err == nil || !strings.Contains(err.Error(), `the state of room "game" does not decode`) {
				t.Fatalf("state into an int: %v", err)
			}

			if err := c.Leave(ctx(t), "game"); err != nil {
				t.Fatal(err)
			}
			if _, _, ok := c.Position("game"); ok {
				t.Fatal("Leave kept the position")
			}
		})
	}
}
