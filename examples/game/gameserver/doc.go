// Package gameserver is the server of examples/game: a small arena game,
// authoritative and real-time, over Shockwave's runtime and event envelope
// in MessagePack.
//
// How it is built:
//   - a match is a runtime.Room of up to Config.MatchSize players and one
//     goroutine that owns the match's sim.World: every tick (Config.TickRate)
//     it applies the joins, leaves and inputs received since the last tick,
//     steps the world and publishes the snapshot — encoded once, into one
//     shared frame that every member's mailbox gets a reference to
//     (match.go);
//   - the session callbacks (reader goroutines) never touch a world: they
//     hand their player's events to the match in a short locked queue, and
//     keep their own state (player in server.go, with its token bucket) in
//     session.State, lock-free;
//   - a joiner is welcomed with the full state of the tick before its first
//     snapshot, so that it misses nothing; snapshots go to a member whose
//     mailbox is full by dropping its oldest — a game needs the newest
//     state, not every one — and a client that stops reading is cut off by
//     the write timeout;
//   - inputs beyond Config.InputRate are dropped, and a client that keeps
//     sending more than twice as many is closed with 1008.
//
// The wire protocol: docs/game.md.
package gameserver
