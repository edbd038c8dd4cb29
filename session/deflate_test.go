package session

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/internal/race"
	"github.com/shockwave-go/shockwave/wire"
)

// jsonMsg returns about 2 KiB of JSON numbered seq, which compresses
// well, and better still against the messages before it.
func jsonMsg(seq int) []byte {
	b := fmt.Appendf(nil, `{"seq":%d,"d":[`, seq)
	for i := 0; len(b) < 2000; i++ {
		b = fmt.Appendf(b, `{"id":%d,"text":"the quick brown fox jumps over the lazy dog"},`, i)
	}
	return append(b[:len(b)-1], "]}"...)
}

// TestDeflatedOnce: a frame's compressed form is made once, however many
// sessions ask for it at once, lives as long as the frame, and is not
// made for what should not be compressed.
func TestDeflatedOnce(t *testing.T) {
	p := jsonMsg(1)
	f := NewFrame(wire.OpText, p)
	var wg sync.WaitGroup
	got := make([]*Frame, 8)
	for i := range got {
		wg.Go(func() { got[i] = f.deflated() })
	}
	wg.Wait()
	z := got[0]
	if z == nil {
		t.Fatal("2 KiB of JSON not compressed")
	}
	for _, g := range got {
		if g != z {
			t.Fatal("compressed more than once")
		}
	}
	if z.deflated() != nil {
		t.Error("a compressed frame compressed again")
	}
	rd := wire.NewReader(bytes.NewReader(z.parts0()), &wire.ReaderOptions{MaxMessageSize: 1 << 20, Compression: wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true}})
	if op, out, err := rd.Next(); err != nil || op != wire.OpText || !bytes.Equal(out, p) {
		t.Fatalf("the compressed frame reads as %v, %d bytes, %v", op, len(out), err)
	}
	z.Retain(1) // a session's reference
	f.Release() // the frame's last: z keeps the session's
	if n := z.refs.Load(); n != 1 {
		t.Fatalf("compressed frame holds %d references after its frame's release, want 1", n)
	}
	z.Release()

	for _, f := range []*Frame{
		NewFrame(wire.OpPing, p[:100]),                      // control
		NewFrame(wire.OpBinary, []byte("abcdefgh")),         // does not shrink
		NewFrame(wire.OpBinary, bytes.Repeat([]byte{0}, 0)), // empty
	} {
		if f.deflated() != nil {
			t.Errorf("%v frame of %d bytes compressed", f.op, len(f.Payload()))
		}
		f.Release()
	}
}

// parts0 returns the whole frame in one slice.
func (f *Frame) parts0() []byte {
	a, b := f.parts(0)
	return append(append([]byte(nil), a...), b...)
}

// TestDeflateOwnDrops: a session that compresses with context takeover
// under PolicyDropOldest drops frames that wait while its client does not
// read; the frames it writes are compressed only as they are written, so
// the client's decompressor follows the server's compressor through the
// drops, and the bytes queued come back to zero.
func TestDeflateOwnDrops(t *testing.T) {
	for _, tr := range []string{"tcp", "epoll"} {
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{})
			params := wire.CompressionParams{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
			cfg := config{MailboxSize: 4, Policy: PolicyDropOldest, Compression: wire.CompressionContextTakeover, CompressionThreshold: 512}
			c := h.serveUpgraded(tr, echoFuncs(make(chan error, 1)), cfg, wire.Upgraded{Compression: params})
			s := c.s
			if dz := s.agreed().dz; !dz.z.Takeover() || dz.shared {
				t.Fatalf("takeover %v, shared %v: want own compression with takeover", dz.z.Takeover(), dz.shared)
			}
			const n = 3000
			for i := range n {
				if err := s.Send(wire.OpText, jsonMsg(i)); err != nil && err != ErrDropped {
					t.Fatal(err)
				}
			}
			for s.Send(wire.OpText, []byte("end")) != nil { // dropped only if others are written meanwhile
				time.Sleep(time.Millisecond)
			}
			last, got := -1, 0
			for {
				op, p, err := c.next()
				if err != nil {
					t.Fatalf("after %d messages: %v", got, err)
				}
				if string(p) == "end" {
					break
				}
				var seq int
				if _, err := fmt.Sscanf(string(p), `{"seq":%d,`, &seq); err != nil || op != wire.OpText || !bytes.Equal(p, jsonMsg(seq)) || seq <= last {
					t.Fatalf("message %d after seq %d: %v %.40q", got, last, op, p)
				}
				last = seq
				got++
			}
			t.Logf("%d of %d messages came, %d dropped", got, n, s.Dropped())
			deadline := time.Now().Add(bound)
			for s.queued.Load() != 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if q := s.queued.Load(); q != 0 {
				t.Fatalf("%d bytes still counted as queued", q)
			}
		})
	}
}

// TestDeflateAllocs: compressing a frame once for many sessions, and a
// session's own compression with context takeover, allocate nothing once
// the pools are warm (the allocation budget of the compressed broadcast).
func TestDeflateAllocs(t *testing.T) {
	if testing.CoverMode() != "" || race.Enabled {
		t.Skip("allocation counts need a build without -race and -cover")
	}
	p := jsonMsg(1)
	shared := func() {
		f := NewFrame(wire.OpText, p)
		z := f.deflated()
		for range 3 { // three members
			z.Retain(1)
		}
		f.Release()
		for range 3 {
			z.Release()
		}
	}
	own := wire.CompressionParams{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}.Compressor(true, wire.CompressionContextTakeover)
	takeover := func() {
		f := NewFrame(wire.OpText, p)
		compress(f.op, f.Payload(), &own).Release()
		f.Release()
	}
	for name, fn := range map[string]func(){"shared": shared, "own with context takeover": takeover} {
		fn() // warm the pools, and make the own compressor
		if n := testing.AllocsPerRun(200, fn); n != 0 {
			t.Errorf("%s: %v allocations a frame, want 0", name, n)
		}
	}
}
