// Package runtime serves Shockwave sessions over HTTP: a Runtime is an
// http.Handler that upgrades requests to WebSocket and runs a session.Session
// for each, with a registry of live sessions, rooms that broadcast one
// shared frame to all their members, and an orderly Shutdown.
//
//	rt, err := runtime.New(session.HandlerFunc(func(s *session.Session, m session.Message) error {
//		return s.Send(m.Op, m.Data) // echo
//	}))
//	http.Handle("/ws", rt)
//
// # Transports
//
// On Linux, sessions of plain TCP connections run on an event loop (epoll,
// one poller per core): a session waiting for its client holds no
// goroutine, read buffer, mailbox or timer, under 0.5 KiB in all, and its callbacks
// run in turns on its poller's goroutine when bytes arrive; a callback that
// blocks costs the poller its goroutine, not the other sessions their
// turns. TLS connections and other systems get a goroutine per session;
// WithTransport(TransportGoroutine) asks for that everywhere. Handlers are
// the same on both.
//
// # Serving a listener
//
// A server of WebSocket sessions only, on a port of its own, can give the
// Runtime the listener instead of an http.Server:
//
//	ln, err := net.Listen("tcp", ":8080")
//	...
//	err = rt.Serve(ln) // until Shutdown: http.ErrServerClosed
//
// On the event loop, Serve accepts the connections and reads and answers
// their handshakes itself, without net/http, leaving nothing of them for
// the garbage collector: an idle session then costs some 0.4 KiB of
// memory, against 1 to 2 KiB when net/http's garbage sets the heap's
// size. Every path is the Runtime's; the limits, the AdmitFunc and the
// options are the same as behind an http.Server. Elsewhere it serves the
// listener with an http.Server.
//
// # Rooms
//
// A handler reaches its Runtime with Of(s). Runtime.Join puts a session in
// a named room, created on first use and
// removed when empty; a session leaves its rooms when it ends. Room.Broadcast
// encodes a message once into a pooled, reference-counted session.Frame and
// pushes a pointer to it into every member's mailbox; the buffer returns to
// its pool when the last member's writer releases it. A member that cannot
// keep up is dealt with by its backpressure policy, never by slowing the
// broadcast.
//
// A room can keep its recent messages (WithRoomHistory): each message
// published with Room.Publish then gets a Position, an offset in the
// room's epoch, and the room keeps its shared frames (a reference each,
// no copy). A session that comes back calls Resume with the last
// position it saw: it gets exactly the messages it missed, in order,
// before any later one, or learns that the room no longer holds them.
// A room can also track who is in it (WithRoomPresence): by user rather
// than by session, with a grace period so that a user whose connection
// drops and comes back within it is not seen to leave and join; Presence's
// Changed says who arrived and departed, Room.Present who is there.
// Room.Signal sends what matters only live (presence, typing indicators)
// outside the history. WithRoomHooks is told of every session that joins or
// leaves a room. WithBroker lets a room's members be on several nodes: what
// one node publishes reaches the others' members through the Broker
// (runtime/natsbroker, over NATS), each node fanning it out as a local
// broadcast. A Broker that is a Log keeps the history of the rooms that
// keep one, so that a room has one order and one position on every node
// and a member recovers on whichever node it comes back to.
//
// # Compression
//
// WithCompression lets clients negotiate permessage-deflate (RFC 7692);
// it is off by default (docs/compression.md says why, with figures). In
// wire.CompressionNoContextTakeover mode a frame sent to many sessions is
// compressed once, when the first member that negotiated compression
// needs it, and that one compressed frame goes to every such member, in a
// broadcast, a publish, a history replay; the others get the plain frame.
// An idle session keeps no compression state, and a message that
// inflates past MaxMessageSize closes its session with 1009.
//
// # Shutdown
//
// Shutdown refuses new upgrades with 503, closes every session with 1001
// after what is already in its mailbox, and returns when every session and
// every goroutine of the runtime has ended, or when its context does (then
// the remaining connections are dropped).
//
// # Limits and defaults
//
// Options holds every setting, and DefaultOptions writes every default:
// 1 MiB messages, 256-frame and 4 MiB mailboxes,
// slow consumers closed with 1008, a ping after 30 s of silence (of no
// bytes at all) and 15 s to answer, 10 s write and 5 s close timeouts, 10 s
// to write the handshake's response (reading the request is bounded by the
// http.Server's ReadHeaderTimeout), 60 s for one message to arrive
// (WithMessageTimeout, then 1008), 1,000 messages a second with bursts of
// 1,000 (WithMessageRate). A client over its rate, or one that sends faster
// than it reads its own replies (its mailbox half full), is slowed: its
// session reads no more of it until it may, as TCP slows a fast sender;
// nothing is lost. Cross-origin browser pages are refused unless allowed
// by WithOriginPatterns.
//
// Options.Limits (WithLimits) bounds what clients may take before the
// handler sees them: 50,000 sessions in all (then 503), 1,024 per client
// address and 20 upgrades a second with bursts of 100 per address (then
// 429), 64 rooms per session (ErrTooManyRooms) and names of 256 bytes
// (ErrRoomName). Refusals come before the hijack, with a Retry-After
// header. An IPv6 client counts as its /64; loopback is exempt from the
// per-address limits. It also holds the process-wide memory budgets of
// the sessions together (WithMemoryBudget): 256 MiB (or a quarter of
// GOMEMLIMIT) for messages being assembled, past which a message closes
// its session with 1013, and as much for frames queued, past which
// sessions with a backlog are refused as slow consumers.
//
// # Who the client is
//
// WithAdmit sets an AdmitFunc: it sees each upgrade request, after the
// Limits and before the hijack, and refuses it (a *Refusal: 401, 403,
// 429... with a short body, never a 101) or admits it with an Admission:
// the application's identity of the client, with what handlers need of the
// request copied out of it, and when its credentials expire. Every
// callback of the session reads the identity with session.Identity,
// without a lock; at expiry the session is closed with 3000
// (wire.StatusUnauthorized) unless session.Session.Authorize renewed it.
// WithTrustedProxies names the proxies in front whose Forwarded and
// X-Forwarded-For headers say who the client is (Runtime.ClientAddr,
// session.Session.ClientAddr, and the per-address limits use it).
//
// Every limit counts when it acts, in Runtime.Refused, Runtime.Counters
// and the metric shockwave.limits.refused; docs/security.md lists them
// all, with what each protects and the test that proves it.
//
// # The http.Server in front
//
// The Runtime upgrades the requests an http.Server hands it; before that,
// the server alone guards the connection (Serve guards its own: a head of
// 16 KiB at most, within the HandshakeTimeout). One that faces the
// internet should set:
//
//   - ReadHeaderTimeout (such as 10 s): without it, a client that sends
//     its headers a byte at a time holds a connection for ever.
//   - IdleTimeout (such as 30 s): without it, and without ReadTimeout,
//     keep-alive connections between requests are held for ever.
//   - MaxHeaderBytes (such as 8 KiB): net/http's default is 1 MiB, and an
//     upgrade request's headers are a few hundred bytes, a few KiB with
//     cookies.
//
// ReadTimeout and WriteTimeout may be set for the server's other handlers:
// they do not cut sessions short, because net/http clears a connection's
// deadlines when it is hijacked (the Runtime bounds the handshake's
// response itself, see WithHandshakeTimeout).
//
// Behind a reverse proxy, the Runtime sees the proxy's address in
// RemoteAddr, and the per-address limits would count every client as one
// (or none, for a proxy on loopback, which is exempt): name the proxy
// with WithTrustedProxies, and its Forwarded or X-Forwarded-For header
// says who the client is; or turn the per-address limits off (negative)
// and let the proxy limit.
// The proxy must pass the Upgrade and Connection headers on, and its
// read timeout must be longer than the ping interval (30 s by default),
// or it closes quiet sessions.
package runtime
