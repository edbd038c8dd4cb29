package runtime

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/session"
)

// Position is a message's place in its room's history (see History).
type Position struct {
	// Epoch names the room's history. It changes whenever the history
	// could have been lost — a new process, or the room removed (its
	// last member gone) and made again — so that a position of another
	// epoch says nothing about what was missed. Never 0 for a room with
	// history, and under 2^53, so that JavaScript's numbers hold it.
	Epoch uint64
	// Offset counts the messages published to the room in its epoch, 1
	// for the first.
	Offset uint64
}

// History says how many of its recent messages a room keeps, so that a
// session that comes back gets what it missed (Runtime.Resume). The zero
// History keeps none: the room's messages have no positions.
type History struct {
	// Size is the most messages kept; the room's memory for them grows
	// as they come. Zero or less: none.
	Size int
	// TTL, if set, drops the messages older than this.
	TTL time.Duration
	// Linger, if set, keeps an empty room, and its history, this long
	// after its last member left, so that members who come back within
	// it (all of them dropped by one network failure, say) still
	// recover. Zero: the room and its history go with the last member.
	// Rooms that linger hold memory, their messages included: name
	// rooms of clients' choosing with care.
	Linger time.Duration
	// Stamp, with a Broker that keeps the rooms' log (Log), writes a
	// message's position into its encoding as the message comes back
	// from the log: it appends to dst variant v's payload as Encode would
	// have made it at pos (codec.Stamp does it for codec.Router's
	// messages). The log keeps the messages as encoded at the zero
	// Position, since it gives the position only once it has stored
	// them. Nil, or an error: the members get them as they were
	// published.
	Stamp func(dst []byte, v Variant, pos Position) ([]byte, error)
}

// MaxVariants bounds Encoder.Variants.
const MaxVariants = 4

// Encoder is a message for Room.Publish: it encodes the message for the
// room's members, in one of a few variants (one per codec, say: see
// codec.Router), at the position the room gives it.
type Encoder interface {
	// Variants is how many encodings of the message there are, 1 to
	// MaxVariants.
	Variants() int
	// Variant returns the encoding member s takes, from 0 to
	// Variants()-1.
	Variant(s *session.Session) int
	// Encode returns the message's frame in variant v, holding one
	// reference, which Publish takes over. pos is the message's position,
	// the zero Position in a room that keeps no history.
	Encode(pos Position, v int) (*session.Frame, error)
}

// ErrVariants is returned by Publish for an Encoder with no variant, or
// more than MaxVariants.
var ErrVariants = errors.New("runtime: an Encoder has 1 to MaxVariants variants")

// history is a room's kept messages: a ring of the last ones, each with
// its frames, one reference per frame kept. The room's pub lock guards it.
// A room's own offsets follow each other; those a Log gives need not
// (the log's sequence counts every room's messages), so the ring keeps
// each entry's offset and base, the offset before the oldest kept.
type history struct {
	cfg   History
	epoch uint64
	last  uint64  // offset of the newest message, 0 before the first
	base  uint64  // offset of the message before the oldest kept; last when none is
	ring  []entry // Size entries; the oldest at head
	head  int
	n     int
	gone  bool // the room was removed: keep nothing more
}

// entry is one kept message.
type entry struct {
	offset uint64
	at     int64 // Unix nanoseconds, for TTL
	frames [MaxVariants]*session.Frame
}

func newHistory(h History) *history {
	epoch := rand.Uint64() >> 11 // 53 bits: a JavaScript number holds it
	for epoch == 0 {
		epoch = rand.Uint64() >> 11
	}
	return &history{cfg: h, epoch: epoch, ring: make([]entry, min(h.Size, 16))}
}

// push keeps frames as the message at offset last+1, taking a reference
// to each, and lets the oldest go when the ring is full.
func (h *history) push(frames *[MaxVariants]*session.Frame, now int64) Position {
	return h.pushAt(h.last+1, frames, now)
}

// pushAt is push at an offset a Log gave, past last.
func (h *history) pushAt(offset uint64, frames *[MaxVariants]*session.Frame, now int64) Position {
	h.last = offset
	if h.gone {
		return Position{Epoch: h.epoch, Offset: h.last}
	}
	if h.n == len(h.ring) {
		if len(h.ring) < h.cfg.Size {
			h.grow()
		} else {
			h.drop()
		}
	}
	e := &h.ring[(h.head+h.n)%len(h.ring)]
	e.offset, e.at, e.frames = h.last, now, *frames
	for _, f := range e.frames {
		if f != nil {
			f.Retain(1)
		}
	}
	h.n++
	return Position{Epoch: h.epoch, Offset: h.last}
}

// grow doubles the full ring, up to Size: a room is not charged its whole
// history before it has one.
func (h *history) grow() {
	ring := make([]entry, min(2*len(h.ring), h.cfg.Size))
	for i := range h.n {
		ring[i] = h.ring[(h.head+i)%len(h.ring)]
	}
	h.ring, h.head = ring, 0
}

// drop lets the oldest entry go.
func (h *history) drop() {
	e := &h.ring[h.head]
	for i, f := range e.frames {
		if f != nil {
			f.Release()
			e.frames[i] = nil
		}
	}
	h.base = e.offset
	h.head = (h.head + 1) % len(h.ring)
	h.n--
}

// mark forgets what the history keeps and starts it again at p: the log
// (Log) says that nothing before p can be had, or its epoch changed.
func (h *history) mark(p Position) {
	h.release()
	h.epoch, h.last, h.base = p.Epoch, p.Offset, p.Offset
}

// trim drops the entries older than the TTL.
func (h *history) trim(now int64) {
	if h.cfg.TTL <= 0 {
		return
	}
	for h.n > 0 && now-h.ring[h.head].at > int64(h.cfg.TTL) {
		h.drop()
	}
}

// replay returns what a session that rejoins with j is queued, in
// variant j.Variant, each frame with a reference for the caller: the
// messages after j.Since when the history holds all of them (recovered),
// or else the j.Recent latest it holds; and the position just before the
// first of them, the session's once it has them all.
func (h *history) replay(j Rejoin, now int64) (frames []*session.Frame, recovered bool, at Position) {
	h.trim(now)
	from := h.last // frames are those after it
	p := j.Since
	switch {
	case p.Epoch == h.epoch && p.Offset <= h.last && p.Offset >= h.base:
		from, recovered = p.Offset, true
	case j.Recent <= 0:
	case j.Recent >= h.n:
		from = h.base
	default:
		from = h.ring[(h.head+h.n-j.Recent-1)%len(h.ring)].offset
	}
	if from < h.last {
		frames = make([]*session.Frame, 0, min(h.last-from, uint64(h.n)))
	}
	for i := range h.n {
		e := &h.ring[(h.head+i)%len(h.ring)]
		if e.offset <= from {
			continue
		}
		if f := e.frames[j.Variant]; f != nil {
			f.Retain(1)
			frames = append(frames, f)
		}
	}
	return frames, recovered, Position{Epoch: h.epoch, Offset: from}
}

// release lets every kept frame go, when the room is removed.
func (h *history) release() {
	for h.n > 0 {
		h.drop()
	}
}

// Publish sends the message e encodes to every member of the room but
// except (which may be nil), and returns its position and how many
// members accepted it.
//
// With a Broker that keeps the rooms' log (Log), a room with history
// publishes to the log: Publish encodes every variant at the zero
// Position, waits for the log to store the message and returns its
// position there, and 0 members: the members, here as on every node, get
// it as it comes back from the log, with its position stamped in
// (History.Stamp). An error says that it may not have been stored.
//
// In a room that keeps history (Options.RoomHistory), the message gets the
// room's next position, every variant is encoded once, the frames are kept
// (a reference each, no copy), and publishes to the room are serialised,
// so that members get the messages in the order of their positions. In a
// room without history, the position is zero, and only the variants that
// members take are encoded. Either way each member gets a reference to the
// shared frame of its variant: the cost per member is a mailbox push.
//
// An Encode error stops a publish to a room with history, or of a
// message of one variant, before anything is sent or kept; otherwise the
// members of that variant get nothing and the first error is returned.
func (r *Room) Publish(ctx context.Context, except *session.Session, e Encoder) (Position, int, error) {
	nv := e.Variants()
	if nv < 1 || nv > MaxVariants {
		return Position{}, 0, ErrVariants
	}
	if r.hist == nil {
		return r.publishLazy(ctx, except, e)
	}
	if r.rt.log != nil {
		return r.publishLogged(ctx, except, e)
	}
	r.pub.Lock()
	defer r.pub.Unlock()
	var frames [MaxVariants]*session.Frame
	pos := Position{Epoch: r.hist.epoch, Offset: r.hist.last + 1}
	size := 0
	for v := range nv {
		f, err := e.Encode(pos, v)
		if err != nil {
			releaseAll(&frames)
			return Position{}, 0, err
		}
		frames[v], size = f, f.Len()
	}
	r.hist.push(&frames, time.Now().UnixNano())
	n := r.publish(ctx, size, func(traced context.Context) (int, int) {
		return r.fanEach(except, traced, func(s *session.Session) *session.Frame { return frames[e.Variant(s)] })
	}, nil)
	releaseAll(&frames)
	return pos, n, nil
}

// publishLogged is Publish for a room whose log a Log keeps.
func (r *Room) publishLogged(ctx context.Context, except *session.Session, e Encoder) (Position, int, error) {
	var frames [MaxVariants]*session.Frame
	defer releaseAll(&frames)
	size := 0
	for v := range e.Variants() {
		f, err := e.Encode(Position{}, v)
		if err != nil {
			return Position{}, 0, err
		}
		frames[v], size = f, max(size, f.Len())
	}
	m, err := carry(frames[:e.Variants()], e)
	if err != nil {
		return Position{}, 0, err
	}
	if except != nil {
		m.Except = except.ID()
	}
	if t := r.rt.tel; t.tracer != nil { // the trace goes on from the log, on every node
		var span trace.Span
		ctx, span = t.startPublish(ctx, r.name, size)
		defer span.End()
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
		}()
	}
	pos, err := r.rt.log.Append(ctx, r.name, m)
	return pos, 0, err
}

// publishLazy is Publish for a room without history.
func (r *Room) publishLazy(ctx context.Context, except *session.Session, e Encoder) (Position, int, error) {
	if r.rt.broker != nil {
		return r.publishCarried(ctx, except, e)
	}
	if e.Variants() == 1 { // every member takes the one frame: the broadcast's own path
		f, err := e.Encode(Position{}, 0)
		if err != nil {
			return Position{}, 0, err
		}
		n := r.BroadcastFrameContext(ctx, f, except)
		f.Release()
		return Position{}, n, nil
	}
	n, err := r.fanLazy(ctx, except, e)
	return Position{}, n, err
}

// fanLazy hands this node's members but except the variant of e each
// takes, each variant encoded on first need, at the zero Position, and
// returns how many accepted it and the first Encode error: the members of
// a variant that failed get nothing.
func (r *Room) fanLazy(ctx context.Context, except *session.Session, e Encoder) (int, error) {
	var frames [MaxVariants]*session.Frame
	var failed [MaxVariants]bool
	var firstErr error
	n := r.BroadcastEach(ctx, except, func(s *session.Session) *session.Frame {
		v := e.Variant(s)
		if frames[v] == nil && !failed[v] {
			f, err := e.Encode(Position{}, v)
			if err != nil {
				failed[v] = true
				if firstErr == nil {
					firstErr = err
				}
				return nil
			}
			frames[v] = f
		}
		return frames[v]
	})
	releaseAll(&frames)
	return n, firstErr
}

// Signal sends what e encodes to every member of the room but except
// (which may be nil), as Publish does, but outside the room's history: the
// message has no position, is not kept and is never replayed. It is for
// what matters only live: typing indicators, cursors, presence. In a room
// with history or presence it is ordered with the room's publishes and
// joins: a session that joins gets it after its join's reply
// (Rejoin.Reply) or not at all, so that the state a reply carries is never
// overtaken by an older signal. It returns how many members accepted it.
func (r *Room) Signal(ctx context.Context, except *session.Session, e Encoder) (int, error) {
	if nv := e.Variants(); nv < 1 || nv > MaxVariants {
		return 0, ErrVariants
	}
	if r.ordered() {
		r.pub.Lock()
		defer r.pub.Unlock()
	}
	_, n, err := r.publishLazy(ctx, except, e)
	return n, err
}

// ordered reports whether joins to the room take its publish lock: it
// keeps history or presence, whose replies must not be overtaken.
func (r *Room) ordered() bool { return r.hist != nil || r.presence != nil }

// publishCarried is Publish for a room without history when a Broker
// carries it to the other nodes: every variant is encoded, for them.
func (r *Room) publishCarried(ctx context.Context, except *session.Session, e Encoder) (Position, int, error) {
	nv := e.Variants()
	var frames [MaxVariants]*session.Frame
	size := 0
	for v := range nv {
		f, err := e.Encode(Position{}, v)
		if err != nil {
			releaseAll(&frames)
			return Position{}, 0, err
		}
		frames[v], size = f, max(size, f.Len())
	}
	out, err := carry(frames[:nv], e)
	send := &out
	if err != nil {
		send = nil // to the members here only
	}
	n := r.publish(ctx, size, func(traced context.Context) (int, int) {
		return r.fanEach(except, traced, func(s *session.Session) *session.Frame { return frames[e.Variant(s)] })
	}, send)
	releaseAll(&frames)
	return Position{}, n, err
}

func releaseAll(frames *[MaxVariants]*session.Frame) {
	for i, f := range frames {
		if f != nil {
			f.Release()
			frames[i] = nil
		}
	}
}

// Position returns the position of the last message published to the
// room, the zero Position before the first and in a room without history.
func (r *Room) Position() Position {
	if r.hist == nil {
		return Position{}
	}
	r.pub.Lock()
	defer r.pub.Unlock()
	return Position{Epoch: r.hist.epoch, Offset: r.hist.last}
}

// Rejoin is what a session asks of Runtime.Resume as it joins a room.
type Rejoin struct {
	// Since is the last position the session saw in the room: the zero
	// Position for a first join.
	Since Position
	// Recent asks, when the messages after Since cannot be recovered (a
	// first join included), for up to this many of the latest messages
	// the room keeps instead, so that a client that must resynchronise
	// gets them without asking again. Zero: none. The room's History.Size
	// bounds it.
	Recent int
	// Variant is the encoding the session takes (see Encoder): 0 in
	// rooms published to in one.
	Variant int
	// Reply, if set, is called once the session is a member, with what
	// Resume is about to do, before anything is queued to the session:
	// what it sends (a join's reply, the room's state) reaches the
	// session before the replayed messages and, in a room that keeps
	// history, before any message published after the reply's position.
	// It runs under the room's publish lock (in a room with history or
	// presence): it must not publish to the room. If it fails, nothing is
	// queued, the session leaves the room unless it was a member before,
	// and Resume returns its error.
	Reply func(Resumption) error
}

// Resumption is what Runtime.Resume did.
type Resumption struct {
	// Room is the room the session joined.
	Room *Room
	// Recovered says that the messages after the session's position are
	// queued to it, before any later one.
	Recovered bool
	// Replayed is how many messages are queued to the session: those it
	// missed when Recovered, or else those Rejoin.Recent asked for.
	Replayed int
	// At is the position just before the first message queued to the
	// session, the room's latest when none is: the session's position
	// once it has them. A client takes it as its own, unless it has
	// already seen a later one of the same epoch, so that it can resume
	// even before the room publishes again. The zero Position in a room
	// without history; Offset 0 in one that has published nothing yet.
	At Position
}

// Resume is JoinRoom for a session that comes back: j.Since is the last
// position it saw in the room. If the room keeps history and still holds
// every message after it, Resume queues those messages to s, in order,
// before any message published after them — none missed, none twice,
// however the publishes race with it — and reports Recovered. Otherwise
// (the room's epoch changed, the messages were trimmed, the room keeps no
// history, or Since is the zero Position of a first join) s joins with
// only the j.Recent latest messages queued, and the application
// resynchronises it (sends it the room's state: j.Reply can, in step with
// the queue). The replay meets s's mailbox like any burst: a gap larger
// than the mailbox is refused under the session's policy.
//
// With a Broker that keeps the rooms' log (Log), the room's history is the
// log's: the first join of the room on this node follows the log (see
// Log.Follow) before anything else, and Resume returns ErrNoLog if it
// cannot.
func (rt *Runtime) Resume(name string, s *session.Session, j Rejoin) (Resumption, error) {
	if j.Variant < 0 || j.Variant >= MaxVariants {
		return Resumption{}, ErrVariants
	}
	m, err := rt.member(name, s)
	if err != nil {
		return Resumption{}, err
	}
	for {
		r := rt.room(name)
		if r.logged() && !r.attach() { // its history is the log's: followed first
			if r.isDead() {
				continue
			}
			r.release()
			return Resumption{}, ErrNoLog
		}
		ordered := r.ordered()
		if ordered {
			r.pub.Lock()
		}
		retry, added, err := r.add(m)
		if retry || err != nil {
			if ordered {
				r.pub.Unlock()
			}
			if retry {
				continue
			}
			r.forgetIfDead() // made for this join, which failed
			return Resumption{}, err
		}
		res := Resumption{Room: r}
		var queue []*session.Frame
		if r.hist != nil {
			queue, res.Recovered, res.At = r.hist.replay(j, time.Now().UnixNano())
			res.Replayed = len(queue)
		}
		rt.enter(r, s, added)
		if j.Reply != nil {
			err = j.Reply(res)
		}
		for _, f := range queue {
			if err == nil {
				s.SendFrame(f) // takes the reference replay took
			} else {
				f.Release()
			}
		}
		if ordered {
			r.pub.Unlock()
		}
		rt.announce(r, s, added)
		if err != nil {
			if added {
				r.Leave(s)
			}
			return Resumption{}, err
		}
		return res, nil
	}
}
