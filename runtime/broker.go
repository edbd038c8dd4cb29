package runtime

import (
	"context"
	"errors"
	"time"

	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// Broker carries rooms' messages between the nodes of a deployment, so
// that a room's members may be connected to any of them
// (runtime/natsbroker carries them over NATS). With a Broker
// (Options.Broker), what a node publishes to a room goes to its own
// members, as without one, and to the Broker, which hands it to the other
// nodes that have members in the room; each of them builds one shared
// frame per encoding and fans it out to its members as a local broadcast.
//
// The Runtime calls a Broker from any goroutine; its methods must be safe
// for concurrent use and must not block for long: they run on the paths
// of publishes and joins, some under a room's lock, so Publish must not
// call a deliver function itself, even another node's. A Broker reports its own errors (the Runtime
// goes on without: a room whose Subscribe failed tries again at its next
// join). Rooms that keep history need a Broker that is also a Log, and
// rooms that track presence one that is a PresenceBroker: New refuses the
// others.
type Broker interface {
	// Subscribe tells the Broker that this node has members in room:
	// until the returned function is called, the Broker calls deliver
	// with every message another node publishes to the room, in the
	// order each node published them, never with this node's own. ctx
	// carries the publisher's trace, if any. deliver must not be called
	// after the function returned by Subscribe has returned; the Runtime
	// never calls that function from deliver, and does not keep m once
	// deliver returns.
	Subscribe(room string, deliver func(ctx context.Context, m Carried)) (unsubscribe func(), err error)
	// Publish sends a message this node published to room to the other
	// nodes, in the trace of ctx. It must not keep m once it returns.
	Publish(ctx context.Context, room string, m Carried) error
}

// Carried is a message as it travels between nodes: its encodings, at
// most MaxVariants, each for the sessions of one subprotocol, and, in a
// room whose log a Log keeps, its place in the log.
type Carried struct {
	Variants []Variant
	// At is the message's position in its room's log (see Log): the
	// zero Position for the messages of rooms without one.
	At Position
	// Prev is the offset of the room's message before this one in the
	// log, 0 for none: a Log that delivers a message whose Prev is not
	// the offset it delivered last says that what lies between is lost.
	Prev uint64
	// Except is the ID of a session of the publishing node that does not
	// take the message (Publish's except), 0 for none. A Log gives it
	// back to the publishing node only: session IDs are a node's own.
	Except uint64
}

// Variant is one encoding of a Carried message.
type Variant struct {
	// Key is the subprotocol of the sessions that take this encoding
	// (Session.Subprotocol); a session whose subprotocol no variant names
	// takes the first.
	Key string
	// Op is the frame's opcode, wire.OpText or wire.OpBinary.
	Op wire.Opcode
	// Data is the frame's payload.
	Data []byte
}

// Log is a Broker that keeps the log of the rooms that keep history
// (Options.RoomHistory), so that a room's messages have one order and one
// position on every node, and a member that comes back recovers what it
// missed on whichever node it lands (runtime/natsbroker: a JetStream
// stream). Such a room's messages go to the log first: every node, the
// publisher's included, delivers each as it comes back from the log, with
// the position the log gave it, written into its encoding by
// History.Stamp, and keeps the latest History.Size of them to replay.
//
// Before Follow returns, it calls deliver with a Carried without
// variants, a mark, whose At is the room's position in the log just
// before the messages it hands over (its epoch, and an offset a client
// that saw nothing after it may resume from: 0 when the log has never
// dropped any of the room's messages), then with each message the log
// keeps after it, oldest first, each with its Prev; after that, until the returned function is
// called, with each message appended to the room by any node, this one
// included, once, in the log's order, each with At and Prev. A Carried
// without variants says the same later: the log's epoch changed (it was
// lost and made again), or what lies before At cannot be had; the Runtime
// forgets what it kept of the room and starts again from At. deliver is
// called on one goroutine at a time per room.
type Log interface {
	Broker
	// Append stores m as room's next message and returns its position.
	// It waits for the log within ctx and the Log's own bound; an error
	// says the message may not have been stored.
	Append(ctx context.Context, room string, m Carried) (Position, error)
	// Follow is Subscribe for a room that keeps history.
	Follow(room string, deliver func(ctx context.Context, m Carried)) (unfollow func(), err error)
}

// ErrNoLog is returned by Runtime.Resume for a room that keeps history
// when the Broker's Log could not be followed (NATS is unreachable, say):
// the session did not join; it may try again.
var ErrNoLog = errors.New("runtime: the room's log is unavailable")

// KeyedEncoder is an Encoder whose variants are named by the subprotocol
// of the sessions that take them, as codec.Router's are, so that a room
// whose members are on several nodes can carry all of them (see Broker).
// Without it, an Encoder of more than one variant is published to the
// local members only.
type KeyedEncoder interface {
	Encoder
	// Key returns the subprotocol of the sessions that take variant v.
	Key(v int) string
}

// ErrNotCarried is returned by Room.Publish and Room.Signal, with the
// local fan-out done, when the Runtime has a Broker and the message's
// Encoder has several variants but no names for them (KeyedEncoder): the
// other nodes did not get it.
var ErrNotCarried = errors.New("runtime: a message of several variants without keys (KeyedEncoder) cannot cross nodes")

// attach subscribes the room to the Broker, once: Follow for a room whose
// log a Log keeps, else Subscribe. It reports whether the room is
// subscribed, having waited for a join that is subscribing it, so that a
// resume reads the room's history only once it has been followed.
func (r *Room) attach() bool {
	r.mu.Lock()
	switch {
	case r.dead || r.bus == busDone:
		r.mu.Unlock()
		return false
	case r.bus == busSubscribed:
		r.mu.Unlock()
		return true
	case r.bus == busSubscribing:
		ready := r.ready
		r.mu.Unlock()
		<-ready
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.bus == busSubscribed
	}
	r.bus = busSubscribing
	ready := make(chan struct{})
	r.ready = ready
	r.mu.Unlock()
	defer close(ready)

	var unsub func()
	var err error
	if r.logged() {
		unsub, err = r.rt.log.Follow(r.name, r.deliver)
	} else {
		unsub, err = r.rt.broker.Subscribe(r.name, r.deliver)
	}
	r.mu.Lock()
	switch {
	case err != nil:
		r.bus = busNone // the next join tries again
		r.mu.Unlock()
		return false
	case r.dead: // removed meanwhile: forgetIfDead has been, or will be, by
		r.bus = busDone
		r.mu.Unlock()
		unsub()
		return false
	}
	r.bus, r.unsub = busSubscribed, unsub
	r.mu.Unlock()
	return true
}

// logged reports whether the room's history is kept by the Broker's Log.
func (r *Room) logged() bool { return r.hist != nil && r.rt.log != nil }

// detach unsubscribes a removed room from the Broker.
func (r *Room) detach() {
	r.mu.Lock()
	unsub := r.unsub
	r.unsub = nil
	if r.bus == busSubscribed {
		r.bus = busDone
	}
	r.mu.Unlock()
	if unsub != nil {
		unsub()
	}
}

// The states of a room's subscription to the Broker; r.mu guards them.
const (
	busNone        = iota // not subscribed
	busSubscribing        // Subscribe is under way
	busSubscribed         // r.unsub ends it
	busDone               // unsubscribed, the room removed
)

// forward gives the Broker a message published here, in the trace of
// ctx; the Broker reports its failure.
func (r *Room) forward(ctx context.Context, m Carried) {
	_ = r.rt.broker.Publish(ctx, r.name, m)
}

// carry returns frames as a Carried message, keyed by e when it has
// several.
func carry(frames []*session.Frame, e Encoder) (Carried, error) {
	vs := make([]Variant, len(frames))
	ke, keyed := e.(KeyedEncoder)
	if len(frames) > 1 && !keyed {
		return Carried{}, ErrNotCarried
	}
	for v, f := range frames {
		vs[v] = Variant{Op: f.Opcode(), Data: f.Payload()}
		if keyed {
			vs[v].Key = ke.Key(v)
		}
	}
	return Carried{Variants: vs}, nil
}

// deliver fans out a message another node published to the room, as a
// local broadcast: one shared frame per variant. A message of the room's
// log goes to deliverLogged.
func (r *Room) deliver(ctx context.Context, m Carried) {
	vs := m.Variants
	if len(vs) > MaxVariants {
		return
	}
	if r.logged() && (len(vs) == 0 || m.At.Epoch != 0) {
		r.deliverLogged(ctx, m)
		return
	}
	if len(vs) == 0 {
		return
	}
	if r.ordered() { // a signal, after the replies of the joins before it
		r.pub.Lock()
		defer r.pub.Unlock()
	}
	var frames [MaxVariants]*session.Frame
	size := 0
	for v := range vs {
		frames[v] = session.NewFrame(vs[v].Op, vs[v].Data)
		size = max(size, len(vs[v].Data))
	}
	r.fanCarried(ctx, vs, &frames, size, nil)
	releaseAll(&frames)
}

// deliverLogged keeps and fans out a message of the room's log, with its
// position stamped in (History.Stamp), unless the room has it already; a
// Carried without variants, or one whose Prev is not the last offset kept,
// starts the history again (see Log).
func (r *Room) deliverLogged(ctx context.Context, m Carried) {
	r.pub.Lock()
	defer r.pub.Unlock()
	h, vs := r.hist, m.Variants
	switch {
	case len(vs) == 0:
		h.mark(m.At)
		return
	case m.At.Epoch == h.epoch && m.At.Offset <= h.last:
		return // had it
	case m.At.Epoch != h.epoch || m.Prev != h.last:
		h.mark(Position{Epoch: m.At.Epoch, Offset: m.Prev})
	}
	var frames [MaxVariants]*session.Frame
	size := 0
	for v := range vs {
		data := vs[v].Data
		if h.cfg.Stamp != nil {
			if b, err := h.cfg.Stamp(r.stamped[:0], vs[v], m.At); err == nil {
				r.stamped, data = b, b
			}
		}
		frames[v] = session.NewFrame(vs[v].Op, data)
		size = max(size, len(data))
	}
	h.pushAt(m.At.Offset, &frames, time.Now().UnixNano())
	var except *session.Session
	if m.Except != 0 {
		if mem, ok := r.rt.sessions.Load(m.Except); ok {
			except = mem.s
		}
	}
	r.fanCarried(ctx, vs, &frames, size, except)
	releaseAll(&frames)
}

// fanCarried fans out the frames of a carried message's variants vs to
// the members but except: each takes the variant its subprotocol names.
func (r *Room) fanCarried(ctx context.Context, vs []Variant, frames *[MaxVariants]*session.Frame, size int, except *session.Session) {
	if len(vs) == 1 {
		r.publish(ctx, size, func(traced context.Context) (int, int) { return r.fanout(frames[0], except, traced) }, nil)
		return
	}
	r.publish(ctx, size, func(traced context.Context) (int, int) {
		return r.fanEach(except, traced, func(s *session.Session) *session.Frame { return frames[variantOf(vs, s)] })
	}, nil)
}

// variantOf returns the variant of vs that s takes: the one its
// subprotocol names, or the first.
func variantOf(vs []Variant, s *session.Session) int {
	p := s.Subprotocol()
	for v := range vs {
		if vs[v].Key == p {
			return v
		}
	}
	return 0
}
