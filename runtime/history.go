package runtime

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

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
type history struct {
	cfg   History
	epoch uint64
	last  uint64  // offset of the newest message, 0 before the first
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
	h.last++
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
	h.head = (h.head + 1) % len(h.ring)
	h.n--
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

// since returns the frames in variant v of the messages after p, each
// with a reference for the caller, and true; or nil and false when the
// history does not hold all of them: another epoch, a position ahead of
// the room, or messages trimmed since.
func (h *history) since(p Position, v int, now int64) ([]*session.Frame, bool) {
	h.trim(now)
	oldest := h.last + 1 - uint64(h.n) // the first offset kept (last+1 when none)
	if p.Epoch != h.epoch || p.Offset > h.last || p.Offset+1 < oldest {
		return nil, false
	}
	missed := make([]*session.Frame, 0, h.last-p.Offset)
	for i := range h.n {
		e := &h.ring[(h.head+i)%len(h.ring)]
		if e.offset <= p.Offset {
			continue
		}
		if f := e.frames[v]; f != nil {
			f.Retain(1)
			missed = append(missed, f)
		}
	}
	return missed, true
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
	})
	releaseAll(&frames)
	return pos, n, nil
}

// publishLazy is Publish for a room without history.
func (r *Room) publishLazy(ctx context.Context, except *session.Session, e Encoder) (Position, int, error) {
	if e.Variants() == 1 { // every member takes the one frame: the broadcast's own path
		f, err := e.Encode(Position{}, 0)
		if err != nil {
			return Position{}, 0, err
		}
		n := r.BroadcastFrameContext(ctx, f, except)
		f.Release()
		return Position{}, n, nil
	}
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
	return Position{}, n, firstErr
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

// Resumption is what Runtime.Resume did.
type Resumption struct {
	// Room is the room the session joined.
	Room *Room
	// Recovered says that the messages after the session's position were
	// queued to it, before any later one.
	Recovered bool
	// At is the room's position when the session joined: the last message
	// it was queued or did not need. A client takes it as its own, unless
	// it has already seen a later one of the same epoch. The zero
	// Position in a room without history, or one that has published
	// nothing yet.
	At Position
}

// Resume is JoinRoom for a session that comes back: since is the last
// position it saw in the room, variant the encoding it takes (see
// Encoder). If the room keeps history and still holds every message
// after since, Resume queues those messages to s, in order, before any
// message published after it — none missed, none twice, however the
// publishes race with it — and reports Recovered. Otherwise (the room's
// epoch changed, the messages were trimmed, the room keeps no history, or
// since is the zero Position of a first join) s joins with nothing
// queued, and the application resynchronises it (sends it the room's
// state). The replay meets s's mailbox like any burst: a gap larger than
// the mailbox is refused under the session's policy.
func (rt *Runtime) Resume(name string, s *session.Session, since Position, variant int) (Resumption, error) {
	if variant < 0 || variant >= MaxVariants {
		return Resumption{}, ErrVariants
	}
	m, err := rt.member(name, s)
	if err != nil {
		return Resumption{}, err
	}
	for {
		r := rt.room(name)
		if r.hist == nil {
			retry, added, err := r.add(m)
			if retry {
				continue
			}
			if err != nil {
				r.forgetIfDead()
				return Resumption{}, err
			}
			rt.joined(r, s, added)
			return Resumption{Room: r}, nil
		}
		r.pub.Lock()
		missed, ok := r.hist.since(since, variant, time.Now().UnixNano())
		retry, added, err := r.add(m)
		if retry || err != nil {
			r.pub.Unlock()
			for _, f := range missed {
				f.Release()
			}
			if retry {
				continue
			}
			r.forgetIfDead() // made for this join, which failed
			return Resumption{}, err
		}
		for _, f := range missed {
			s.SendFrame(f) // takes the reference since took
		}
		at := Position{Epoch: r.hist.epoch, Offset: r.hist.last}
		r.pub.Unlock()
		rt.joined(r, s, added)
		return Resumption{Room: r, Recovered: ok, At: at}, nil
	}
}
