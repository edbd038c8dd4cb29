// Package codec turns Shockwave's messages into typed events: codecs for
// raw bytes, JSON and MessagePack, a small event envelope with request ids
// for acknowledgements, and a Router that decodes each event into the type
// its handler takes.
//
// # Codecs
//
// A Codec appends an encoded value to a caller's buffer and decodes from a
// byte slice without keeping it. JSON (encoding/json) travels in text
// messages; MsgPack (github.com/vmihailenco/msgpack/v5, pooled encoders and
// decoders) and Raw in binary ones. MsgPack reads json struct tags when a
// field has no msgpack tag, so one set of tags serves both.
//
// # Envelope
//
// Every message a Router reads or writes is one envelope, a JSON object or
// MessagePack map with one-letter keys (docs/protocol.md has the details):
//
//	{"e":"chat.send","r":"lobby","i":7,"t":"00-…-01","d":{"text":"hi"}}   event
//	{"i":7,"d":{"id":42}}                                                   reply to request 7
//	{"i":7,"x":{"code":"forbidden","message":"not a member"}}              error reply
//	{"e":"error","x":{"code":"unknown_event","message":"…"}}               error event
//
// e is the event name, r a room, i a request id, t a W3C traceparent, d the
// payload and x an error. The payload stays encoded while the envelope is
// parsed and is decoded once, straight into the handler's type.
//
// # Routing
//
//	r := codec.NewRouter(codec.JSON)
//	codec.On(r, "chat.send", func(s *session.Session, m Chat) error { … })
//	codec.Handle(r, "rooms.list", func(s *session.Session, q Query) ([]string, error) { … })
//	rt, _ := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...))
//
// A message with an id gets exactly one answer: the handler's result (an
// empty reply for On), or an error. A message that cannot be routed — not
// an envelope, an unknown event, a payload that does not decode into the
// handler's type — is answered with an error (code bad_message,
// unknown_event or bad_payload; as a reply when the message has an id,
// otherwise as an "error" event) and the session reads on. WithStrict
// closes the session instead, with 1003 for an unknown event and 1007 for
// the others. A handler's error is sent back the same way and never closes
// the session, unless it is a wire.CloseError. Error messages are written
// for the people who write clients: a bad_payload says which field is
// wrong and what it must be, in the words of the session's codec
// (`payload of "chat.send": field "text" must be a string, not a number`),
// never Go's; the decoder's own error goes to WithErrorHandler and the
// message's span.
//
// # Codec per session
//
// A session speaks the codec of the subprotocol it chose in the opening
// handshake — "shockwave.json" or "shockwave.msgpack" — or, when it chose
// none, the Router's default. Replies and events go out in that codec.
//
// # Publishing
//
// Router.Publish sends an event to a runtime.Room: the value is encoded once
// per codec in use among the members, into one shared session.Frame each,
// and every member gets a reference to its codec's frame; the cost per
// member is a mailbox push, with no allocation. PublishExcept leaves one
// member out, the sender say.
//
// # Tracing
//
// When the runtime traces (runtime.WithTracerProvider), every message has a
// "receive" span, whose context is the handler's Event.Ctx. The Router
// marks it with every failure it handles — bad_message, unknown_event,
// bad_payload, a handler's error, a result that does not encode — as
// status Error with the error code in the attribute shockwave.error.code,
// and records the server's own errors (a decoder's, a handler's that is
// not an *Error) as exceptions. The reply or error it sends carries the
// span's context, so the runtime records its delivery ("deliver" span).
//
// Every send and publish has a form that takes a context: pass Event.Ctx
// to EmitContext, PublishContext or PublishExceptContext, and what the
// handler sends stays in the client's trace, down to each member's
// delivery. With a context whose span does not record (tracing off), the
// context forms cost what the others do: nothing is allocated.
//
// # Browser client
//
// codec/js/shockwave.js is a dependency-free ES module that speaks the
// envelope over the browser's WebSocket, in JSON or (option codec:
// 'msgpack', with codec/js/msgpack.js beside it) MessagePack: events,
// requests as promises with timeouts, reconnection with exponential backoff
// and jitter, and rooms joined again after a reconnection, resumed from
// the last position seen in rooms that keep history. Package codec/js
// embeds both modules for Go servers to serve; shockwave.d.ts declares
// them for TypeScript.
//
// # Go client
//
// Dial connects a Client that speaks the same envelope from Go, for bots,
// load tools, tests and services: Listen for typed events, Request with a
// timeout, Emit, Join (whose Joined is the server's reply) and Leave. With
// WithReconnect it comes back by itself after the connection drops, with
// jittered exponential backoff, re-joins its rooms from the last position
// it saw in each, and tells OnResume how each went, before the messages
// that follow.
//
// # History, resume and presence
//
// In a room that keeps history (runtime.WithRoomHistory), what the Router
// publishes carries its position, and HandleRooms' join resumes a client
// from the last position it saw (JoinRequest, JoinReply): the reply
// first, then the messages it missed, or the latest it asked for when it
// cannot recover. Rooms.State adds the application's state of the room to
// the reply. PublishPresence tells a room that tracks presence
// (runtime.WithRoomPresence) who arrived and departed; Signal sends what,
// like presence, matters only live and is never kept. See
// docs/protocol.md.
package codec
