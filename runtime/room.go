package runtime

import (
	"context"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// Room is a named group of sessions that receive the same messages. A
// broadcast encodes the message once, into one reference-counted Frame, and
// hands every member a pointer to it: the cost per member is a mailbox push,
// not an encode or a copy. Rooms are created by the first Join and removed
// when the last member leaves, or later: when its History.Linger or the
// last Presence.Grace of its members ends. Safe for concurrent use.
type Room struct {
	name string
	rt   *Runtime

	mu      sync.Mutex // guards members and dead
	members map[uint64]*session.Session
	dead    bool // removed from the runtime; joins go to a new Room

	// snap is the member list broadcasts iterate, rebuilt after a change.
	snap atomic.Pointer[[]*session.Session]

	meter metric.MeasurementOption // the room's attribute on metrics, or nil (Options.MeteredRooms)
	named bool                     // meter is the room's own name, counted in telemetry.roomsNamed

	// pub serialises the publishes of a room with history, and the
	// signals and resumes of a room with history or presence; taken
	// before mu, never while holding it.
	pub  sync.Mutex
	hist *history // pub guards it; nil: the room keeps no history

	// linger is set while the room, empty, keeps its history for members
	// who come back (History.Linger); lingerGen tells a stale timer. mu
	// guards both.
	linger    *time.Timer
	lingerGen uint64

	presence *presence // nil: the room tracks no presence (Options.RoomPresence)

	// bus is the state of the room's subscription to the Broker (busNone
	// and the others), unsub what ends it; mu guards both.
	bus   int
	unsub func()
	ready chan struct{} // closed when a subscription under way is settled

	stamped []byte // History.Stamp's buffer; pub guards it
}

// Join adds s to the room called name, creating the room if need be, and
// returns the room, or nil if s has ended, is in
// Limits.MaxRoomsPerSession rooms already, or name is longer than
// Limits.MaxRoomName (JoinRoom says which). Joining twice is harmless. A
// session leaves its rooms when it ends.
func (rt *Runtime) Join(name string, s *session.Session) *Room {
	r, _ := rt.JoinRoom(name, s)
	return r
}

// JoinRoom is Join with the reason of a failure: session.ErrClosed if s
// has ended, ErrTooManyRooms if it is in Limits.MaxRoomsPerSession rooms
// and name is not one of them, ErrRoomName if name is longer than
// Limits.MaxRoomName, ErrNoLog if the room keeps its history in a Log
// that could not be followed.
func (rt *Runtime) JoinRoom(name string, s *session.Session) (*Room, error) {
	m, err := rt.member(name, s)
	if err != nil {
		return nil, err
	}
	for {
		r := rt.room(name)
		if r.logged() { // followed before it is joined, as Resume does
			res, err := rt.Resume(name, s, Rejoin{})
			return res.Room, err
		}
		if retry, added, err := r.add(m); !retry {
			if err != nil {
				r.forgetIfDead() // made for this join, which failed
				return nil, err
			}
			rt.joined(r, s, added)
			return r, nil
		}
	}
}

// joined counts s in r's presence and tells Options.OnJoin, if s was not
// a member.
func (rt *Runtime) joined(r *Room, s *session.Session, added bool) {
	rt.enter(r, s, added)
	rt.announce(r, s, added)
}

// enter counts s, if it was added, in r's presence; announce then tells
// of it, once the room's locks are released.
func (rt *Runtime) enter(r *Room, s *session.Session, added bool) {
	if added && r.presence != nil {
		r.presence.enter(r, s)
	}
}

// announce tells Presence.Changed of the changes queued in r's presence
// (enter's among them) and Options.OnJoin of a session added to r.
func (rt *Runtime) announce(r *Room, s *session.Session, added bool) {
	if !added {
		return
	}
	if rt.broker != nil {
		r.attach()
	}
	if r.presence != nil {
		r.presence.tell(r)
	}
	if rt.onJoin != nil {
		rt.onJoin(r, s)
	}
}

// left counts s out of r's presence and tells Options.OnLeave; ended
// says that s left because it ended, rather than by Leave, and gives its
// user the presence's grace period.
func (rt *Runtime) left(r *Room, s *session.Session, ended bool) {
	if r.presence != nil {
		r.presence.left(r, s, ended)
	}
	if rt.onLeave != nil {
		rt.onLeave(r, s)
	}
}

// isDead reports whether the room was removed.
func (r *Room) isDead() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dead
}

// Has reports whether s is a member of the room.
func (r *Room) Has(s *session.Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, in := r.members[s.ID()]
	return in
}

// member returns the registry's record of s, for s to join the room
// called name, or why it may not.
func (rt *Runtime) member(name string, s *session.Session) (*member, error) {
	m, ok := rt.sessions.Load(s.ID())
	if !ok {
		return nil, session.ErrClosed
	}
	if n := rt.adm.lim.MaxRoomName; n >= 0 && len(name) > n {
		rt.adm.refused.RoomName.Add(1)
		return nil, ErrRoomName
	}
	return m, nil
}

// room returns the room called name, made if there is none.
func (rt *Runtime) room(name string) *Room {
	r, _ := rt.rooms.LoadOrCompute(name, func() *Room {
		r := &Room{name: name, rt: rt, members: make(map[uint64]*session.Session)}
		r.meter, r.named = rt.tel.roomMeter(name)
		if rt.history != nil {
			if h := rt.history(name); h.Size > 0 {
				r.hist = newHistory(h)
			}
		}
		if rt.presence != nil {
			if p := rt.presence(name); p != nil && p.Who != nil {
				r.presence = newPresence(p)
			}
		}
		return r
	})
	return r
}

// Leave removes s from the room called name. It reports whether s was a
// member.
func (rt *Runtime) Leave(name string, s *session.Session) bool {
	r, ok := rt.rooms.Load(name)
	return ok && r.Leave(s)
}

// Room returns the room called name, if there is one: it has members, or
// keeps itself a while without (History.Linger, a Presence.Grace).
func (rt *Runtime) Room(name string) (*Room, bool) { return rt.rooms.Load(name) }

// Rooms yields every room, in no particular order.
func (rt *Runtime) Rooms() iter.Seq[*Room] {
	return func(yield func(*Room) bool) {
		rt.rooms.Range(func(_ string, r *Room) bool { return yield(r) })
	}
}

// Name returns the room's name.
func (r *Room) Name() string { return r.name }

// add makes m a member. It reports whether the room was removed
// meanwhile, so the caller must retry with a new one, or else why m could
// not join.
func (r *Room) add(m *member) (retry, added bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return true, false, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.s.ID()
	_, in := r.members[id]
	switch n := r.rt.adm.lim.MaxRoomsPerSession; {
	case m.gone:
		err = session.ErrClosed
	case in:
		return false, false, nil
	case n >= 0 && len(m.rooms) >= n:
		r.rt.adm.refused.RoomsPerSession.Add(1)
		err = ErrTooManyRooms
	}
	if err != nil {
		if r.idle() {
			r.kill() // made for this join: no empty room stays behind
		}
		return false, false, err
	}
	if r.linger != nil { // a member back before the room went
		r.linger.Stop()
		r.linger = nil
		r.lingerGen++
	}
	r.members[id] = m.s
	r.snap.Store(nil)
	m.rooms = append(m.rooms, r)
	return false, true, nil
}

// Leave removes s from the room and reports whether it was a member.
func (r *Room) Leave(s *session.Session) bool {
	if !r.remove(s) {
		return false
	}
	defer r.rt.left(r, s, false)
	if m, ok := r.rt.sessions.Load(s.ID()); ok {
		m.mu.Lock()
		if i := slices.Index(m.rooms, r); i >= 0 {
			m.rooms = slices.Delete(m.rooms, i, i+1)
		}
		m.mu.Unlock()
	}
	return true
}

// remove takes s out of the members, and the room out of the runtime when
// it becomes empty.
func (r *Room) remove(s *session.Session) bool {
	r.mu.Lock()
	if _, in := r.members[s.ID()]; !in {
		r.mu.Unlock()
		return false
	}
	delete(r.members, s.ID())
	r.snap.Store(nil)
	if len(r.members) == 0 {
		if r.hist != nil && r.hist.cfg.Linger > 0 {
			r.lingerGen++
			gen := r.lingerGen
			r.linger = time.AfterFunc(r.hist.cfg.Linger, func() { r.expire(gen) })
		} else if r.idle() {
			r.kill()
		} // else a presence grace holds it: release removes it
	}
	r.mu.Unlock()
	r.forgetIfDead()
	return true
}

// idle reports whether the room may go: no member, no linger, no key of
// its presence held here (a session's grace keeps the room, so that the
// user who comes back within it, here or on another node, is not seen to
// leave). r.mu is held.
func (r *Room) idle() bool {
	return len(r.members) == 0 && r.linger == nil && (r.presence == nil || r.presence.held.Load() == 0)
}

// release removes the room once nothing holds it: presence calls it when
// its last key held here is let go, and a join that made the room and
// failed.
func (r *Room) release() {
	r.mu.Lock()
	if !r.dead && r.idle() {
		r.kill()
	}
	r.mu.Unlock()
	r.forgetIfDead()
}

// expire removes the room when its linger is over and nobody came back;
// gen is the linger's, so that a timer stopped too late does nothing.
func (r *Room) expire(gen uint64) {
	r.mu.Lock()
	if r.linger != nil && r.lingerGen == gen && len(r.members) == 0 && !r.dead {
		r.linger = nil
		if r.idle() {
			r.kill()
		} // else a presence grace holds it: release removes it
	}
	r.mu.Unlock()
	r.forgetIfDead()
}

// close removes the room at Shutdown, if it is empty: a room that lingers
// or whose presence has keys in their grace goes at once, and its keys are
// left to the other nodes until they expire (SharedPresence.Stop).
func (r *Room) close() {
	if r.presence != nil {
		r.presence.shut.Store(true)
	}
	r.mu.Lock()
	if r.linger != nil {
		r.linger.Stop()
		r.linger = nil
		r.lingerGen++
	}
	if len(r.members) == 0 && !r.dead {
		r.kill()
	}
	r.mu.Unlock()
	r.forgetIfDead()
}

// kill removes the empty room from the runtime. r.mu is held.
func (r *Room) kill() {
	r.dead = true
	if r.named {
		r.rt.tel.roomsNamed.Add(-1)
	}

	r.rt.rooms.Compute(r.name, func(cur *Room, loaded bool) (*Room, bool) {
		return cur, !loaded || cur == r // delete only this room, not a successor
	})
}

// forgetIfDead lets what a removed room kept go: the users in their
// presence grace period depart (Changed is told), and its history's frames
// go back to their pools, and out of the outbound memory budget; a
// publish to the dead room after this keeps nothing. Whoever may have removed the room
// calls it, holding neither pub nor mu (pub is taken before mu).
func (r *Room) forgetIfDead() {
	if r.rt.broker != nil && r.isDead() {
		r.detach()
	}
	if r.hist == nil && r.presence == nil {
		return
	}
	if !r.isDead() {
		return
	}
	if r.presence != nil {
		r.presence.unshare() // first: the keys the other nodes keep at Shutdown are those held
		r.presence.flush(r)  // the users in their grace period depart with the room
	}
	if r.hist == nil {
		return
	}
	r.pub.Lock()
	defer r.pub.Unlock()
	if !r.hist.gone {
		r.hist.release()
		r.hist.gone = true
	}
}

// Len returns the number of members.
func (r *Room) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// Members yields the members as of the call.
func (r *Room) Members() iter.Seq[*session.Session] {
	return func(yield func(*session.Session) bool) {
		for _, s := range r.snapshot() {
			if !yield(s) {
				return
			}
		}
	}
}

func (r *Room) snapshot() []*session.Session {
	if p := r.snap.Load(); p != nil {
		return *p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.snap.Load(); p != nil {
		return *p
	}
	list := make([]*session.Session, 0, len(r.members))
	for _, s := range r.members {
		list = append(list, s)
	}
	r.snap.Store(&list)
	return list
}

// Broadcast sends a message of type op to every member, encoded once, and
// returns how many members accepted it (the others were closing or refused
// it by their backpressure policy). It never blocks on a slow member and
// does not allocate on the steady path.
func (r *Room) Broadcast(op wire.Opcode, p []byte) int {
	return r.BroadcastContext(context.Background(), op, p)
}

// BroadcastContext is Broadcast with a context, such as a Message's, whose
// span the broadcast's span is a child of when tracing is on.
func (r *Room) BroadcastContext(ctx context.Context, op wire.Opcode, p []byte) int {
	f := session.NewFrame(op, p)
	n := r.publish(ctx, len(p), func(traced context.Context) (int, int) { return r.fanout(f, nil, traced) }, r.carried(f))
	f.Release()
	return n
}

// carried is f as a message for the Broker, or nil without one.
func (r *Room) carried(f *session.Frame) *Carried {
	if r.rt.broker == nil {
		return nil
	}
	return &Carried{Variants: []Variant{{Op: f.Opcode(), Data: f.Payload()}}}
}

// BroadcastFrame hands f to every member except the session except (which
// may be nil), and returns how many accepted it. The caller keeps its own
// reference to f.
func (r *Room) BroadcastFrame(f *session.Frame, except *session.Session) int {
	return r.BroadcastFrameContext(context.Background(), f, except)
}

// BroadcastFrameContext is BroadcastFrame with a context for tracing.
func (r *Room) BroadcastFrameContext(ctx context.Context, f *session.Frame, except *session.Session) int {
	return r.publish(ctx, f.Len(), func(traced context.Context) (int, int) { return r.fanout(f, except, traced) }, r.carried(f))
}

// BroadcastEach is one broadcast whose frame depends on the member, such as
// one encoding per codec: pick returns the frame for a member, or nil to
// skip it. The caller keeps its references to the frames; each member that
// gets one takes a reference of its own. It is traced and counted as one
// publish, like Broadcast. It reaches this node's members only: a Broker
// does not carry it (Publish with a KeyedEncoder does).
func (r *Room) BroadcastEach(ctx context.Context, except *session.Session, pick func(s *session.Session) *session.Frame) int {
	return r.publish(ctx, 0, func(traced context.Context) (int, int) { return r.fanEach(except, traced, pick) }, nil)
}

// fanEach hands each member but except the frame pick returns for it (none
// for nil), carrying traced if not nil, and returns how many accepted it
// out of how many were tried.
func (r *Room) fanEach(except *session.Session, traced context.Context, pick func(s *session.Session) *session.Frame) (accepted, tried int) {
	for _, s := range r.snapshot() {
		if s == except {
			continue
		}
		f := pick(s)
		if f == nil {
			continue
		}
		if traced != nil {
			f.SetContext(traced)
		}
		tried++
		f.Retain(1)
		if s.SendFrame(f) == nil {
			accepted++
		}
	}
	return accepted, tried
}

// publish runs fan, which hands a frame to the members, inside a span and
// with the fan-out counted when telemetry is on, then gives out, if not
// nil, to the Broker in the span's context. size is the message's size
// for the span (0 when it varies). When the span records, fan gets the
// context its frames are to carry (see session.Frame.SetContext), so that
// each member's delivery is recorded; else nil.
func (r *Room) publish(ctx context.Context, size int, fan func(traced context.Context) (accepted, tried int), out *Carried) int {
	t := r.rt.tel
	if t.tracer == nil && !t.metrics() {
		n, _ := fan(nil)
		if out != nil {
			r.forward(ctx, *out)
		}
		return n
	}
	var span trace.Span
	var traced context.Context
	if t.tracer != nil {
		ctx, span = t.startPublish(ctx, r.name, size)
		if span.IsRecording() {
			traced = t.publishContext(ctx)
		}
	}
	n, tried := fan(traced)
	if t.metrics() {
		r.record(ctx, n, tried)
	}
	if out != nil {
		r.forward(ctx, *out)
	}
	if span != nil {
		// One span for the fan-out; the members' deliveries are spans of
		// their own, bounded (Options.TraceDeliveries).
		span.SetAttributes(semconv.MessagingBatchMessageCount(n))
		span.AddEvent("fanout", trace.WithAttributes(
			attribute.Int("shockwave.fanout.accepted", n),
			attribute.Int("shockwave.fanout.refused", tried-n)))
		span.End()
	}
	return n
}

// record counts a publish that tried members, of which accepted took the
// frame, with the room's name if it is metered.
func (r *Room) record(ctx context.Context, accepted, tried int) {
	t := r.rt.tel
	if r.meter == nil {
		t.fanout.Record(ctx, int64(accepted))
		if tried > accepted {
			t.refusedOut.Add(ctx, int64(tried-accepted))
		}
		return
	}
	t.fanout.Record(ctx, int64(accepted), r.meter)
	if tried > accepted {
		t.refusedOut.Add(ctx, int64(tried-accepted), r.meter)
	}
}

// fanout hands f to every member but except, and returns how many accepted
// it out of how many were tried. A traced context, if not nil, goes with
// f.
func (r *Room) fanout(f *session.Frame, except *session.Session, traced context.Context) (accepted, tried int) {
	if traced != nil {
		f.SetContext(traced)
	}
	members := r.snapshot()
	f.Retain(len(members))
	for _, s := range members {
		if s == except {
			f.Release()
			continue
		}
		tried++
		if s.SendFrame(f) == nil {
			accepted++
		}
	}
	return accepted, tried
}
