package chatserver

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shockwave-go/shockwave/session"
)

// member is a client in a room: its session and the nickname it holds
// there.
type member struct {
	nick string
	s    *session.Session
}

// room is the chat state of one room: its members by nickname and its last
// messages. The runtime's room of the same name does the delivering; this
// one knows who is who.
//
// The mutex orders everything that happens in the room, and every event
// to the room is published under it. A join enters the runtime room, takes
// the member list and history and sends them to the joiner in one step; a
// message is numbered, kept and published in one step. So a client that
// joins sees every message exactly once: in the history, or after it as an
// event.
type room struct {
	name string

	mu      sync.Mutex
	members map[string]*member // by nickname
	history ring[Message]
	lastID  uint64    // of the last message
	active  time.Time // of the last join, leave or message
	gone    bool      // evicted from the registry: look the room up again
}

// nicks returns the members' nicknames, sorted. r.mu is held.
func (r *room) nicks() []string {
	out := make([]string, 0, len(r.members))
	for nick := range r.members {
		out = append(out, nick)
	}
	slices.Sort(out)
	return out
}

// registry holds the rooms by name. Rooms are made by the first join and
// kept, with their history, after their last member leaves; when there are
// max of them, a new room evicts the empty room idle for longest.
type registry struct {
	fixed   []string // always listed, never evicted
	max     int
	history int // messages kept per room

	mu    sync.Mutex // taken before a room's mutex, never after
	rooms map[string]*room
}

func newRegistry(fixed []string, max, history int) *registry {
	return &registry{fixed: fixed, max: max, history: history, rooms: make(map[string]*room)}
}

// lookup returns the room called name, or nil.
func (g *registry) lookup(name string) *room {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rooms[name]
}

// room returns the room called name, making it if need be. It fails with
// too_many_rooms when the registry is full of rooms that have members.
func (g *registry) room(name string) (*room, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r, ok := g.rooms[name]; ok {
		return r, nil
	}
	if len(g.rooms) >= g.max && !g.evict() {
		return nil, chatError(CodeTooManyRooms, "the server has %d rooms, all in use; join one of them", g.max)
	}
	r := &room{name: name, members: make(map[string]*member), history: newRing[Message](g.history), active: time.Now()}
	g.rooms[name] = r
	return r, nil
}

// evict removes the empty room that has been idle for longest, other than
// the fixed ones, and reports whether there was one. g.mu is held.
func (g *registry) evict() bool {
	var oldest *room
	for name, r := range g.rooms {
		if slices.Contains(g.fixed, name) {
			continue
		}
		r.mu.Lock()
		if len(r.members) == 0 && (oldest == nil || r.active.Before(oldest.active)) {
			oldest = r
		}
		r.mu.Unlock()
	}
	if oldest == nil {
		return false
	}
	oldest.mu.Lock()
	defer oldest.mu.Unlock()
	if len(oldest.members) > 0 {
		return false // joined meanwhile; the next new room will try again
	}
	oldest.gone = true
	delete(g.rooms, oldest.name)
	return true
}

// list returns the fixed rooms and the rooms with members, by name.
func (g *registry) list() []RoomInfo {
	g.mu.Lock()
	rooms := make([]*room, 0, len(g.rooms))
	for _, r := range g.rooms {
		rooms = append(rooms, r)
	}
	g.mu.Unlock()

	out := make([]RoomInfo, 0, len(rooms)+len(g.fixed))
	for _, r := range rooms {
		r.mu.Lock()
		n := len(r.members)
		r.mu.Unlock()
		if n > 0 || slices.Contains(g.fixed, r.name) {
			out = append(out, RoomInfo{Name: r.name, Members: n})
		}
	}
	for _, name := range g.fixed {
		if !slices.ContainsFunc(out, func(ri RoomInfo) bool { return ri.Name == name }) {
			out = append(out, RoomInfo{Name: name})
		}
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
