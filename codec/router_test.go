package codec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// bound is the failure bound of every wait: never reached by a correct run.
const bound = 20 * time.Second

// serve runs r on a runtime over loopback, offering r's subprotocols.
func serve(t testing.TB, r *Router, opts ...runtime.Option) (*runtime.Runtime, string) {
	t.Helper()
	opts = append([]runtime.Option{runtime.WithSubprotocols(r.Subprotocols()...)}, opts...)
	rt, err := runtime.New(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return rt, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// client is a test client speaking the envelope in one codec.
type client struct {
	t     testing.TB
	conn  *wire.Conn
	codec Codec
}

// dialCodec connects offering the subprotocol of c, or none when c is nil
// (the session then speaks the router's default, expected to be JSON).
func dialCodec(t testing.TB, url string, c Codec) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var o wire.DialOptions
	if c != nil {
		o.Subprotocols = []string{Subprotocol(c)}
	}
	conn, _, err := wire.Dial(ctx, url, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	if c == nil {
		c = JSON
	} else if got := conn.Subprotocol(); got != Subprotocol(c) {
		t.Fatalf("subprotocol %q, want %q", got, Subprotocol(c))
	}
	return &client{t: t, conn: conn, codec: c}
}

// env is an envelope to send; zero fields are left out.
type env struct {
	E     string `json:"e,omitempty" msgpack:"e,omitempty"`
	R     string `json:"r,omitempty" msgpack:"r,omitempty"`
	I     uint64 `json:"i,omitempty" msgpack:"i,omitempty"`
	T     string `json:"t,omitempty" msgpack:"t,omitempty"`
	D     any    `json:"d,omitempty" msgpack:"d,omitempty"`
	Proto string `json:"-" msgpack:"-"`
}

func (c *client) send(e env) {
	c.t.Helper()
	b, err := c.codec.Append(nil, e)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(c.codec.Opcode(), b)
}

func (c *client) sendRaw(op wire.Opcode, b []byte) {
	c.t.Helper()
	if err := c.conn.WriteMessage(op, b); err != nil {
		c.t.Fatal(err)
	}
}

// reply is an envelope as received.
type reply struct {
	E, R, T string
	I       *uint64
	X       *Error
	D       []byte // the payload's encoding, nil when absent
	codec   Codec
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := r.codec.Decode(r.D, v); err != nil {
		t.Fatalf("payload %q: %v", r.D, err)
	}
}

func (r reply) id() uint64 {
	if r.I == nil {
		return 1<<64 - 1
	}
	return *r.I
}

// read reads one envelope, checking that it came in the codec's opcode.
func (c *client) read() reply {
	c.t.Helper()
	c.conn.NetConn().SetReadDeadline(time.Now().Add(bound))
	op, p, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if op != c.codec.Opcode() {
		c.t.Fatalf("got a %v message, want %v", op, c.codec.Opcode())
	}
	r := reply{codec: c.codec}
	var err2 error
	switch c.codec {
	case JSON:
		var w wireReply[json.RawMessage]
		err2 = JSON.Decode(p, &w)
		r.E, r.R, r.T, r.I, r.X, r.D = w.E, w.R, w.T, w.I, w.X, w.D
	case MsgPack:
		var w wireReply[msgpack.RawMessage]
		err2 = MsgPack.Decode(p, &w)
		r.E, r.R, r.T, r.I, r.X, r.D = w.E, w.R, w.T, w.I, w.X, w.D
	}
	if err2 != nil {
		c.t.Fatalf("reply %q: %v", p, err2)
	}
	return r
}

// wireReply is an envelope as a client decodes it.
type wireReply[D any] struct {
	E string  `json:"e"`
	R string  `json:"r"`
	T string  `json:"t"`
	I *uint64 `json:"i"`
	X *Error  `json:"x"`
	D D       `json:"d"`
}

// readClose reads until the server's close frame and returns its code.
func (c *client) readClose() wire.StatusCode {
	c.t.Helper()
	c.conn.NetConn().SetReadDeadline(time.Now().Add(bound))
	for {
		_, p, err := c.conn.ReadMessage()
		var ce wire.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		c.t.Logf("message before the close: %q", p)
	}
}

// request sends a request and reads its reply, checking the id.
func (c *client) request(e env) reply {
	c.t.Helper()
	c.send(e)
	r := c.read()
	if r.I == nil || *r.I != e.I || r.E != "" {
		c.t.Fatalf("reply to request %d: %+v", e.I, r)
	}
	return r
}

type query struct {
	Prefix string `json:"prefix"`
}

type echoReq struct {
	Text string `json:"text"`
	N    int    `json:"n"`
}

// testRouter registers the handlers the tests use.
func testRouter(opts ...Option) (*Router, *errLog) {
	log := new(errLog)
	opts = append(opts, WithErrorHandler(log.add))
	r := NewRouter(JSON, opts...)
	On(r, "chat.send", func(s *session.Session, m Chat) error {
		m.Text = strings.ToUpper(m.Text)
		return r.Emit(s, "chat.echo", m)
	})
	Handle(r, "rooms.list", func(s *session.Session, q query) ([]string, error) {
		var out []string
		for _, name := range []string{"lobby", "games", "general"} {
			if strings.HasPrefix(name, q.Prefix) {
				out = append(out, name)
			}
		}
		return out, nil
	})
	Handle(r, "echo", func(s *session.Session, q echoReq) (echoReq, error) { return q, nil })
	Handle(r, "unencodable", func(s *session.Session, _ struct{}) (func(), error) { return func() {}, nil })
	On(r, "fail", func(s *session.Session, q echoReq) error {
		switch q.Text {
		case "app":
			return fmt.Errorf("wrapped: %w", &Error{Code: "forbidden", Message: "not for you"})
		case "close":
			return wire.CloseError{Code: 4001, Reason: "go away"}
		}
		return errors.New("secret internal detail")
	})
	On(r, "meta", func(s *session.Session, ev Event[echoReq]) error {
		return r.Emit(s, "meta", ev)
	})
	return r, log
}

// errLog records what WithErrorHandler reports.
type errLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errLog) add(s *session.Session, event string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, event+": "+err.Error())
}

func (l *errLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

var clientCodecs = []struct {
	name  string
	codec Codec // nil: no subprotocol
}{{"default", nil}, {"json", JSON}, {"msgpack", MsgPack}}

func TestRouterEventsAndRequests(t *testing.T) {
	r, _ := testRouter()
	_, url := serve(t, r)
	for _, cc := range clientCodecs {
		t.Run(cc.name, func(t *testing.T) {
			c := dialCodec(t, url, cc.codec)

			c.send(env{E: "chat.send", D: Chat{Room: "lobby", Text: "hi"}})
			got := c.read()
			var m Chat
			got.decode(t, &m)
			if got.E != "chat.echo" || got.I != nil || m.Text != "HI" || m.Room != "lobby" {
				t.Fatalf("echo: %+v %+v", got, m)
			}

			rep := c.request(env{E: "rooms.list", I: 1, D: query{Prefix: "g"}})
			var rooms []string
			rep.decode(t, &rooms)
			if !slices.Equal(rooms, []string{"games", "general"}) || rep.X != nil {
				t.Fatalf("rooms.list: %q %+v", rooms, rep)
			}

			// A request to an On handler gets an empty reply, after
			// what the handler sent.
			c.send(env{E: "chat.send", I: 2, D: Chat{Text: "x"}})
			if got := c.read(); got.E != "chat.echo" || got.I != nil {
				t.Fatalf("event: %+v", got)
			}
			if rep := c.read(); rep.id() != 2 || rep.E != "" || rep.D != nil || rep.X != nil {
				t.Fatalf("ack: %+v", rep)
			}

			// No payload: the handler gets a zero value.
			rep = c.request(env{E: "rooms.list", I: 1 << 60})
			rep.decode(t, &rooms)
			if len(rooms) != 3 {
				t.Fatalf("rooms.list without payload: %q", rooms)
			}
		})
	}
}

// TestRouterAckOrder checks the order of an On handler's events and its ack,
// without the assumption of the test above.
func TestRouterAckOrder(t *testing.T) {
	r, _ := testRouter()
	_, url := serve(t, r)
	c := dialCodec(t, url, JSON)
	c.send(env{E: "chat.send", I: 9, D: Chat{Text: "a"}})
	first, second := c.read(), c.read()
	if first.E != "chat.echo" || second.id() != 9 {
		t.Fatalf("got %+v then %+v, want the event then the ack", first, second)
	}
}

func TestRouterExactlyOneReply(t *testing.T) {
	r, _ := testRouter()
	_, url := serve(t, r)
	for _, cc := range clientCodecs[1:] {
		t.Run(cc.name, func(t *testing.T) {
			c := dialCodec(t, url, cc.codec)
			// Every kind of request, each followed by a marker: the
			// message after each reply must be the marker's reply.
			reqs := []env{
				{E: "echo", D: echoReq{Text: "ok"}},
				{E: "chat.send", D: Chat{}},
				{E: "nope"},
				{E: "echo", D: "not an object"},
				{E: "fail", D: echoReq{Text: "app"}},
				{E: "fail"},
				{E: "unencodable"},
			}
			id := uint64(100)
			for _, req := range reqs {
				id++
				req.I = id
				c.send(req)
				c.send(env{E: "echo", I: 1, D: echoReq{Text: "marker"}})
				var replies []reply
				for {
					rep := c.read()
					if rep.E == "chat.echo" {
						continue
					}
					if rep.id() == 1 {
						break
					}
					replies = append(replies, rep)
				}
				if len(replies) != 1 || replies[0].id() != id {
					t.Fatalf("%s: replies %+v", req.E, replies)
				}
			}
		})
	}
}

func TestRouterErrors(t *testing.T) {
	for _, cc := range clientCodecs[1:] {
		t.Run(cc.name, func(t *testing.T) {
			r, log := testRouter()
			_, url := serve(t, r)
			c := dialCodec(t, url, cc.codec)
			tests := []struct {
				name    string
				send    func()
				id      uint64 // 0: expect an error event
				code    string
				message string // a substring
			}{
				{"unknown event", func() { c.send(env{E: "nope"}) }, 0, CodeUnknownEvent, `unknown event "nope"`},
				{"unknown event, request", func() { c.send(env{E: "nope", I: 3}) }, 3, CodeUnknownEvent, `"nope"`},
				{"no event", func() { c.send(env{I: 4}) }, 4, CodeBadMessage, "no event name"},
				{"bad payload", func() { c.send(env{E: "echo", D: []int{1}}) }, 0, CodeBadPayload, `payload of "echo" must be a`},
				{"wrong field type", func() { c.send(env{E: "echo", I: 6, D: map[string]any{"n": "x"}}) }, 6, CodeBadPayload,
					`payload of "echo": field "n" must be `},
				{"not an envelope", func() {
					c.sendRaw(c.codec.Opcode(), []byte(map[Codec]string{JSON: "{garbage", MsgPack: "\xc1"}[c.codec]))
				}, 0, CodeBadMessage, ""},
				{"array", func() { b, _ := c.codec.Append(nil, []int{1}); c.sendRaw(c.codec.Opcode(), b) }, 0, CodeBadMessage, "not an envelope"},
				{"bad id", func() {
					b, _ := c.codec.Append(nil, map[string]any{"e": "echo", "i": -1})
					c.sendRaw(c.codec.Opcode(), b)
				}, 0, CodeBadMessage, "request id"},
				{"handler *Error", func() { c.send(env{E: "fail", I: 7, D: echoReq{Text: "app"}}) }, 7, "forbidden", "not for you"},
				{"handler *Error, event", func() { c.send(env{E: "fail", D: echoReq{Text: "app"}}) }, 0, "forbidden", "not for you"},
				{"handler error", func() { c.send(env{E: "fail", I: 8}) }, 8, CodeInternal, "internal error"},
				{"result does not encode", func() { c.send(env{E: "unencodable", I: 9}) }, 9, CodeInternal, "internal error"},
			}
			for _, tc := range tests {
				tc.send()
				rep := c.read()
				if tc.id == 0 && (rep.E != EventError || rep.I != nil) || tc.id != 0 && (rep.E != "" || rep.id() != tc.id) {
					t.Fatalf("%s: got %+v", tc.name, rep)
				}
				if rep.X == nil || rep.X.Code != tc.code || !strings.Contains(rep.X.Message, tc.message) || rep.D != nil {
					t.Fatalf("%s: error %+v", tc.name, rep.X)
				}
			}
			// The session is still open and serving.
			var q echoReq
			c.request(env{E: "echo", I: 99, D: echoReq{Text: "still here"}}).decode(t, &q)
			if q.Text != "still here" {
				t.Fatalf("echo after errors: %+v", q)
			}
			// The internal error's text reached the log, not the client.
			if errs := log.get(); !slices.ContainsFunc(errs, func(s string) bool { return s == "fail: secret internal detail" }) {
				t.Fatalf("error log: %q", errs)
			}
		})
	}
}

func TestRouterHandlerCloseError(t *testing.T) {
	r, _ := testRouter()
	_, url := serve(t, r)
	c := dialCodec(t, url, JSON)
	c.send(env{E: "fail", I: 1, D: echoReq{Text: "close"}})
	if code := c.readClose(); code != 4001 {
		t.Fatalf("close code %d, want 4001", code)
	}
}

func TestRouterStrict(t *testing.T) {
	r, _ := testRouter(WithStrict())
	_, url := serve(t, r)
	for _, tc := range []struct {
		name string
		send func(c *client)
		code wire.StatusCode
	}{
		{"unknown event", func(c *client) { c.send(env{E: "nope", I: 1}) }, wire.StatusUnsupportedData},
		{"bad payload", func(c *client) { c.send(env{E: "echo", D: 5}) }, wire.StatusInvalidFramePayloadData},
		{"not an envelope", func(c *client) { c.sendRaw(wire.OpText, []byte("[]")) }, wire.StatusInvalidFramePayloadData},
		{"no event", func(c *client) { c.send(env{I: 1}) }, wire.StatusInvalidFramePayloadData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialCodec(t, url, JSON)
			tc.send(c)
			if code := c.readClose(); code != tc.code {
				t.Fatalf("close code %d, want %d", code, tc.code)
			}
		})
	}
	t.Run("handler error stays open", func(t *testing.T) {
		c := dialCodec(t, url, MsgPack)
		if rep := c.request(env{E: "fail", I: 1}); rep.X == nil || rep.X.Code != CodeInternal {
			t.Fatalf("got %+v", rep)
		}
		c.request(env{E: "echo", I: 2})
	})
}

func TestRouterEventMeta(t *testing.T) {
	r, _ := testRouter()
	_, url := serve(t, r)
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, cc := range clientCodecs[1:] {
		t.Run(cc.name, func(t *testing.T) {
			c := dialCodec(t, url, cc.codec)
			c.send(env{E: "meta", R: "lobby", I: 42, T: tp, D: echoReq{Text: "x", N: 3}})
			var ev Event[echoReq]
			c.read().decode(t, &ev)
			want := Event[echoReq]{Name: "meta", Room: "lobby", Trace: tp, ID: 42, HasID: true, Data: echoReq{Text: "x", N: 3}}
			if ev != want {
				t.Fatalf("got %+v, want %+v", ev, want)
			}
			if rep := c.read(); rep.id() != 42 {
				t.Fatalf("ack: %+v", rep)
			}
		})
	}
}

// counted counts its encodings in each codec.
type counted struct{ Text string }

var jsonEncodes, msgpackEncodes atomic.Int64

func (c counted) MarshalJSON() ([]byte, error) {
	jsonEncodes.Add(1)
	return json.Marshal(map[string]string{"text": c.Text})
}

func (c counted) EncodeMsgpack(enc *msgpack.Encoder) error {
	msgpackEncodes.Add(1)
	return enc.Encode(map[string]string{"text": c.Text})
}

func TestRouterRoomsAndPublish(t *testing.T) {
	r := NewRouter(JSON)
	Handle(r, "whoami", func(s *session.Session, _ struct{}) (uint64, error) { return s.ID(), nil })
	rt, url := serve(t, r)
	r.HandleRooms(rt, Rooms{Allow: func(s *session.Session, room string) error {
		if room == "vip" {
			return &Error{Code: "forbidden", Message: "members only"}
		}
		return nil
	}})
	const perCodec = 5
	var clients []*client
	for _, cc := range clientCodecs {
		for range perCodec {
			c := dialCodec(t, url, cc.codec)
			if rep := c.request(env{E: EventJoin, R: "lobby", I: 1}); rep.X != nil {
				t.Fatalf("join: %+v", rep.X)
			}
			clients = append(clients, c)
		}
	}
	room, ok := rt.Room("lobby")
	if !ok || room.Len() != len(clients) {
		t.Fatalf("room: %v %d", ok, room.Len())
	}

	jsonEncodes.Store(0)
	msgpackEncodes.Store(0)
	n, err := r.Publish(room, "news", counted{Text: "extra"})
	if err != nil || n != len(clients) {
		t.Fatalf("Publish: %d %v", n, err)
	}
	if j, m := jsonEncodes.Load(), msgpackEncodes.Load(); j != 1 || m != 1 {
		t.Fatalf("encoded %d times in JSON and %d in MessagePack, want once each", j, m)
	}
	for i, c := range clients {
		rep := c.read()
		var v struct {
			Text string `json:"text"`
		}
		rep.decode(t, &v)
		if rep.E != "news" || rep.R != "lobby" || rep.I != nil || v.Text != "extra" {
			t.Fatalf("client %d: %+v %+v", i, rep, v)
		}
	}

	// PublishExcept skips one member; the others still get it.
	var id0 uint64
	clients[0].request(env{E: "whoami", I: 1}).decode(t, &id0)
	i := slices.IndexFunc(slices.Collect(room.Members()), func(s *session.Session) bool { return s.ID() == id0 })
	except := slices.Collect(room.Members())[i]
	n, err = r.PublishExcept(room, except, "news", counted{Text: "b"})
	if err != nil || n != len(clients)-1 {
		t.Fatalf("PublishExcept: %d %v", n, err)
	}
	for i, c := range clients[1:] {
		if rep := c.read(); rep.E != "news" {
			t.Fatalf("client %d: %+v", i+1, rep)
		}
	}

	// Leave, then a refused join.
	c := clients[0]
	if rep := c.request(env{E: EventLeave, R: "lobby", I: 2}); rep.X != nil {
		t.Fatalf("leave: %+v", rep.X)
	}
	if rep := c.request(env{E: EventJoin, R: "vip", I: 3}); rep.X == nil || rep.X.Code != "forbidden" {
		t.Fatalf("vip join: %+v", rep)
	}
	if rep := c.request(env{E: EventJoin, I: 4}); rep.X == nil || rep.X.Code != CodeBadRequest {
		t.Fatalf("join without a room: %+v", rep)
	}
	if _, ok := rt.Room("vip"); ok {
		t.Fatal("the refused join made the room")
	}
	waitUntil(t, "the member to leave", func() bool { return room.Len() == len(clients)-1 })
}

// TestRouterTooManyRooms: a join past MaxRoomsPerSession is answered with
// too_many_rooms, as a reply or an error event, and joins nothing; after
// leaving a room, the session may join another.
func TestRouterTooManyRooms(t *testing.T) {
	r, log := testRouter()
	rt, url := serve(t, r, runtime.WithLimits(runtime.Limits{MaxRoomsPerSession: 2}))
	r.HandleRooms(rt, Rooms{})
	c := dialCodec(t, url, nil)
	for i, room := range []string{"a", "b", "a"} { // a room joined again is not one more
		if rep := c.request(env{E: EventJoin, R: room, I: uint64(i + 1)}); rep.X != nil {
			t.Fatalf("join %s: %+v", room, rep.X)
		}
	}
	rep := c.request(env{E: EventJoin, R: "c", I: 4})
	if rep.X == nil || rep.X.Code != CodeTooManyRooms || !strings.Contains(rep.X.Message, `"c"`) {
		t.Fatalf("join of a third room: %+v", rep)
	}
	c.send(env{E: EventJoin, R: "c"})
	if rep := c.read(); rep.E != EventError || rep.X == nil || rep.X.Code != CodeTooManyRooms {
		t.Fatalf("join of a third room without an id: %+v", rep)
	}
	if _, ok := rt.Room("c"); ok {
		t.Fatal("a refused join made the room")
	}
	if n := rt.Refused().RoomsPerSession.Load(); n != 2 {
		t.Errorf("Refused().RoomsPerSession = %d, want 2", n)
	}
	if errs := log.get(); len(errs) != 2 || !strings.HasPrefix(errs[0], EventJoin+": "+CodeTooManyRooms) {
		t.Errorf("error handler saw %q", errs)
	}

	if rep := c.request(env{E: EventLeave, R: "a", I: 5}); rep.X != nil {
		t.Fatalf("leave: %+v", rep.X)
	}
	if rep := c.request(env{E: EventJoin, R: "c", I: 6}); rep.X != nil {
		t.Fatalf("join after a leave: %+v", rep.X)
	}
	if room, ok := rt.Room("c"); !ok || room.Len() != 1 {
		t.Fatal("the session is not in the room it joined")
	}
	// A name past Limits.MaxRoomName (256 bytes by default) is a bad
	// request, and the answer does not repeat it.
	long := strings.Repeat("n", 257)
	rep = c.request(env{E: EventJoin, R: long, I: 7})
	if rep.X == nil || rep.X.Code != CodeBadRequest || strings.Contains(rep.X.Message, long) {
		t.Fatalf("join of a room named with 257 bytes: %+v", rep)
	}
	if n := rt.Refused().RoomName.Load(); n != 1 {
		t.Errorf("Refused().RoomName = %d, want 1", n)
	}
}

func TestPublishSingleCodec(t *testing.T) {
	r := NewRouter(MsgPack, WithCodecs())
	if got := r.Subprotocols(); !slices.Equal(got, []string{"shockwave.msgpack"}) {
		t.Fatalf("Subprotocols: %q", got)
	}
	rt, url := serve(t, r)
	r.HandleRooms(rt, Rooms{})
	var clients []*client
	for range 3 {
		c := dialCodec(t, url, MsgPack)
		c.request(env{E: EventJoin, R: "r", I: 1})
		clients = append(clients, c)
	}
	room, _ := rt.Room("r")
	msgpackEncodes.Store(0)
	if n, err := r.Publish(room, "x", counted{Text: "one"}); n != 3 || err != nil {
		t.Fatalf("Publish: %d %v", n, err)
	}
	if m := msgpackEncodes.Load(); m != 1 {
		t.Fatalf("encoded %d times", m)
	}
	for _, c := range clients {
		if rep := c.read(); rep.E != "x" {
			t.Fatalf("got %+v", rep)
		}
	}
	// A value that does not encode is an error, and nobody gets anything.
	if n, err := r.Publish(room, "x", func() {}); n != 0 || err == nil {
		t.Fatalf("Publish(func): %d %v", n, err)
	}
}

func TestRouterSubprotocols(t *testing.T) {
	if got := NewRouter(JSON).Subprotocols(); !slices.Equal(got, []string{"shockwave.json", "shockwave.msgpack"}) {
		t.Errorf("JSON router: %q", got)
	}
	if got := NewRouter(MsgPack).Subprotocols(); !slices.Equal(got, []string{"shockwave.msgpack", "shockwave.json"}) {
		t.Errorf("MsgPack router: %q", got)
	}
	if got := NewRouter(JSON, WithCodecs(JSON)).Subprotocols(); !slices.Equal(got, []string{"shockwave.json"}) {
		t.Errorf("JSON-only router: %q", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewRouter(Raw) did not panic")
		}
	}()
	NewRouter(Raw)
}

// TestRouterConcurrentRegistration registers handlers while a client sends.
func TestRouterConcurrentRegistration(t *testing.T) {
	r, _ := testRouter()
	_, url := serve(t, r)
	c := dialCodec(t, url, JSON)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			On(r, fmt.Sprintf("dyn.%d", i), func(*session.Session, struct{}) error { return nil })
		}
	}()
	for i := range 200 {
		c.request(env{E: "echo", I: uint64(i + 1)})
	}
	<-done
	c.request(env{E: "dyn.199", I: 1000})
}

func TestEmitCodec(t *testing.T) {
	r := NewRouter(JSON)
	got := make(chan Codec, 2)
	On(r, "hello", func(s *session.Session, _ struct{}) error {
		got <- r.Codec(s)
		return r.Emit(s, "hi", nil)
	})
	_, url := serve(t, r)
	for _, cc := range clientCodecs {
		c := dialCodec(t, url, cc.codec)
		c.send(env{E: "hello"})
		if rep := c.read(); rep.E != "hi" || rep.D != nil {
			t.Fatalf("%s: %+v", cc.name, rep)
		}
		want := cc.codec
		if want == nil {
			want = JSON
		}
		if c := <-got; c != want {
			t.Fatalf("%s: Codec(s) = %s", cc.name, c.Name())
		}
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %v", what, bound)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRouterRoomAccess: HandleRooms' allow refuses a join; the refusal
// reaches the client as the join's error (or an error event), the session
// stays open and out of the room, and other joins go through.
func TestRouterRoomAccess(t *testing.T) {
	r, _ := testRouter()
	rt, url := serve(t, r)
	r.HandleRooms(rt, Rooms{Allow: func(s *session.Session, room string) error {
		if room == "staff" {
			return &Error{Code: "forbidden", Message: "staff only"}
		}
		return nil
	}})
	c := dialCodec(t, url, nil)
	if rep := c.request(env{E: EventJoin, R: "staff", I: 1}); rep.X == nil || rep.X.Code != "forbidden" || rep.X.Message != "staff only" {
		t.Fatalf("join of a refused room: %+v", rep)
	}
	c.send(env{E: EventJoin, R: "staff"})
	if rep := c.read(); rep.E != EventError || rep.X == nil || rep.X.Code != "forbidden" {
		t.Fatalf("join of a refused room without an id: %+v", rep)
	}
	if _, ok := rt.Room("staff"); ok {
		t.Fatal("a refused join made the room")
	}
	if rep := c.request(env{E: EventJoin, R: "lobby", I: 2}); rep.X != nil {
		t.Fatalf("join after a refusal: %+v", rep.X)
	}
	if room, ok := rt.Room("lobby"); !ok || room.Len() != 1 {
		t.Fatal("the session is not in the room it joined")
	}
}

// order is the payload type of TestPayloadMessages, with fields of every
// kind and nested ones.
type order struct {
	Text   string               `json:"text"`
	Count  int                  `json:"count"`
	Small  uint8                `json:"small"`
	Ratio  float32              `json:"ratio"`
	OK     bool                 `json:"ok"`
	Tags   []string             `json:"tags"`
	Items  []orderItem          `json:"items"`
	ByName map[string]orderItem `json:"by_name"`
	Owner  *orderItem           `json:"owner"`
	Blob   []byte               `json:"blob"`
	Votes  map[int]int          `json:"votes"`
	When   time.Time            `json:"when"`
	Pair   [2]int               `json:"pair"`
	Scores map[int]orderItem    `json:"scores"`
	orderMeta
}

// orderMeta is embedded: its fields are order's.
type orderMeta struct {
	Note string `json:"note"`
}

type orderItem struct {
	Name string `json:"name"`
	Qty  int    `json:"qty"`
}

// payloadMessageOf decodes data into an order in codec c and returns the
// message a client gets for it, or "ok". It checks that the message names
// no Go type unless the payload may (fuzzing: a key can say anything).
func payloadMessageOf(t testing.TB, c envelopeCodec, data []byte, anyKeys bool) string {
	t.Helper()
	var v order
	err := c.Decode(data, &v)
	if err == nil {
		return "ok"
	}
	m := payloadMessage(c, "order", data, reflect.TypeFor[order](), err)
	if anyKeys {
		return m
	}
	for _, goWord := range []string{"Go ", "codec.", "order{", "orderItem", "uint8", "float32", "int64",
		"[]", "map[", "json:", "msgpack:", "time.Time", "reflect"} {
		if strings.Contains(m, goWord) {
			t.Errorf("%s: message %q says %q (the error was %v)", c.Name(), m, goWord, err)
		}
	}
	return m
}

// TestPayloadMessages: what a client is told of a payload that does not
// decode, in each codec. "-" skips a codec, where the payload decodes
// (JSON takes 0.1 for a float32; vmihailenco/msgpack truncates 300 into
// a uint8).
func TestPayloadMessages(t *testing.T) {
	const p = `payload of "order"`
	for _, tc := range []struct {
		name          string
		payload       any
		json, msgpack string // the expected message, after p
	}{
		{"string for a number", map[string]any{"count": "3"},
			`: field "count" must be a number, not a string`,
			`: field "count" must be an integer, not a string`},
		{"number for a string", map[string]any{"text": 5},
			`: field "text" must be a string, not a number`,
			`: field "text" must be a string, not an integer`},
		{"string for a boolean", map[string]any{"ok": "yes"},
			`: field "ok" must be a boolean, not a string`,
			`: field "ok" must be a boolean, not a string`},
		{"fraction for an integer", map[string]any{"count": 1.5},
			`: field "count" must be a whole number, not 1.5`,
			`: field "count" must be an integer, not a 64-bit float (1.5)`},
		{"out of range", map[string]any{"small": 300},
			`: field "small" must be a whole number from 0 to 255, not 300`, "-"},
		{"negative for unsigned", map[string]any{"small": -1},
			`: field "small" must be a whole number from 0 to 255, not -1`, "-"},
		{"float64 for a float32", map[string]any{"ratio": 0.1},
			"-", `: field "ratio" must be an integer or a 32-bit float, not a 64-bit float (0.1)`},
		{"nested, in an array", map[string]any{"items": []any{map[string]any{"name": "a"}, map[string]any{"qty": "two"}}},
			`: field "items.qty" must be a number, not a string`,
			`: field "items[1].qty" must be an integer, not a string`},
		{"nested, in a map", map[string]any{"by_name": map[string]any{"ada": map[string]any{"name": 7}}},
			`: field "by_name.name" must be a string, not a number`,
			`: field "by_name.ada.name" must be a string, not an integer`},
		{"nested, by pointer", map[string]any{"owner": map[string]any{"qty": true}},
			`: field "owner.qty" must be a number, not a boolean`,
			`: field "owner.qty" must be an integer, not a boolean`},
		{"element", map[string]any{"tags": []any{"a", 2}},
			`: field "tags" must be a string, not a number`,
			`: field "tags[1]" must be a string, not an integer`},
		{"object for an array", map[string]any{"tags": map[string]any{"a": 1}},
			`: field "tags" must be an array, not an object`,
			`: field "tags" must be an array, not a map`},
		{"array for an object", map[string]any{"owner": []int{1}},
			`: field "owner" must be an object, not an array`,
			`: field "owner" must be a map, not an array`},
		{"map key", map[string]any{"votes": map[string]any{"x": 1}},
			`: field "votes": each key must be a whole number, not "x"`,
			`: field "votes": each key must be an integer, not a string`},
		{"bytes", map[string]any{"blob": 5},
			`: field "blob" must be a string, not a number`,
			`: field "blob" must be binary data, not an integer`},
		{"time", map[string]any{"when": 5},
			` does not match the expected shape`, // time.Time decodes itself in JSON
			`: field "when" must be a timestamp, not an integer`},
		{"integer keys", map[string]any{"scores": map[int]any{1: map[string]any{"qty": "x"}}},
			`: field "scores.qty" must be a number, not a string`,
			`: field "scores[1].qty" must be an integer, not a string`},
		{"array too long", map[string]any{"pair": []int{1, 2, 3}},
			"-", `: field "pair" must be an array of at most 2 elements, not an array of 3`},
		{"embedded", map[string]any{"note": 1},
			`: field "note" must be a string, not a number`,
			`: field "note" must be a string, not an integer`},
		{"string payload", "hello",
			` must be an object, not a string`,
			` must be a map, not a string`},
		{"array payload", []int{1, 2},
			` must be an object, not an array`,
			` must be a map, not an array`},
		{"matches", map[string]any{"text": "hi", "items": []any{map[string]any{"qty": 2}}, "extra": 1}, "ok", "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for c, want := range map[envelopeCodec]string{jsonCodec{}: tc.json, msgpackCodec{}: tc.msgpack} {
				if want == "-" {
					continue
				}
				if want != "ok" {
					want = p + want
				}
				b, err := c.Append(nil, tc.payload)
				if err != nil {
					t.Fatal(err)
				}
				if got := payloadMessageOf(t, c, b, false); got != want {
					t.Errorf("%s %s:\n got %s\nwant %s", c.Name(), b, got, want)
				}
			}
		})
	}
	// Payloads the other codec cannot write.
	structKey, _ := MsgPack.Append(nil, map[int]string{1: "x"})
	for _, tc := range []struct {
		c    envelopeCodec
		data string
		want string
	}{
		{jsonCodec{}, `{"text":"a`, ` is not valid JSON (at byte 10)`},
		{jsonCodec{}, `{"count":1e2}`, `: field "count" must be a whole number written without a fraction or exponent, not 1e2`},
		{jsonCodec{}, `{"count":99999999999999999999}`,
			`: field "count" must be a whole number from -9223372036854775808 to 9223372036854775807, not 99999999999999999999`},
		{jsonCodec{}, `{"ratio":1e39}`, `: field "ratio" must be a number from -3.4e+38 to 3.4e+38, not 1e39`},
		{jsonCodec{}, `{"blob":"!!"}`, ` has a string that is not valid base64`},
		{jsonCodec{}, `{"when":"soon"}`, ` has a time that is not in RFC 3339 format`},
		{msgpackCodec{}, "\xc1", ` is not valid MessagePack`},
		{msgpackCodec{}, "\x81\xa4text", ` is not valid MessagePack`},
		{msgpackCodec{}, string(structKey), `: each key must be a string, not an integer`},
	} {
		if got := payloadMessageOf(t, tc.c, []byte(tc.data), false); got != p+tc.want {
			t.Errorf("%s %q:\n got %s\nwant %s", tc.c.Name(), tc.data, got, p+tc.want)
		}
	}
}

// loop embeds itself.
type loop struct {
	*loop
	X int `json:"x"`
}

func TestMsgpackFields(t *testing.T) {
	got := msgpackFields(reflect.TypeFor[loop]())
	if len(got) != 2 || got["x"] != reflect.TypeFor[int]() || got["loop"] != reflect.TypeFor[*loop]() {
		t.Errorf("fields of loop: %v", got)
	}
	got = msgpackFields(reflect.TypeFor[order]())
	if got["note"] != reflect.TypeFor[string]() || got["by_name"] == nil || got["orderMeta"] == nil {
		t.Errorf("fields of order: %v", got)
	}
}

// TestRouterBadPayloadServerSide: the client gets the message for people;
// the ErrorHandler gets both it and the decoder's own error.
func TestRouterBadPayloadServerSide(t *testing.T) {
	got := make(chan error, 1)
	r := NewRouter(JSON, WithErrorHandler(func(_ *session.Session, _ string, err error) { got <- err }))
	On(r, "order", func(*session.Session, order) error { return nil })
	_, url := serve(t, r)
	c := dialCodec(t, url, JSON)
	rep := c.request(env{E: "order", I: 1, D: map[string]any{"count": "3"}})
	const want = `payload of "order": field "count" must be a number, not a string`
	if rep.X == nil || rep.X.Code != CodeBadPayload || rep.X.Message != want {
		t.Fatalf("got %+v, want %s", rep.X, want)
	}
	err := <-got
	var e *Error
	var te *json.UnmarshalTypeError
	if !errors.As(err, &e) || e.Code != CodeBadPayload || !errors.As(err, &te) || te.Field != "count" {
		t.Fatalf("ErrorHandler got %v, want the *Error and the *json.UnmarshalTypeError", err)
	}
}

// FuzzPayloadMessage decodes arbitrary payloads into a type with nested
// fields in both codecs: the message for a failure must never panic, and
// must speak of the payload without Go's words.
func FuzzPayloadMessage(f *testing.F) {
	for _, v := range []any{
		map[string]any{"items": []any{map[string]any{"qty": "two"}}, "by_name": map[string]any{"a": map[string]any{"name": 1}}},
		map[string]any{"votes": map[string]any{"x": 1}, "owner": []int{1}, "ratio": 0.1, "small": 300},
		map[string]any{"when": 5, "blob": 5, "tags": []any{"a", 2}},
		[]any{1, "x", nil, true},
	} {
		for _, c := range []Codec{JSON, MsgPack} {
			b, _ := c.Append(nil, v)
			f.Add(b)
		}
	}
	f.Add([]byte("\x81\x01\xa1x"))
	f.Add([]byte(`{"count":1e2,"when":"soon","blob":"!!"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []envelopeCodec{jsonCodec{}, msgpackCodec{}} {
			if m := payloadMessageOf(t, c, data, true); m != "ok" && !strings.HasPrefix(m, `payload of "order"`) {
				t.Errorf("%s: message %q", c.Name(), m)
			}
		}
	})
}
