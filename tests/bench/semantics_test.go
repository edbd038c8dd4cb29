package bench_test

import (
	"os"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/tests/bench/internal/load"
	"github.com/shockwave-go/shockwave/tests/bench/internal/peers"
	"github.com/shockwave-go/shockwave/tests/bench/internal/report"
	"github.com/shockwave-go/shockwave/tests/bench/internal/wsraw"
)

// startPeer starts lib's bench server on a free loopback port and stops it
// when the test ends.
func startPeer(tb testing.TB, lib string) *peers.Running {
	tb.Helper()
	return startPeerWith(tb, lib, peers.Options{})
}

// startPeerWith is startPeer with options.
func startPeerWith(tb testing.TB, lib string, o peers.Options) *peers.Running {
	tb.Helper()
	r, err := peers.Start(lib, "127.0.0.1:0", o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Stop)
	return r
}

type scenario struct {
	name string
	cfg  load.Config
}

// TestScenarios runs every load scenario, scaled down, against every bench
// server: they must all echo every byte, deliver every room message in
// order, and keep idle connections alive. This is what makes the numbers
// of the matrix comparable.
func TestScenarios(t *testing.T) {
	scenarios := []scenario{
		{"echo32", load.Config{Scenario: "echo", Conns: 8, Size: 32}},
		{"echo16k-text", load.Config{Scenario: "echo", Conns: 4, Size: 16 << 10, Text: true}},
		{"frag64k", load.Config{Scenario: "echo", Conns: 4, Size: 64 << 10, Frag: 4 << 10}},
		{"stream1k", load.Config{Scenario: "stream", Conns: 4, Size: 1 << 10, Window: 64}},
		{"stream64k", load.Config{Scenario: "stream", Conns: 2, Size: 64 << 10, Window: 4}},
		{"room", load.Config{Scenario: "room", Conns: 20, Size: 128, Publishers: 3, Window: 8}},
		{"room-json", load.Config{Scenario: "room", Conns: 20, Size: 1 << 10, Publishers: 3, Window: 8, Text: true, Payload: wsraw.PayloadJSON}},
		{"idle", load.Config{Scenario: "idle", Conns: 50, Settle: 50 * time.Millisecond}},
	}
	for _, lib := range peers.Libs {
		if lib == "nbio" && raceEnabled {
			continue // see raceEnabled
		}
		t.Run(lib, func(t *testing.T) {
			runScenarios(t, func() *peers.Running { return startPeer(t, lib) }, scenarios)
		})
	}
}

// deflateLibs are the libraries whose bench servers compress.
var deflateLibs = []string{"shockwave", "shockwave-goroutine", "gws"}

// TestDeflateScenarios runs the cases of report.DeflateCases, scaled down,
// and a few more, against the servers that compress: every message must
// come compressed when the case is, and inflate to what was sent.
func TestDeflateScenarios(t *testing.T) {
	var scenarios []scenario
	for _, c := range report.DeflateCases {
		cfg := load.Config{Scenario: c.Scenario, Conns: min(c.Conns, 20), Size: c.Size, Frag: c.Frag,
			Text: c.Text, Payload: c.Payload, Deflate: c.Deflate}
		if c.Size > 16<<10 {
			cfg.Conns = 4 // compressing 64 KiB takes a millisecond, ten under -race
		}
		if c.Scenario == "room" {
			cfg.Publishers, cfg.Window = 3, 8
		}
		scenarios = append(scenarios, scenario{c.Name, cfg})
	}
	scenarios = append(scenarios,
		scenario{"frag64k-deflate", load.Config{Scenario: "echo", Conns: 4, Size: 64 << 10, Frag: 4 << 10, Text: true, Payload: wsraw.PayloadText, Deflate: true}},
		scenario{"stream1k-deflate", load.Config{Scenario: "stream", Conns: 4, Size: 1 << 10, Window: 64, Payload: wsraw.PayloadJSON, Deflate: true}},
		scenario{"room-binary-deflate", load.Config{Scenario: "room", Conns: 20, Size: 1 << 10, Publishers: 3, Window: 8, Payload: wsraw.PayloadText, Deflate: true}},
		scenario{"idle-deflate", load.Config{Scenario: "idle", Conns: 50, Settle: 50 * time.Millisecond, Deflate: true}},
	)
	for _, lib := range deflateLibs {
		t.Run(lib, func(t *testing.T) {
			runScenarios(t, func() *peers.Running { return startPeerWith(t, lib, peers.Options{Deflate: true}) }, scenarios)
		})
	}
}

// runScenarios runs scenarios against servers that start returns: one
// for all but the room scenarios, which get one each, since what the last
// room's publishers sent just before they closed may still be on its way
// to the members of the next.
func runScenarios(t *testing.T, start func() *peers.Running, scenarios []scenario) {
	shared := start()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			r := shared
			if sc.cfg.Scenario == "room" {
				r = start()
			}
			cfg := sc.cfg
			cfg.Addr = r.Addr
			cfg.PID = os.Getpid()
			cfg.Warmup, cfg.Duration = 20*time.Millisecond, 150*time.Millisecond
			if raceEnabled && cfg.Deflate {
				// Shockwave's compressors come from a sync.Pool, which the
				// race detector empties at random: each new one takes
				// milliseconds to make, and the first echoes come late.
				cfg.Warmup = 300 * time.Millisecond
			}
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
			case cfg.Scenario != "idle" && res.Messages == 0 && res.Compressed == 0:
				// (Compressed counts the whole run, warm-up included.)
				t.Error("no message made it through")
			case cfg.Deflate && cfg.Size >= 512 && res.Compressed < res.Messages:
				t.Errorf("%d messages came compressed, %d counted", res.Compressed, res.Messages)
			case cfg.Scenario != "idle" && res.WireIn < res.Messages*int64(min(cfg.Size, 64)/8):
				t.Errorf("%d bytes on the wire for %d messages", res.WireIn, res.Messages)
			}
		})
	}
}
