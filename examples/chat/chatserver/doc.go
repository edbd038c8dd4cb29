// Package chatserver is the chat server of examples/chat: sign-in, rooms,
// presence, history, private messages and a typing indicator over
// Shockwave's event envelope (docs/protocol.md), with the web page that
// speaks it. It is written as the way we recommend building on Shockwave:
//
//   - who the client is is settled before the upgrade: runtime.WithAdmit
//     refuses a request without a valid sign-in cookie with 401 and admits
//     the others with the signed name as the session's identity, which
//     every handler reads with session.Identity (auth.go);
//   - a codec.Router decodes each event into the type its handler takes and
//     answers requests (server.go);
//   - the Router is embedded in a small session.Handler of our own that adds
//     OnClose, to announce the departures of closed sessions (server.go);
//   - per-session state lives in session.State, owned by the session's
//     callbacks and so free of locks (client in server.go);
//   - the limits a runtime enforces are left to it: the message rate
//     (Config.Rate, runtime.WithMessageRate) and the rooms per connection
//     (runtime.Limits.MaxRoomsPerSession, besides the chat's own
//     RoomsPerClient);
//   - shared state — who is in which room under which nickname, the last
//     messages of each room — lives in plain structs behind a mutex
//     (rooms.go, history.go), and every event to a room goes out with
//     Router.PublishContext or PublishExceptContext, encoded once for all
//     members (runtime.Room), in the trace of what caused it: the
//     message's (codec.Event.Ctx), or, for a departure announced in
//     OnClose, the session's end (Session.Context);
//   - the page and the browser client module are served from embed.FS
//     (web.go).
//
// # Signing in
//
// POST /login with a form field "name" (1 to 32 characters, no control or
// invisible formatting characters; 400 with the reason otherwise) answers
// {"name","expires"} and sets the cookie chat_session: the name and an
// expiry (Config.LoginTTL, 24 h by default), signed with HMAC-SHA256 under
// Config.Key; HttpOnly, SameSite=Strict, Path=/, and Secure over TLS, with
// Config.SecureCookie (a site served over https through a proxy), or when a
// trusted proxy says https in X-Forwarded-Proto or Forwarded (a client's
// own such header is ignored). GET /me answers the same JSON for a valid
// cookie, 401 otherwise: the page asks it before each connection, since a
// browser does not tell a script why a WebSocket handshake failed.
//
// GET /ws without a valid cookie (none, changed, expired) is answered 401
// before the upgrade. A session admitted with one is closed with 3000
// (wire.StatusUnauthorized) when the cookie expires; the browser client
// then stops and emits "unauthorized", and the page asks the user to sign
// in again.
//
// The name in the cookie is the only name the chat shows for the session:
// in every room, as the author of its messages, in presence and typing
// events. Nobody can speak as someone else.
//
// # Protocol
//
// Events a client sends; each takes the room in the envelope's "r" and may
// be a request (with an "i") to get an acknowledgement or an error back:
//
//	chat.join                                  join a room under the signed name
//	chat.leave                                 leave it
//	chat.send     {"text":"hi"}                say something to the room
//	chat.private  {"to":"bob","text":"psst"}   to one member of the room
//	chat.typing                                tell the room you are typing
//	chat.rooms                                 (request, no room) the room list
//
// Events the server sends:
//
//	chat.state     {"room","nick","members":[…],"history":[…],"maxLength"}
//	               to a client that joined, before anything else of the
//	               room; "nick" is its signed name
//	chat.msg       {"id","from","text","at"}    a message in room "r"
//	chat.private   {"room","from","to","text","at"}  to its two parties
//	chat.presence  {"nick","action":"join"|"leave","count"}  in room "r"
//	chat.typing    {"nick"}                     in room "r"
//
// A payload of chat.join (older pages sent {"nick","token"}) is ignored. A
// user is in a room once: a second connection of the same user that joins
// a room the first is in takes its place (a page that reconnects before the
// server noticed its old connection was dead, or a second tab), and the
// old connection is closed with 4001 (StatusReplaced). Errors are
// codec.Errors with the codes listed in events.go.
//
// # Limits
//
// A client that sends more than Config.Rate events a second (20 by
// default, in bursts of Config.Burst) gets no error: the runtime stops
// reading its connection until it is within the rate again, so a flood is
// slowed, as TCP slows a fast sender, and every event it sent is handled
// in order. A message longer than Config.MaxLength characters is refused
// with too_long; a join past Config.RoomsPerClient rooms, or the runtime's
// Limits.MaxRoomsPerSession, with too_many_rooms.
package chatserver
