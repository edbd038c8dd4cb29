// Package chatserver is the chat server of examples/chat: sign-in, rooms
// that survive a reconnection, presence, private messages and a typing
// indicator over Shockwave's event envelope (docs/protocol.md), with the
// web page that speaks it. It is written as the way we recommend building
// on Shockwave:
//
//   - who the client is is settled before the upgrade: runtime.WithAdmit
//     refuses a request without a valid sign-in cookie with 401 and admits
//     the others with the signed name as the session's identity, which
//     every handler reads with session.Identity (auth.go);
//   - a codec.Router decodes each event into the type its handler takes and
//     answers requests (server.go); its HandleRooms serves the joins and
//     leaves, asking the chat whether a join is allowed (Rooms.Allow) and
//     for the chat's part of the reply (Rooms.State);
//   - what rooms remember is the runtime's: each room keeps its last
//     messages (runtime.WithRoomHistory), which a client that joins asks
//     for and a client that comes back recovers from its position, none
//     missed and none twice; and it counts its users by signed name, with
//     a grace period (runtime.WithRoomPresence), so that a page that
//     reconnects is never seen to leave. The chat keeps no registry of
//     its own, and so needs no lock;
//   - the limits a runtime enforces are left to it: the message rate
//     (Config.Rate, runtime.WithMessageRate) and the rooms per connection
//     (Config.RoomsPerClient, runtime.Limits.MaxRoomsPerSession);
//   - every event to a room goes out with Router.PublishContext, kept in
//     the room's history and encoded once per codec for all members, or
//     Router.Signal for what matters only live (typing, presence); a
//     message and a typing indicator in the trace of the event that caused
//     them (codec.Event.Ctx), the presence events, which the runtime tells
//     (runtime.Presence's Changed), in traces of their own;
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
//	room.join     {"n":100}                    join a room under the signed name
//	room.join     {"g":…,"o":…,"n":100}        join it again, from the position seen last
//	room.leave                                 leave it
//	chat.send     {"text":"hi"}                say something to the room
//	chat.private  {"to":"bob","text":"psst"}   to one member of the room
//	chat.typing                                tell the room you are typing
//	chat.rooms                                 (request, no room) the room list
//
// The reply to a join (codec.JoinReply) comes before anything else of the
// room:
//
//	{"recovered":false,"replayed":2,"g":…,"o":…,
//	 "present":{"alice":null,"bob":null},"state":{"nick":"bob","maxLength":2000}}
//
// "present" has who is in the room, the joiner included, by signed name;
// "state" the joiner's own name, the signed one, the longest message
// allowed, and, among several servers, the server's name ("node"; see
// Several servers). Then come, as chat.msg events, the room's last messages ("n" of
// them at most, and at most Config.History) or, when "recovered", the
// messages the client missed since the position it gave: a client that
// is not told "recovered" shows the room afresh.
//
// Events the server sends:
//
//	chat.msg       {"from","text","at"}         a message in room "r", with its position ("g", "o")
//	chat.private   {"room","from","to","text","at"}  to every connection of its two parties in the room
//	chat.typing    {"nick"}                     in room "r", not kept
//	room.presence  {"key","present"}            a user arrived in room "r" or left it, not kept
//
// A user with several connections in a room (tabs) is one member; their
// departure is told Config.Grace after the last connection left, unless
// one comes back within it (after a room.leave too: the runtime's presence
// does not tell a leave from a drop). A payload of room.join with other fields
// (older pages sent {"nick","token"}) is read for "g", "o" and "n" alone.
// Errors are codec.Errors with the codes listed in events.go.
//
// # Several servers
//
// With a Broker in Config.Runtime that keeps the rooms' log and shares
// their presence (runtime.WithBroker with a runtime/natsbroker.Broker;
// examples/chat's -nats), several chat servers are one chat: a room's
// messages reach its members on every server, each with the position the
// room's log gave it (History.Stamp is codec.Stamp), its history is the
// log's, so that a client recovers on any server, and its presence counts
// the users of every server. Give the servers one Config.Key, so that a
// sign-in on one holds on the others, and Config.Node, their name, which
// the join's state carries ("node") and the page shows, saying what stays
// each server's own: the room list (the fixed rooms, and the others with
// users, or lingering, on this server), MaxRooms (this server's rooms),
// and private messages, which reach the recipient's connections to this
// server only; one to a user present in the room through another server
// is refused with "elsewhere".
//
// # Limits
//
// A client that sends more than Config.Rate events a second (20 by
// default, in bursts of Config.Burst) gets no error: the runtime stops
// reading its connection until it is within the rate again, so a flood is
// slowed, as TCP slows a fast sender, and every event it sent is handled
// in order. A message longer than Config.MaxLength characters is refused
// with too_long; a join past Config.RoomsPerClient rooms, or one that
// would make a room past Config.MaxRooms, with too_many_rooms.
package chatserver
