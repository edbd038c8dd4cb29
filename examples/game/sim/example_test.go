package sim_test

import (
	"fmt"

	"github.com/shockwave-go/shockwave/examples/game/sim"
)

func Example() {
	w := sim.New(sim.Config{Seed: 1}) // 1280x720, 30 Hz, 12 items
	w.Join(1, "ada")
	w.Join(2, "bob")

	// Player 1 holds Right from now on; the input is acknowledged in the
	// next snapshots.
	w.Apply(1, sim.Input{Seq: 1, Keys: sim.Right})
	for range w.Config().TickRate { // one second
		w.Step()
	}

	var s sim.Snapshot
	w.Snapshot(&s)
	p := s.Players[0]
	fmt.Println("tick", s.Tick, "players", len(s.Players), "items", len(s.Items))
	fmt.Println("ack", p.Ack, "speed", p.VX*int32(w.Config().TickRate)/sim.Scale, "px/s")
	// Output:
	// tick 30 players 2 items 12
	// ack 1 speed 300 px/s
}
