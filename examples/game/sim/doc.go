// Package sim is the deterministic simulation of the arena game in
// examples/game: top-down round movers in a walled arena who collect items
// and bump each other to steal points.
//
// # Units
//
// Everything the simulation stores is an integer. Positions are in
// sub-units, [Scale] of them to a pixel, measured from the top-left corner
// of the arena (x grows to the right, y downwards); velocities are in
// sub-units per tick. The arena size ([Config.Width], [Config.Height]) and
// the radii ([PlayerRadius], [ItemRadius]) are in pixels. The speeds and
// accelerations of the rules ([MaxSpeed], [Acceleration], [Friction],
// [BumpSpeed], [WallStopSpeed]) are given per second and turned into
// per-tick values once, from [Config.TickRate]; [Config.Tuning] reports the
// results.
//
// # Rules
//
// [World.Step] advances the world by one tick:
//
//  1. Each player, in id order, accelerates in the direction of its held
//     [Keys] (opposite keys cancel, diagonals are scaled by 181/256 ≈ 1/√2),
//     loses [Friction] of speed, is capped at [MaxSpeed], and moves. A player
//     that leaves the arena is put back against the wall; its velocity into
//     the wall is reversed and halved, or zeroed when the rebound would be
//     slower than [WallStopSpeed].
//  2. Overlapping players (circles of [PlayerRadius]) are pushed apart along
//     the line between their centres, each by half the overlap (all of it for
//     the one not pinned against a wall). When they were approaching, they
//     exchange their velocity components along that line, like equal masses
//     in an elastic collision; if the closing speed was above [BumpSpeed], the
//     faster of the two steals one point from the other, if it has any.
//  3. Each player, in id order, that touches an item scores one point; the
//     item respawns, with a new id, at a random point away from the players
//     and the other items.
//
// Join places a new player at a random free point. Random choices come from
// a PCG generator seeded with [Config.Seed], and there are no floats, maps
// or goroutines involved, so two worlds given the same seed and the same
// sequence of Join, Leave, Apply and Step calls are identical on every
// platform. A World is not safe for concurrent use.
package sim
