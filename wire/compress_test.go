package wire_test

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/internal/race"
	"github.com/shockwave-go/shockwave/wire"
)

// The tests of permessage-deflate (RFC 7692). What a peer compresses is
// compressed here with the standard library's compress/flate, and what our
// side compresses is inflated with it: an implementation independent of
// github.com/klauspost/compress, which wire uses.

// Samples of text, made by sample_test.go.
var (
	proseText = wire.ProseText
	chatJSON  = wire.ChatJSON
)

// randomBytes returns n bytes that do not compress.
func randomBytes(seed uint64, n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seed)})
	b := make([]byte, n)
	r.Read(b)
	return b
}

// stdDeflate compresses p as a peer would send it (RFC 7692 section
// 7.2.1) with the standard library's compress/flate: a sync flush, and its
// 00 00 ff ff taken off.
func stdDeflate(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	w.Write(p)
	w.Flush()
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("sync flush ends with % x", out[max(0, len(out)-4):])
	}
	return out[:len(out)-4]
}

// stdInflate inflates the body of a compressed message with the standard
// library's compress/flate.
func stdInflate(body []byte) ([]byte, error) {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(body), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	return io.ReadAll(r)
}

var (
	noContext = wire.CompressionNoContextTakeover
	takeover  = wire.CompressionContextTakeover
)

// tapConn records the bytes that go through a client's connection.
type tapConn struct {
	net.Conn
	mu      sync.Mutex
	written []byte
	read    []byte
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.written = append(c.written, p[:n]...)
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read = append(c.read, p[:n]...)
	c.mu.Unlock()
	return n, err
}

// frames returns the headers of the frames that went out (out) or came
// in, past the HTTP handshake.
func (c *tapConn) frames(t *testing.T, out bool) []wire.Header {
	t.Helper()
	c.mu.Lock()
	b := bytes.Clone(c.read)
	if out {
		b = bytes.Clone(c.written)
	}
	c.mu.Unlock()
	_, b, _ = bytes.Cut(b, []byte("\r\n\r\n"))
	var hs []wire.Header
	for len(b) > 0 {
		h, n, err := wire.ParseHeader(b)
		if err != nil || n == 0 || int64(len(b)-n) < h.Length {
			t.Fatalf("frame %d: %v, %d bytes left", len(hs), err, len(b))
		}
		hs = append(hs, h)
		b = b[n+int(h.Length):]
	}
	return hs
}

// dialTap dials url with opts through a tapConn.
func dialTap(t *testing.T, url string, opts wire.DialOptions) (*wire.Conn, *tapConn) {
	t.Helper()
	var tap *tapConn
	opts.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tap = &tapConn{Conn: nc}
		return tap, nil
	}
	return dial(t, url, &opts), tap
}

// TestCompressedEcho sends messages of several sizes and kinds, whole and
// in fragments, from a client to an echo server and back, with every
// combination of the two sides' modes: they arrive intact, and much
// smaller on the wire both ways.
func TestCompressedEcho(t *testing.T) {
	sizes := []int{0, 1, 511, 512, 4 << 10, 70_000, 1 << 20}
	for _, sm := range []wire.CompressionMode{noContext, takeover} {
		for _, cm := range []wire.CompressionMode{noContext, takeover} {
			t.Run(fmt.Sprintf("server=%v/client=%v", sm, cm), func(t *testing.T) {
				url := echoServer(t, &wire.AcceptOptions{Options: wire.Options{Compression: sm}})
				c, tap := dialTap(t, url, wire.DialOptions{Options: wire.Options{Compression: cm}})
				cp := c.Compression()
				both := sm == takeover && cm == takeover
				if !cp.Enabled || cp.ServerNoContextTakeover == both || cp.ClientNoContextTakeover == both ||
					cp.ServerMaxWindowBits != 15 || cp.ClientMaxWindowBits != 15 {
					t.Fatalf("Compression() = %+v", cp)
				}
				total := 0
				echo := func(op wire.Opcode, p []byte, pieces int) {
					t.Helper()
					if pieces == 1 {
						if err := c.WriteMessage(op, p); err != nil {
							t.Fatal(err)
						}
					} else {
						for i := range pieces {
							fop := op
							if i > 0 {
								fop = wire.OpContinuation
							}
							part := p[len(p)*i/pieces : len(p)*(i+1)/pieces]
							if err := c.WriteFrame(fop, i == pieces-1, part); err != nil {
								t.Fatal(err)
							}
							if err := c.Ping([]byte("between")); err != nil {
								t.Fatal(err)
							}
						}
					}
					gop, got, err := c.ReadMessage()
					if err != nil || gop != op || !bytes.Equal(got, p) {
						t.Fatalf("%v of %d bytes in %d pieces: got %v of %d bytes, %v", op, len(p), pieces, gop, len(got), err)
					}
					total += len(p)
				}
				for i, n := range sizes {
					echo(wire.OpText, chatJSON(uint64(i), n), 1)
					echo(wire.OpBinary, proseText(uint64(i), n), 1)
					echo(wire.OpText, chatJSON(uint64(i+100), n), 3)
					echo(wire.OpBinary, proseText(uint64(i+100), n), 7)
				}
				tap.mu.Lock()
				out, in := len(tap.written), len(tap.read)
				tap.mu.Unlock()
				t.Logf("%d bytes of messages: %d bytes sent, %d received", total, out, in)
				if out > total*6/10 || in > total*6/10 {
					t.Errorf("%d bytes of messages: %d bytes sent, %d received", total, out, in)
				}
				if err := c.Close(wire.StatusNormalClosure, ""); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestCompressionThreshold: a message shorter than the threshold goes out
// as it is; from it on, compressed (RSV1 on its frame), unless, without
// context takeover, it does not shrink.
func TestCompressionThreshold(t *testing.T) {
	tests := []struct {
		mode      wire.CompressionMode
		threshold int
		msg       []byte
		rsv1      bool
	}{
		{noContext, 0, chatJSON(1, 100), false},
		{noContext, 0, chatJSON(1, 511), false},
		{noContext, 0, chatJSON(1, 512), true},
		{noContext, 0, chatJSON(1, 5000), true},
		{noContext, 0, randomBytes(1, 5000), false}, // does not shrink
		{noContext, -1, bytes.Repeat([]byte("a"), 20), true},
		{noContext, -1, nil, false}, // 1 byte compressed
		{takeover, -1, nil, true},
		{noContext, 2000, chatJSON(1, 1999), false},
		{noContext, 2000, chatJSON(1, 2000), true},
		{takeover, 0, chatJSON(1, 511), false},
		{takeover, 0, chatJSON(1, 512), true},
		{takeover, 0, randomBytes(1, 5000), true}, // the compressor has seen it
	}
	url := echoServer(t, &wire.AcceptOptions{Options: wire.Options{Compression: takeover}})
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/threshold=%d/%d", tt.mode, tt.threshold, len(tt.msg)), func(t *testing.T) {
			c, tap := dialTap(t, url, wire.DialOptions{Options: wire.Options{Compression: tt.mode, CompressionThreshold: tt.threshold}})
			for range 2 {
				if err := c.WriteMessage(wire.OpBinary, tt.msg); err != nil {
					t.Fatal(err)
				}
				if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, tt.msg) {
					t.Fatalf("echo: %d bytes, %v", len(got), err)
				}
			}
			for _, h := range tap.frames(t, true) {
				if got := h.Rsv == wire.RSV1; got != tt.rsv1 || h.Rsv&^wire.RSV1 != 0 {
					t.Fatalf("frame of %d bytes has RSV %#x", h.Length, h.Rsv)
				}
			}
		})
	}
}

// inflateCase is a stream a Reader with compression reads: the messages it
// returns, then the error it fails with.
type inflateCase struct {
	name  string
	build func(f *frameBuilder, t *testing.T)
	limit int64
	want  []message
	err   error
}

func inflateCases() []inflateCase {
	json := chatJSON(7, 3000)
	bad := []byte("caf\xc3 au lait")
	const limit = 10 << 10
	return []inflateCase{
		{name: "message", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(stdDeflate(t, json)))
		}, want: []message{{wire.OpText, string(json)}}, err: io.EOF},
		{name: "ours", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(wire.AppendCompressed(nil, json)))
		}, want: []message{{wire.OpBinary, string(json)}}, err: io.EOF},
		{name: "mixed", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(stdDeflate(t, []byte("one"))))
			f.frame(wire.OpText, true, "two")
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(stdDeflate(t, []byte("three"))))
		}, want: []message{{wire.OpText, "one"}, {wire.OpText, "two"}, {wire.OpBinary, "three"}}, err: io.EOF},
		{name: "fragments", build: func(f *frameBuilder, t *testing.T) {
			z := stdDeflate(t, json)
			f.frameH(wire.Header{Rsv: wire.RSV1, Opcode: wire.OpText}, string(z[:10]))
			f.frame(wire.OpPing, true, "p")
			f.frame(wire.OpContinuation, false, "")
			f.frame(wire.OpContinuation, false, string(z[10:1000]))
			f.frame(wire.OpContinuation, true, string(z[1000:]))
		}, want: []message{{wire.OpPing, "p"}, {wire.OpText, string(json)}}, err: io.EOF},
		{name: "empty", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, "")
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, "\x00")
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(stdDeflate(t, nil)))
		}, want: []message{{wire.OpText, ""}, {wire.OpText, ""}, {wire.OpText, ""}}, err: io.EOF},
		{name: "final block", build: func(f *frameBuilder, t *testing.T) {
			// RFC 7692 section 7.2.3.3: a sender may end with BFINAL set.
			var b bytes.Buffer
			w, _ := flate.NewWriter(&b, flate.BestSpeed)
			w.Write([]byte("closed stream"))
			w.Close()
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, b.String())
		}, want: []message{{wire.OpText, "closed stream"}}, err: io.EOF},
		{name: "at the limit", limit: limit, build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(stdDeflate(t, make([]byte, limit))))
		}, want: []message{{wire.OpBinary, string(make([]byte, limit))}}, err: io.EOF},
		{name: "past the limit", limit: limit, build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(stdDeflate(t, make([]byte, limit+1))))
		}, err: wire.ErrMessageTooBig},
		{name: "announced past the limit", limit: limit, build: func(f *frameBuilder, t *testing.T) {
			f.header(wire.OpBinary, true, 2*limit, "")
			f.b[0] |= wire.RSV1
		}, err: wire.ErrMessageTooBig},
		{name: "invalid UTF-8", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(stdDeflate(t, bad)))
		}, err: wire.ErrInvalidUTF8},
		{name: "invalid UTF-8 in binary", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(stdDeflate(t, bad)))
		}, want: []message{{wire.OpBinary, string(bad)}}, err: io.EOF},
		{name: "invalid deflate", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, "\xff\xff\xff\xff")
		}, err: wire.ErrInvalidDeflate},
		{name: "truncated deflate", build: func(f *frameBuilder, t *testing.T) {
			z := stdDeflate(t, json)
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(z[:len(z)/2]))
		}, err: wire.ErrInvalidDeflate},
		{name: "compressed ping", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpPing}, "")
		}, err: wire.ErrCompressedFrame},
		{name: "compressed close", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpClose}, "")
		}, err: wire.ErrCompressedFrame},
		{name: "compressed continuation", build: func(f *frameBuilder, t *testing.T) {
			z := stdDeflate(t, json)
			f.frameH(wire.Header{Rsv: wire.RSV1, Opcode: wire.OpText}, string(z[:10]))
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpContinuation}, string(z[10:]))
		}, err: wire.ErrCompressedFrame},
		{name: "RSV2", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV2, Opcode: wire.OpText}, "x")
		}, err: wire.ErrReservedBits},
		{name: "RSV1|RSV3", build: func(f *frameBuilder, t *testing.T) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1 | wire.RSV3, Opcode: wire.OpText}, "x")
		}, err: wire.ErrReservedBits},
	}
}

// TestReaderInflate reads streams of compressed messages, compressed by
// compress/flate, as a server and as a client, whole and a byte at a
// time: messages in one frame and in fragments, with and without
// compression around them, and each way a compressed message can be
// wrong.
func TestReaderInflate(t *testing.T) {
	for _, tc := range inflateCases() {
		for _, server := range []bool{true, false} {
			fb := &frameBuilder{masked: server}
			tc.build(fb, t)
			sources := map[string]func() io.Reader{
				"whole":    func() io.Reader { return bytes.NewReader(fb.b) },
				"by bytes": func() io.Reader { return &chunkReader{data: fb.b, rng: rand.New(rand.NewPCG(1, 2)), max: 1} },
			}
			for name, src := range sources {
				t.Run(fmt.Sprintf("%s/server=%v/%s", tc.name, server, name), func(t *testing.T) {
					rd := wire.NewReader(src(), &wire.ReaderOptions{Server: server, MaxMessageSize: tc.limit,
						Compression: wire.CompressionParams{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}})
					msgs, err := readAll(t, rd, 100)
					if !slicesEqual(msgs, tc.want) || !errors.Is(err, tc.err) {
						t.Fatalf("got %v, %v; want %v, %v", msgs, err, tc.want, tc.err)
					}
				})
			}
		}
	}
	t.Run("not negotiated", func(t *testing.T) {
		fb := &frameBuilder{}
		fb.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(stdDeflate(t, []byte("x"))))
		_, err := readAll(t, wire.NewReader(bytes.NewReader(fb.b), nil), 10)
		if !errors.Is(err, wire.ErrReservedBits) {
			t.Fatalf("got %v, want ErrReservedBits", err)
		}
	})
}

// TestReaderContextTakeover: with context takeover the peer's messages
// refer to the ones before, which the Reader keeps a window of; without
// it the same stream does not inflate.
func TestReaderContextTakeover(t *testing.T) {
	var stream, z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestSpeed)
	fb := &frameBuilder{}
	var want []message
	for i := range 40 {
		p := chatJSON(uint64(i%3), 300+i*997%40000) // repeats of what came before
		w.Write(p)
		w.Flush()
		body := z.Bytes()[:z.Len()-4]
		fb.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(body))
		z.Reset()
		want = append(want, message{wire.OpText, string(p)})
	}
	stream.Write(fb.b)
	cp := wire.CompressionParams{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	rd := wire.NewReader(bytes.NewReader(stream.Bytes()), &wire.ReaderOptions{Compression: cp})
	msgs, err := readAll(t, rd, 100)
	if !slicesEqual(msgs, want) || err != io.EOF {
		t.Fatalf("got %d messages, %v; want %d", len(msgs), err, len(want))
	}
	cp.ServerNoContextTakeover = true // the client reads the server's messages
	rd = wire.NewReader(bytes.NewReader(stream.Bytes()), &wire.ReaderOptions{Compression: cp})
	if _, err := readAll(t, rd, 100); !errors.Is(err, wire.ErrInvalidDeflate) {
		t.Fatalf("without the window: %v, want ErrInvalidDeflate", err)
	}
}

// TestReaderIdleWithCompression: a Reader whose peer compresses without
// context takeover holds nothing between messages, as without
// compression; with context takeover it keeps its 32 KiB window, and says
// it is not idle.
func TestReaderIdleWithCompression(t *testing.T) {
	for _, peerTakeover := range []bool{false, true} {
		cp := wire.CompressionParams{Enabled: true, ServerNoContextTakeover: !peerTakeover, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
		body := wire.AppendCompressed(nil, chatJSON(1, 2000))
		fb := &frameBuilder{}
		fb.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(body))
		src := &blockingReader{data: fb.b, chunk: func() int { return len(fb.b) }, t: t, stall: true}
		rd := wire.NewReader(src, &wire.ReaderOptions{Compression: cp})
		if _, _, err := rd.Next(); err != wire.ErrWouldBlock {
			t.Fatalf("Next: %v, want ErrWouldBlock", err)
		}
		src.wait = false
		if _, p, err := rd.Next(); err != nil || len(p) != 2000 {
			t.Fatalf("Next: %d bytes, %v", len(p), err)
		}
		if _, _, err := rd.Next(); err != wire.ErrWouldBlock {
			t.Fatalf("Next: %v, want ErrWouldBlock", err)
		}
		h := rd.Holding()
		switch {
		case !peerTakeover && (h != 0 || !rd.Idle()):
			t.Errorf("without takeover: holding %d bytes, idle %v", h, rd.Idle())
		case peerTakeover && (h != 32<<10 || rd.Idle()):
			t.Errorf("with takeover: holding %d bytes, idle %v; want the 32 KiB window", h, rd.Idle())
		}
	}
}

// TestInflateBomb: a message of 2 MiB that inflates to 2 GiB fails with
// 1009 once it passes the limit (4 MiB), and the Reader allocates little
// more than the limit on the way: with empty pools, the output buffer's
// size classes up to it (a third more) and the compressed message's
// assembly buffer; with warm pools, next to nothing.
func TestInflateBomb(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	const limit = 4 << 20
	// A run of 64 MiB of zeros compressed to a sequence of blocks that
	// refer only to themselves: repeated, they stay valid deflate.
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	w.Write(make([]byte, 64<<20))
	w.Flush()
	chunk := z.Bytes()
	body := bytes.Repeat(chunk, 32)
	body = body[:len(body)-4]
	fb := &frameBuilder{masked: true}
	fb.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(body))
	t.Logf("%d bytes of deflate inflating to %d MiB", len(body), 32*64)

	cp := wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}
	budget := wire.NewBudget(1 << 30)
	read := func() (allocated uint64) {
		rd := wire.NewReader(bytes.NewReader(fb.b), &wire.ReaderOptions{Server: true, MaxMessageSize: limit, Compression: cp, Budget: budget})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := rd.Next()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, wire.ErrMessageTooBig) {
			t.Fatalf("Next: %v, want ErrMessageTooBig", err)
		}
		if wire.CodeOf(err) != wire.StatusMessageTooBig {
			t.Fatalf("code %v", wire.CodeOf(err))
		}
		if budget.InUse() != 0 {
			t.Fatalf("%d bytes of the budget not given back", budget.InUse())
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // a GC would empty the pools
	runtime.GC()
	runtime.GC()
	cold := read()
	warm := read()
	t.Logf("allocated: %d KiB with empty pools, %d KiB with warm ones (limit %d KiB)", cold>>10, warm>>10, limit>>10)
	// Output: at most the limit in classes of 4x (4/3 of it); input: the
	// read buffer and the 2 MiB message's 4 MiB class; a decompressor.
	if bound := uint64(limit*4/3 + 4<<20 + 256<<10); cold > bound {
		t.Errorf("allocated %d bytes with empty pools, want at most %d", cold, bound)
	}
	if warm > 256<<10 {
		t.Errorf("allocated %d bytes with warm pools, want at most 256 KiB", warm)
	}
}

// FuzzInflate reads one compressed message of arbitrary deflate data, as
// a server and as a client, whole and in two pieces, with a small and a
// large limit: it never panics, never returns more than the limit, fails
// only with the errors of a bad message and gives all its memory back
// then, and inflates what compress/flate inflates (an empty payload is
// taken for an empty message, which compress/flate calls corrupt).
func FuzzInflate(f *testing.F) {
	f.Add([]byte("\xf2\x48\xcd\xc9\xc9\x07\x00"), uint16(3)) // "Hello"
	f.Add(wire.AppendCompressed(nil, chatJSON(1, 1000)), uint16(100))
	f.Add(wire.AppendCompressed(nil, make([]byte, 70_000)), uint16(50))
	f.Add([]byte{0x00}, uint16(0))
	f.Add([]byte{0x01, 0x00, 0x00, 0xff, 0xff, 0xff}, uint16(2))
	f.Add([]byte("\xff\xff\xff\xff"), uint16(1))
	f.Fuzz(func(t *testing.T, body []byte, split uint16) {
		for _, limit := range []int64{1000, 64 << 10} {
			want, werr := stdInflateLimit(body, limit)
			if len(body) == 0 { // an empty payload is an empty message
				want, werr = nil, nil
			}
			for _, server := range []bool{true, false} {
				fb := &frameBuilder{masked: server}
				fb.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(body))
				cut := int(split) % (len(fb.b) + 1)
				for _, src := range []io.Reader{
					bytes.NewReader(fb.b),
					io.MultiReader(bytes.NewReader(fb.b[:cut]), bytes.NewReader(fb.b[cut:])),
				} {
					rd := wire.NewReader(src, &wire.ReaderOptions{Server: server, MaxMessageSize: limit, ReadBufferSize: 512,
						Compression: wire.CompressionParams{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}})
					op, p, err := rd.Next()
					switch {
					case int64(len(p)) > limit:
						t.Fatalf("limit %d: %d bytes", limit, len(p))
					case err == nil && (op != wire.OpBinary || werr != nil || !bytes.Equal(p, want)):
						t.Fatalf("limit %d: got %v of %d bytes; compress/flate: %d bytes, %v", limit, op, len(p), len(want), werr)
					case err != nil && !errors.Is(err, wire.ErrInvalidDeflate) && !errors.Is(err, wire.ErrMessageTooBig):
						t.Fatalf("limit %d: %v", limit, err)
					case errors.Is(err, wire.ErrMessageTooBig) && werr != errTooBig && int64(len(body)) <= limit:
						t.Fatalf("limit %d: %v; compress/flate: %d bytes, %v", limit, err, len(want), werr)
					case errors.Is(err, wire.ErrInvalidDeflate) && werr == nil:
						t.Fatalf("limit %d: %v; compress/flate inflates %d bytes", limit, err, len(want))
					}
					if h := rd.Holding(); err != nil && h != 0 {
						t.Fatalf("holding %d bytes after %v", h, err)
					}
				}
			}
		}
	})
}

var errTooBig = errors.New("over the limit")

// stdInflateLimit inflates with compress/flate, reading at most limit+1
// bytes. Past the limit the message is too big, even when compress/flate
// finds the data corrupt after that: a reader stops at the limit.
func stdInflateLimit(body []byte, limit int64) ([]byte, error) {
	r := flate.NewReader(io.MultiReader(bytes.NewReader(body), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	p, err := io.ReadAll(io.LimitReader(r, limit+1))
	switch {
	case int64(len(p)) > limit:
		return nil, errTooBig
	case err != nil:
		return nil, err
	}
	return p, nil
}

// TestCompressedCloseCodes: a client whose server sends a bad compressed
// frame fails the connection with the code that says why: 1002 for RSV1
// where it may not be, 1007 for deflate that does not inflate or text
// that is not UTF-8 once inflated, 1009 for a message that inflates past
// the limit.
func TestCompressedCloseCodes(t *testing.T) {
	respond := func(key string) string {
		return respond101(key, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n")
	}
	tests := []struct {
		name  string
		frame func(f *frameBuilder)
		code  wire.StatusCode
	}{
		{"compressed ping", func(f *frameBuilder) { f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpPing}, "") }, wire.StatusProtocolError},
		{"compressed continuation", func(f *frameBuilder) {
			f.frameH(wire.Header{Rsv: wire.RSV1, Opcode: wire.OpText}, string(wire.AppendCompressed(nil, []byte("abc"))))
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpContinuation}, "")
		}, wire.StatusProtocolError},
		{"invalid deflate", func(f *frameBuilder) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, "\xff\xff")
		}, wire.StatusInvalidFramePayloadData},
		{"invalid UTF-8", func(f *frameBuilder) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, string(wire.AppendCompressed(nil, []byte("\xc3("))))
		}, wire.StatusInvalidFramePayloadData},
		{"too big", func(f *frameBuilder) {
			f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(wire.AppendCompressed(nil, make([]byte, 1<<20+1))))
		}, wire.StatusMessageTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p, err := dialPeer(t, "tcp", &wire.DialOptions{Options: wire.Options{Compression: takeover, MaxMessageSize: 1 << 20, CloseTimeout: closeTimeout}}, respond)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.CloseNow() })
			if cp := c.Compression(); !cp.Enabled || !cp.ServerNoContextTakeover || cp.ClientNoContextTakeover {
				t.Fatalf("Compression() = %+v", cp)
			}
			p.collect()
			fb := &frameBuilder{}
			tt.frame(fb)
			p.send(fb.b)
			if _, _, err := c.ReadMessage(); wire.CodeOf(err) != tt.code {
				t.Fatalf("ReadMessage = %v, want code %v", err, tt.code)
			}
			ev := p.next(t)
			if code, _, _ := wire.ParseClosePayload([]byte(ev.p)); ev.op != wire.OpClose || code != tt.code {
				t.Fatalf("peer got %v %q, want a close frame with %v", ev.op, ev.p, tt.code)
			}
		})
	}
}

// TestDialHonoursClientWindow: a server may limit the client's window
// (client_max_window_bits, since Dial says it can take one): the client
// then compresses with that window, and says so.
func TestDialHonoursClientWindow(t *testing.T) {
	for _, bits := range []int{8, 9, 12, 15} {
		t.Run(fmt.Sprint(bits), func(t *testing.T) {
			respond := func(key string) string {
				return respond101(key, fmt.Sprintf("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=%d\r\n", bits))
			}
			c, p, err := dialPeer(t, "tcp", &wire.DialOptions{Options: wire.Options{Compression: takeover}}, respond)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.CloseNow() })
			if cp := c.Compression(); cp.ClientMaxWindowBits != bits || cp.ServerMaxWindowBits != 15 {
				t.Fatalf("Compression() = %+v", cp)
			}
			// The peer inflates with compress/flate: the messages, each
			// with the 4 bytes its sender took off, are one deflate stream
			// (the client compresses with context takeover).
			var got []byte
			done := make(chan error, 1)
			go func() {
				br := bufio.NewReader(io.MultiReader(bytes.NewReader(p.buffered), p.nc))
				var stream []byte
				for range 3 {
					body, err := readRawFrame(br)
					if err != nil {
						done <- err
						return
					}
					if stream != nil {
						stream = append(stream, 0, 0, 0xff, 0xff)
					}
					stream = append(stream, body...)
				}
				var err error
				got, err = stdInflate(stream)
				done <- err
			}()
			var want []byte
			for i := range 3 {
				m := chatJSON(uint64(i), 5000)
				want = append(want, m...)
				if err := c.WriteMessage(wire.OpText, m); err != nil {
					t.Fatal(err)
				}
			}
			if err := await(t, done, "the peer", hang); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("peer: %d bytes, %v", len(got), err)
			}
		})
	}
}

// readRawFrame reads one masked frame that must be compressed, unmasked,
// and returns its payload.
func readRawFrame(br *bufio.Reader) ([]byte, error) {
	var hdr [wire.MaxHeaderSize]byte
	n := 2
	if _, err := io.ReadFull(br, hdr[:2]); err != nil {
		return nil, err
	}
	switch hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	n += 4
	if _, err := io.ReadFull(br, hdr[2:n]); err != nil {
		return nil, err
	}
	h, _, err := wire.ParseHeader(hdr[:n])
	if err != nil || h.Rsv != wire.RSV1 || !h.Fin {
		return nil, fmt.Errorf("frame %+v, %v", h, err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(br, p); err != nil {
		return nil, err
	}
	wire.Mask(p, h.Key, 0)
	return p, nil
}

// TestAcceptServerWindow: a client that asks for a small server window
// (server_max_window_bits) gets it, and the server's messages inflate.
func TestAcceptServerWindow(t *testing.T) {
	accepted := make(chan *wire.Conn, 1)
	url := serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		c, err := wire.Accept(w, r, &wire.AcceptOptions{Options: wire.Options{Compression: takeover}})
		if err != nil {
			t.Error(err)
			return
		}
		accepted <- c
	})
	for _, bits := range []int{8, 9, 10, 15} {
		ext := fmt.Sprintf("permessage-deflate; client_max_window_bits; server_max_window_bits=%d", bits)
		nc, br, resp := rawUpgrade(t, url, ext)
		want := fmt.Sprintf("permessage-deflate; server_max_window_bits=%d", bits)
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != want {
			t.Fatalf("answer %q, want %q", got, want)
		}
		c := await(t, accepted, "Accept", hang)
		if cp := c.Compression(); cp.ServerMaxWindowBits != bits || cp.ServerNoContextTakeover {
			t.Fatalf("Compression() = %+v", cp)
		}
		rd := wire.NewReader(br, &wire.ReaderOptions{Compression: wire.CompressionParams{Enabled: true, ServerMaxWindowBits: bits, ClientMaxWindowBits: 15}})
		for i := range 5 {
			m := proseText(uint64(i), 3000)
			if err := c.WriteMessage(wire.OpText, m); err != nil {
				t.Fatal(err)
			}
			if _, p, err := rd.Next(); err != nil || !bytes.Equal(p, m) {
				t.Fatalf("window %d, message %d: %d bytes, %v", bits, i, len(p), err)
			}
		}
		c.CloseNow()
		nc.Close()
	}
}

// serveFunc serves h on 127.0.0.1 and returns its ws:// URL.
func serveFunc(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "ws://" + ln.Addr().String()
}

// rawUpgrade sends an upgrade request offering ext and returns the
// connection, a reader of what follows the response, and the response.
func rawUpgrade(t *testing.T, url, ext string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(hang))
	req := "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: " + ext + "\r\n\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return nc, br, resp
}

// TestCompressedWriteContext: a write whose context ends before its
// message is compressed leaves the connection usable in either mode; one
// that ends after (it waits for a peer that does not read), closes it with
// context takeover, whose compressor has moved on, and leaves it usable
// without.
func TestCompressedWriteContext(t *testing.T) {
	respond := func(key string) string {
		return respond101(key, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
	}
	write := func(c *wire.Conn, p []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		return c.Write(ctx, wire.OpText, p)
	}
	for _, mode := range []wire.CompressionMode{noContext, takeover} {
		t.Run(mode.String(), func(t *testing.T) {
			r := respond
			if mode == noContext {
				r = func(key string) string {
					return respond101(key, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n")
				}
			}
			c, p, err := dialPeer(t, "pipe", &wire.DialOptions{Options: wire.Options{Compression: mode}}, r)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.CloseNow() })
			canceled, cancel := context.WithCancel(context.Background())
			cancel()
			if err := c.Write(canceled, wire.OpText, chatJSON(1, 1000)); !errors.Is(err, context.Canceled) {
				t.Fatalf("Write with a canceled context = %v", err)
			}
			err = write(c, chatJSON(2, 1000)) // the peer does not read: nothing goes out
			if mode == takeover {
				if !errors.Is(err, wire.ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Write = %v, want the connection closed", err)
				}
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Write = %v, want the context's end", err)
			}
			p.cp = c.Compression()
			p.collect()
			m := chatJSON(3, 1000)
			if err := c.WriteMessage(wire.OpText, m); err != nil {
				t.Fatal(err)
			}
			if ev := p.next(t); ev.p != string(m) {
				t.Fatalf("peer got %v of %d bytes, want only the last message", ev.op, len(ev.p))
			}
		})
	}
}

// TestCompressedZeroAllocs: a compressed round trip through an echo
// server (compress, write, read, inflate, on both sides) does not
// allocate once the pools are warm, with and without context takeover.
func TestCompressedZeroAllocs(t *testing.T) {
	if race.Enabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	for _, mode := range []wire.CompressionMode{noContext, takeover} {
		c := dial(t, echoServer(t, &wire.AcceptOptions{Options: wire.Options{Compression: mode}}), &wire.DialOptions{Options: wire.Options{Compression: mode}})
		for _, p := range [][]byte{chatJSON(1, 1<<10), proseText(1, 64<<10)} {
			roundTrip := func() {
				if err := c.WriteMessage(wire.OpText, p); err != nil {
					t.Fatal(err)
				}
				if _, got, err := c.ReadMessage(); err != nil || len(got) != len(p) {
					t.Fatalf("echo: %d bytes, %v", len(got), err)
				}
			}
			for range 10 {
				roundTrip()
			}
			if a := testing.AllocsPerRun(100, roundTrip); a != 0 {
				t.Errorf("%v, %d bytes: %v allocs per round trip, want 0", mode, len(p), a)
			}
		}
	}
}

// TestAppendCompressed: the body AppendCompressed makes inflates with
// compress/flate, lacks the 00 00 ff ff a sync flush ends with, goes in a
// frame built with AppendHeader that a Reader inflates, and costs no
// allocation when dst has room.
func TestAppendCompressed(t *testing.T) {
	for _, p := range [][]byte{nil, []byte("a"), chatJSON(1, 1<<10), proseText(2, 64<<10), randomBytes(3, 100_000)} {
		body := wire.AppendCompressed([]byte("prefix"), p)
		if !bytes.HasPrefix(body, []byte("prefix")) {
			t.Fatal("dst lost")
		}
		body = body[len("prefix"):]
		if got, err := stdInflate(body); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: inflated %d, %v", len(p), len(got), err)
		}
		if bytes.HasSuffix(body, []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("%d bytes: body ends with the sync flush's tail", len(p))
		}
		frame := wire.AppendHeader(nil, wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText, Length: int64(len(body))})
		frame = append(frame, body...)
		rd := wire.NewReader(bytes.NewReader(frame), &wire.ReaderOptions{Compression: wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ServerMaxWindowBits: 15}})
		if _, got, err := rd.Next(); err != nil && !errors.Is(err, wire.ErrInvalidUTF8) || err == nil && !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: read %d, %v", len(p), len(got), err)
		}
		if race.Enabled {
			continue
		}
		dst := make([]byte, 0, len(p)+len(p)/100+64)
		wire.AppendCompressed(dst, p) // warm the pool
		if a := testing.AllocsPerRun(20, func() { wire.AppendCompressed(dst, p) }); a != 0 {
			t.Errorf("%d bytes: %v allocs, want 0", len(p), a)
		}
	}
}

// TestCompressionMemory measures what compression costs a connection that
// is idle between messages, beyond the same connection without it: none
// without context takeover (compressors and decompressors go back to
// their pools after each message), and with it, the sender's compressor
// and the receiver's 32 KiB window, for the connection's life. Each pair
// of connections (server and client in this process) has sent and
// received a few compressed messages both ways, then a short one, which
// is not compressed; the server waits in Read.
func TestCompressionMemory(t *testing.T) {
	if race.Enabled || testing.Short() {
		t.Skip("measures the heap")
	}
	const pairs = 16
	measure := func(mode wire.CompressionMode) float64 {
		url := echoServer(t, &wire.AcceptOptions{Options: wire.Options{Compression: mode}})
		runtime.GC()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		conns := make([]*wire.Conn, pairs)
		for i := range conns {
			conns[i] = dial(t, url, &wire.DialOptions{Options: wire.Options{Compression: mode}})
			for j := range 4 {
				m := chatJSON(uint64(j), 2000)
				if j == 3 {
					m = m[:100]
				}
				if err := conns[i].WriteMessage(wire.OpText, m); err != nil {
					t.Fatal(err)
				}
				if _, p, err := conns[i].ReadMessage(); err != nil || !bytes.Equal(p, m) {
					t.Fatalf("echo: %v", err)
				}
			}
		}
		runtime.GC()
		runtime.GC() // the pools are empty: what remains is the connections'
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(conns)
		return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (2 * pairs)
	}
	plain := measure(wire.CompressionDisabled)
	nc := measure(noContext) - plain
	ct := measure(takeover) - plain
	t.Logf("heap per idle connection beyond one without compression: %.0f B without context takeover, %.0f KiB with it (%.0f B without compression)", nc, ct/1024, plain)
	if nc > 2<<10 {
		t.Errorf("without context takeover an idle connection holds %.0f more bytes, want next to none", nc)
	}
	if ct < 32<<10 || ct > 2<<20 {
		t.Errorf("with context takeover an idle connection holds %.0f more bytes, want its compressor and window", ct)
	}
}

// TestInflaterReuse: a message inflates the same whatever the pooled
// decompressor read before. klauspost/compress's decompressor keeps its
// Huffman tables across Reset, and decoded a block declaring an empty
// table with those of the message before (which FuzzInflate found: here
// 2 bytes grew to 2,066); putInflater primes it with tables of no one's.
func TestInflaterReuse(t *testing.T) {
	prev := []byte("\xec\xc1\x01\t\x00\x00\x00\x02\xa0\xfe\xaf.v\xa4")
	cur := []byte("\xec\xc1\x01\t\x00\x00\x00\x02\xa0\xfe\xaf.v$$")
	read := func(body []byte) error {
		fb := &frameBuilder{}
		fb.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(body))
		rd := wire.NewReader(bytes.NewReader(fb.b), &wire.ReaderOptions{MaxMessageSize: 1000,
			Compression: wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}})
		_, _, err := rd.Next()
		return err
	}
	for range 100 {
		read(prev)
		if err := read(cur); !errors.Is(err, wire.ErrInvalidDeflate) {
			t.Fatalf("after another message: %v, want ErrInvalidDeflate", err)
		}
	}
}

// TestInflaterNoLeak: a message that refers back past its own start (as
// if the peer compressed with context takeover when it agreed not to)
// fails with ErrInvalidDeflate, and never copies what the pooled
// decompressor's window holds of another connection's message.
func TestInflaterNoLeak(t *testing.T) {
	secret := bytes.Repeat([]byte("another user's secret; "), 100)
	// The secret compressed against itself as a dictionary: all
	// back-references (level 1 ignores a dictionary).
	var ref bytes.Buffer
	w, _ := flate.NewWriterDict(&ref, flate.DefaultCompression, secret)
	w.Write(secret)
	w.Flush()
	body := ref.Bytes()[:ref.Len()-4]
	var corrupt flate.CorruptInputError
	if _, err := io.ReadAll(flate.NewReader(bytes.NewReader(ref.Bytes()))); !errors.As(err, &corrupt) {
		t.Fatalf("compress/flate, without the dictionary: %v, want corrupt input", err)
	}
	read := func(body []byte) ([]byte, error) {
		fb := &frameBuilder{}
		fb.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpBinary}, string(body))
		rd := wire.NewReader(bytes.NewReader(fb.b), &wire.ReaderOptions{MaxMessageSize: 1 << 20,
			Compression: wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}})
		_, p, err := rd.Next()
		return p, err
	}
	for range 100 {
		if p, err := read(wire.AppendCompressed(nil, secret)); err != nil || !bytes.Equal(p, secret) {
			t.Fatalf("the secret: %d bytes, %v", len(p), err)
		}
		if p, err := read(body); !errors.Is(err, wire.ErrInvalidDeflate) || bytes.Contains(p, []byte("secret")) {
			t.Fatalf("a message referring past its start: %q, %v; want ErrInvalidDeflate", p, err)
		}
	}
}
