// Command game is a small real-time arena game with its web page: players
// steer round movers with the arrow keys or WASD, collect items and bump
// each other to steal points. The server is authoritative: it simulates
// every match at a fixed tick and sends each tick's snapshot to the match
// in MessagePack. Everything is in memory; there is nothing else to start.
//
//	go run ./examples/game
//
// then open http://localhost:8081 in a few browser windows, or let bots
// play with you:
//
//	go run ./examples/game/bot -url ws://127.0.0.1:8081/ws -n 50 -dur 1m
//
// The server is the gameserver package beside this file; this command only
// reads flags, listens and shuts down. It exports traces and metrics when
// the standard OpenTelemetry variables say so (see docs/observability.md).
package main

import (
	"flag"
	"log"

	"github.com/shockwave-go/shockwave/examples/game/gameserver"
	"github.com/shockwave-go/shockwave/examples/internal/otelsetup"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
)

func main() {
	addr := flag.String("addr", ":8081", "address to listen on")
	size := flag.Int("match-size", 16, "most players in a match")
	tick := flag.Int("tick", 30, "ticks a second")
	rate := flag.Float64("input-rate", 60, "inputs a second a player may send")
	flag.Parse()

	// Before gameserver.New, whose runtime looks at the global providers
	// once.
	defer otelsetup.MustInit("game")()

	game, err := gameserver.New(gameserver.Config{MatchSize: *size, TickRate: *tick, InputRate: *rate})
	if err != nil {
		log.Fatal(err)
	}
	srv := serve.NewServer(*addr, game)

	log.Printf("game: open http://%s in a browser", serve.BrowseAddr(*addr))
	if err := serve.Run(srv, game.Shutdown); err != nil {
		log.Print(err)
	}
}
