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
// the standard OpenTelemetry variables say so (see the otelsetup package
// and docs/observability.md); with OTEL_METRICS_EXPORTER=prometheus it
// serves them at GET /metrics, as the chat does.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/shockwave-go/shockwave/examples/game/gameserver"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
	"github.com/shockwave-go/shockwave/examples/otelsetup"
)

func main() {
	addr := flag.String("addr", ":8081", "address to listen on")
	size := flag.Int("match-size", 16, "most players in a match")
	tick := flag.Int("tick", 30, "ticks a second")
	rate := flag.Float64("input-rate", 60, "inputs a second a player may send")
	flag.Parse()

	// Before gameserver.New, whose runtime looks at the global providers
	// once.
	tel, err := otelsetup.Init(context.Background(), nil)
	if err != nil {
		log.Fatalf("game: telemetry: %v", err)
	}

	game, err := gameserver.New(gameserver.Config{MatchSize: *size, TickRate: *tick, InputRate: *rate})
	if err != nil {
		log.Fatal(err)
	}
	srv := serve.NewServer(*addr, serve.WithMetrics(game, tel.MetricsHandler()))

	log.Printf("game: open http://%s in a browser", serve.BrowseAddr(*addr))
	if tel.MetricsHandler() != nil {
		log.Printf("game: metrics for Prometheus at http://%s/metrics", serve.BrowseAddr(*addr))
	}
	if err := serve.Run(srv, game.Shutdown, tel.Shutdown); err != nil {
		log.Print(err)
	}
}
