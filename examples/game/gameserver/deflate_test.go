package gameserver_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/shockwave-go/shockwave/examples/game/gamebot"
	"github.com/shockwave-go/shockwave/examples/game/gameserver"
	"github.com/shockwave-go/shockwave/examples/game/sim"
	"github.com/shockwave-go/shockwave/internal/netcount"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// TestSnapshotDeflate measures the figures behind examples/game's
// -deflate: 15 bots play (gamebot) and a 16th player, on a wire.Conn that
// negotiated permessage-deflate as a browser does, reads the full match's
// snapshots as the runtime sends them. A full match's snapshot is over
// the runtime's threshold, so it goes out compressed, and deflate takes
// about a third off it: the keys and names MessagePack repeats in every
// player are what it finds, the positions and speeds hardly compress. The
// bytes are checked, the time is only logged:
//
//	go test -run TestSnapshotDeflate -v ./examples/game/gameserver
func TestSnapshotDeflate(t *testing.T) {
	_, url := start(t, gameserver.Config{Runtime: []runtime.Option{
		runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold)}})
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	bots := make(chan struct{})
	go func() {
		defer close(bots)
		gamebot.Run(ctx, gamebot.Config{URL: url, Bots: 15, Duration: bound, InputRate: 10})
	}()
	defer func() { cancel(); <-bots }()

	var read atomic.Int64
	c, _, err := wire.Dial(ctx, url, &wire.DialOptions{
		Options:        wire.Options{Compression: wire.CompressionNoContextTakeover},
		Subprotocols:   []string{"shockwave.msgpack"},
		NetDialContext: netcount.Dialer(&read),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if !c.Compression().Enabled {
		t.Fatal("the game agreed on no compression")
	}
	join, _ := msgpack.Marshal(map[string]any{"e": "join", "d": map[string]string{"n": "measure"}})
	if err := c.WriteMessage(wire.OpBinary, join); err != nil {
		t.Fatal(err)
	}

	const count = 60 // two seconds of a full match
	var raw, onWire, alone, n int
	var took time.Duration
	var z []byte
	for n < count {
		before := read.Load()
		_, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %d snapshots of the full match: %v", n, err)
		}
		var snap struct {
			Event string       `msgpack:"e"`
			Data  sim.Snapshot `msgpack:"d"`
		}
		if err := msgpack.Unmarshal(p, &snap); err != nil {
			t.Fatal(err)
		}
		if snap.Event != "snap" || len(snap.Data.Players) < 16 {
			continue // the welcome, or the bots are still coming
		}
		n++
		raw += len(p)
		onWire += int(read.Load() - before)
		took += fastest(func() { z = wire.AppendCompressed(z[:0], p) })
		alone += len(z)
		if len(p) < wire.DefaultCompressionThreshold {
			t.Errorf("a full match's snapshot of %d bytes, under the threshold (%d): it goes out as it is", len(p), wire.DefaultCompressionThreshold)
		}
	}
	t.Logf("a full match's snapshot: %d bytes of MessagePack, %d on the wire with deflate (%d compressed, %.0f %%), compressed in %v once a tick for the whole match",
		raw/n, onWire/n, alone/n, 100*float64(alone)/float64(raw), took/time.Duration(n))
	if r := float64(alone) / float64(raw); r > 0.8 || r < 0.55 {
		t.Errorf("snapshots compress to %.0f %% of their size; examples/game says about 69 %%", 100*r)
	}
	// What a read brings may hold a few bytes of the other messages of the
	// match (events the bots cause), so the bytes on the wire are compared
	// with the snapshots' own: compressed, they take 70 % of them.
	if onWire > raw*9/10 {
		t.Errorf("%d bytes on the wire for %d of snapshots (%d compressed): the runtime did not send them compressed", onWire, raw, alone)
	}
}

// fastest returns the shortest time f takes in a few runs: on a busy
// machine, the closest to what it costs.
func fastest(f func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 20 {
		start := time.Now()
		f()
		best = min(best, time.Since(start))
	}
	return best
}

// BenchmarkInputInflate measures what a browser's input costs the server
// to read: a browser compresses every message it sends once deflate is
// agreed, tiny ones included, and the server inflates each (with
// no-context-takeover, from a fresh window every time).
func BenchmarkInputInflate(b *testing.B) {
	in, err := msgpack.Marshal(map[string]any{"e": "input", "d": sim.Input{Seq: 1234, Keys: sim.Up | sim.Left}})
	if err != nil {
		b.Fatal(err)
	}
	params := wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ClientNoContextTakeover: true,
		ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	for _, tc := range []struct {
		name   string
		params wire.CompressionParams
	}{{"plain", wire.CompressionParams{}}, {"deflate", params}} {
		b.Run(tc.name, func(b *testing.B) {
			h := wire.Header{Fin: true, Opcode: wire.OpBinary, Masked: true, Key: [4]byte{1, 2, 3, 4}}
			p := in
			if tc.params.Enabled {
				p, h.Rsv = wire.AppendCompressed(nil, in), wire.RSV1
			}
			const frames = 64
			var stream []byte
			for range frames {
				stream = wire.AppendFrame(stream, h, p)
			}
			src := bytes.NewReader(stream)
			opts := &wire.ReaderOptions{Server: true, Compression: tc.params}
			rd := wire.NewReader(src, opts)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%frames == 0 {
					src.Reset(stream)
					rd.Reset(src, opts)
				}
				if _, q, err := rd.Next(); err != nil || len(q) != len(in) {
					b.Fatalf("Next: %d bytes, %v", len(q), err)
				}
				i++
			}
			b.ReportMetric(float64(len(p)), "payloadB/msg")
		})
	}
}
