package gameserver

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/examples/game/sim"
	"github.com/shockwave-go/shockwave/session"
)

// A match is one world, its room and the goroutine that steps it.
type match struct {
	id    uint32
	srv   *Server
	room  string
	world *sim.World
	stop  chan struct{} // closed by Shutdown
	seats int           // players seated, guarded by srv.mu

	mu  sync.Mutex // guards ops
	ops []op       // since the last tick

	// Owned by run.
	members map[uint32]*session.Session
	snap    sim.Snapshot
	work    []op // the ops of this tick; swapped with ops

	last atomic.Pointer[sim.Snapshot] // a copy of the latest, for Matches
}

// op is something a session asks of its match.
type op struct {
	kind opKind
	id   uint32
	name string           // opJoin
	in   sim.Input        // opInput
	s    *session.Session // opJoin, opLeave
}

type opKind uint8

const (
	opJoin opKind = iota
	opLeave
	opInput
)

func newMatch(srv *Server, id uint32) *match {
	wc := srv.cfg.World
	if wc.Seed != 0 {
		wc.Seed += uint64(id)
	} else {
		wc.Seed = uint64(time.Now().UnixNano())
	}
	return &match{
		id:      id,
		srv:     srv,
		room:    fmt.Sprintf("match-%d", id),
		world:   sim.New(wc),
		stop:    make(chan struct{}),
		members: make(map[uint32]*session.Session),
	}
}

// push queues o for the next tick.
func (m *match) push(o op) {
	m.mu.Lock()
	m.ops = append(m.ops, o)
	m.mu.Unlock()
}

// run ticks until the match has nobody left, or Shutdown.
func (m *match) run() {
	t := time.NewTicker(m.srv.period)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.stop:
			return
		}
		if !m.tick() && m.srv.retire(m) {
			return
		}
	}
}

// tick applies what came since the last tick, steps the world and
// publishes its snapshot. It reports whether the match has players.
func (m *match) tick() bool {
	start := time.Now()
	m.mu.Lock()
	m.work, m.ops = m.ops, m.work[:0]
	m.mu.Unlock()
	var joined []op
	for _, o := range m.work {
		switch o.kind {
		case opJoin:
			if m.world.Join(o.id, o.name) {
				m.members[o.id] = o.s
				joined = append(joined, o)
			}
		case opLeave:
			m.world.Leave(o.id)
			delete(m.members, o.id)
			m.srv.rt.Leave(m.room, o.s)
		case opInput:
			m.world.Apply(o.id, o.in)
		}
	}
	clear(m.work) // drop the sessions

	// The joiners get the state before this tick's step in full, then
	// every snapshot from this tick's on.
	if len(joined) > 0 {
		m.world.Snapshot(&m.snap)
		for _, o := range joined {
			m.welcome(o)
		}
	}
	m.world.Step()
	m.world.Snapshot(&m.snap)
	if room, ok := m.srv.rt.Room(m.room); ok {
		if n, err := m.srv.r.Publish(room, "snap", &m.snap); err != nil {
			m.srv.cfg.Logger.Error("game: snapshot", "match", m.id, "err", err)
		} else {
			m.srv.stats.deliveries.Add(uint64(n))
		}
	}
	m.last.Store(&sim.Snapshot{
		Tick:    m.snap.Tick,
		Players: slices.Clone(m.snap.Players),
		Items:   slices.Clone(m.snap.Items),
	})
	m.srv.stats.tick(time.Since(start))
	return m.world.Len() > 0
}

// welcome is the payload of "welcome".
type welcome struct {
	ID           uint32        `msgpack:"id"`
	Match        uint32        `msgpack:"m"`
	TickRate     int           `msgpack:"tr"`
	Width        int32         `msgpack:"w"`
	Height       int32         `msgpack:"h"`
	Scale        int32         `msgpack:"sc"`
	PlayerRadius int32         `msgpack:"pr"`
	ItemRadius   int32         `msgpack:"ir"`
	State        *sim.Snapshot `msgpack:"s"`
}

// welcome sends a joiner the match's settings and its state, then makes it
// a member of the room: its mailbox has the welcome before any snapshot.
func (m *match) welcome(o op) {
	cfg := m.world.Config()
	err := m.srv.r.Emit(o.s, "welcome", &welcome{
		ID: o.id, Match: m.id, TickRate: cfg.TickRate,
		Width: cfg.Width, Height: cfg.Height, Scale: sim.Scale,
		PlayerRadius: sim.PlayerRadius, ItemRadius: sim.ItemRadius,
		State: &m.snap,
	})
	if err == nil {
		m.srv.rt.Join(m.room, o.s)
	}
	// Otherwise the session has ended: its leave is on its way.
}
