// Package chatserver is the chat server of examples/chat: rooms, nicknames,
// presence, history, private messages and a typing indicator over
// Shockwave's event envelope (docs/protocol.md), with the web page that
// speaks it. It is written as the way we recommend building on Shockwave:
//
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
//     Router.Publish, encoded once for all members (runtime.Room);
//   - the page and the browser client module are served from embed.FS
//     (web.go).
//
// # Protocol
//
// Events a client sends; each takes the room in the envelope's "r" and may
// be a request (with an "i") to get an acknowledgement or an error back:
//
//	chat.join     {"nick":"ada","token":"…"}  join a room under a nickname
//	chat.leave                                 leave it
//	chat.send     {"text":"hi"}                say something to the room
//	chat.private  {"to":"bob","text":"psst"}   to one member of the room
//	chat.typing                                tell the room you are typing
//	chat.rooms                                 (request, no room) the room list
//
// Events the server sends:
//
//	chat.state     {"room","nick","members":[…],"history":[…],"maxLength"}
//	               to a client that joined, before anything else of the room
//	chat.msg       {"id","from","text","at"}    a message in room "r"
//	chat.private   {"room","from","to","text","at"}  to its two parties
//	chat.presence  {"nick","action":"join"|"leave","count"}  in room "r"
//	chat.typing    {"nick"}                     in room "r"
//
// A nickname is unique within a room; chat.join fails with nick_taken when
// another client holds it, unless that client presented the same token: a
// page that reconnects (its old connection not yet noticed dead) takes its
// nickname back, and the old connection is closed with 4001. Errors are
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
