package sim

import "math/bits"

// collisionPasses bounds the relaxation passes over overlapping pairs in
// one step.
const collisionPasses = 4

// Step advances the world by one tick: movement, walls, player collisions,
// item pickups, then Tick+1. It does not allocate.
func (w *World) Step() {
	for i := range w.players {
		w.move(&w.players[i])
	}
	w.collide()
	w.pickup()
	w.tick++
}

// move applies the held keys, friction and the speed cap to p's velocity,
// moves p, and keeps it inside the arena.
func (w *World) move(p *Player) {
	var ax, ay int32
	if p.Keys&Left != 0 {
		ax--
	}
	if p.Keys&Right != 0 {
		ax++
	}
	if p.Keys&Up != 0 {
		ay--
	}
	if p.Keys&Down != 0 {
		ay++
	}
	a := w.tune.Acceleration
	if ax != 0 && ay != 0 {
		a = a * 181 / 256 // ≈ 1/√2
	}
	vx := int64(p.VX + ax*a)
	vy := int64(p.VY + ay*a)

	// Friction and the cap both shorten the velocity vector, truncating
	// towards zero, so a released player always comes to rest.
	if vx != 0 || vy != 0 {
		s := isqrt(uint64(vx*vx + vy*vy))
		target := min(s-int64(w.tune.Friction), int64(w.tune.MaxSpeed))
		switch {
		case target <= 0:
			vx, vy = 0, 0
		case target < s:
			vx = vx * target / s
			vy = vy * target / s
		}
	}
	p.VX, p.VY = int32(vx), int32(vy)
	p.X += p.VX
	p.Y += p.VY
	w.wall(p)
}

// wall puts p back inside the arena, reversing and halving its velocity
// into the wall it crossed (or stopping it if the rebound is too slow).
func (w *World) wall(p *Player) {
	stop := w.tune.WallStopSpeed
	if p.X < w.minX {
		p.X = w.minX
		if p.VX < 0 {
			p.VX = rebound(p.VX, stop)
		}
	} else if p.X > w.maxX {
		p.X = w.maxX
		if p.VX > 0 {
			p.VX = rebound(p.VX, stop)
		}
	}
	if p.Y < w.minY {
		p.Y = w.minY
		if p.VY < 0 {
			p.VY = rebound(p.VY, stop)
		}
	} else if p.Y > w.maxY {
		p.Y = w.maxY
		if p.VY > 0 {
			p.VY = rebound(p.VY, stop)
		}
	}
}

func rebound(v, stop int32) int32 {
	v = -v / 2
	if v > -stop && v < stop {
		return 0
	}
	return v
}

// collide separates overlapping players, pair by pair in id order, for up
// to collisionPasses passes or until nothing overlaps.
func (w *World) collide() {
	for range collisionPasses {
		overlapped := false
		for i := range w.players {
			for j := i + 1; j < len(w.players); j++ {
				if w.resolve(&w.players[i], &w.players[j]) {
					overlapped = true
				}
			}
		}
		if !overlapped {
			return
		}
	}
}

// resolve separates a and b if they overlap and, if they are approaching,
// exchanges their velocities along the contact normal and handles a bump.
// It reports whether they overlapped.
func (w *World) resolve(a, b *Player) bool {
	const minDist = int64(2 * PlayerRadius * Scale)
	dx, dy := int64(b.X-a.X), int64(b.Y-a.Y)
	d2 := dx*dx + dy*dy
	if d2 >= minDist*minDist {
		return false
	}
	var dist int64
	if d2 == 0 {
		// Same centre: separate along x, lower id to the left.
		dx, dy, dist = 1, 0, 1
	} else {
		dist = isqrt(uint64(d2)) // < minDist since d2 < minDist²
	}

	// Push apart along the normal (dx, dy)/dist by the overlap plus two
	// sub-units, which covers the truncation of the two components, half
	// each; what a wall keeps one from taking goes to the other.
	push := minDist - dist + 2
	separate(&a.X, &b.X, int32(push*dx/dist), w.minX, w.maxX)
	separate(&a.Y, &b.Y, int32(push*dy/dist), w.minY, w.maxY)

	// Closing speed along the normal: negative when approaching.
	rel := (int64(b.VX-a.VX)*dx + int64(b.VY-a.VY)*dy) / dist
	if rel >= 0 {
		return true
	}
	if -rel > int64(w.tune.BumpSpeed) {
		sa := sq(int64(a.VX)) + sq(int64(a.VY))
		sb := sq(int64(b.VX)) + sq(int64(b.VY))
		switch {
		case sa > sb && b.Score > 0:
			a.Score++
			b.Score--
		case sb > sa && a.Score > 0:
			b.Score++
			a.Score--
		}
	}
	// Equal masses, elastic: a gains rel·n, b loses it.
	ix, iy := int32(rel*dx/dist), int32(rel*dy/dist)
	a.VX += ix
	a.VY += iy
	b.VX -= ix
	b.VY -= iy
	return true
}

// separate moves the coordinates *a and *b apart by d in total (b - a
// grows by d), half each, within [lo, hi]; what a bound keeps one from
// moving, the other moves instead, as far as the other bound allows.
func separate(a, b *int32, d, lo, hi int32) {
	want := *b - *a + d
	na := clamp(*a-d/2, lo, hi)
	nb := clamp(na+want, lo, hi)
	if nb-na != want {
		na = clamp(nb-want, lo, hi)
	}
	*a, *b = na, nb
}

func clamp(v, lo, hi int32) int32 {
	return max(lo, min(v, hi))
}

// pickup scores items touched by players, in id order, and respawns them.
func (w *World) pickup() {
	const reach = int64((PlayerRadius + ItemRadius) * Scale)
	for i := range w.players {
		p := &w.players[i]
		for j := range w.items {
			it := &w.items[j]
			if sq(int64(it.X-p.X))+sq(int64(it.Y-p.Y)) <= reach*reach {
				p.Score++
				w.spawnItem(j)
			}
		}
	}
}

// isqrt returns ⌊√n⌋.
func isqrt(n uint64) int64 {
	if n < 2 {
		return int64(n)
	}
	// Newton's method from a power of two at or above √n decreases
	// monotonically to ⌊√n⌋.
	x := uint64(1) << ((bits.Len64(n) + 1) / 2)
	for {
		y := (x + n/x) / 2
		if y >= x {
			return int64(x)
		}
		x = y
	}
}
