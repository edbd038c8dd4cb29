// Package natsbroker carries a Runtime's rooms between the nodes of a
// deployment over core NATS: a runtime.Broker. Several nodes behind a load
// balancer share one NATS server (or cluster); a room's members may be
// connected to any of them, and what one node publishes to the room
// reaches them all. docs/scaling.md has the deployment and the guarantees.
//
// The application makes the connection, with the options it needs, and
// keeps it; New makes the Broker over it, and runtime.WithBroker hands it
// to the Runtime:
//
//	nc, err := nats.Connect(url, nats.NoEcho(), nats.MaxReconnects(-1))
//	b, err := natsbroker.New(nc)
//	rt, err := runtime.New(handler, runtime.WithBroker(b))
//	…
//	rt.Shutdown(ctx) // the rooms unsubscribe as their members leave
//	b.Close()
//	nc.Drain()
//
// # What crosses
//
// Room.Broadcast, BroadcastFrame, Publish and Signal cross (Publish and
// Signal with every variant of a runtime.KeyedEncoder, which
// codec.Router's publishes are, so that each member gets its codec's);
// BroadcastEach does not.
//
// # Durable rooms
//
// The Broker is also a runtime.Log: rooms that keep history
// (runtime.WithRoomHistory, with codec.Stamp as History.Stamp for
// codec.Router's messages) go through a JetStream stream, <Prefix>_rooms
// over <Prefix>.log.>, which the Broker makes on first use (the server
// must run JetStream). Append stores a room's message, with a message ID
// so that an append sent again through an outage is stored once; the
// stream's sequence is its offset and the stream's identity the room's
// epoch. The stream republishes it on the room's subject, and every
// node, the publisher's included, delivers it from there, in the
// stream's order, once: what a node missed (Nats-Last-Sequence past the
// last it delivered, or a reconnection) it reads from the stream first.
// Follow reads what the stream keeps of a room (Options.LogKeep) when a
// node gets its first member there, so that a client recovers on any
// node.
//
// # Presence
//
// The Broker is also a runtime.PresenceBroker: the presence of rooms
// (runtime.WithRoomPresence) is shared in a JetStream key-value bucket,
// <Prefix>_presence, one entry per room and node instance, listing the
// node's keys and their infos (as JSON), put when they change (at most
// every 100 ms per room) and every Options.PresenceTTL/3. Each node counts
// every node's keys; a node that dies stops putting, and its users depart
// on the others within PresenceTTL; a node that shuts down leaves its
// entries to expire, so that its users who reconnect elsewhere within it
// are never seen to leave.
//
// # Guarantees
//
// Durable rooms: every message stored, once, in one order, on every node
// (see above). Other rooms, at most once: a message reaches the nodes that subscribe to its room
// when NATS has it, in the order each node published, once, and never the
// node that published it (whose own members got it at once). It is lost
// when the connection is down past its reconnect buffer, when NATS drops
// it (a room's subscription over its pending limits, Options.PendingMsgs
// and PendingBytes), and for a node whose subscription the server has not
// yet registered: a member that has just joined on one node may miss what
// another node publishes within the round trip to NATS. Losses that the
// node can see are counted and logged; a message the server never
// forwarded is not seen by anyone.
//
// # Subjects and messages
//
// A room's messages go on <Prefix>.r.<token> (Options.Prefix, "sw" by
// default), where token is the room's name when it is made only of
// letters, digits, '-' and '_', and otherwise '~' followed by the name in
// unpadded URL-safe base64: "lobby" is sw.r.lobby, "café.1" is
// sw.r.~Y2Fmw6kuMQ. No two rooms share a subject, and no name can reach
// another subject or a wildcard. A node subscribes to a room's subject
// while it has members in the room, never to a wildcard of rooms.
//
// Each message has the header Sw-Origin (HeaderOrigin), the node that
// published it (Options.Node), and the W3C traceparent and tracestate of
// the publish (Options.Propagator). Its body holds the message's
// variants (runtime.Carried):
//
//	version  1 byte, 1
//	count    1 byte, the number of variants, 1 to runtime.MaxVariants (4)
//	then count times:
//	  key length   uvarint
//	  key          the subprotocol of the sessions that take the variant
//	  opcode       1 byte, 1 (text) or 2 (binary)
//	  data length  uvarint
//	  data         the frame's payload
//
// with nothing after the last variant. A body that does not decode is
// dropped and counted (reason malformed); no length in it makes the
// decoder allocate more than the bytes present. The bus is trusted as
// the nodes are: anyone who may publish on the prefix's subjects may send
// any text or binary message to any room's members. Secure it with NATS
// accounts and permissions.
//
// # Concurrency
//
// Every method is safe for concurrent use. A room's messages are
// delivered on a goroutine of the NATS client's, one per subscription, in
// order; the Runtime fans each out as a local broadcast, which does not
// block. Publish does not wait for NATS: the connection buffers it.
// Append waits for the stream's acknowledgement (Options.AppendTimeout).
// A goroutine of the Broker's, ended by Close, reads what the followed
// rooms missed after each reconnection.
//
// # Telemetry
//
// The publish on one node and the delivery on another are in one trace:
// a "nats send" span (producer) under the Runtime's publish span, and on
// each receiving node a "nats receive" span (consumer) that is the parent
// of that node's publish span and its members' deliver spans. Metrics,
// meter github.com/shockwave-go/shockwave/runtime/natsbroker, all
// observed from the counts Stats returns:
//
//   - shockwave.broker.published {message}: handed to NATS;
//   - shockwave.broker.received {message}: from other nodes, delivered;
//   - shockwave.broker.dropped {message}, shockwave.broker.reason =
//     slow_consumer, malformed or gap (a durable room's messages that
//     could not be read from the stream);
//   - shockwave.broker.errors {error}, shockwave.broker.reason =
//     disconnected, closed, max_payload, invalid, publish or subscribe;
//   - shockwave.broker.subscriptions {subscription}: rooms subscribed now.
package natsbroker
