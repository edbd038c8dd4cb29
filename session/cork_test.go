package session_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// writeCounter is a session.Observer counting writes and frames.
type writeCounter struct{ writes, frames atomic.Int64 }

func (w *writeCounter) Wrote(_ *session.Session, frames, _ int) {
	w.writes.Add(1)
	w.frames.Add(int64(frames))
}

// TestCorkBurst checks the cork: the echoes of a burst of messages that
// arrive in one read leave in fewer writes than messages (one, on
// loopback), not one writev each.
func TestCorkBurst(t *testing.T) {
	var wc writeCounter
	echo := session.HandlerFunc(func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) })
	rt, err := runtime.New(echo, func(o *runtime.Options) error { o.Session.Observer = &wc; return nil })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := wire.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()

	const burst = 10
	var b []byte
	for i := range burst {
		b = wire.AppendFrame(b, wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Key: [4]byte{1, 2, 3, 4}},
			[]byte(fmt.Sprintf("m%d", i)))
	}
	if _, err := c.NetConn().Write(b); err != nil { // the whole burst in one write
		t.Fatal(err)
	}
	for i := range burst {
		_, p, err := c.ReadMessage()
		if err != nil || string(p) != fmt.Sprintf("m%d", i) {
			t.Fatalf("echo %d: %q %v", i, p, err)
		}
	}
	// The writer reports a write after the kernel took it: wait for it.
	for deadline := time.Now().Add(10 * time.Second); wc.frames.Load() < burst && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if w, f := wc.writes.Load(), wc.frames.Load(); f != burst || w >= burst {
		t.Fatalf("%d frames in %d writes, want %d frames in fewer writes", f, w, burst)
	} else {
		t.Logf("%d echoes in %d writes", f, w)
	}
}
