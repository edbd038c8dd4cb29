package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/shockwave-go/shockwave/internal/bufpool"
	"github.com/shockwave-go/shockwave/internal/race"
	"github.com/shockwave-go/shockwave/wire"
)

// Tests of a Reader whose source is non-blocking: it returns
// wire.ErrWouldBlock when it has nothing to give now.

// blockingReader hands out its data in chunks and returns ErrWouldBlock
// between chunks, as a non-blocking socket that receives the stream in
// pieces. After the data it returns end (io.EOF by default), or
// ErrWouldBlock for ever if stall is set.
type blockingReader struct {
	data  []byte
	off   int               // bytes handed out so far
	chunk func() int        // size of the next chunk
	end   error             // after the data; io.EOF if nil
	stall bool              // after the data, would block for ever
	ready bool              // the next Read gives data
	t     testing.TB        // for reporting a Read where there must be none
	wait  bool              // it returned ErrWouldBlock: no Read until Next returns
	wrap  func(error) error // if set, what to return instead of ErrWouldBlock
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if r.wait {
		r.t.Errorf("Read at offset %d after ErrWouldBlock, before Next returned", r.off)
	}
	if len(p) == 0 {
		r.t.Errorf("Read of 0 bytes at offset %d", r.off)
	}
	if r.off == len(r.data) && !r.stall {
		if r.end != nil {
			return 0, r.end
		}
		return 0, io.EOF
	}
	if !r.ready || r.off == len(r.data) {
		r.ready = true
		r.wait = true
		if r.wrap != nil {
			return 0, r.wrap(wire.ErrWouldBlock)
		}
		return 0, wire.ErrWouldBlock
	}
	r.ready = false
	n := copy(p, r.data[r.off:min(len(r.data), r.off+r.chunk())])
	r.off += n
	return n, nil
}

// poolCap returns the capacity of the pooled buffer that holds n bytes.
func poolCap(n int) int {
	bp := bufpool.Get(n)
	c := cap(*bp)
	bufpool.Put(bp)
	return c
}

// streamPoint says what a Reader that has read a stream up to some offset,
// and needs more, may hold.
type streamPoint struct {
	msgLen int  // bytes of the fragmented message in progress
	inMsg  bool // a fragmented message is in progress
}

// framePoints returns the offsets in b at which a frame ends (and 0), with
// the fragmented message in progress there. It stops at the first header
// that is not whole or breaks the rules the Reader checks there.
func framePoints(b []byte, server bool, limit int64) map[int]streamPoint {
	pts := map[int]streamPoint{0: {}}
	var cur streamPoint
	off := 0
	for {
		h, n, err := wire.ParseHeader(b[off:])
		if err != nil || n == 0 || h.Rsv != 0 || h.Opcode.IsReserved() || h.Masked != server ||
			h.Opcode.IsControl() && (!h.Fin || h.Length > wire.MaxControlPayload) ||
			h.Opcode == wire.OpContinuation && !cur.inMsg ||
			(h.Opcode == wire.OpText || h.Opcode == wire.OpBinary) && cur.inMsg ||
			!h.Opcode.IsControl() && int64(cur.msgLen)+h.Length > limit ||
			int64(len(b)-off-n) < h.Length {
			return pts
		}
		off += n + int(h.Length)
		if !h.Opcode.IsControl() {
			cur.msgLen += int(h.Length)
			cur.inMsg = !h.Fin
			if h.Fin {
				cur.msgLen = 0
			}
		}
		pts[off] = cur
	}
}

// readAllNB calls Next until it fails with an error other than
// ErrWouldBlock and returns the messages and that error. At each
// ErrWouldBlock at the end of a frame, it checks that the Reader holds no
// read buffer, and no assembly buffer unless a message is in progress.
func readAllNB(t testing.TB, rd *wire.Reader, src *blockingReader, pts map[int]streamPoint, bufSize int) ([]message, error) {
	t.Helper()
	var msgs []message
	limit := 4*len(src.data) + 100
	for range limit {
		op, p, err := rd.Next()
		if errors.Is(err, wire.ErrWouldBlock) {
			if err != wire.ErrWouldBlock || op != 0 || p != nil {
				t.Fatalf("at offset %d: Next returned %v, %q, %v; want 0, nil, ErrWouldBlock", src.off, op, p, err)
			}
			if !src.wait {
				t.Fatalf("at offset %d: Next returned ErrWouldBlock, the source did not", src.off)
			}
			src.wait = false
			if pt, ok := pts[src.off]; ok {
				want := 0
				if pt.inMsg {
					want = poolCap(pt.msgLen)
				}
				if got := rd.Holding(); got != want {
					t.Fatalf("at offset %d, end of a frame (%+v), buffer %d: Holding() = %d, want %d",
						src.off, pt, bufSize, got, want)
				}
			}
			continue
		}
		src.wait = false
		if err != nil {
			if h := rd.Holding(); h != 0 {
				t.Fatalf("after %v: Holding() = %d", err, h)
			}
			return msgs, err
		}
		msgs = append(msgs, message{op, string(p)})
	}
	t.Fatalf("no error after %d calls of Next", limit)
	return nil, nil
}

// nbChunkSizes are the sizes of the pieces the non-blocking source hands
// out between two ErrWouldBlock.
var nbChunkSizes = []int{1, 2, 3, 7, 100, 4096}

// TestReaderWouldBlock runs every case of TestReader through a source that
// returns ErrWouldBlock between every chunk, and checks that the Reader
// returns exactly what it returns when reading the same stream blocking,
// and that it holds no buffer when it waits at the end of a frame.
func TestReaderWouldBlock(t *testing.T) {
	for _, tc := range readerCases {
		for _, server := range []bool{true, false} {
			if tc.side == serverOnly && !server || tc.side == clientOnly && server {
				continue
			}
			f := &frameBuilder{masked: server}
			tc.build(f)
			name := fmt.Sprintf("%s/server=%v", tc.name, server)
			t.Run(name, func(t *testing.T) {
				limit := tc.max
				if limit == 0 {
					limit = wire.DefaultMaxMessageSize
				}
				pts := framePoints(f.b, server, limit)
				for _, bufSize := range []int{512, 0} {
					opts := &wire.ReaderOptions{Server: server, MaxMessageSize: tc.max, ReadBufferSize: bufSize}
					want, wantErr := readAll(t, wire.NewReader(bytes.NewReader(f.b), opts), len(f.b)+2)
					if !slicesEqual(want, tc.want) || !errors.Is(wantErr, tc.err) {
						t.Fatalf("blocking, buffer %d: got %v, %v; want %v, %v", bufSize, want, wantErr, tc.want, tc.err)
					}
					for _, size := range nbChunkSizes {
						if len(f.b) > 20_000 && size < 7 && bufSize == 0 {
							size += 7 // long streams byte by byte only once, to keep the test fast
						}
						src := &blockingReader{data: f.b, chunk: func() int { return size }, t: t}
						rd := wire.NewReader(src, opts)
						msgs, err := readAllNB(t, rd, src, pts, bufSize)
						if !slicesEqual(msgs, want) || err != wantErr {
							t.Fatalf("chunks of %d, buffer %d: got %v, %v; blocking got %v, %v", size, bufSize, msgs, err, want, wantErr)
						}
						if _, _, err2 := rd.Next(); err2 != err {
							t.Fatalf("chunks of %d: Next after %v returned %v", size, err, err2)
						}
					}
				}
			})
		}
	}
}

// nbCases are streams made to stop in every state a Reader can wait in.
var nbCases = []struct {
	name  string
	max   int64
	build func(f *frameBuilder)
}{
	{"small messages of each kind", 0, func(f *frameBuilder) {
		f.frame(wire.OpText, true, "héllo").frame(wire.OpBinary, true, "\x00\xff").frame(wire.OpPing, true, "p").
			frame(wire.OpPong, true, "").frame(wire.OpText, true, "").frame(wire.OpClose, true, "\x03\xe8bye")
	}},
	{"large text and binary", 0, func(f *frameBuilder) {
		f.frame(wire.OpText, true, textOf(20_000)).frame(wire.OpBinary, true, strings.Repeat("\xa5", 33_333)).
			frame(wire.OpText, true, "after")
	}},
	{"fragmented binary with control frames", 0, func(f *frameBuilder) {
		f.frame(wire.OpBinary, false, strings.Repeat("a", 700)).frame(wire.OpPing, true, "1").
			frame(wire.OpContinuation, false, strings.Repeat("b", 5000)).frame(wire.OpPong, true, "2").
			frame(wire.OpContinuation, false, "").frame(wire.OpPing, true, strings.Repeat("3", 125)).
			frame(wire.OpContinuation, true, strings.Repeat("c", 20_000)).frame(wire.OpBinary, true, "next")
	}},
	{"fragmented text split inside characters", 0, func(f *frameBuilder) {
		s := textOf(9000)
		for i := 0; i < len(s); i += 997 {
			op := wire.OpContinuation
			if i == 0 {
				op = wire.OpText
			}
			f.frame(op, i+997 >= len(s), s[i:min(len(s), i+997)]).frame(wire.OpPing, true, "")
		}
	}},
	{"message growing past the assembly buffer", 0, func(f *frameBuilder) {
		f.frame(wire.OpText, false, "x").frame(wire.OpContinuation, false, textOf(5000)).
			frame(wire.OpContinuation, true, textOf(70_000))
	}},
	{"invalid UTF-8 in an early fragment", 0, func(f *frameBuilder) {
		f.frame(wire.OpText, false, "ok").frame(wire.OpContinuation, false, "a\xed\xa0\x80").
			frame(wire.OpContinuation, true, textOf(50_000))
	}},
	{"invalid UTF-8 in a frame that fits the buffer", 0, func(f *frameBuilder) {
		f.frame(wire.OpText, true, "abc\xf4\x90"+textOf(400))
	}},
	{"message too big after fragments", 10_000, func(f *frameBuilder) {
		f.frame(wire.OpBinary, false, strings.Repeat("a", 6000)).frame(wire.OpPing, true, "").
			frame(wire.OpContinuation, false, strings.Repeat("b", 4000)).frame(wire.OpContinuation, true, "c")
	}},
	{"protocol error after a large message", 0, func(f *frameBuilder) {
		f.frame(wire.OpBinary, true, strings.Repeat("z", 30_000)).frame(wire.OpPing, false, "")
	}},
	{"EOF in a large payload", 0, func(f *frameBuilder) {
		f.frame(wire.OpText, false, "start").header(wire.OpContinuation, true, 40_000, textOf(10_000))
	}},
}

// TestReaderWouldBlockStates reads the nbCases through sources that block
// between chunks of fixed and of random sizes, sometimes several times in a
// row, with ErrWouldBlock as it is and wrapped, and with part of the stream
// given as Buffered. The Reader must return what it returns when reading
// the stream blocking.
func TestReaderWouldBlockStates(t *testing.T) {
	for _, tc := range nbCases {
		for _, server := range []bool{true, false} {
			f := &frameBuilder{masked: server}
			tc.build(f)
			t.Run(fmt.Sprintf("%s/server=%v", tc.name, server), func(t *testing.T) {
				limit := tc.max
				if limit == 0 {
					limit = wire.DefaultMaxMessageSize
				}
				pts := framePoints(f.b, server, limit)
				for _, bufSize := range []int{512, 0} {
					opts := wire.ReaderOptions{Server: server, MaxMessageSize: tc.max, ReadBufferSize: bufSize}
					want, wantErr := readAll(t, wire.NewReader(bytes.NewReader(f.b), &opts), len(f.b)+2)
					check := func(what string, src *blockingReader, opts wire.ReaderOptions) {
						t.Helper()
						rd := wire.NewReader(src, &opts)
						msgs, err := readAllNB(t, rd, src, pts, bufSize)
						if !slicesEqual(msgs, want) || err != wantErr {
							t.Fatalf("%s, buffer %d: got %v, %v; blocking got %v, %v", what, bufSize, msgs, err, want, wantErr)
						}
					}
					for _, size := range nbChunkSizes {
						check(fmt.Sprintf("chunks of %d", size), &blockingReader{data: f.b, chunk: func() int { return size }, t: t}, opts)
					}
					for seed := range uint64(3) {
						rng := rand.New(rand.NewPCG(seed, 3))
						src := &blockingReader{data: f.b, chunk: func() int { return 1 + rng.IntN(3000) }, t: t}
						// Sometimes block twice in a row.
						src.wrap = func(err error) error {
							if rng.IntN(3) == 0 {
								src.ready = false
							}
							return err
						}
						check(fmt.Sprintf("random chunks, seed %d", seed), src, opts)
					}
					wrapped := &blockingReader{data: f.b, chunk: func() int { return 1000 }, t: t,
						wrap: func(err error) error { return fmt.Errorf("socket: %w", err) }}
					check("ErrWouldBlock wrapped", wrapped, opts)
					for _, cut := range []int{1, 9, 600, len(f.b) / 2} {
						cut = min(cut, len(f.b))
						// Buffered holds the first bytes; the frame points
						// are offsets in the whole stream, so shift them.
						src := &blockingReader{data: f.b, off: cut, chunk: func() int { return 333 }, t: t}
						o := opts
						o.Buffered = f.b[:cut]
						check(fmt.Sprintf("Buffered %d bytes", cut), src, o)
					}
				}
			})
		}
	}
}

// TestReaderWouldBlockDecidesEarly checks that limits and bad text are
// reported on the bytes already there when the rest would block for ever.
func TestReaderWouldBlockDecidesEarly(t *testing.T) {
	tests := []struct {
		name  string
		max   int64
		build func(f *frameBuilder)
		err   error
	}{
		{"too big at the header", 1 << 10, func(f *frameBuilder) { f.header(wire.OpBinary, true, 1<<10+1, "") }, wire.ErrMessageTooBig},
		{"continuation too big at the header", 1 << 10, func(f *frameBuilder) {
			f.frame(wire.OpBinary, false, "x").header(wire.OpContinuation, true, 1<<10, "")
		}, wire.ErrMessageTooBig},
		{"control too long at the header", 0, func(f *frameBuilder) { f.header(wire.OpPing, true, 126, "") }, wire.ErrControlTooLong},
		{"bad opcode", 0, func(f *frameBuilder) { f.header(wire.OpText, false, 3, "abc").header(3, true, 10, "") }, wire.ErrReservedOpcode},
		{"surrogate in a small frame", 0, func(f *frameBuilder) { f.header(wire.OpText, true, 100, "ok \xed\xa0") }, wire.ErrInvalidUTF8},
		{"overlong in a large frame", 0, func(f *frameBuilder) { f.header(wire.OpText, true, 1<<20, textOf(3000)+"\xe0\x80") }, wire.ErrInvalidUTF8},
		{"bad byte in an early fragment", 0, func(f *frameBuilder) {
			f.frame(wire.OpText, false, "abc").frame(wire.OpPing, true, "").header(wire.OpContinuation, false, 1000, "\xc0")
		}, wire.ErrInvalidUTF8},
		{"bad byte deep in a large fragment", 0, func(f *frameBuilder) {
			f.frame(wire.OpText, false, textOf(40_000)).header(wire.OpContinuation, false, 100_000, textOf(20_000)+"\xff")
		}, wire.ErrInvalidUTF8},
	}
	for _, tt := range tests {
		for _, server := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/server=%v", tt.name, server), func(t *testing.T) {
				f := &frameBuilder{masked: server}
				tt.build(f)
				for _, bufSize := range []int{512, 0} {
					for _, size := range nbChunkSizes {
						src := &blockingReader{data: f.b, chunk: func() int { return size }, stall: true, t: t}
						rd := wire.NewReader(src, &wire.ReaderOptions{Server: server, MaxMessageSize: tt.max, ReadBufferSize: bufSize})
						err := wire.ErrWouldBlock
						for i := 0; (err == wire.ErrWouldBlock || err == nil) && i < 4*len(f.b)+10; i++ {
							src.wait = false
							_, _, err = rd.Next()
						}
						if !errors.Is(err, tt.err) {
							t.Fatalf("chunks of %d, buffer %d: got %v after %d of %d bytes; want %v", size, bufSize, err, src.off, len(f.b), tt.err)
						}
					}
				}
			})
		}
	}
}

// TestReaderWouldBlockHolding follows the buffers a Reader holds while a
// small message, a large one and a fragmented one arrive in pieces.
func TestReaderWouldBlockHolding(t *testing.T) {
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, true, "hi")
	small := len(f.b)
	f.frame(wire.OpBinary, true, strings.Repeat("L", 40_000))
	large := len(f.b)
	f.frame(wire.OpText, false, "frag")
	first := len(f.b)
	f.frame(wire.OpContinuation, true, "ment")

	src := &blockingReader{data: f.b, t: t}
	rd := wire.NewReader(src, &wire.ReaderOptions{Server: true})
	defer rd.Release()
	steps := []struct {
		chunk   int
		op      wire.Opcode // 0: ErrWouldBlock
		holding int
	}{
		{0, 0, 0},   // nothing yet
		{1, 0, 512}, // a header byte: kept in a small buffer
		{small - 1, wire.OpText, wire.DefaultReadBufferSize}, // the message, in place
		{0, 0, 0}, // nothing buffered: the buffer goes back
		// Large: the assembly buffer holds what has come, not what the
		// header announces; a full one grows to the next size class.
		{10, 0, 512},          // 2 bytes of payload
		{510, 0, 4 << 10},     // 512: full
		{40_000, 0, 16 << 10}, // each read fills its class
		{40_000, 0, 64 << 10},
		{40_000, wire.OpBinary, 64 << 10},
		{0, 0, 0},
		{first - large, 0, poolCap(4)}, // first fragment: assembly kept
		{3, 0, poolCap(4) + 512},
		{len(f.b) - first - 3, wire.OpText, poolCap(8) + wire.DefaultReadBufferSize},
	}
	for i, s := range steps {
		size := s.chunk
		src.chunk = func() int { return size }
		src.ready = size > 0
		src.wait = false
		op, p, err := rd.Next()
		if s.op == 0 && err != wire.ErrWouldBlock || s.op != 0 && (err != nil || op != s.op) {
			t.Fatalf("step %d: Next = %v, %d bytes, %v; want %v", i, op, len(p), err, s.op)
		}
		if got := rd.Holding(); got != s.holding {
			t.Fatalf("step %d: Holding() = %d, want %d", i, got, s.holding)
		}
		// Here a Reader is idle exactly when it holds nothing.
		if got := rd.Idle(); got != (s.holding == 0) {
			t.Fatalf("step %d: Idle() = %v", i, got)
		}
	}
	if _, _, err := rd.Next(); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
	if rd.Idle() {
		t.Fatal("after EOF: Idle() = true")
	}
	if h := rd.Holding(); h != 0 {
		t.Fatalf("after EOF: Holding() = %d", h)
	}
}

// TestReaderWouldBlockRelease checks that Release and Reset in the middle
// of a frame give the buffers back and start afresh.
func TestReaderWouldBlockRelease(t *testing.T) {
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, false, textOf(3000)).header(wire.OpContinuation, true, 1000, "abc")
	src := &blockingReader{data: f.b, chunk: func() int { return len(f.b) }, stall: true, t: t}
	rd := wire.NewReader(src, &wire.ReaderOptions{Server: true})
	for range 3 {
		src.wait = false
		if _, _, err := rd.Next(); err != wire.ErrWouldBlock {
			t.Fatalf("Next: %v", err)
		}
	}
	if rd.Holding() == 0 {
		t.Fatal("Holding() = 0 in the middle of a message")
	}
	rd.Release()
	if h := rd.Holding(); h != 0 {
		t.Fatalf("after Release: Holding() = %d", h)
	}
	g := &frameBuilder{masked: true}
	g.frame(wire.OpBinary, true, "fresh")
	rd.Reset(bytes.NewReader(g.b), &wire.ReaderOptions{Server: true})
	msgs, err := readAll(t, rd, 10)
	if !slicesEqual(msgs, []message{{wire.OpBinary, "fresh"}}) || err != io.EOF {
		t.Fatalf("after Reset: %v, %v", msgs, err)
	}
}

// TestReaderWouldBlockSourceError checks that an error of the source in the
// middle of a frame, after ErrWouldBlock, is returned as it is and sticks,
// and that the Reader then holds no buffer.
func TestReaderWouldBlockSourceError(t *testing.T) {
	reset := errors.New("connection reset")
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, true, "ok").frame(wire.OpText, false, textOf(2000)).header(wire.OpContinuation, true, 30_000, "abc")
	for _, size := range nbChunkSizes {
		src := &blockingReader{data: f.b, chunk: func() int { return size }, end: reset, t: t}
		rd := wire.NewReader(src, &wire.ReaderOptions{Server: true})
		msgs, err := readAllNB(t, rd, src, framePoints(f.b, true, wire.DefaultMaxMessageSize), 0)
		if !slicesEqual(msgs, []message{{wire.OpText, "ok"}}) || err != reset {
			t.Fatalf("chunks of %d: got %v, %v; want the message, then %v", size, msgs, err, reset)
		}
		if _, _, err := rd.Next(); err != reset {
			t.Fatalf("chunks of %d: second Next: %v", size, err)
		}
	}
}

// TestReaderWouldBlockHasFrame checks HasFrame while a frame is half read.
func TestReaderWouldBlockHasFrame(t *testing.T) {
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, true, "one").frame(wire.OpText, true, "two")
	src := &blockingReader{data: f.b, chunk: func() int { return len(f.b) - 2 }, t: t}
	rd := wire.NewReader(src, &wire.ReaderOptions{Server: true})
	defer rd.Release()
	src.wait = false
	if _, _, err := rd.Next(); err != wire.ErrWouldBlock {
		t.Fatalf("first Next: %v", err)
	}
	src.wait = false
	if op, p, err := rd.Next(); err != nil || op != wire.OpText || string(p) != "one" {
		t.Fatalf("second Next: %v, %q, %v", op, p, err)
	}
	if rd.HasFrame() {
		t.Fatal("HasFrame with the second frame short of 2 bytes")
	}
	src.wait = false
	if _, _, err := rd.Next(); err != wire.ErrWouldBlock {
		t.Fatalf("third Next: %v", err)
	}
	if rd.HasFrame() {
		t.Fatal("HasFrame in the middle of a frame")
	}
	src.wait = false
	if op, p, err := rd.Next(); err != nil || op != wire.OpText || string(p) != "two" {
		t.Fatalf("last Next: %v, %q, %v", op, p, err)
	}
}

// TestReaderWouldBlockZeroAllocs checks that a Reader that waits between
// messages does not allocate, though its read buffer goes back to the pool
// each time.
func TestReaderWouldBlockZeroAllocs(t *testing.T) {
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, true, "hello, wörld").frame(wire.OpBinary, true, strings.Repeat("b", 1000)).
		frame(wire.OpText, false, "frag").frame(wire.OpPing, true, "").frame(wire.OpContinuation, true, "mented").
		frame(wire.OpBinary, true, strings.Repeat("L", 40_000))
	if race.Enabled {
		t.Skip("the race detector makes sync.Pool drop buffers")
	}
	src := &loopBlockReader{data: f.b, chunk: 777}
	rd := wire.NewReader(src, &wire.ReaderOptions{Server: true})
	defer rd.Release()
	next := func() { nextMessage(t, rd) }
	for range 20 { // warm the pools
		next()
	}
	if a := testing.AllocsPerRun(500, next); a != 0 {
		t.Errorf("Next: %v allocs per message, want 0", a)
	}
}

// nextMessage calls Next until it returns a message, past ErrWouldBlock.
func nextMessage(tb testing.TB, rd *wire.Reader) {
	for {
		_, _, err := rd.Next()
		if err == nil {
			return
		}
		if err != wire.ErrWouldBlock {
			tb.Fatal(err)
		}
	}
}

// loopBlockReader returns its data over and over in chunks, with
// ErrWouldBlock after each.
type loopBlockReader struct {
	data    []byte
	off     int
	chunk   int
	blocked bool
}

func (r *loopBlockReader) Read(p []byte) (int, error) {
	if r.blocked = !r.blocked; !r.blocked {
		return 0, wire.ErrWouldBlock
	}
	n := copy(p, r.data[r.off:min(len(r.data), r.off+r.chunk)])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// BenchmarkReaderWouldBlock reads masked messages from a non-blocking
// source that hands out chunk bytes between two ErrWouldBlock. With a chunk
// of one frame, the Reader parks after every message, giving its read
// buffer back and taking it again. One op is one message.
func BenchmarkReaderWouldBlock(b *testing.B) {
	benchmarks := []struct {
		name  string
		size  int
		chunk int // 0: one frame
		op    wire.Opcode
	}{
		{"msg=text/size=16/chunk=frame", 16, 0, wire.OpText},
		{"msg=binary/size=1000/chunk=frame", 1000, 0, wire.OpBinary},
		{"msg=binary/size=1000/chunk=4K", 1000, 4096, wire.OpBinary},
		{"msg=binary/size=64K/chunk=4K", 64 << 10, 4096, wire.OpBinary},
		{"msg=text/size=64K/chunk=4K", 64 << 10, 4096, wire.OpText},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			f := &frameBuilder{masked: true}
			p := strings.Repeat("b", bm.size)
			if bm.op == wire.OpText {
				p = textOf(bm.size)
			}
			frames := max(1, 16<<10/bm.size)
			for range frames {
				f.frame(bm.op, true, p)
			}
			src := &loopBlockReader{data: f.b, chunk: bm.chunk}
			if bm.chunk == 0 {
				src.chunk = len(f.b) / frames
			}
			rd := wire.NewReader(src, &wire.ReaderOptions{Server: true})
			defer rd.Release()
			next := func() { nextMessage(b, rd) }
			for range 100 { // warm the pools
				next()
			}
			b.ReportAllocs()
			b.SetBytes(int64(bm.size))
			for b.Loop() {
				next()
			}
		})
	}
}
