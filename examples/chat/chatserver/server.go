package chatserver

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

// Config is the chat's settings. Zero fields take the defaults.
type Config struct {
	// MaxLength is the longest message, in characters. Default 2000.
	MaxLength int
	// Rate is how many events a second one connection may send on
	// average, and Burst how many at once: the runtime's message rate
	// (runtime.WithMessageRate). A client over it is not refused: its
	// connection is read more slowly until it is within the rate again,
	// so a flood is slowed and nothing is lost. Defaults 20 and Rate;
	// a negative Rate means no limit.
	Rate  float64
	Burst int
	// History is how many messages each room keeps (runtime.History's
	// Size): those a client that joins asks for come after the join's
	// reply, and a client that comes back gets those it missed. Default
	// 100.
	History int
	// Rooms are listed even when nobody is in them, and keep their
	// history while the server runs. Default ["lobby", "random"].
	Rooms []string
	// Linger is how long another room, once empty, keeps its history for
	// the members who come back (runtime.History's Linger). Default 10
	// minutes; negative: the room and its history go with its last
	// member.
	Linger time.Duration
	// MaxRooms bounds the rooms the server keeps, with their history,
	// those that linger included: when there are MaxRooms, a join that
	// would make a new one is refused with too_many_rooms. Joins that
	// race may go over it by as many as there are. Default 1000.
	MaxRooms int
	// RoomsPerClient bounds the rooms one connection may be in at once:
	// the runtime's Limits.MaxRoomsPerSession, unless Runtime sets that
	// lower. Default 10.
	RoomsPerClient int
	// Grace is how long a user whose last connection left a room still
	// counts as in it (runtime.Presence's Grace): one who comes back
	// within it, as a page that reconnects does, is never seen to leave.
	// Default 15 s; negative: users leave at once.
	Grace time.Duration
	// Runtime holds more options for the runtime (heartbeat, origins,
	// telemetry providers, a Broker...), applied after the chat's own.
	// With a Broker that keeps the rooms' log (runtime.WithBroker with a
	// runtime/natsbroker.Broker), several chat servers share their rooms:
	// see Node.
	Runtime []runtime.Option
	// Node names this server when it is one of several that share their
	// rooms through a Broker in Runtime, as natsbroker's Broker.Node does.
	// The page shows it, and says that what the server keeps for itself
	// is this server's: the room list (the fixed rooms and those with
	// users here), MaxRooms, and private messages, which reach the users
	// connected here. Empty, the default: one server.
	Node string
	// Logger receives the errors clients cannot see (codec.CodeInternal).
	// Default slog.Default().
	Logger *slog.Logger
	// Key signs the sign-in cookies (HMAC-SHA256), at least 16 bytes.
	// Default: 32 random bytes, so that sign-ins last until the server
	// restarts. Keep it secret: whoever has it can sign in as anyone.
	Key []byte
	// SecureCookie makes the sign-in cookie Secure on every request: set
	// it when the site is served over https, through a proxy that
	// terminates TLS included, so that the browser never sends the cookie
	// over plain http. Default false, for http://localhost in development;
	// the cookie is Secure anyway on a request over TLS, and on one that a
	// trusted proxy (runtime.WithTrustedProxies in Runtime) forwarded with
	// X-Forwarded-Proto: https or Forwarded: proto=https. The headers of
	// any other client are ignored.
	SecureCookie bool
	// LoginTTL is how long a sign-in lasts: the cookie's lifetime, after
	// which the sessions it opened are closed with 3000
	// (wire.StatusUnauthorized). Default 24 h.
	LoginTTL time.Duration
	// Now is the clock of the sign-ins. Default time.Now.
	Now func() time.Time
}

// forever is the Linger of the fixed rooms: as long as the server runs.
const forever = time.Duration(math.MaxInt64)

func (c Config) withDefaults() Config {
	if c.MaxLength <= 0 {
		c.MaxLength = 2000
	}
	if c.Rate == 0 {
		c.Rate = 20
	}
	if c.Burst <= 0 {
		c.Burst = max(1, int(c.Rate))
	}
	if c.History <= 0 {
		c.History = 100
	}
	if c.Rooms == nil {
		c.Rooms = []string{"lobby", "random"}
	}
	c.Linger = orDefault(c.Linger, 10*time.Minute)
	if c.MaxRooms <= 0 {
		c.MaxRooms = 1000
	}
	if c.RoomsPerClient <= 0 {
		c.RoomsPerClient = 10
	}
	c.Grace = orDefault(c.Grace, 15*time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LoginTTL <= 0 {
		c.LoginTTL = 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// orDefault is d for zero, none (0) for a negative duration, else v.
func orDefault(v, d time.Duration) time.Duration {
	switch {
	case v == 0:
		return d
	case v < 0:
		return 0
	}
	return v
}

// Server is the chat. It is an http.Handler serving the page at "/", the
// sign-in at "/login" and "/me", and the WebSocket at "/ws"; mount it at
// the root of a server.
type Server struct {
	cfg    Config
	keys   *signer
	router *codec.Router
	rt     *runtime.Runtime
	mux    *http.ServeMux
}

// New returns a chat server. Call Shutdown to end its sessions.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	keys, err := newSigner(cfg.Key)
	if err != nil {
		return nil, err
	}
	cfg.Key = nil // the signer has its copy; Config is kept, and may be logged
	srv := &Server{cfg: cfg, keys: keys}

	// One Router speaks the event envelope: JSON by default, MessagePack
	// for clients that ask for it by subprotocol.
	srv.router = codec.NewRouter(codec.JSON, codec.WithErrorHandler(srv.logError))
	codec.On(srv.router, EventSend, srv.send)
	codec.On(srv.router, EventPrivate, srv.private)
	codec.On(srv.router, EventTyping, srv.typing)
	codec.Handle(srv.router, EventRooms, srv.list)

	opts := []runtime.Option{
		// Only a signed-in client gets a session (auth.go).
		runtime.WithAdmit(srv.admit),
		runtime.WithSubprotocols(srv.router.Subprotocols()...),
		// A message may take 6 bytes a character in JSON (\u escapes),
		// plus the envelope; anything longer is not from our page and
		// closes the connection (1009). Shorter messages over MaxLength
		// characters get a too_long error.
		runtime.WithMaxMessageSize(max(64<<10, int64(cfg.MaxLength)*6+1024)),
		runtime.WithMessageRate(cfg.Rate, cfg.Burst),
		runtime.WithRoomHistory(srv.history),
		runtime.WithRoomPresence(srv.presence),
	}
	opts = append(opts, cfg.Runtime...)
	opts = append(opts, func(o *runtime.Options) { // after Runtime's: a lower limit there stays
		if n := o.Limits.MaxRoomsPerSession; n <= 0 || n > cfg.RoomsPerClient {
			o.Limits.MaxRoomsPerSession = cfg.RoomsPerClient
		}
	})
	rt, err := runtime.New(srv.router, opts...)
	if err != nil {
		return nil, err
	}
	srv.rt = rt
	srv.router.HandleRooms(rt, codec.Rooms{Allow: srv.allow, State: srv.state})
	srv.mux = srv.routes()
	return srv, nil
}

// ServeHTTP serves the page, the client module, the sign-in and the
// WebSocket.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { srv.mux.ServeHTTP(w, r) }

// Shutdown closes every connection (1001) and waits for the sessions to
// end, or for ctx; see runtime.Runtime.Shutdown.
func (srv *Server) Shutdown(ctx context.Context) error { return srv.rt.Shutdown(ctx) }

// history is the runtime's RoomHistory: every room keeps its last
// messages; the fixed rooms keep them while the server runs, the others
// for Config.Linger once empty.
func (srv *Server) history(room string) runtime.History {
	// Stamp matters only with a Broker that keeps the rooms' log: each
	// message gets its position there as it comes back from the log.
	h := runtime.History{Size: srv.cfg.History, Linger: srv.cfg.Linger, Stamp: codec.Stamp}
	if slices.Contains(srv.cfg.Rooms, room) {
		h.Linger = forever
	}
	return h
}

// presence is the runtime's RoomPresence: a room counts its users by
// their signed name, whatever their connections, and tells its members
// when one arrives or departs (room.presence), Config.Grace after their
// last connection left.
func (srv *Server) presence(string) *runtime.Presence {
	return &runtime.Presence{
		Who: func(s *session.Session) (string, any) {
			nick, _ := nameOf(s) // every session has one: admit
			return nick, nil
		},
		Grace:   srv.cfg.Grace,
		Changed: srv.router.PublishPresence,
	}
}

// logError logs the errors that reach the client as "internal error".
func (srv *Server) logError(s *session.Session, event string, err error) {
	var ce *codec.Error
	if !errors.As(err, &ce) && !errors.Is(err, session.ErrClosed) {
		srv.cfg.Logger.Error("chat: handler failed", "event", event, "session", s.ID(), "err", err)
	}
}

// allow is asked before every room.join: the room's name must be one the
// chat can show, and a new room must find a place among MaxRooms. The
// runtime bounds the rooms of each connection (RoomsPerClient).
func (srv *Server) allow(_ *session.Session, room string) error {
	name, err := checkName("room name", CodeBadRoom, room, maxRoom)
	if err != nil {
		return err
	}
	if name != room {
		return chatError(CodeBadRoom, "the room name begins or ends with a space")
	}
	if _, ok := srv.rt.Room(room); ok {
		return nil
	}
	n := 0
	for range srv.rt.Rooms() {
		n++
	}
	if n >= srv.cfg.MaxRooms {
		return chatError(CodeTooManyRooms, "the server has %d rooms, as many as it keeps; join one of them", n)
	}
	return nil
}

// state is the chat's part of a join's reply: the client's signed name
// and the longest message. The runtime gives the rest: who is present,
// and the room's last messages after the reply.
func (srv *Server) state(s *session.Session, _ runtime.Resumption) (any, error) {
	nick, err := nameOf(s)
	if err != nil {
		return nil, err
	}
	return &State{Nick: nick, MaxLength: srv.cfg.MaxLength, Node: srv.cfg.Node}, nil
}

// send says something to a room (chat.send): the message is published to
// every member, the sender included, and kept in the room's history,
// where it gets its position.
func (srv *Server) send(s *session.Session, ev codec.Event[SendRequest]) error {
	nick, r, err := srv.memberOf(s, ev.Room)
	if err != nil {
		return err
	}
	if err := checkText(ev.Data.Text, srv.cfg.MaxLength); err != nil {
		return err
	}
	msg := &Message{From: nick, Text: ev.Data.Text, At: time.Now().UnixMilli()}
	_, err = srv.router.PublishContext(ev.Ctx, r, EventMsg, msg) // encoded once per codec for the whole room
	return err
}

// private sends a message to one member of a room (chat.private): to
// every connection of the recipient in the room, and of the sender, who
// gets it back. Among several servers (Config.Node), only to those
// connected to this one: a recipient in the room through another server
// is told apart from one who is not in it.
func (srv *Server) private(s *session.Session, ev codec.Event[PrivateRequest]) error {
	nick, r, err := srv.memberOf(s, ev.Room)
	if err != nil {
		return err
	}
	if err := checkText(ev.Data.Text, srv.cfg.MaxLength); err != nil {
		return err
	}
	to := strings.TrimSpace(ev.Data.To)
	var parties []*session.Session
	found := false
	for m := range r.Members() {
		switch name, _ := nameOf(m); name {
		case to:
			found = true
			parties = append(parties, m)
		case nick:
			parties = append(parties, m)
		}
	}
	switch {
	case found:
	case srv.cfg.Node == "":
		return chatError(CodeNoSuchUser, "nobody called %q is in %s", to, r.Name())
	case srv.present(r, to):
		return chatError(CodeElsewhere, "%s is in %s through another server of this chat; private messages reach only those on this one (%s)", to, r.Name(), srv.cfg.Node)
	default:
		return chatError(CodeNoSuchUser, "nobody called %q is in %s on this server (%s)", to, r.Name(), srv.cfg.Node)
	}
	msg := &Private{Room: r.Name(), From: nick, To: to, Text: ev.Data.Text, At: time.Now().UnixMilli()}
	for _, m := range parties {
		// A party too slow to take it is closed by its backpressure
		// policy; that is not the sender's error.
		_ = srv.router.EmitContext(ev.Ctx, m, EventPrivate, msg)
	}
	return nil
}

// present reports whether the room's presence counts the user nick.
func (srv *Server) present(r *runtime.Room, nick string) bool {
	for key := range r.Present() {
		if key == nick {
			return true
		}
	}
	return false
}

// typing tells the other members of a room that the client is typing
// (chat.typing), as a signal: it is not kept, and a client that comes
// back is not told of it. The page sends it at most every few seconds.
func (srv *Server) typing(s *session.Session, ev codec.Event[struct{}]) error {
	nick, r, err := srv.memberOf(s, ev.Room)
	if err != nil {
		return err
	}
	_, err = srv.router.Signal(ev.Ctx, r, s, EventTyping, &Typing{Nick: nick})
	return err
}

// list returns the room list (chat.rooms): the fixed rooms, and the
// others that have users, by name. Among several servers (Config.Node),
// the others are those with users here (or lingering here): no server
// knows every room of the others'.
func (srv *Server) list(*session.Session, struct{}) ([]RoomInfo, error) {
	out := make([]RoomInfo, 0, len(srv.cfg.Rooms))
	for r := range srv.rt.Rooms() {
		n := r.PresentCount()
		if n > 0 || slices.Contains(srv.cfg.Rooms, r.Name()) {
			out = append(out, RoomInfo{Name: r.Name(), Members: n})
		}
	}
	for _, name := range srv.cfg.Rooms {
		if !slices.ContainsFunc(out, func(ri RoomInfo) bool { return ri.Name == name }) {
			out = append(out, RoomInfo{Name: name})
		}
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// memberOf returns the signed name of s and the room called name, or
// fails with not_joined when s is not in it.
func (srv *Server) memberOf(s *session.Session, name string) (string, *runtime.Room, error) {
	r, ok := srv.rt.Room(name)
	if !ok || !r.Has(s) {
		return "", nil, chatError(CodeNotJoined, "join %s first", name)
	}
	nick, err := nameOf(s)
	if err != nil {
		return "", nil, err
	}
	return nick, r, nil
}
