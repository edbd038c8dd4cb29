package runtime

import (
	"iter"
	"sync"
	"time"

	"github.com/shockwave-go/shockwave/session"
)

// Presence says how a room tracks who is in it (Options.RoomPresence): by
// key, such as the user's identity from WithAdmit, so that the several
// sessions of one user count once, and with a grace period, so that a
// user whose connection drops and comes back within it is not seen to
// leave and join again.
type Presence struct {
	// Who returns the key a session counts as, and the info the others
	// see of it (a display name, say). Required.
	Who func(s *session.Session) (key string, info any)
	// Grace delays the leave of a key whose last session ended: if a
	// session of that key joins within it, nothing changed. A session
	// that leaves the room (Leave) while it goes on departs at once: its
	// user meant to. Zero: every leave is at once.
	Grace time.Duration
	// Changed, if set, is told of every arrival (present) and departure
	// (!present) of a key, after the change, outside the room's locks,
	// on the goroutine that made it (a timer's, for a departure after
	// Grace): the place to tell the room (codec.Router publishes
	// them). It must not block.
	Changed func(r *Room, key string, info any, present bool)
}

// presence is a room's presence: its keys, guarded by mu.
type presence struct {
	cfg  *Presence
	mu   sync.Mutex
	keys map[string]*presentKey
}

// presentKey is one key's sessions in the room, and the timer of its
// pending departure.
type presentKey struct {
	info     any
	sessions int
	leaving  *time.Timer // while the grace runs
	gen      uint64      // tells a stale timer
}

func newPresence(p *Presence) *presence {
	return &presence{cfg: p, keys: make(map[string]*presentKey)}
}

// arrival is a key that arrived in a room, for Changed to be told once
// the room's locks are released.
type arrival struct {
	key  string
	info any
	new  bool // the key was not present: Changed is told
}

// enter counts s in, and returns its key's arrival.
func (p *presence) enter(s *session.Session) arrival {
	key, info := p.cfg.Who(s)
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[key]
	switch {
	case !ok:
		k = &presentKey{info: info}
		p.keys[key] = k
	case k.leaving != nil: // back within the grace: nothing changed
		k.leaving.Stop()
		k.leaving = nil
		k.gen++
	}
	k.sessions++
	return arrival{key: key, info: info, new: !ok}
}

// arrived tells Changed of a's key, if it is new in the room.
func (p *presence) arrived(r *Room, a arrival) {
	if a.new && p.cfg.Changed != nil {
		p.cfg.Changed(r, a.key, a.info, true)
	}
}

// joined counts s in, and tells Changed when its key arrives.
func (p *presence) joined(r *Room, s *session.Session) { p.arrived(r, p.enter(s)) }

// left counts s out, and tells Changed when its key departs: after the
// grace, if s ended.
func (p *presence) left(r *Room, s *session.Session, ended bool) {
	key, _ := p.cfg.Who(s)
	p.mu.Lock()
	k, ok := p.keys[key]
	if !ok || k.sessions == 0 {
		p.mu.Unlock()
		return
	}
	k.sessions--
	if k.sessions > 0 {
		p.mu.Unlock()
		return
	}
	if ended && p.cfg.Grace > 0 {
		k.gen++
		gen := k.gen
		k.leaving = time.AfterFunc(p.cfg.Grace, func() { p.depart(r, key, gen) })
		p.mu.Unlock()
		if r.isDead() {
			p.flush(r) // the room went with this session: no grace in a room nobody can rejoin
		}
		return
	}
	delete(p.keys, key)
	p.mu.Unlock()
	if p.cfg.Changed != nil {
		p.cfg.Changed(r, key, k.info, false)
	}
}

// depart ends a key's grace: if no session of it came back, it leaves.
func (p *presence) depart(r *Room, key string, gen uint64) {
	p.mu.Lock()
	k, ok := p.keys[key]
	if !ok || k.gen != gen || k.sessions > 0 || k.leaving == nil {
		p.mu.Unlock()
		return
	}
	delete(p.keys, key)
	p.mu.Unlock()
	if p.cfg.Changed != nil {
		p.cfg.Changed(r, key, k.info, false)
	}
}

// flush ends every grace at once, when the room is removed: the keys in
// it depart, and Changed is told.
func (p *presence) flush(r *Room) {
	p.mu.Lock()
	var gone []*presentKey
	var keys []string
	for key, k := range p.keys {
		if k.leaving != nil {
			k.leaving.Stop()
			delete(p.keys, key)
			gone, keys = append(gone, k), append(keys, key)
		}
	}
	p.mu.Unlock()
	if p.cfg.Changed != nil {
		for i, k := range gone {
			p.cfg.Changed(r, keys[i], k.info, false)
		}
	}
}

// Present yields the keys present in the room and their info, those in
// their grace period included, as of the call; nothing in a room without
// presence (Options.RoomPresence).
func (r *Room) Present() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		if r.presence == nil {
			return
		}
		p := r.presence
		p.mu.Lock()
		type kv struct {
			key  string
			info any
		}
		list := make([]kv, 0, len(p.keys))
		for key, k := range p.keys {
			list = append(list, kv{key, k.info})
		}
		p.mu.Unlock()
		for _, e := range list {
			if !yield(e.key, e.info) {
				return
			}
		}
	}
}

// PresentCount returns how many keys are present in the room, those in
// their grace period included.
func (r *Room) PresentCount() int {
	if r.presence == nil {
		return 0
	}
	r.presence.mu.Lock()
	defer r.presence.mu.Unlock()
	return len(r.presence.keys)
}
