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
// reads flags, listens and shuts down.
//
// Snapshots go out compressed with permessage-deflate (RFC 7692) to the
// clients that offer it, as every browser does; -deflate=false sends them
// as they are. A full match's snapshot is about 880 bytes of MessagePack,
// 610 compressed (31 % less): a player receives 18 KB a second instead of
// 26 at 30 ticks, and a match of 16 sends 130 KB a second less. The server
// compresses a snapshot once for the whole match
// (wire.CompressionNoContextTakeover), in about 7 µs; and since a browser
// compresses every message once deflate is agreed, it inflates each input
// (29 bytes for 23) in about 2.5 µs. At the page's 4 to 8 inputs a second,
// that is about 5 % more CPU than delivering the snapshots costs (19 µs
// each, docs/game.md), for a third less to send. A match of fewer than 8
// players has snapshots under the runtime's 512-byte threshold, sent as
// they are. The bots offer no deflate, so docs/game.md's figures are
// without it. TestSnapshotDeflate and BenchmarkInputInflate measure these
// figures:
//
//	go test -run TestSnapshotDeflate -bench InputInflate -v ./examples/game/gameserver
//
// It exports traces and metrics when the standard OpenTelemetry variables
// say so (see the otelsetup package and docs/observability.md); with
// OTEL_METRICS_EXPORTER=prometheus it serves them at GET /metrics, as the
// chat does.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/shockwave-go/shockwave/examples/game/gameserver"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
	"github.com/shockwave-go/shockwave/examples/otelsetup"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

func main() {
	addr := flag.String("addr", ":8081", "address to listen on")
	size := flag.Int("match-size", 16, "most players in a match")
	tick := flag.Int("tick", 30, "ticks a second")
	rate := flag.Float64("input-rate", 60, "inputs a second a player may send")
	deflate := flag.Bool("deflate", true, "compress snapshots of 512 bytes or more (permessage-deflate) for the clients that offer it, as browsers do")
	flag.Parse()

	var opts []runtime.Option
	if *deflate {
		// Each snapshot compressed on its own, once for the whole match:
		// about a third off the snapshots of a full match, for about 5 %
		// more CPU (see the package's doc).
		opts = append(opts, runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold))
	}

	// Before gameserver.New, whose runtime looks at the global providers
	// once.
	tel, err := otelsetup.Init(context.Background(), nil)
	if err != nil {
		log.Fatalf("game: telemetry: %v", err)
	}

	game, err := gameserver.New(gameserver.Config{MatchSize: *size, TickRate: *tick, InputRate: *rate, Runtime: opts})
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
