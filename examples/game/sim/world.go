package sim

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
)

// spawnTries is the number of random points Join and item respawns try
// before taking the one farthest from everything.
const spawnTries = 32

// World is a deterministic game world. The zero value is not usable; call
// [New]. A World is not safe for concurrent use.
type World struct {
	cfg  Config
	tune Tuning
	rng  rand.PCG
	tick uint64

	players  []Player // sorted by id
	items    []Item
	nextItem uint32

	// Bounds of player centres and of spawn points, in sub-units.
	minX, minY, maxX, maxY int32
}

// New returns a world for cfg (after [Config.WithDefaults]) at tick 0, with
// its items placed and no players.
func New(cfg Config) *World {
	cfg = cfg.WithDefaults()
	w := &World{cfg: cfg, tune: cfg.Tuning()}
	w.rng.Seed(cfg.Seed, 0x5348_4f43_4b57_4156) // "SHOCKWAV"
	r := PlayerRadius * Scale
	w.minX, w.minY = r, r
	w.maxX, w.maxY = cfg.Width*Scale-r, cfg.Height*Scale-r
	w.items = make([]Item, cfg.Items)
	for i := range w.items {
		w.spawnItem(i)
	}
	return w
}

// Config returns the configuration in effect, defaults applied.
func (w *World) Config() Config { return w.cfg }

// Tuning returns the per-tick values of the rules, as [Config.Tuning].
func (w *World) Tuning() Tuning { return w.tune }

// Tick returns the number of steps taken.
func (w *World) Tick() uint64 { return w.tick }

// Len returns the number of players.
func (w *World) Len() int { return len(w.players) }

func (w *World) find(id uint32) (int, bool) {
	return slices.BinarySearchFunc(w.players, id, func(p Player, id uint32) int {
		switch {
		case p.ID < id:
			return -1
		case p.ID > id:
			return 1
		}
		return 0
	})
}

// Join adds a player with the given id and name at a random point away from
// the other players, the items and the walls. The name is made valid UTF-8 and cut to
// [MaxNameLen] runes; the colour is id%16. It reports false, changing
// nothing, if the id is already present.
func (w *World) Join(id uint32, name string) bool {
	i, ok := w.find(id)
	if ok {
		return false
	}
	x, y := w.spawnPoint(3*PlayerRadius*Scale, (PlayerRadius+ItemRadius)*Scale+1, -1, 2*PlayerRadius*Scale)
	w.players = slices.Insert(w.players, i, Player{
		ID:    id,
		Name:  cutName(name),
		X:     x,
		Y:     y,
		Color: uint8(id % 16),
	})
	return true
}

// Leave removes a player, reporting false if it is not present.
func (w *World) Leave(id uint32) bool {
	i, ok := w.find(id)
	if !ok {
		return false
	}
	w.players = slices.Delete(w.players, i, i+1)
	return true
}

// Apply makes in.Keys (without bits outside [AllKeys]) the keys held by the
// player and sets its Ack to in.Seq. It reports false, changing nothing, if
// the player is unknown or the input is stale (in.Seq <= Ack).
func (w *World) Apply(id uint32, in Input) bool {
	i, ok := w.find(id)
	if !ok {
		return false
	}
	p := &w.players[i]
	if in.Seq <= p.Ack {
		return false
	}
	p.Ack = in.Seq
	p.Keys = in.Keys & AllKeys
	return true
}

// Player returns the state of a player and whether it is present.
func (w *World) Player(id uint32) (Player, bool) {
	i, ok := w.find(id)
	if !ok {
		return Player{}, false
	}
	return w.players[i], true
}

// Snapshot fills dst with the current state: the tick, the players sorted
// by id and the items. It reuses dst's slices and allocates only when they
// are too short.
func (w *World) Snapshot(dst *Snapshot) {
	dst.Tick = w.tick
	dst.Players = append(dst.Players[:0], w.players...)
	dst.Items = append(dst.Items[:0], w.items...)
}

func cutName(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	n := 0
	for i := range s {
		if n == MaxNameLen {
			return s[:i]
		}
		n++
	}
	return s
}

// spawnItem places item slot i at a new random point with a new id.
func (w *World) spawnItem(i int) {
	w.nextItem++
	x, y := w.spawnPoint((PlayerRadius+ItemRadius+PlayerRadius)*Scale, 4*ItemRadius*Scale, i, PlayerRadius*Scale)
	w.items[i] = Item{ID: w.nextItem, X: x, Y: y}
}

// spawnPoint returns a random point inside the arena, margin sub-units
// away from the walls, at least playerGap from every player centre and
// itemGap from every item centre other than slot skipItem (negative: none).
// If none of spawnTries points qualifies, it returns the one whose nearest
// neighbour (relative to the required gap) is farthest.
func (w *World) spawnPoint(playerGap, itemGap int32, skipItem int, margin int32) (int32, int32) {
	lo := PlayerRadius * Scale
	if margin > lo {
		lo = margin
	}
	maxX, maxY := w.cfg.Width*Scale-lo, w.cfg.Height*Scale-lo
	pg2, ig2 := sq(int64(playerGap)), sq(int64(itemGap))
	var bx, by int32
	var best int64 = -1 << 62
	for range spawnTries {
		x := w.between(lo, maxX)
		y := w.between(lo, maxY)
		// score is the smallest d² - gap², over all neighbours: >= 0
		// means the point is free.
		score := int64(1) << 62
		for j := range w.players {
			p := &w.players[j]
			score = min(score, sq(int64(p.X-x))+sq(int64(p.Y-y))-pg2)
		}
		for j := range w.items {
			if j == skipItem {
				continue
			}
			it := &w.items[j]
			if it.ID == 0 { // not placed yet
				continue
			}
			score = min(score, sq(int64(it.X-x))+sq(int64(it.Y-y))-ig2)
		}
		if score > best {
			best, bx, by = score, x, y
		}
		if score >= 0 {
			break
		}
	}
	return bx, by
}

// between returns a random value in [lo, hi] (lo when hi < lo).
func (w *World) between(lo, hi int32) int32 {
	if hi <= lo {
		return lo
	}
	n := uint64(hi-lo) + 1
	v, _ := bits.Mul64(w.rng.Uint64(), n)
	return lo + int32(v)
}

func sq(v int64) int64 { return v * v }
