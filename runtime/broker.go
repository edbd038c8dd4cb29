package runtime

import (
	"context"
	"errors"

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
// of publishes and joins. A Broker reports its own errors (the Runtime
// goes on without: a room whose Subscribe failed tries again at its next
// join). For now a Broker carries rooms that keep neither history nor
// presence; New refuses a Broker with RoomHistory or RoomPresence.
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
// most MaxVariants, each for the sessions of one subprotocol.
type Carried struct {
	Variants []Variant
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

// attach subscribes the room to the Broker, once, after a member joined.
func (r *Room) attach() {
	b := r.rt.broker
	r.mu.Lock()
	if r.dead || r.bus != busNone {
		r.mu.Unlock()
		return
	}
	r.bus = busSubscribing
	r.mu.Unlock()

	unsub, err := b.Subscribe(r.name, r.deliver)
	r.mu.Lock()
	switch {
	case err != nil:
		r.bus = busNone // the next join tries again
		r.mu.Unlock()
		return
	case r.dead: // removed meanwhile: forgetIfDead has been, or will be, by
		r.bus = busDone
		r.mu.Unlock()
		unsub()
		return
	}
	r.bus, r.unsub = busSubscribed, unsub
	r.mu.Unlock()
}

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
// local broadcast: one shared frame per variant.
func (r *Room) deliver(ctx context.Context, m Carried) {
	vs := m.Variants
	if len(vs) == 0 || len(vs) > MaxVariants {
		return
	}
	var frames [MaxVariants]*session.Frame
	size := 0
	for v := range vs {
		frames[v] = session.NewFrame(vs[v].Op, vs[v].Data)
		size = max(size, len(vs[v].Data))
	}
	if len(vs) == 1 {
		r.publish(ctx, size, func(traced context.Context) (int, int) { return r.fanout(frames[0], nil, traced) }, nil)
	} else {
		r.publish(ctx, size, func(traced context.Context) (int, int) {
			return r.fanEach(nil, traced, func(s *session.Session) *session.Frame { return frames[variantOf(vs, s)] })
		}, nil)
	}
	releaseAll(&frames)
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
