package gameserver_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/examples/game/gamebot"
	"github.com/shockwave-go/shockwave/examples/game/gameserver"
)

// start serves a game for the test.
func start(t *testing.T, cfg gameserver.Config) (*gameserver.Server, string) {
	t.Helper()
	game, err := gameserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(game)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := game.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return game, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
}

// TestBots plays 50 bots for a bounded time: every bot is welcomed, then
// receives every tick's snapshot of its match, in order and without a gap
// (the welcome's tick is followed by the next), and sees its inputs
// applied.
func TestBots(t *testing.T) {
	const bots = 50
	_, url := start(t, gameserver.Config{})
	rep, err := gamebot.Run(context.Background(), gamebot.Config{
		URL: url, Bots: bots, Duration: 2 * time.Second, InputRate: 10, Ramp: 250 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	matches := map[uint32]int{}
	for i, b := range rep.Bots {
		if b.Err != nil || b.ID == 0 {
			t.Errorf("bot %d: id %d, error %v", i, b.ID, b.Err)
			continue
		}
		matches[b.Match]++
		if b.Snapshots == 0 || b.First != b.Welcome+1 || b.Last-b.First+1 != uint64(b.Snapshots) ||
			b.Missed != 0 || b.OutOfOrder != 0 {
			t.Errorf("bot %d: welcome at tick %d, snapshots %d..%d (%d), %d missed, %d out of order",
				i, b.Welcome, b.First, b.Last, b.Snapshots, b.Missed, b.OutOfOrder)
		}
		if b.Inputs > 0 && b.Acked == 0 {
			t.Errorf("bot %d: none of its %d inputs was applied", i, b.Inputs)
		}
	}
	// 50 players fill three matches of 16 and start a fourth.
	if len(matches) != 4 {
		t.Errorf("bots in %d matches (%v), want 4", len(matches), matches)
	}
	for id, n := range matches {
		if n > 16 {
			t.Errorf("match %d: %d players, at most 16", id, n)
		}
	}
	t.Logf("%d snapshots; input->snapshot p50 %v p99 %v; jitter p99 %v", rep.Snapshots, rep.Latency.P50, rep.Latency.P99, rep.Jitter.P99)
}
