package sim

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// px converts pixels to sub-units.
func px(n int32) int32 { return n * Scale }

// noItems is a configuration without items, so pickups stay out of the way.
var noItems = Config{Seed: 1, Items: -1}

// place joins a player (if needed) and overwrites its state with p.
func place(t testing.TB, w *World, p Player) {
	t.Helper()
	w.Join(p.ID, p.Name)
	i, ok := w.find(p.ID)
	if !ok {
		t.Fatalf("player %d missing after Join", p.ID)
	}
	p.Color = w.players[i].Color
	w.players[i] = p
}

func player(t testing.TB, w *World, id uint32) Player {
	t.Helper()
	p, ok := w.Player(id)
	if !ok {
		t.Fatalf("player %d missing", id)
	}
	return p
}

func speed2(p Player) int64 { return sq(int64(p.VX)) + sq(int64(p.VY)) }

func dist2(a, b Player) int64 { return sq(int64(a.X-b.X)) + sq(int64(a.Y-b.Y)) }

func checkInside(t testing.TB, w *World) {
	t.Helper()
	for _, p := range w.players {
		if p.X < w.minX || p.X > w.maxX || p.Y < w.minY || p.Y > w.maxY {
			t.Fatalf("tick %d: player %d at (%d,%d) outside [%d,%d]x[%d,%d]",
				w.tick, p.ID, p.X, p.Y, w.minX, w.maxX, w.minY, w.maxY)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{}, Config{Width: 1280, Height: 720, TickRate: 30, Items: 12}},
		{"kept", Config{Width: 800, Height: 600, TickRate: 60, Items: 3, Seed: 9},
			Config{Width: 800, Height: 600, TickRate: 60, Items: 3, Seed: 9}},
		{"negative", Config{Width: -1, Height: -1, TickRate: -1, Items: -1},
			Config{Width: 1280, Height: 720, TickRate: 30, Items: 0}},
		{"small", Config{Width: 1, Height: 2}, Config{Width: MinSize, Height: MinSize, TickRate: 30, Items: 12}},
		{"large", Config{Width: 1 << 30, Height: 1 << 20, TickRate: 1000, Items: 1 << 20},
			Config{Width: MaxSize, Height: MaxSize, TickRate: MaxTickRate, Items: MaxItems}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.WithDefaults(); got != tt.want {
				t.Errorf("WithDefaults() = %+v, want %+v", got, tt.want)
			}
			if got := New(tt.in).Config(); got != tt.want {
				t.Errorf("New().Config() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTuning(t *testing.T) {
	tests := []struct {
		rate int
		want Tuning
	}{
		{30, Tuning{Acceleration: 43, Friction: 21, MaxSpeed: 160, BumpSpeed: 107, WallStopSpeed: 32}},
		{60, Tuning{Acceleration: 11, Friction: 5, MaxSpeed: 80, BumpSpeed: 53, WallStopSpeed: 16}},
	}
	for _, tt := range tests {
		if got := (Config{TickRate: tt.rate}).Tuning(); got != tt.want {
			t.Errorf("Tuning at %d Hz = %+v, want %+v", tt.rate, got, tt.want)
		}
	}
	for rate := 1; rate <= MaxTickRate; rate++ {
		tu := Config{TickRate: rate}.Tuning()
		if tu.Acceleration <= tu.Friction || tu.Friction < 1 {
			t.Errorf("at %d Hz, acceleration %d does not beat friction %d", rate, tu.Acceleration, tu.Friction)
		}
	}
}

func TestMovementOneTick(t *testing.T) {
	tu := Config{}.Tuning()
	straight := tu.Acceleration - tu.Friction
	tests := []struct {
		name   string
		keys   Keys
		sx, sy int32 // expected signs of the velocity
	}{
		{"none", 0, 0, 0},
		{"up", Up, 0, -1},
		{"down", Down, 0, 1},
		{"left", Left, -1, 0},
		{"right", Right, 1, 0},
		{"up-left", Up | Left, -1, -1},
		{"up-right", Up | Right, 1, -1},
		{"down-left", Down | Left, -1, 1},
		{"down-right", Down | Right, 1, 1},
		{"up+down", Up | Down, 0, 0},
		{"left+right", Left | Right, 0, 0},
		{"all", AllKeys, 0, 0},
		{"up+down+right", Up | Down | Right, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(noItems)
			cx, cy := px(640), px(360)
			place(t, w, Player{ID: 1, X: cx, Y: cy})
			w.Apply(1, Input{Seq: 1, Keys: tt.keys})
			w.Step()
			p := player(t, w, 1)
			if sign(p.VX) != tt.sx || sign(p.VY) != tt.sy {
				t.Fatalf("velocity (%d,%d), want signs (%d,%d)", p.VX, p.VY, tt.sx, tt.sy)
			}
			if p.X != cx+p.VX || p.Y != cy+p.VY {
				t.Errorf("moved to (%d,%d), want (%d,%d)", p.X, p.Y, cx+p.VX, cy+p.VY)
			}
			switch {
			case tt.sx != 0 && tt.sy != 0:
				if abs(p.VX) != abs(p.VY) {
					t.Errorf("diagonal velocity (%d,%d) not balanced", p.VX, p.VY)
				}
				// Normalised: about as fast as a straight move, not √2 times.
				s := isqrt(uint64(speed2(p)))
				if d := s - int64(straight); d < -2 || d > 2 {
					t.Errorf("diagonal speed %d, want about %d", s, straight)
				}
			case tt.sx != 0 || tt.sy != 0:
				if got := abs(p.VX) + abs(p.VY); got != straight {
					t.Errorf("speed %d, want acceleration-friction = %d", got, straight)
				}
			}
		})
	}
}

func TestSpeedCap(t *testing.T) {
	for _, keys := range []Keys{Right, Down, Down | Right, Up | Left} {
		t.Run(fmt.Sprint(keys), func(t *testing.T) {
			w := New(Config{Width: 4000, Height: 4000, Items: -1})
			max := int64(w.Tuning().MaxSpeed)
			place(t, w, Player{ID: 1, X: px(2000), Y: px(2000)})
			w.Apply(1, Input{Seq: 1, Keys: keys})
			prev := int64(0)
			for range 60 {
				w.Step()
				s2 := speed2(player(t, w, 1))
				if s2 > max*max {
					t.Fatalf("tick %d: speed² %d above cap² %d", w.Tick(), s2, max*max)
				}
				if s2 < prev {
					t.Fatalf("tick %d: slowed down while accelerating", w.Tick())
				}
				prev = s2
			}
			if s := isqrt(uint64(prev)); s < max-2 {
				t.Errorf("top speed %d, want about %d", s, max)
			}
		})
	}
}

func TestFrictionToRest(t *testing.T) {
	for _, keys := range []Keys{Left, Up, Up | Right, Down | Left} {
		t.Run(fmt.Sprint(keys), func(t *testing.T) {
			w := New(Config{Width: 4000, Height: 4000, Items: -1})
			tu := w.Tuning()
			place(t, w, Player{ID: 1, X: px(2000), Y: px(2000)})
			w.Apply(1, Input{Seq: 1, Keys: keys})
			for range 30 {
				w.Step()
			}
			w.Apply(1, Input{Seq: 2})
			limit := int(tu.MaxSpeed/tu.Friction) + 1
			for i := 0; ; i++ {
				if i > limit {
					t.Fatalf("still moving after %d ticks: %+v", i, player(t, w, 1))
				}
				w.Step()
				if p := player(t, w, 1); p.VX == 0 && p.VY == 0 {
					break
				}
			}
			rest := player(t, w, 1)
			for range 10 {
				w.Step()
			}
			if p := player(t, w, 1); p != rest {
				t.Errorf("moved at rest: %+v -> %+v", rest, p)
			}
		})
	}
}

func TestWalls(t *testing.T) {
	w0 := New(noItems)
	tests := []struct {
		keys Keys
		x, y func(Player) bool
	}{
		{Left, func(p Player) bool { return p.X == w0.minX && p.VX == 0 }, nil},
		{Right, func(p Player) bool { return p.X == w0.maxX && p.VX == 0 }, nil},
		{Up, nil, func(p Player) bool { return p.Y == w0.minY && p.VY == 0 }},
		{Down, nil, func(p Player) bool { return p.Y == w0.maxY && p.VY == 0 }},
		{Up | Left, func(p Player) bool { return p.X == w0.minX }, func(p Player) bool { return p.Y == w0.minY }},
		{Down | Right, func(p Player) bool { return p.X == w0.maxX }, func(p Player) bool { return p.Y == w0.maxY }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.keys), func(t *testing.T) {
			w := New(noItems)
			place(t, w, Player{ID: 1, X: px(640), Y: px(360)})
			w.Apply(1, Input{Seq: 1, Keys: tt.keys})
			for range 300 {
				w.Step()
				checkInside(t, w)
			}
			p := player(t, w, 1)
			if tt.x != nil && !tt.x(p) {
				t.Errorf("x: %+v not pinned to the wall", p)
			}
			if tt.y != nil && !tt.y(p) {
				t.Errorf("y: %+v not pinned to the wall", p)
			}
		})
	}
}

func TestWallRebound(t *testing.T) {
	w0 := New(noItems)
	tu := w0.Tuning()
	tests := []struct {
		name string
		in   Player
		want func(Player) bool
	}{
		{"fast right", Player{ID: 1, X: w0.maxX - 10, Y: px(300), VX: tu.MaxSpeed},
			func(p Player) bool { return p.X == w0.maxX && p.VX == -(tu.MaxSpeed-tu.Friction)/2 }},
		{"fast up", Player{ID: 1, X: px(300), Y: w0.minY + 10, VY: -tu.MaxSpeed},
			func(p Player) bool { return p.Y == w0.minY && p.VY == (tu.MaxSpeed-tu.Friction)/2 }},
		{"slow left stops", Player{ID: 1, X: w0.minX + 1, Y: px(300), VX: -2 * tu.WallStopSpeed},
			func(p Player) bool { return p.X == w0.minX && p.VX == 0 }},
		{"slide along", Player{ID: 1, X: w0.minX + 1, Y: px(300), VX: -tu.MaxSpeed, VY: tu.MaxSpeed / 2},
			func(p Player) bool { return p.X == w0.minX && p.VX > 0 && p.VY > 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(noItems)
			place(t, w, tt.in)
			w.Step()
			if p := player(t, w, 1); !tt.want(p) {
				t.Errorf("after the hit: %+v", p)
			}
		})
	}
}

func TestCollisionHeadOn(t *testing.T) {
	w := New(noItems)
	tu := w.Tuning()
	cx, cy := px(640), px(360)
	place(t, w, Player{ID: 1, X: cx - px(80), Y: cy, VX: tu.MaxSpeed, Keys: Right})
	place(t, w, Player{ID: 2, X: cx + px(80), Y: cy, VX: -tu.MaxSpeed, Keys: Left})
	for range 20 {
		w.Step()
		a, b := player(t, w, 1), player(t, w, 2)
		if dist2(a, b) < sq(int64(px(2*PlayerRadius))) {
			t.Fatalf("tick %d: overlap after step: %+v %+v", w.Tick(), a, b)
		}
		if a.VX < 0 {
			if b.VX != -a.VX || a.VY != 0 || b.VY != 0 {
				t.Fatalf("velocities not exchanged: %+v %+v", a, b)
			}
			if a.X >= cx || b.X <= cx {
				t.Fatalf("players passed through each other: %+v %+v", a, b)
			}
			if a.Score != 0 || b.Score != 0 {
				t.Fatalf("scores changed: %+v %+v", a, b)
			}
			return
		}
	}
	t.Fatal("no collision")
}

func TestCollisionGlancing(t *testing.T) {
	// b moves left and hits a, which is a little lower: a is pushed left
	// and down, b keeps some of its velocity and turns upwards.
	w := New(noItems)
	tu := w.Tuning()
	place(t, w, Player{ID: 1, X: px(600), Y: px(320)})
	place(t, w, Player{ID: 2, X: px(630), Y: px(300), VX: -tu.MaxSpeed})
	w.Step()
	a, b := player(t, w, 1), player(t, w, 2)
	if !(a.VX < 0 && a.VY > 0 && b.VX < 0 && b.VY < 0) {
		t.Fatalf("glancing hit: a %+v b %+v", a, b)
	}
	if dist2(a, b) < sq(int64(px(2*PlayerRadius))) {
		t.Fatalf("overlap after step: %+v %+v", a, b)
	}
}

func TestCollisionSeparates(t *testing.T) {
	w0 := New(noItems)
	tests := []struct {
		name string
		a, b Player
	}{
		{"same point", Player{ID: 1, X: px(640), Y: px(360)}, Player{ID: 2, X: px(640), Y: px(360)}},
		{"1 px", Player{ID: 1, X: px(640), Y: px(360)}, Player{ID: 2, X: px(641), Y: px(360)}},
		{"1 sub-unit", Player{ID: 1, X: px(640), Y: px(360)}, Player{ID: 2, X: px(640), Y: px(360) + 1}},
		{"diagonal", Player{ID: 1, X: px(640), Y: px(360)}, Player{ID: 2, X: px(630), Y: px(350)}},
		{"almost touching", Player{ID: 1, X: px(640), Y: px(360)}, Player{ID: 2, X: px(640+2*PlayerRadius) - 1, Y: px(360)}},
		{"left wall same point", Player{ID: 1, X: w0.minX, Y: px(360)}, Player{ID: 2, X: w0.minX, Y: px(360)}},
		{"right wall same point", Player{ID: 1, X: w0.maxX, Y: px(360)}, Player{ID: 2, X: w0.maxX, Y: px(360)}},
		{"left wall", Player{ID: 1, X: w0.minX, Y: px(360)}, Player{ID: 2, X: w0.minX + px(5), Y: px(360)}},
		{"bottom wall", Player{ID: 1, X: px(500), Y: w0.maxY - px(3)}, Player{ID: 2, X: px(500), Y: w0.maxY}},
		{"corner", Player{ID: 1, X: w0.minX, Y: w0.minY}, Player{ID: 2, X: w0.minX + px(3), Y: w0.minY + px(2)}},
		{"moving into each other", Player{ID: 1, X: px(640), Y: px(360), VX: 160, VY: -40},
			Player{ID: 2, X: px(650), Y: px(350), VX: -160, VY: 80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(noItems)
			place(t, w, tt.a)
			place(t, w, tt.b)
			w.Step()
			checkInside(t, w)
			a, b := player(t, w, 1), player(t, w, 2)
			if d2 := dist2(a, b); d2 < sq(int64(px(2*PlayerRadius))) {
				t.Errorf("overlap after step: distance %d < %d: %+v %+v",
					isqrt(uint64(d2)), px(2*PlayerRadius), a, b)
			}
		})
	}
}

func TestBump(t *testing.T) {
	tu := Config{}.Tuning()
	tests := []struct {
		name           string
		speedA, speedB int32 // along x: a moves right, b moves left
		scoreA, scoreB int32
		wantA, wantB   int32
	}{
		{"b steals", 0, tu.MaxSpeed, 2, 0, 1, 1},
		{"a steals", tu.MaxSpeed, 0, 0, 3, 1, 2},
		{"faster steals", tu.MaxSpeed, tu.MaxSpeed / 2, 5, 5, 6, 4},
		{"b steals last point", 0, tu.MaxSpeed, 1, 7, 0, 8},
		{"victim at zero", 0, tu.MaxSpeed, 0, 4, 0, 4},
		{"slow", 0, tu.BumpSpeed/2 + tu.Friction, 2, 2, 2, 2},
		// Friction acts before the contact, so the closing speed is one
		// Friction below the speed set here.
		{"at threshold", 0, tu.BumpSpeed + tu.Friction, 2, 2, 2, 2},
		{"just above threshold", 0, tu.BumpSpeed + tu.Friction + 1, 2, 2, 1, 3},
		{"equal speeds", tu.MaxSpeed, tu.MaxSpeed, 3, 3, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(noItems)
			// Close enough to touch after this step's move.
			gap := px(2*PlayerRadius) + 8
			place(t, w, Player{ID: 1, X: px(600), Y: px(360), VX: tt.speedA, Score: tt.scoreA})
			place(t, w, Player{ID: 2, X: px(600) + gap, Y: px(360), VX: -tt.speedB, Score: tt.scoreB})
			w.Step()
			a, b := player(t, w, 1), player(t, w, 2)
			if a.VX > b.VX { // still approaching: they did not touch
				t.Fatalf("no collision: %+v %+v", a, b)
			}
			if a.Score != tt.wantA || b.Score != tt.wantB {
				t.Errorf("scores %d, %d; want %d, %d", a.Score, b.Score, tt.wantA, tt.wantB)
			}
		})
	}
}

func TestPickup(t *testing.T) {
	w := New(Config{Seed: 3, Items: 4})
	place(t, w, Player{ID: 1, X: px(400), Y: px(300)})
	for i := range w.items { // out of the way
		w.items[i].X, w.items[i].Y = px(1000), px(600)-px(int32(i)*40)
	}
	touch := (PlayerRadius + ItemRadius) * Scale
	tests := []struct {
		name     string
		dx, dy   int32
		wantGain int32
	}{
		{"on top", 0, 0, 1},
		{"touching right", touch, 0, 1},
		{"touching diagonal", touch * 7 / 10, touch * 7 / 10, 1},
		{"just apart", touch + 1, 0, 0},
		{"far", px(200), px(100), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := player(t, w, 1)
			w.items[0].X, w.items[0].Y = p.X+tt.dx, p.Y+tt.dy
			old := w.items[0]
			w.Step()
			q := player(t, w, 1)
			if got := q.Score - p.Score; got != tt.wantGain {
				t.Fatalf("score gained %d, want %d", got, tt.wantGain)
			}
			if tt.wantGain == 0 {
				if w.items[0] != old {
					t.Errorf("item moved without a pickup: %+v -> %+v", old, w.items[0])
				}
				return
			}
			it := w.items[0]
			if it.ID == old.ID {
				t.Errorf("respawned item kept id %d", it.ID)
			}
			if d2 := sq(int64(it.X-q.X)) + sq(int64(it.Y-q.Y)); d2 <= sq(int64(touch)) {
				t.Errorf("item respawned under the player: %+v", it)
			}
		})
	}
}

func TestPickupOrderAndCount(t *testing.T) {
	w := New(Config{Seed: 5, Items: 3})
	// Joined out of order: the lower id still gets the item both touch.
	place(t, w, Player{ID: 2, X: px(420), Y: px(300)})
	place(t, w, Player{ID: 1, X: px(380), Y: px(300)})
	w.items[0] = Item{ID: 100, X: px(400), Y: px(300)}
	w.items[1] = Item{ID: 101, X: px(380), Y: px(310)}
	w.items[2] = Item{ID: 102, X: px(900), Y: px(600)}
	w.Step()
	if a, b := player(t, w, 1), player(t, w, 2); a.Score != 2 || b.Score != 0 {
		t.Errorf("scores %d, %d; want 2, 0", a.Score, b.Score)
	}
	if w.items[2].ID != 102 {
		t.Errorf("untouched item changed: %+v", w.items[2])
	}
	if w.items[0].ID == w.items[1].ID {
		t.Errorf("respawned items share id %d", w.items[0].ID)
	}
}

func TestRespawnAwayFromPlayers(t *testing.T) {
	w := New(Config{Seed: 7, Items: 12})
	for id := uint32(1); id <= 16; id++ {
		w.Join(id, "")
	}
	gap := int64(px(2*PlayerRadius + ItemRadius))
	for n := range 500 {
		p := &w.players[n%len(w.players)]
		w.items[n%len(w.items)].X, w.items[n%len(w.items)].Y = p.X, p.Y
		before := slices.Clone(w.items)
		w.pickup()
		for i, it := range w.items {
			if it.ID == before[i].ID {
				continue // not respawned
			}
			for _, q := range w.players {
				if d2 := sq(int64(it.X-q.X)) + sq(int64(it.Y-q.Y)); d2 < gap*gap {
					t.Fatalf("pickup %d: item %+v respawned %d sub-units from player %d", n, it, isqrt(uint64(d2)), q.ID)
				}
			}
			if it.X < px(PlayerRadius) || it.X > px(w.cfg.Width-PlayerRadius) ||
				it.Y < px(PlayerRadius) || it.Y > px(w.cfg.Height-PlayerRadius) {
				t.Fatalf("item %+v too close to a wall", it)
			}
		}
	}
	var total int32
	for _, p := range w.players {
		total += p.Score
	}
	if total != 500 {
		t.Errorf("total score %d, want 500", total)
	}
}

func TestApply(t *testing.T) {
	w := New(noItems)
	w.Join(1, "a")
	tests := []struct {
		name     string
		id       uint32
		in       Input
		ok       bool
		wantAck  uint32
		wantKeys Keys
	}{
		{"unknown player", 2, Input{Seq: 1, Keys: Up}, false, 0, 0},
		{"seq 0 is stale", 1, Input{Seq: 0, Keys: Up}, false, 0, 0},
		{"first", 1, Input{Seq: 1, Keys: Up}, true, 1, Up},
		{"repeat", 1, Input{Seq: 1, Keys: Down}, false, 1, Up},
		{"gap", 1, Input{Seq: 5, Keys: Left | Down}, true, 5, Left | Down},
		{"older", 1, Input{Seq: 3, Keys: Right}, false, 5, Left | Down},
		{"extra bits dropped", 1, Input{Seq: 6, Keys: 0xff}, true, 6, AllKeys},
		{"release", 1, Input{Seq: 7}, true, 7, 0},
		{"max seq", 1, Input{Seq: 1<<32 - 1, Keys: Right}, true, 1<<32 - 1, Right},
	}
	for _, tt := range tests {
		if got := w.Apply(tt.id, tt.in); got != tt.ok {
			t.Errorf("%s: Apply = %v, want %v", tt.name, got, tt.ok)
		}
		p := player(t, w, 1)
		if p.Ack != tt.wantAck || p.Keys != tt.wantKeys {
			t.Errorf("%s: ack %d keys %d; want %d, %d", tt.name, p.Ack, p.Keys, tt.wantAck, tt.wantKeys)
		}
	}
}

func TestJoinLeave(t *testing.T) {
	w := New(Config{Seed: 11})
	if !w.Join(5, "five") || !w.Join(3, "three") || !w.Join(17, "seventeen") {
		t.Fatal("Join of new ids failed")
	}
	if w.Join(3, "again") {
		t.Error("Join of a present id succeeded")
	}
	if p := player(t, w, 3); p.Name != "three" || p.Color != 3 || p.Score != 0 || p.Ack != 0 {
		t.Errorf("player 3 = %+v", p)
	}
	if p := player(t, w, 17); p.Color != 1 {
		t.Errorf("player 17 colour %d, want 1", p.Color)
	}
	if w.Len() != 3 {
		t.Errorf("Len = %d, want 3", w.Len())
	}
	if w.Leave(4) {
		t.Error("Leave of an absent id succeeded")
	}
	if !w.Leave(5) || w.Len() != 2 {
		t.Errorf("Leave(5) failed or Len = %d", w.Len())
	}
	if _, ok := w.Player(5); ok {
		t.Error("player 5 still present")
	}
	if w.Apply(5, Input{Seq: 1}) {
		t.Error("Apply to a player that left succeeded")
	}
	if !w.Join(5, "back") {
		t.Error("rejoin failed")
	}
	if p := player(t, w, 5); p.Name != "back" || p.Ack != 0 {
		t.Errorf("rejoined player = %+v", p)
	}
	var s Snapshot
	w.Snapshot(&s)
	var ids []uint32
	for _, p := range s.Players {
		ids = append(ids, p.ID)
	}
	if want := []uint32{3, 5, 17}; !reflect.DeepEqual(ids, want) {
		t.Errorf("snapshot ids %v, want %v", ids, want)
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"ada", "ada"},
		{strings.Repeat("x", 24), strings.Repeat("x", 24)},
		{strings.Repeat("x", 30), strings.Repeat("x", 24)},
		{strings.Repeat("é", 30), strings.Repeat("é", 24)},
		{strings.Repeat("🎮", 25), strings.Repeat("🎮", 24)},
		{"a\xffb", "a\uFFFDb"},
	}
	for i, tt := range tests {
		w := New(noItems)
		w.Join(uint32(i+1), tt.in)
		p := player(t, w, uint32(i+1))
		if p.Name != tt.want {
			t.Errorf("Join(%q): name %q, want %q", tt.in, p.Name, tt.want)
		}
		if !utf8.ValidString(p.Name) || utf8.RuneCountInString(p.Name) > MaxNameLen {
			t.Errorf("Join(%q): bad name %q", tt.in, p.Name)
		}
	}
}

func TestSpawnPoints(t *testing.T) {
	for seed := range uint64(20) {
		w := New(Config{Seed: seed})
		for id := uint32(1); id <= 16; id++ {
			w.Join(id*7, "")
		}
		checkInside(t, w)
		for i, a := range w.players {
			for _, b := range w.players[i+1:] {
				if d2 := dist2(a, b); d2 < sq(int64(px(3*PlayerRadius))) {
					t.Fatalf("seed %d: players %d and %d spawned %d apart", seed, a.ID, b.ID, isqrt(uint64(d2)))
				}
			}
			if a.X < px(2*PlayerRadius) || a.X > px(w.cfg.Width-2*PlayerRadius) ||
				a.Y < px(2*PlayerRadius) || a.Y > px(w.cfg.Height-2*PlayerRadius) {
				t.Fatalf("seed %d: player %+v spawned against a wall", seed, a)
			}
		}
	}
	// A crowded small arena still places everyone inside.
	w := New(Config{Width: MinSize, Height: MinSize})
	for id := uint32(1); id <= 8; id++ {
		w.Join(id, "")
	}
	for range 30 {
		w.Step()
		checkInside(t, w)
	}
}

// randomCall makes one random call on w (Join, Leave, Apply or Step) drawn
// from r, reporting whether it was a Step.
func randomCall(w *World, r *rand.Rand) bool {
	id := uint32(r.IntN(20) + 1)
	switch n := r.IntN(100); {
	case n < 5:
		w.Join(id, fmt.Sprint("p", id))
	case n < 7:
		w.Leave(id)
	case n < 40:
		p, _ := w.Player(id)
		// Mostly the next sequence number, sometimes a stale one.
		w.Apply(id, Input{Seq: p.Ack + uint32(r.IntN(3)), Keys: Keys(r.IntN(256))})
	default:
		w.Step()
		return true
	}
	return false
}

// script drives w with random calls drawn from a generator seeded with
// seed until it has taken steps steps, checking invariants after each.
func script(t testing.TB, w *World, seed uint64, steps int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	for w.Tick() < uint64(steps) {
		if !randomCall(w, r) {
			continue
		}
		checkInside(t, w)
		for _, p := range w.players {
			if p.Score < 0 {
				t.Fatalf("negative score: %+v", p)
			}
		}
	}
}

func TestDeterminism(t *testing.T) {
	cfg := Config{Seed: 42}
	a, b := New(cfg), New(cfg)
	ra, rb := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	var sa, sb Snapshot
	for i := range 4000 {
		randomCall(a, ra)
		randomCall(b, rb)
		a.Snapshot(&sa)
		b.Snapshot(&sb)
		if !reflect.DeepEqual(sa, sb) {
			t.Fatalf("call %d: worlds differ:\n%+v\n%+v", i, sa, sb)
		}
	}
	if a.Tick() < 1000 || a.Len() == 0 {
		t.Fatalf("script too short: tick %d, %d players", a.Tick(), a.Len())
	}

	c := New(Config{Seed: 43})
	rc := rand.New(rand.NewPCG(1, 2))
	for range 4000 {
		randomCall(c, rc)
	}
	var sc Snapshot
	c.Snapshot(&sc)
	if reflect.DeepEqual(sa, sc) {
		t.Error("a different seed gave the same world")
	}
}

// TestGolden pins the outcome of a fixed script, so that a change of rules,
// tuning or random stream, or a platform that computes differently, shows
// up. Update the hash only when the rules are meant to change.
func TestGolden(t *testing.T) {
	w := New(Config{Seed: 2024})
	script(t, w, 7, 2000)
	var s Snapshot
	w.Snapshot(&s)
	h := fnv.New64a()
	fmt.Fprintf(h, "%+v", s)
	const want = 0x520f6d2787ed5a9e
	if got := h.Sum64(); got != want {
		t.Errorf("state hash %#x, want %#x (%d players, tick %d)", got, uint64(want), len(s.Players), s.Tick)
	}
}

func TestScoreConservation(t *testing.T) {
	// Without leaves, the scores add up to the number of pickups (bumps
	// move points, never make them); every pickup gives an item a new id.
	w := New(Config{Seed: 8, Width: 400, Height: 300})
	for id := uint32(1); id <= 16; id++ {
		w.Join(id, "")
	}
	r := rand.New(rand.NewPCG(8, 8))
	for range 3000 {
		if r.IntN(4) == 0 {
			id := uint32(r.IntN(16) + 1)
			p, _ := w.Player(id)
			w.Apply(id, Input{Seq: p.Ack + 1, Keys: Keys(r.IntN(16))})
		}
		w.Step()
		checkInside(t, w)
	}
	var total int32
	for _, p := range w.players {
		total += p.Score
	}
	pickups := int32(w.nextItem) - int32(w.cfg.Items)
	if total != pickups || pickups == 0 {
		t.Errorf("total score %d, pickups %d", total, pickups)
	}
}

func TestNoAllocations(t *testing.T) {
	w := New(Config{Seed: 1})
	for id := uint32(1); id <= 16; id++ {
		w.Join(id, "")
		w.Apply(id, Input{Seq: 1, Keys: Keys(id % 16)})
	}
	var s Snapshot
	w.Snapshot(&s)
	if n := testing.AllocsPerRun(100, func() { w.Snapshot(&s) }); n != 0 {
		t.Errorf("Snapshot allocates %v times", n)
	}
	if len(s.Players) != 16 || len(s.Items) != 12 {
		t.Errorf("snapshot has %d players, %d items", len(s.Players), len(s.Items))
	}
	if n := testing.AllocsPerRun(100, w.Step); n != 0 {
		t.Errorf("Step allocates %v times", n)
	}
	// A reused snapshot shrinks when players leave.
	w.Leave(1)
	w.Snapshot(&s)
	if len(s.Players) != 15 {
		t.Errorf("snapshot has %d players after a leave", len(s.Players))
	}
}

func TestIsqrt(t *testing.T) {
	check := func(n uint64) {
		r := uint64(isqrt(n))
		if r*r > n || (r+1)*(r+1) <= n {
			t.Fatalf("isqrt(%d) = %d", n, r)
		}
	}
	for n := range uint64(100000) {
		check(n)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 100000 {
		check(r.Uint64N(1 << 62))
	}
	check(1<<62 - 1)
	check(1 << 62)
}

func BenchmarkStep(b *testing.B) {
	w := New(Config{Seed: 1})
	for id := uint32(1); id <= 16; id++ {
		w.Join(id, "")
	}
	r := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%30 == 0 {
			for id := uint32(1); id <= 16; id++ {
				p, _ := w.Player(id)
				w.Apply(id, Input{Seq: p.Ack + 1, Keys: Keys(r.IntN(16))})
			}
		}
		w.Step()
	}
}

func sign(v int32) int32 {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

func abs(v int32) int32 { return max(v, -v) }
