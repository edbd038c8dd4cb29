package chatserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// StatusReplaced is the close code of a connection whose place in a room
// was taken over by a newer connection of the same user (a page that came
// back before the server noticed its old connection was gone, or a second
// tab).
const StatusReplaced wire.StatusCode = 4001

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
	// History is how many messages each room keeps for the clients that
	// join it. Default 100.
	History int
	// Rooms are listed even when nobody is in them. Default ["lobby",
	// "random"].
	Rooms []string
	// MaxRooms bounds the rooms the server keeps, with their history.
	// Default 1000.
	MaxRooms int
	// RoomsPerClient bounds the rooms one connection may be in at once.
	// Default 10. The runtime's Limits.MaxRoomsPerSession (64 unless
	// Runtime says otherwise) bounds it too.
	RoomsPerClient int
	// Runtime holds more options for the runtime (heartbeat, origins,
	// telemetry providers...), applied after the chat's own.
	Runtime []runtime.Option
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
	if c.MaxRooms <= 0 {
		c.MaxRooms = 1000
	}
	if c.RoomsPerClient <= 0 {
		c.RoomsPerClient = 10
	}
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

// Server is the chat. It is an http.Handler serving the page at "/", the
// sign-in at "/login" and "/me", and the WebSocket at "/ws"; mount it at
// the root of a server.
type Server struct {
	cfg    Config
	keys   *signer
	router *codec.Router
	rt     *runtime.Runtime
	rooms  *registry
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
	srv := &Server{cfg: cfg, keys: keys, rooms: newRegistry(cfg.Rooms, cfg.MaxRooms, cfg.History)}

	// One Router speaks the event envelope: JSON by default, MessagePack
	// for clients that ask for it by subprotocol.
	srv.router = codec.NewRouter(codec.JSON, codec.WithErrorHandler(srv.logError))
	codec.On(srv.router, EventJoin, srv.join)
	codec.On(srv.router, EventLeave, srv.leave)
	codec.On(srv.router, EventSend, srv.send)
	codec.On(srv.router, EventPrivate, srv.private)
	codec.On(srv.router, EventTyping, srv.typing)
	codec.Handle(srv.router, EventRooms, srv.list)

	// A message may take 6 bytes a character in JSON (\u escapes), plus
	// the envelope; anything longer is not from our page and closes the
	// connection (1009). Shorter messages over MaxLength characters get a
	// too_long error.
	// Only a signed-in client gets a session (auth.go).
	opts := []runtime.Option{
		runtime.WithAdmit(srv.admit),
		runtime.WithSubprotocols(srv.router.Subprotocols()...),
		runtime.WithMaxMessageSize(max(64<<10, int64(cfg.MaxLength)*6+1024)),
		runtime.WithMessageRate(cfg.Rate, cfg.Burst),
	}
	rt, err := runtime.New(handler{srv.router, srv}, append(opts, cfg.Runtime...)...)
	if err != nil {
		return nil, err
	}
	srv.rt = rt
	srv.mux = srv.routes()
	return srv, nil
}

// ServeHTTP serves the page, the client module, the sign-in and the
// WebSocket.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { srv.mux.ServeHTTP(w, r) }

// Shutdown closes every connection (1001) and waits for the sessions to
// end, or for ctx; see runtime.Runtime.Shutdown.
func (srv *Server) Shutdown(ctx context.Context) error { return srv.rt.Shutdown(ctx) }

// handler is the runtime's session.Handler: the Router, which routes every
// message to the handlers below, and OnClose of our own, which takes a
// closed session out of its rooms.
type handler struct {
	*codec.Router
	srv *Server
}

// OnClose tells the rooms of s that it left. The runtime has already taken
// s out of its runtime rooms. s.Context() carries the trace of the
// session's end, which the departures join.
func (h handler) OnClose(s *session.Session, _ error) {
	nick, err := nameOf(s)
	if err != nil {
		return // never admitted, so in no room
	}
	for name := range clientOf(s).rooms {
		if r := h.srv.rooms.lookup(name); r != nil {
			h.srv.depart(s.Context(), s, r, nick)
		}
	}
}

// client is a session's own state (session.State): the rooms it is in.
// Only the session's callbacks use it, so it needs no lock. Its name is its
// identity (nameOf), the same in every room.
type client struct {
	rooms map[string]struct{}
}

func clientOf(s *session.Session) *client {
	c := session.State[client](s)
	if c.rooms == nil {
		c.rooms = make(map[string]struct{})
	}
	return c
}

// logError logs the errors that reach the client as "internal error".
func (srv *Server) logError(s *session.Session, event string, err error) {
	var ce *codec.Error
	if !errors.As(err, &ce) && !errors.Is(err, session.ErrClosed) {
		srv.cfg.Logger.Error("chat: handler failed", "event", event, "session", s.ID(), "err", err)
	}
}

// join puts the client in a room under its signed name (chat.join); the
// payload, if any, is ignored: the name comes from the sign-in cookie, not
// from the client. The client first gets the room's state (chat.state),
// then everything the room publishes; the others get a presence event.
func (srv *Server) join(s *session.Session, ev codec.Event[struct{}]) error {
	name, err := checkName("room name", CodeBadRoom, ev.Room, maxRoom)
	if err != nil {
		return err
	}
	nick, err := nameOf(s)
	if err != nil {
		return err
	}
	c := clientOf(s)
	if _, in := c.rooms[name]; !in && len(c.rooms) >= srv.cfg.RoomsPerClient {
		return chatError(CodeTooManyRooms, "you are in %d rooms already; leave one first", len(c.rooms))
	}
	for {
		r, err := srv.rooms.room(name)
		if err != nil {
			return err
		}
		retry, err := srv.enter(ev.Ctx, s, r, nick)
		if err != nil {
			return err
		}
		if !retry {
			c.rooms[name] = struct{}{}
			return nil
		}
	}
}

// enter makes s a member of r as nick. It reports retry when r was evicted
// meanwhile and must be looked up again.
func (srv *Server) enter(ctx context.Context, s *session.Session, r *room, nick string) (retry bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone {
		return true, nil
	}
	// A name is signed for one user, so another connection holding it in
	// the room is that user's too.
	m, taken := r.members[nick]
	// The runtime room before anything changes, so that a refusal leaves
	// the room as it was. Everything the room publishes goes out under
	// r.mu, so nothing reaches s before its state, sent below.
	if _, err := srv.rt.JoinRoom(r.name, s); err != nil {
		if errors.Is(err, runtime.ErrTooManyRooms) {
			return false, chatError(CodeTooManyRooms, "this connection is in too many rooms to join %s; leave one first", r.name)
		}
		return false, err
	}
	announce := !taken // joining again: the state once more, no presence
	if taken && m.s != s {
		// The same user on a new connection: the old one, which may
		// not know yet that it is dead, gives way. To the room it is
		// the same member.
		srv.rt.Leave(r.name, m.s)
		m.s.Close(StatusReplaced, "replaced by a new connection")
	}
	r.members[nick] = &member{nick: nick, s: s}
	r.active = time.Now()

	state := &State{Room: r.name, Nick: nick, Members: r.nicks(), History: r.history.all(), MaxLength: srv.cfg.MaxLength}
	if err := srv.router.EmitContext(ctx, s, EventState, state); err != nil {
		delete(r.members, nick)
		srv.rt.Leave(r.name, s)
		return false, err
	}
	if announce {
		srv.publishExcept(ctx, r.name, s, EventPresence, &Presence{Nick: nick, Action: "join", Count: len(r.members)})
	}
	return false, nil
}

// leave takes the client out of a room (chat.leave).
func (srv *Server) leave(s *session.Session, ev codec.Event[struct{}]) error {
	c := clientOf(s)
	if _, in := c.rooms[ev.Room]; !in {
		return chatError(CodeNotJoined, "you are not in %s", ev.Room)
	}
	nick, err := nameOf(s)
	if err != nil {
		return err
	}
	delete(c.rooms, ev.Room)
	srv.rt.Leave(ev.Room, s)
	if r := srv.rooms.lookup(ev.Room); r != nil {
		srv.depart(ev.Ctx, s, r, nick)
	}
	return nil
}

// depart removes s, known as nick, from r and tells the room, in the
// context of ctx, unless another connection has taken the nickname over.
func (srv *Server) depart(ctx context.Context, s *session.Session, r *room, nick string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[nick]; m == nil || m.s != s {
		return
	}
	delete(r.members, nick)
	r.active = time.Now()
	srv.publishExcept(ctx, r.name, s, EventPresence, &Presence{Nick: nick, Action: "leave", Count: len(r.members)})
}

// send says something to a room (chat.send): the message is numbered, kept
// in the history and published to every member, the sender included.
func (srv *Server) send(s *session.Session, ev codec.Event[SendRequest]) error {
	nick, r, err := srv.memberOf(s, ev.Room)
	if err != nil {
		return err
	}
	if err := checkText(ev.Data.Text, srv.cfg.MaxLength); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[nick]; m == nil || m.s != s {
		return chatError(CodeNotJoined, "you are not in %s", r.name)
	}
	now := time.Now()
	r.lastID++
	msg := Message{ID: r.lastID, From: nick, Text: ev.Data.Text, At: now.UnixMilli()}
	r.history.push(msg)
	r.active = now
	if rr, ok := srv.rt.Room(r.name); ok {
		_, err := srv.router.PublishContext(ev.Ctx, rr, EventMsg, &msg) // encoded once for the whole room
		return err
	}
	return nil
}

// private sends a message to one member of a room (chat.private); the
// sender gets it back too.
func (srv *Server) private(s *session.Session, ev codec.Event[PrivateRequest]) error {
	nick, r, err := srv.memberOf(s, ev.Room)
	if err != nil {
		return err
	}
	if err := checkText(ev.Data.Text, srv.cfg.MaxLength); err != nil {
		return err
	}
	to := strings.TrimSpace(ev.Data.To)
	r.mu.Lock()
	target := r.members[to]
	r.mu.Unlock()
	if target == nil {
		return chatError(CodeNoSuchUser, "nobody called %q is in %s", to, r.name)
	}
	msg := &Private{Room: r.name, From: nick, To: to, Text: ev.Data.Text, At: time.Now().UnixMilli()}
	// A recipient too slow to take it is closed by its backpressure
	// policy; that is not the sender's error.
	_ = srv.router.EmitContext(ev.Ctx, target.s, EventPrivate, msg)
	if target.s != s {
		_ = srv.router.EmitContext(ev.Ctx, s, EventPrivate, msg)
	}
	return nil
}

// typing tells the other members of a room that the client is typing
// (chat.typing). The page sends it at most every few seconds.
func (srv *Server) typing(s *session.Session, ev codec.Event[struct{}]) error {
	nick, r, err := srv.memberOf(s, ev.Room)
	if err != nil {
		return err
	}
	r.mu.Lock() // as every publish to the room: see enter
	defer r.mu.Unlock()
	srv.publishExcept(ev.Ctx, r.name, s, EventTyping, &Typing{Nick: nick})
	return nil
}

// list returns the room list (chat.rooms).
func (srv *Server) list(*session.Session, struct{}) ([]RoomInfo, error) {
	return srv.rooms.list(), nil
}

// memberOf returns the nickname s holds in the room called name, and the
// room, or fails with not_joined.
func (srv *Server) memberOf(s *session.Session, name string) (string, *room, error) {
	if _, in := clientOf(s).rooms[name]; !in {
		return "", nil, chatError(CodeNotJoined, "join %s first", name)
	}
	r := srv.rooms.lookup(name)
	if r == nil {
		return "", nil, chatError(CodeNotJoined, "join %s first", name)
	}
	nick, err := nameOf(s)
	if err != nil {
		return "", nil, err
	}
	return nick, r, nil
}

// publishExcept publishes an event to the members of the runtime room
// called name, except one session, in the trace of ctx (the message's, or
// the session end's).
func (srv *Server) publishExcept(ctx context.Context, name string, except *session.Session, event string, v any) {
	if rr, ok := srv.rt.Room(name); ok {
		if _, err := srv.router.PublishExceptContext(ctx, rr, except, event, v); err != nil {
			srv.cfg.Logger.Error("chat: publish failed", "event", event, "room", name, "err", err)
		}
	}
}
