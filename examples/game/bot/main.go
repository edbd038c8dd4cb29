// Command bot plays examples/game with many bots and prints what players
// would feel: input-to-snapshot latency, the jitter of the snapshots'
// arrival, and the snapshots missed; with the server's CPU and memory over
// the run when it serves /stats.
//
//	go run ./examples/game -addr 127.0.0.1:8081 &
//	go run ./examples/game/bot -url ws://127.0.0.1:8081/ws -n 1000 -dur 30s
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/shockwave-go/shockwave/examples/game/gamebot"
)

func main() {
	var cfg gamebot.Config
	flag.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8081/ws", "the game's WebSocket URL")
	flag.IntVar(&cfg.Bots, "n", 100, "bots")
	flag.DurationVar(&cfg.Duration, "dur", 30*time.Second, "how long they play")
	flag.Float64Var(&cfg.InputRate, "rate", 10, "inputs a second per bot")
	flag.DurationVar(&cfg.Ramp, "ramp", 0, "how long the bots take to connect (default 1ms a bot, at most 5s)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := gamebot.Run(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	report(rep)
}

func report(rep *gamebot.Report) {
	failed := 0
	var firstErr error
	for _, b := range rep.Bots {
		if b.Err != nil {
			failed++
			if firstErr == nil {
				firstErr = b.Err
			}
		}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
	fmt.Printf("bots            %d joined of %d, %d stopped early\n", rep.Connected, len(rep.Bots), failed)
	if firstErr != nil {
		fmt.Printf("  first error   %v\n", firstErr)
	}
	fmt.Printf("run             %.1f s, the bots used %.0f %% of a core\n", rep.Duration.Seconds(), 100*rep.CPUSeconds/rep.Duration.Seconds())
	fmt.Printf("snapshots       %d received, %d missed, %d out of order\n", rep.Snapshots, rep.Missed, rep.OutOfOrder)
	fmt.Printf("input->snapshot p50 %s  p99 %s  max %s  (%d inputs)\n",
		ms(rep.Latency.P50), ms(rep.Latency.P99), ms(rep.Latency.Max), rep.Latency.N)
	fmt.Printf("tick jitter     p50 %s  p99 %s  max %s  (%d intervals)\n",
		ms(rep.Jitter.P50), ms(rep.Jitter.P99), ms(rep.Jitter.Max), rep.Jitter.N)
	a, b := rep.ServerBefore, rep.ServerAfter
	if a == nil || b == nil {
		fmt.Println("server          no /stats")
		return
	}
	secs := rep.Duration.Seconds()
	cpu := b.CPUSeconds - a.CPUSeconds
	deliveries := b.Deliveries - a.Deliveries
	fmt.Printf("server          %d matches, %d players at the end\n", b.Matches, b.Players)
	fmt.Printf("server CPU      %.0f %% of a core, %.2f µs per snapshot delivered (%d delivered, %.0f/s)\n",
		100*cpu/secs, 1e6*cpu/float64(max(deliveries, 1)), deliveries, float64(deliveries)/secs)
	fmt.Printf("server memory   %.1f MiB from the OS, %.1f MiB live heap\n", float64(b.SysBytes)/(1<<20), float64(b.HeapBytes)/(1<<20))
	fmt.Printf("server ticks    mean %.0f µs, max %.0f µs of work\n", b.TickMeanUs, b.TickMaxUs)
}
