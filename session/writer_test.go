package session

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// writeCounter is an engine.Observer counting writes and frames.
type writeCounter struct{ writes, frames atomic.Int64 }

func (w *writeCounter) Wrote(frames, _, _ int, _ time.Duration) {
	w.writes.Add(1)
	w.frames.Add(int64(frames))
}

// TestCorkBurst checks the cork: the echoes of a burst of messages that
// arrive in one read leave in fewer writes than messages (one, on
// loopback), not one writev each.
func TestCorkBurst(t *testing.T) {
	for _, tr := range []string{"tcp", "epoll"} { // a pipe's writes block: no cork to see
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{})
			var wc writeCounter
			c := h.serve(tr, echoFuncs(make(chan error, 1)), config{Observer: &wc}, nil)
			const burst = 10
			var b []byte
			for i := range burst {
				b = wire.AppendFrame(b, wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Key: [4]byte{1, 2, 3, 4}},
					[]byte(fmt.Sprintf("m%d", i)))
			}
			if _, err := c.client.Write(b); err != nil { // the whole burst in one write
				t.Fatal(err)
			}
			for i := range burst {
				c.mustNext(wire.OpText, fmt.Sprintf("m%d", i))
			}
			// The writer reports a write after the kernel took it: wait for it.
			for deadline := time.Now().Add(bound); wc.frames.Load() < burst && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if w, f := wc.writes.Load(), wc.frames.Load(); f != burst || w >= burst {
				t.Fatalf("%d frames in %d writes, want %d frames in fewer writes", f, w, burst)
			} else {
				t.Logf("%d echoes in %d writes", f, w)
			}
		})
	}
}
