package bench_test

import (
	"os"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/tests/bench/internal/load"
	"github.com/shockwave-go/shockwave/tests/bench/internal/peers"
)

// startPeer starts lib's bench server on a free loopback port and stops it
// when the test ends.
func startPeer(tb testing.TB, lib string) *peers.Running {
	tb.Helper()
	r, err := peers.Start(lib, "127.0.0.1:0", peers.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Stop)
	return r
}

// TestScenarios runs every load scenario, scaled down, against every bench
// server: they must all echo every byte, deliver every room message in
// order, and keep idle connections alive. This is what makes the numbers
// of the matrix comparable.
func TestScenarios(t *testing.T) {
	scenarios := []struct {
		name string
		cfg  load.Config
	}{
		{"echo32", load.Config{Scenario: "echo", Conns: 8, Size: 32}},
		{"echo16k-text", load.Config{Scenario: "echo", Conns: 4, Size: 16 << 10, Text: true}},
		{"frag64k", load.Config{Scenario: "echo", Conns: 4, Size: 64 << 10, Frag: 4 << 10}},
		{"stream1k", load.Config{Scenario: "stream", Conns: 4, Size: 1 << 10, Window: 64}},
		{"stream64k", load.Config{Scenario: "stream", Conns: 2, Size: 64 << 10, Window: 4}},
		{"room", load.Config{Scenario: "room", Conns: 20, Size: 128, Publishers: 3, Window: 8}},
		{"idle", load.Config{Scenario: "idle", Conns: 50, Settle: 50 * time.Millisecond}},
	}
	for _, lib := range peers.Libs {
		if lib == "nbio" && raceEnabled {
			continue // see raceEnabled
		}
		t.Run(lib, func(t *testing.T) {
			r := startPeer(t, lib)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					cfg := sc.cfg
					cfg.Addr = r.Addr
					cfg.PID = os.Getpid()
					cfg.Warmup, cfg.Duration = 20*time.Millisecond, 150*time.Millisecond
					cfg.Timeout = 20 * time.Second
					res, err := load.Run(cfg)
					if err != nil {
						t.Fatal(err)
					}
					if res.Errors > 0 {
						t.Fatalf("%d errors, first: %s", res.Errors, res.FirstError)
					}
					switch {
					case cfg.Scenario == "idle" && res.Verified != int64(cfg.Conns):
						t.Errorf("%d of %d idle connections echoed", res.Verified, cfg.Conns)
					case cfg.Scenario != "idle" && res.Messages == 0:
						t.Error("no message made it through")
					}
				})
			}
		})
	}
}
