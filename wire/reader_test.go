package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/shockwave-go/shockwave/wire"
)

// frameBuilder writes frames as one side would send them: masked, with a
// different key each time, when they go to a server.
type frameBuilder struct {
	b      []byte
	masked bool
	n      byte
}

func (f *frameBuilder) key() [4]byte {
	f.n++
	return [4]byte{f.n, 0x5a, 0xa5, f.n * 7}
}

// frame appends a whole frame.
func (f *frameBuilder) frame(op wire.Opcode, fin bool, p string) *frameBuilder {
	return f.frameH(wire.Header{Fin: fin, Opcode: op}, p)
}

// frameH appends a whole frame with the header fields of h other than
// masking and length.
func (f *frameBuilder) frameH(h wire.Header, p string) *frameBuilder {
	h.Masked = f.masked
	if f.masked {
		h.Key = f.key()
	}
	f.b = wire.AppendFrame(f.b, h, []byte(p))
	return f
}

// header appends only a header announcing length bytes, and the first
// bytes of the payload, masked.
func (f *frameBuilder) header(op wire.Opcode, fin bool, length int64, p string) *frameBuilder {
	h := wire.Header{Fin: fin, Opcode: op, Masked: f.masked, Length: length}
	if f.masked {
		h.Key = f.key()
	}
	f.b = wire.AppendHeader(f.b, h)
	start := len(f.b)
	f.b = append(f.b, p...)
	if f.masked {
		wire.Mask(f.b[start:], h.Key, 0)
	}
	return f
}

// raw appends bytes as they are.
func (f *frameBuilder) raw(b ...byte) *frameBuilder {
	f.b = append(f.b, b...)
	return f
}

type message struct {
	op wire.Opcode
	p  string
}

func (m message) String() string {
	if len(m.p) > 40 {
		return fmt.Sprintf("%v(%d bytes)", m.op, len(m.p))
	}
	return fmt.Sprintf("%v(%q)", m.op, m.p)
}

// readAll calls Next until it fails and returns the messages and the error.
func readAll(t testing.TB, rd *wire.Reader, limit int) ([]message, error) {
	t.Helper()
	var msgs []message
	for range limit {
		op, p, err := rd.Next()
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, message{op, string(p)})
	}
	t.Fatalf("no error after %d calls of Next", limit)
	return nil, nil
}

// chunkReader returns its data in pieces of random sizes from 1 to max,
// and, if eofWithData, io.EOF together with the last piece.
type chunkReader struct {
	data        []byte
	rng         *rand.Rand
	max         int
	eofWithData bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data[:min(len(r.data), 1+r.rng.IntN(r.max))])
	r.data = r.data[n:]
	if r.eofWithData && len(r.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// readerSources are the ways a stream is handed to the Reader.
var readerSources = []struct {
	name  string
	seeds int // how many seeds to try, for the random ones
	new   func(b []byte, seed uint64) io.Reader
}{
	{"whole", 1, func(b []byte, _ uint64) io.Reader { return bytes.NewReader(b) }},
	{"one byte", 1, func(b []byte, _ uint64) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half", 1, func(b []byte, _ uint64) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"data with EOF", 1, func(b []byte, _ uint64) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	{"random small", 3, func(b []byte, seed uint64) io.Reader {
		return &chunkReader{data: b, rng: rand.New(rand.NewPCG(seed, 1)), max: 7}
	}},
	{"random large", 3, func(b []byte, seed uint64) io.Reader {
		return &chunkReader{data: b, rng: rand.New(rand.NewPCG(seed, 2)), max: 3000, eofWithData: true}
	}},
}

type side int

const (
	both side = iota
	serverOnly
	clientOnly
)

// textOf returns valid UTF-8 text of n bytes with characters of every
// length, so that any split is likely to cut one.
func textOf(n int) string {
	chars := []string{"a", "é", "€", "𝄞"}
	b := make([]byte, 0, n)
	for i := 0; len(b) < n; i++ {
		c := chars[i%len(chars)]
		if len(b)+len(c) > n {
			c = "a"
		}
		b = append(b, c...)
	}
	return string(b)
}

func TestTextOf(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 511, 512, 513, 70000} {
		if s := textOf(n); len(s) != n || !wire.ValidUTF8([]byte(s)) {
			t.Fatalf("textOf(%d): %d bytes, valid %v", n, len(s), wire.ValidUTF8([]byte(s)))
		}
	}
}

var readerCases = []struct {
	name  string
	side  side
	max   int64
	build func(f *frameBuilder)
	want  []message
	err   error // after the messages
}{
	{
		name:  "empty stream",
		build: func(f *frameBuilder) {},
		err:   io.EOF,
	},
	{
		name:  "text",
		build: func(f *frameBuilder) { f.frame(wire.OpText, true, "Hello") },
		want:  []message{{wire.OpText, "Hello"}},
		err:   io.EOF,
	},
	{
		name: "empty messages",
		build: func(f *frameBuilder) {
			f.frame(wire.OpText, true, "").frame(wire.OpBinary, true, "").frame(wire.OpPing, true, "")
		},
		want: []message{{wire.OpText, ""}, {wire.OpBinary, ""}, {wire.OpPing, ""}},
		err:  io.EOF,
	},
	{
		name: "RFC fragmented Hello",
		build: func(f *frameBuilder) {
			f.frame(wire.OpText, false, "Hel").frame(wire.OpContinuation, true, "lo")
		},
		want: []message{{wire.OpText, "Hello"}},
		err:  io.EOF,
	},
	{
		name: "control frames between fragments",
		build: func(f *frameBuilder) {
			f.frame(wire.OpBinary, false, "one ").
				frame(wire.OpPing, true, "p1").
				frame(wire.OpContinuation, false, "").
				frame(wire.OpPong, true, "p2").
				frame(wire.OpContinuation, false, "two ").
				frame(wire.OpPing, true, "").
				frame(wire.OpContinuation, true, "three").
				frame(wire.OpText, true, "next")
		},
		want: []message{{wire.OpPing, "p1"}, {wire.OpPong, "p2"}, {wire.OpPing, ""}, {wire.OpBinary, "one two three"}, {wire.OpText, "next"}},
		err:  io.EOF,
	},
	{
		name: "characters split across fragments",
		build: func(f *frameBuilder) {
			f.frame(wire.OpText, false, "a\xE2").
				frame(wire.OpContinuation, false, "\x82").
				frame(wire.OpPing, true, "x").
				frame(wire.OpContinuation, false, "\xAC\xF0\x9D").
				frame(wire.OpContinuation, true, "\x84\x9E")
		},
		want: []message{{wire.OpPing, "x"}, {wire.OpText, "a€𝄞"}},
		err:  io.EOF,
	},
	{
		name: "close frame is returned as is",
		build: func(f *frameBuilder) {
			f.frame(wire.OpText, true, "bye").frame(wire.OpClose, true, "\x03\xe8done")
		},
		want: []message{{wire.OpText, "bye"}, {wire.OpClose, "\x03\xe8done"}},
		err:  io.EOF,
	},
	{
		name: "long control frame",
		build: func(f *frameBuilder) {
			f.frame(wire.OpPing, true, strings.Repeat("p", 125))
		},
		want: []message{{wire.OpPing, strings.Repeat("p", 125)}},
		err:  io.EOF,
	},
	{
		name: "sizes around the length encodings and the buffer",
		build: func(f *frameBuilder) {
			for _, n := range []int{125, 126, 497, 498, 499, 511, 512, 513, 4096, 65535, 65536, 70000} {
				f.frame(wire.OpBinary, true, strings.Repeat("b", n)).frame(wire.OpText, true, textOf(n))
			}
		},
		want: func() []message {
			var m []message
			for _, n := range []int{125, 126, 497, 498, 499, 511, 512, 513, 4096, 65535, 65536, 70000} {
				m = append(m, message{wire.OpBinary, strings.Repeat("b", n)}, message{wire.OpText, textOf(n)})
			}
			return m
		}(),
		err: io.EOF,
	},
	{
		name: "large fragmented text",
		build: func(f *frameBuilder) {
			s := textOf(100_000)
			f.frame(wire.OpText, false, s[:33_333]).frame(wire.OpPing, true, "").
				frame(wire.OpContinuation, false, s[33_333:33_334]).
				frame(wire.OpContinuation, true, s[33_334:])
		},
		want: []message{{wire.OpPing, ""}, {wire.OpText, textOf(100_000)}},
		err:  io.EOF,
	},
	{
		name: "message of exactly the limit",
		max:  1000,
		build: func(f *frameBuilder) {
			f.frame(wire.OpBinary, false, strings.Repeat("x", 600)).frame(wire.OpContinuation, true, strings.Repeat("y", 400))
		},
		want: []message{{wire.OpBinary, strings.Repeat("x", 600) + strings.Repeat("y", 400)}},
		err:  io.EOF,
	},

	// Truncated streams.
	{
		name:  "EOF in the header",
		build: func(f *frameBuilder) { f.frame(wire.OpText, true, "ok").raw(0x81) },
		want:  []message{{wire.OpText, "ok"}},
		err:   io.ErrUnexpectedEOF,
	},
	{
		name:  "EOF in the extended length",
		build: func(f *frameBuilder) { f.raw(0x82, 0x7f, 0, 0) },
		err:   io.ErrUnexpectedEOF,
	},
	{
		name:  "EOF in the payload",
		build: func(f *frameBuilder) { f.header(wire.OpBinary, true, 10, "12345") },
		err:   io.ErrUnexpectedEOF,
	},
	{
		name:  "EOF in a large payload",
		build: func(f *frameBuilder) { f.header(wire.OpText, true, 100_000, textOf(5000)) },
		err:   io.ErrUnexpectedEOF,
	},
	{
		name:  "EOF between fragments",
		build: func(f *frameBuilder) { f.frame(wire.OpText, false, "unfinished") },
		err:   io.ErrUnexpectedEOF,
	},

	// Protocol errors.
	{
		name:  "RSV1 without extension",
		build: func(f *frameBuilder) { f.frameH(wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText}, "x") },
		err:   wire.ErrReservedBits,
	},
	{
		name: "RSV3 on a continuation",
		build: func(f *frameBuilder) {
			f.frame(wire.OpText, false, "a").frameH(wire.Header{Fin: true, Rsv: wire.RSV3}, "b")
		},
		err: wire.ErrReservedBits,
	},
	{
		name:  "RSV2 on a ping",
		build: func(f *frameBuilder) { f.frameH(wire.Header{Fin: true, Rsv: wire.RSV2, Opcode: wire.OpPing}, "") },
		err:   wire.ErrReservedBits,
	},
	{
		name:  "reserved data opcode",
		build: func(f *frameBuilder) { f.frame(wire.OpText, true, "first").frame(3, true, "x") },
		want:  []message{{wire.OpText, "first"}},
		err:   wire.ErrReservedOpcode,
	},
	{
		name:  "reserved control opcode",
		build: func(f *frameBuilder) { f.frame(0xB, true, "") },
		err:   wire.ErrReservedOpcode,
	},
	{
		name:  "unmasked frame to a server",
		side:  serverOnly,
		build: func(f *frameBuilder) { f.raw(0x81, 0x02, 'h', 'i') },
		err:   wire.ErrUnmasked,
	},
	{
		name:  "masked frame to a client",
		side:  clientOnly,
		build: func(f *frameBuilder) { f.raw(0x81, 0x82, 1, 2, 3, 4, 'h'^1, 'i'^2) },
		err:   wire.ErrMasked,
	},
	{
		name:  "fragmented ping",
		build: func(f *frameBuilder) { f.frame(wire.OpPing, false, "a") },
		err:   wire.ErrFragmentedControl,
	},
	{
		name:  "fragmented close",
		build: func(f *frameBuilder) { f.frame(wire.OpClose, false, "") },
		err:   wire.ErrFragmentedControl,
	},
	{
		name:  "ping of 126 bytes",
		build: func(f *frameBuilder) { f.frame(wire.OpPing, true, strings.Repeat("p", 126)) },
		err:   wire.ErrControlTooLong,
	},
	{
		name:  "close announcing 64 KiB, payload missing",
		build: func(f *frameBuilder) { f.header(wire.OpClose, true, 65536, "") },
		err:   wire.ErrControlTooLong,
	},
	{
		name:  "continuation without a message",
		build: func(f *frameBuilder) { f.frame(wire.OpContinuation, true, "x") },
		err:   wire.ErrUnexpectedContinue,
	},
	{
		name:  "continuation after a finished message",
		build: func(f *frameBuilder) { f.frame(wire.OpText, true, "a").frame(wire.OpContinuation, true, "b") },
		want:  []message{{wire.OpText, "a"}},
		err:   wire.ErrUnexpectedContinue,
	},
	{
		name:  "new message while fragmented one unfinished",
		build: func(f *frameBuilder) { f.frame(wire.OpText, false, "a").frame(wire.OpBinary, true, "b") },
		err:   wire.ErrExpectedContinue,
	},
	{
		name:  "64-bit length with top bit set",
		build: func(f *frameBuilder) { f.raw(0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0) },
		err:   wire.ErrLengthOverflow,
	},
	{
		name:  "invalid UTF-8",
		build: func(f *frameBuilder) { f.frame(wire.OpText, true, "ok").frame(wire.OpText, true, "a\xffb") },
		want:  []message{{wire.OpText, "ok"}},
		err:   wire.ErrInvalidUTF8,
	},
	{
		name:  "text ending inside a character",
		build: func(f *frameBuilder) { f.frame(wire.OpText, true, "a\xe2\x82") },
		err:   wire.ErrInvalidUTF8,
	},
	{
		name: "fragmented text ending inside a character",
		build: func(f *frameBuilder) {
			f.frame(wire.OpText, false, "a").frame(wire.OpContinuation, true, "\xf0\x9d\x84")
		},
		err: wire.ErrInvalidUTF8,
	},
	{
		name: "invalid UTF-8 across fragments",
		build: func(f *frameBuilder) {
			f.frame(wire.OpText, false, "a\xed").frame(wire.OpContinuation, true, "\xa0\x80")
		},
		err: wire.ErrInvalidUTF8,
	},
	{
		name:  "invalid UTF-8 in a large text",
		build: func(f *frameBuilder) { f.frame(wire.OpText, true, textOf(30_000)+"\xc0\xaf"+textOf(30_000)) },
		err:   wire.ErrInvalidUTF8,
	},
	{
		name:  "binary is not checked for UTF-8",
		build: func(f *frameBuilder) { f.frame(wire.OpBinary, true, "\xff\xfe") },
		want:  []message{{wire.OpBinary, "\xff\xfe"}},
		err:   io.EOF,
	},
	{
		name:  "invalid UTF-8 before the rest of the frame arrives",
		build: func(f *frameBuilder) { f.header(wire.OpText, true, 50, "abc\xf4\x90") },
		err:   wire.ErrInvalidUTF8,
	},
	{
		name:  "invalid UTF-8 before the rest of a large frame arrives",
		build: func(f *frameBuilder) { f.header(wire.OpText, true, 100_000, textOf(3000)+"\xed\xa0") },
		err:   wire.ErrInvalidUTF8,
	},
	{
		name:  "frame over the limit, payload missing",
		max:   1000,
		build: func(f *frameBuilder) { f.frame(wire.OpText, true, "ok").header(wire.OpBinary, true, 1001, "") },
		want:  []message{{wire.OpText, "ok"}},
		err:   wire.ErrMessageTooBig,
	},
	{
		name:  "huge frame announced",
		build: func(f *frameBuilder) { f.header(wire.OpBinary, false, 1<<62, "") },
		err:   wire.ErrMessageTooBig,
	},
	{
		name: "fragments over the limit",
		max:  1000,
		build: func(f *frameBuilder) {
			f.frame(wire.OpBinary, false, strings.Repeat("x", 600)).header(wire.OpContinuation, true, 401, "")
		},
		err: wire.ErrMessageTooBig,
	},
	{
		name: "many small fragments over the limit",
		max:  100,
		build: func(f *frameBuilder) {
			f.frame(wire.OpText, false, "")
			for range 101 {
				f.frame(wire.OpContinuation, false, "x")
			}
		},
		err: wire.ErrMessageTooBig,
	},
}

// TestReader runs every case on both sides (where it applies), with the
// stream handed over whole, byte by byte and in random chunks, and with the
// smallest read buffer as well as the default one.
func TestReader(t *testing.T) {
	for _, tc := range readerCases {
		for _, server := range []bool{true, false} {
			if tc.side == serverOnly && !server || tc.side == clientOnly && server {
				continue
			}
			f := &frameBuilder{masked: server}
			tc.build(f)
			name := tc.name + "/client"
			if server {
				name = tc.name + "/server"
			}
			t.Run(name, func(t *testing.T) {
				for _, src := range readerSources {
					for _, bufSize := range []int{512, 0} {
						for seed := range uint64(src.seeds) {
							rd := wire.NewReader(src.new(f.b, seed), &wire.ReaderOptions{
								Server: server, MaxMessageSize: tc.max, ReadBufferSize: bufSize,
							})
							msgs, err := readAll(t, rd, len(f.b)+2)
							if !slicesEqual(msgs, tc.want) || !errors.Is(err, tc.err) {
								t.Fatalf("%s, buffer %d: got %v, %v; want %v, %v", src.name, bufSize, msgs, err, tc.want, tc.err)
							}
							// Errors are sticky.
							if _, _, err2 := rd.Next(); err2 != err {
								t.Fatalf("%s: Next after %v returned %v", src.name, err, err2)
							}
							if tc.err != io.EOF && tc.err != io.ErrUnexpectedEOF {
								var pe *wire.ProtocolError
								if !errors.As(err, &pe) {
									t.Fatalf("%v is not a *ProtocolError", err)
								}
							}
						}
					}
				}
			})
		}
	}
}

func slicesEqual(a, b []message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var errReadTooFar = errors.New("read past the bytes the reader needed")

// stingyReader hands out its data in one Read and then fails the test's way:
// a Reader that reads again did not decide on what it had.
type stingyReader struct{ data []byte }

func (r *stingyReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errReadTooFar
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestReaderDecidesEarly checks that limits and bad text are reported on
// the bytes already there, without waiting for the rest of the frame.
func TestReaderDecidesEarly(t *testing.T) {
	tests := []struct {
		name  string
		max   int64
		build func(f *frameBuilder)
		err   error
	}{
		{"too big at the header", 1 << 10, func(f *frameBuilder) { f.header(wire.OpBinary, true, 1<<10+1, "") }, wire.ErrMessageTooBig},
		{"too big at the 64-bit header", 1 << 20, func(f *frameBuilder) { f.header(wire.OpText, false, 1<<40, "") }, wire.ErrMessageTooBig},
		{"continuation too big at the header", 1 << 10, func(f *frameBuilder) {
			f.frame(wire.OpBinary, false, "x").header(wire.OpContinuation, true, 1<<10, "")
		}, wire.ErrMessageTooBig},
		{"control too long at the header", 0, func(f *frameBuilder) { f.header(wire.OpPing, true, 126, "") }, wire.ErrControlTooLong},
		{"surrogate", 0, func(f *frameBuilder) { f.header(wire.OpText, true, 100, "ok \xed\xa0") }, wire.ErrInvalidUTF8},
		{"above U+10FFFF", 0, func(f *frameBuilder) { f.header(wire.OpText, true, 100, "\xf4\x90") }, wire.ErrInvalidUTF8},
		{"overlong in a large frame", 0, func(f *frameBuilder) { f.header(wire.OpText, true, 1<<20, "abc\xe0\x80") }, wire.ErrInvalidUTF8},
		{"bad continuation of a text", 0, func(f *frameBuilder) {
			f.frame(wire.OpText, false, "abc").header(wire.OpContinuation, true, 1000, "\xc0")
		}, wire.ErrInvalidUTF8},
	}
	for _, tt := range tests {
		for _, server := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/server=%v", tt.name, server), func(t *testing.T) {
				f := &frameBuilder{masked: server}
				tt.build(f)
				for _, bufSize := range []int{512, 0} {
					rd := wire.NewReader(&stingyReader{data: f.b}, &wire.ReaderOptions{Server: server, MaxMessageSize: tt.max, ReadBufferSize: bufSize})
					msgs, err := readAll(t, rd, 10)
					if len(msgs) != 0 || !errors.Is(err, tt.err) {
						t.Fatalf("buffer %d: got %v, %v; want %v", bufSize, msgs, err, tt.err)
					}
				}
			})
		}
	}
}

// TestReaderErrorCodes checks the close code each error fails the
// connection with.
func TestReaderErrorCodes(t *testing.T) {
	tests := []struct {
		err  error
		want wire.StatusCode
	}{
		{wire.ErrReservedBits, 1002}, {wire.ErrReservedOpcode, 1002}, {wire.ErrFragmentedControl, 1002},
		{wire.ErrControlTooLong, 1002}, {wire.ErrUnexpectedContinue, 1002}, {wire.ErrExpectedContinue, 1002},
		{wire.ErrUnmasked, 1002}, {wire.ErrMasked, 1002}, {wire.ErrLengthOverflow, 1002},
		{wire.ErrInvalidUTF8, 1007}, {wire.ErrMessageTooBig, 1009}, {wire.ErrFrameTooBig, 1009},
		{io.EOF, 1006}, {io.ErrUnexpectedEOF, 1006}, {nil, 1000}, {errors.New("other"), 1011},
	}
	for _, tt := range tests {
		if got := wire.CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestReaderBuffered checks that the bytes given in Buffered are read
// before the source, also when a frame straddles the two.
func TestReaderBuffered(t *testing.T) {
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, true, "first").frame(wire.OpBinary, true, strings.Repeat("z", 3000)).frame(wire.OpPing, true, "p")
	want := []message{{wire.OpText, "first"}, {wire.OpBinary, strings.Repeat("z", 3000)}, {wire.OpPing, "p"}}
	for cut := 0; cut <= len(f.b); cut += 97 {
		rd := wire.NewReader(iotest.HalfReader(bytes.NewReader(f.b[cut:])), &wire.ReaderOptions{
			Server: true, Buffered: f.b[:cut], ReadBufferSize: 512,
		})
		msgs, err := readAll(t, rd, 10)
		if !slicesEqual(msgs, want) || err != io.EOF {
			t.Fatalf("cut at %d: got %v, %v", cut, msgs, err)
		}
	}
}

// TestReaderSourceError checks that an error of the source is returned as
// it is, and sticks.
func TestReaderSourceError(t *testing.T) {
	boom := errors.New("boom")
	f := &frameBuilder{}
	f.frame(wire.OpText, true, "ok")
	rd := wire.NewReader(io.MultiReader(bytes.NewReader(f.b), iotest.ErrReader(boom)), nil)
	msgs, err := readAll(t, rd, 10)
	if !slicesEqual(msgs, []message{{wire.OpText, "ok"}}) || err != boom {
		t.Fatalf("got %v, %v; want the message, then boom", msgs, err)
	}
	if _, _, err := rd.Next(); err != boom {
		t.Fatalf("second Next: %v", err)
	}
}

// loopReader returns its data over and over.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// TestReaderZeroAllocs checks that reading messages that fit the buffer,
// and fragmented ones once the pools are warm, does not allocate.
func TestReaderZeroAllocs(t *testing.T) {
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, true, "hello, wörld").frame(wire.OpBinary, true, strings.Repeat("b", 1000)).
		frame(wire.OpText, false, "frag").frame(wire.OpPing, true, "").frame(wire.OpContinuation, true, "mented").
		frame(wire.OpBinary, true, strings.Repeat("L", 40_000))
	rd := wire.NewReader(&loopReader{data: f.b}, &wire.ReaderOptions{Server: true})
	next := func() {
		if _, _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // warm the pools
		next()
	}
	if a := testing.AllocsPerRun(500, next); a != 0 {
		t.Errorf("Next: %v allocs per call, want 0", a)
	}
}

// BenchmarkReader reads a stream of masked messages of one kind, as a
// server does, from a source that returns the stream over and over. One op
// is one call of Next.
func BenchmarkReader(b *testing.B) {
	benchmarks := []struct {
		name  string
		size  int // payload bytes per op
		build func(f *frameBuilder)
	}{
		{"msg=text/size=16", 16, func(f *frameBuilder) {
			for range 64 {
				f.frame(wire.OpText, true, textOf(16))
			}
		}},
		{"msg=binary/size=1000", 1000, func(f *frameBuilder) {
			for range 16 {
				f.frame(wire.OpBinary, true, strings.Repeat("b", 1000))
			}
		}},
		{"msg=text/size=8K", 8 << 10, func(f *frameBuilder) {
			for range 4 {
				f.frame(wire.OpText, true, textOf(8<<10))
			}
		}},
		{"msg=binary/size=64K", 64 << 10, func(f *frameBuilder) {
			f.frame(wire.OpBinary, true, strings.Repeat("L", 64<<10))
		}},
		{"msg=text/size=64K", 64 << 10, func(f *frameBuilder) {
			f.frame(wire.OpText, true, textOf(64<<10))
		}},
		{"msg=text-fragmented/size=3000", 3000, func(f *frameBuilder) {
			s := textOf(3000)
			f.frame(wire.OpText, false, s[:1000]).frame(wire.OpContinuation, false, s[1000:2000]).
				frame(wire.OpContinuation, true, s[2000:])
		}},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			f := &frameBuilder{masked: true}
			bm.build(f)
			rd := wire.NewReader(&loopReader{data: f.b}, &wire.ReaderOptions{Server: true})
			defer rd.Release()
			for range 100 { // warm the pools
				if _, _, err := rd.Next(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(bm.size))
			for b.Loop() {
				if _, _, err := rd.Next(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestReaderDetach checks which messages Detach hands over (those in an
// assembly buffer: in fragments, longer than the read buffer) and that
// the Reader then leaves the buffer alone: the next messages read right,
// p keeps its bytes, and the Budget counts it until the caller gives it
// back.
func TestReaderDetach(t *testing.T) {
	long := strings.Repeat("L", 2000)
	f := &frameBuilder{masked: true}
	f.frame(wire.OpText, true, "short").
		frame(wire.OpBinary, false, "frag").frame(wire.OpContinuation, true, "ments").
		frame(wire.OpBinary, true, long).
		frame(wire.OpText, true, "after")
	budget := wire.NewBudget(1 << 20)
	rd := wire.NewReader(bytes.NewReader(f.b), &wire.ReaderOptions{Server: true, ReadBufferSize: 512, Budget: budget})
	for _, tc := range []struct {
		want   string
		detach bool
	}{{"short", false}, {"fragments", true}, {long, true}, {"after", false}} {
		_, p, err := rd.Next()
		if err != nil || string(p) != tc.want {
			t.Fatalf("Next: %q, %v; want %q", p, err, tc.want)
		}
		if got := rd.Detach(p[1:]); got != nil {
			t.Fatalf("Detach of a part of %q handed over a buffer", tc.want)
		}
		bp := rd.Detach(p)
		if (bp != nil) != tc.detach {
			t.Fatalf("Detach(%.10q...) = %v, want a buffer: %v", tc.want, bp, tc.detach)
		}
		if bp == nil {
			continue
		}
		if string(*bp) != tc.want || &(*bp)[0] != &p[0] {
			t.Fatalf("Detach handed over %.10q..., not p", *bp)
		}
		if used := budget.InUse(); used != int64(cap(*bp)) {
			t.Fatalf("after Detach the budget counts %d bytes, want the buffer's %d", used, cap(*bp))
		}
		budget.Give(int64(cap(*bp)))
		if rd.Detach(p) != nil {
			t.Fatal("a second Detach handed over the buffer again")
		}
		defer func() {
			if string(*bp) != tc.want {
				t.Errorf("the Reader wrote into a detached buffer: %.10q...", *bp)
			}
		}()
	}
	if _, _, err := rd.Next(); err != io.EOF {
		t.Fatalf("at the end: %v, want EOF", err)
	}
}
