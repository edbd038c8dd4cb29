package runtime

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/session"
)

// Presence says how a room tracks who is in it (Options.RoomPresence): by
// key, such as the user's identity from WithAdmit, so that the several
// sessions of one user count once, and with a grace period, so that a
// user whose connection drops and comes back within it is not seen to
// leave and join again.
//
// With a PresenceBroker (Options.Broker), a room's presence is that of
// every node: a key counts once however many nodes it is present on, and
// the info of a key held on another node is what encoding/json decodes
// its info into (map[string]any for a struct, float64 for a number).
type Presence struct {
	// Who returns the key a session counts as, and the info the others
	// see of it (a display name, say). Required. With a PresenceBroker,
	// the info crosses to the other nodes as JSON: one that does not
	// marshal arrives as nil.
	Who func(s *session.Session) (key string, info any)
	// Grace delays the leave of a key whose last session ended: if a
	// session of that key joins within it, here or, with a
	// PresenceBroker, on another node, nothing changed. A room whose
	// last member ended stays while a grace runs. A session that leaves
	// the room (Leave) while it goes on departs at once: its user meant
	// to. Zero: every leave is at once.
	Grace time.Duration
	// Changed, if set, is told of every arrival (present) and departure
	// (!present) of a key, after the change, outside the room's locks,
	// in the order of the changes, on the goroutine that made one (a
	// timer's, for a departure after Grace; the PresenceBroker's, for a
	// change on another node): the place to tell the room's members
	// (codec.Router publishes them). It must not block. With a
	// PresenceBroker, each node with members in the room is told of each
	// change of the room's presence on any node, so that it tells its
	// own members: send with Room.SignalLocal. The keys already present
	// on other nodes when the room is made here, and still present when
	// it goes, are not told: Present lists them.
	Changed func(r *Room, key string, info any, present bool)
}

// PresenceBroker is a Broker that also shares the rooms' presence
// between the nodes (runtime/natsbroker: a JetStream key-value bucket),
// so that Room.Present, PresentCount and Presence.Changed count the users
// of a room wherever they are connected. New refuses a Broker that is not
// one with Options.RoomPresence.
//
// Each node tells the Broker its own keys in a room; the Broker tells it
// the keys of each other node. A node that stops or dies takes its keys
// away only once the Broker says so: within a bound of the Broker's (a
// time to live), long enough for its users to reconnect to another node
// without being seen to leave.
type PresenceBroker interface {
	Broker
	// SharePresence starts sharing room's presence, when a key first
	// arrives in the room on this node. here yields this node's keys in
	// the room and their info, those in their grace period included: the
	// Broker reads it when it is ready to send them (after
	// SharedPresence.Changed, at most as often as it sends), outside its
	// own locks. Before SharePresence returns, the Broker calls others
	// with the keys of each other node present in the room, as far as it
	// can learn them within its own bound; after that, whenever a node's
	// keys change, with all of its keys, or none when it left the room
	// or its keys expired. node names another node (an instance of it:
	// a node that restarts is another). others is called on one
	// goroutine at a time, and not after the call under way when
	// SharedPresence.Stop returned; the map is the Runtime's once passed,
	// for the Broker not to use again. An error leaves the room's
	// presence this node's own; the Runtime tries again at the room's
	// next arrival.
	SharePresence(room string, here iter.Seq2[string, any], others func(node string, keys map[string]any)) (SharedPresence, error)
}

// SharedPresence is a room's presence as a PresenceBroker shares it.
type SharedPresence interface {
	// Changed tells the Broker that this node's keys in the room changed:
	// it reads here again soon, not within the call. It must not block.
	Changed()
	// Stop ends the sharing, when the room goes from this node. gone:
	// its keys' graces are over, and the Broker takes them away from the
	// other nodes at once. !gone (the Runtime shuts down): the Broker
	// leaves them to the other nodes until they expire, so that the
	// users who reconnect elsewhere within that time are not seen to
	// leave; it reads here once more, within the call, if the keys
	// changed since it last sent them. Called once.
	Stop(gone bool)
}

// presence is a room's presence: its keys, guarded by mu.
//
// Lock order: shareMu, then mu. Neither is held with the room's mu or
// pub, nor while calling the Broker or Changed.
type presence struct {
	cfg *Presence

	mu     sync.Mutex
	keys   map[string]*presentKey    // present here or on other nodes
	others map[string]map[string]any // each other node's keys, as the Broker last said
	queue  []change                  // changes Changed has not been told yet
	spare  []change                  // queue's other buffer
	// telling: a goroutine is telling Changed the queue; the others leave
	// it theirs, so that Changed hears the changes in order.
	telling bool
	shared  SharedPresence // nil: not shared (no PresenceBroker, not yet, or the room went)
	loading bool           // within SharePresence: the other nodes' keys are the room's start, not arrivals
	stopped bool           // the room went: the Broker's news are ignored

	// held counts the keys held here: with sessions, or in their grace.
	// The room stays while any is (Room.idle). Changed under mu.
	held atomic.Int32
	// shut: the room was taken by Shutdown, its keys left to the other
	// nodes until they expire.
	shut atomic.Bool

	shareMu sync.Mutex // serialises SharePresence
}

// presentKey is one key in the room: its sessions here, the timer of its
// pending departure here, and how many other nodes it is present on.
type presentKey struct {
	info     any         // this node's while held here, else another node's
	sessions int         // this node's sessions of the key
	leaving  *time.Timer // while the grace runs
	gen      uint64      // tells a stale timer
	nodes    int         // the other nodes it is present on
}

// held reports whether the key is held on this node.
func (k *presentKey) held() bool { return k.sessions > 0 || k.leaving != nil }

// change is an arrival or departure for Changed.
type change struct {
	key     string
	info    any
	present bool
}

func newPresence(p *Presence) *presence {
	return &presence{cfg: p, keys: make(map[string]*presentKey)}
}

// enter counts s in.
func (p *presence) enter(r *Room, s *session.Session) {
	key, info := p.cfg.Who(s)
	p.share(r)
	p.mu.Lock()
	k, ok := p.keys[key]
	if !ok {
		k = &presentKey{info: info}
		p.keys[key] = k
		p.note(change{key, info, true})
	}
	news := !k.held() // the key is new here: the Broker sends it
	switch {
	case k.leaving != nil: // back within the grace: nothing changed
		k.leaving.Stop()
		k.leaving = nil
		k.gen++
	case news:
		k.info = info // this node's, for the others to see
		p.held.Add(1)
	}
	k.sessions++
	sh := p.shared
	p.mu.Unlock()
	if news && sh != nil {
		sh.Changed()
	}
}

// joined counts s in, and tells Changed when its key arrives.
func (p *presence) joined(r *Room, s *session.Session) {
	p.enter(r, s)
	p.tell(r)
}

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
			p.flush(r) // taken by Shutdown meanwhile: no grace in a room nobody can rejoin
		}
		return
	}
	p.let(key, k)
	sh, batch := p.shared, p.turn()
	p.mu.Unlock()
	p.after(r, sh, batch)
}

// depart ends a key's grace: if no session of it came back, it leaves.
func (p *presence) depart(r *Room, key string, gen uint64) {
	p.mu.Lock()
	k, ok := p.keys[key]
	if !ok || k.gen != gen || k.sessions > 0 || k.leaving == nil {
		p.mu.Unlock()
		return
	}
	k.leaving = nil
	p.let(key, k)
	sh, batch := p.shared, p.turn()
	p.mu.Unlock()
	p.after(r, sh, batch)
}

// let takes k, no longer held here, out of this node's keys: it departs
// unless another node has it. p.mu is held.
func (p *presence) let(key string, k *presentKey) {
	p.held.Add(-1)
	if k.nodes > 0 {
		return
	}
	delete(p.keys, key)
	p.note(change{key, k.info, false})
}

// after tells Changed (batch, a turn's) and the Broker of a key let go,
// and removes the room if nothing holds it any more.
func (p *presence) after(r *Room, sh SharedPresence, batch []change) {
	p.tellFrom(r, batch)
	if sh != nil {
		sh.Changed()
	}
	if p.held.Load() == 0 && r.rt != nil {
		r.release()
	}
}

// flush ends every grace at once, when the room is removed: the keys in
// it depart, unless another node has them, and Changed is told.
func (p *presence) flush(r *Room) {
	p.mu.Lock()
	for key, k := range p.keys {
		if k.leaving != nil {
			k.leaving.Stop()
			k.leaving = nil
			k.gen++
			p.let(key, k)
		}
	}
	p.mu.Unlock()
	p.tell(r)
}

// note queues c for Changed. p.mu is held.
func (p *presence) note(c change) {
	if p.cfg.Changed != nil {
		p.queue = append(p.queue, c)
	}
}

// turn returns the queued changes for the caller to tell, unless another
// goroutine is telling them: that one tells these too, after its own, so
// that Changed hears the changes in order. p.mu is held.
func (p *presence) turn() []change {
	if p.telling || len(p.queue) == 0 {
		return nil
	}
	batch := p.queue
	p.queue, p.spare = p.spare[:0], nil
	p.telling = true
	return batch
}

// tell tells Changed the queued changes, if it is this goroutine's turn.
func (p *presence) tell(r *Room) {
	p.mu.Lock()
	batch := p.turn()
	p.mu.Unlock()
	p.tellFrom(r, batch)
}

// tellFrom tells Changed batch, a turn's, and what is queued meanwhile.
func (p *presence) tellFrom(r *Room, batch []change) {
	for batch != nil {
		batch = p.told(r, batch)
	}
}

// told tells Changed a batch, and returns the next one, or nil when the
// queue is empty: the turn ends, even if Changed panics.
func (p *presence) told(r *Room, batch []change) (next []change) {
	done := false
	defer func() {
		p.mu.Lock()
		clear(batch)
		p.spare, p.telling = batch[:0], false
		if done {
			next = p.turn()
		}
		p.mu.Unlock()
	}()
	for _, c := range batch {
		p.cfg.Changed(r, c.key, c.info, c.present)
	}
	done = true
	return nil
}

// share starts sharing the room's presence, if the Runtime has a
// PresenceBroker and it is not shared yet.
func (p *presence) share(r *Room) {
	if r.rt == nil {
		return
	}
	pb, ok := r.rt.broker.(PresenceBroker)
	if !ok {
		return
	}
	p.mu.Lock()
	done := p.shared != nil || p.stopped
	p.mu.Unlock()
	if done {
		return
	}
	p.shareMu.Lock()
	defer p.shareMu.Unlock()
	p.mu.Lock()
	if p.shared != nil || p.stopped {
		p.mu.Unlock()
		return
	}
	p.loading = true
	p.mu.Unlock()
	sh, err := pb.SharePresence(r.name, p.here, func(node string, keys map[string]any) { p.other(r, node, keys) })
	p.mu.Lock()
	p.loading = false
	gone := p.stopped
	if err == nil && !gone {
		p.shared = sh
	}
	p.mu.Unlock()
	if err == nil && gone { // the room went meanwhile
		sh.Stop(!p.shut.Load())
	}
}

// unshare stops sharing the room's presence, when it is removed; the keys
// of the other nodes are forgotten, untold.
func (p *presence) unshare() {
	p.mu.Lock()
	sh := p.shared
	p.shared, p.stopped = nil, true
	for key, k := range p.keys {
		k.nodes = 0
		if !k.held() {
			delete(p.keys, key)
		}
	}
	p.others = nil
	p.mu.Unlock()
	if sh != nil {
		sh.Stop(!p.shut.Load())
	}
}

// here yields this node's keys and their info: SharePresence's here.
func (p *presence) here(yield func(string, any) bool) {
	type kv struct {
		key  string
		info any
	}
	p.mu.Lock()
	list := make([]kv, 0, p.held.Load())
	for key, k := range p.keys {
		if k.held() {
			list = append(list, kv{key, k.info})
		}
	}
	p.mu.Unlock()
	for _, e := range list {
		if !yield(e.key, e.info) {
			return
		}
	}
}

// other takes the keys of another node, as the Broker tells them:
// SharePresence's others. Within SharePresence, the keys of the other
// nodes are the room's start when none is held here yet, and not
// arrivals; the changes are told later, by the arrival that shared the
// room (SharePresence may run under the room's pub, which Changed's
// signals take).
func (p *presence) other(r *Room, node string, keys map[string]any) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	was := p.others[node]
	loading := p.loading
	quiet := loading && p.held.Load() == 0
	for key, info := range keys {
		if _, ok := was[key]; ok {
			continue
		}
		k, ok := p.keys[key]
		if !ok {
			k = &presentKey{info: info}
			p.keys[key] = k
			if !quiet {
				p.note(change{key, info, true})
			}
		}
		k.nodes++
	}
	for key := range was {
		if _, ok := keys[key]; ok {
			continue
		}
		k := p.keys[key]
		if k == nil || k.nodes == 0 {
			continue
		}
		k.nodes--
		if k.nodes == 0 && !k.held() {
			delete(p.keys, key)
			if !quiet {
				p.note(change{key, k.info, false})
			}
		}
	}
	if len(keys) == 0 {
		delete(p.others, node)
	} else {
		if p.others == nil {
			p.others = make(map[string]map[string]any)
		}
		p.others[node] = keys
	}
	p.mu.Unlock()
	if !loading {
		p.tell(r)
	}
}

// Present yields the keys present in the room and their info, those in
// their grace period included, as of the call; nothing in a room without
// presence (Options.RoomPresence). With a PresenceBroker, the keys of
// every node, each once.
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
// their grace period included; with a PresenceBroker, on every node.
func (r *Room) PresentCount() int {
	if r.presence == nil {
		return 0
	}
	r.presence.mu.Lock()
	defer r.presence.mu.Unlock()
	return len(r.presence.keys)
}

// SignalLocal is Signal to this node's members only: a Broker does not
// carry it. It is for what every node sends its own members, such as
// presence events with a PresenceBroker, where each node is told of every
// change (see Presence.Changed): a Signal would reach each member once
// per node. Without a Broker it is Signal. Like Signal, it is ordered with
// the room's joins.
func (r *Room) SignalLocal(ctx context.Context, except *session.Session, e Encoder) (int, error) {
	if nv := e.Variants(); nv < 1 || nv > MaxVariants {
		return 0, ErrVariants
	}
	if r.ordered() {
		r.pub.Lock()
		defer r.pub.Unlock()
	}
	return r.fanLazy(ctx, except, e)
}
