package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/wire"
)

// The fuzz targets below run their seeds (the f.Add calls and the files in
// testdata/fuzz/<FuzzName>) as ordinary tests. To fuzz, for example:
//
//	go test -run='^$' -fuzz=FuzzReader -fuzztime=60s ./wire/

func FuzzParseHeader(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	for _, length := range headerLengths {
		f.Add(wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpBinary, Length: length}))
		f.Add(wire.AppendHeader(nil, wire.Header{Rsv: wire.RSV1, Opcode: wire.OpText, Masked: true, Key: key, Length: length}))
	}
	f.Add([]byte{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0})    // length overflow
	f.Add([]byte{0x82, 0x7e, 0x00, 0x05})                   // non-minimal 16-bit length
	f.Add([]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x00}) // non-minimal 64-bit length
	f.Add([]byte{0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := wire.ParseHeader(b)
		if err != nil {
			if !errors.Is(err, wire.ErrLengthOverflow) || n != 0 {
				t.Fatalf("ParseHeader(% x) = n %d, %v", b, n, err)
			}
			if len(b) < 10 || b[1]&0x7f != 127 || b[2]&0x80 == 0 {
				t.Fatalf("ParseHeader(% x): ErrLengthOverflow without a 64-bit length with the top bit set", b)
			}
			return
		}
		if n == 0 {
			if len(b) >= wire.MaxHeaderSize {
				t.Fatalf("ParseHeader(% x) wants more than %d bytes", b, len(b))
			}
			return
		}
		if n > len(b) || n > wire.MaxHeaderSize || h.Length < 0 {
			t.Fatalf("ParseHeader(% x) = %+v, n %d", b, h, n)
		}
		for i := range n {
			if _, n2, err := wire.ParseHeader(b[:i]); n2 != 0 || err != nil {
				t.Fatalf("prefix % x of header % x: n %d, %v", b[:i], b[:n], n2, err)
			}
		}
		enc := wire.AppendHeader(nil, h)
		h2, n2, err := wire.ParseHeader(enc)
		if err != nil || h2 != h || n2 != len(enc) || h.Size() != len(enc) {
			t.Fatalf("% x: %+v re-encoded as % x parses as %+v, %d, %v (Size %d)", b[:n], h, enc, h2, n2, err, h.Size())
		}
		// When the input used the shortest length encoding, as RFC 6455
		// requires of senders, the bytes are the same.
		l7 := b[1] & 0x7f
		minimal := l7 < 126 || l7 == 126 && h.Length >= 126 || l7 == 127 && h.Length > 0xFFFF
		if minimal && !bytes.Equal(enc, b[:n]) {
			t.Fatalf("% x re-encoded as % x", b[:n], enc)
		}
	})
}

func FuzzUTF8(f *testing.F) {
	for _, s := range utf8Inputs {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, p []byte, split uint16) {
		i := 0
		if len(p) > 0 {
			i = int(split) % (len(p) + 1)
		}
		var v wire.UTF8Validator
		ok1 := v.Write(p[:i])
		if want := validPrefix(p[:i]); ok1 != want {
			t.Fatalf("Write(%q) = %v, want %v", p[:i], ok1, want)
		}
		if ok1 {
			ok2 := v.Write(p[i:])
			if want := validPrefix(p); ok2 != want {
				t.Fatalf("Write(%q) after %q = %v, want %v", p[i:], p[:i], ok2, want)
			}
			if ok2 && v.Complete() != utf8.Valid(p) {
				t.Fatalf("%q split at %d: Complete() = %v, utf8.Valid = %v", p, i, v.Complete(), utf8.Valid(p))
			}
		}
		// Byte by byte, the validator fails at the first byte that makes
		// the input no valid prefix.
		v.Reset()
		for j := range p {
			if got, want := v.Write(p[j:j+1]), validPrefix(p[:j+1]); got != want {
				t.Fatalf("%q byte by byte: Write of byte %d = %v, want %v", p, j, got, want)
			} else if !got {
				break
			}
		}
		if wire.ValidUTF8(p) != utf8.Valid(p) {
			t.Fatalf("ValidUTF8(%q) disagrees with utf8.Valid", p)
		}
	})
}

func FuzzClosePayload(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	f.Add([]byte{0x03, 0xe8})
	f.Add([]byte("\x03\xe9going away"))
	f.Add([]byte("\x0f\xa0κόσμε"))
	f.Add([]byte("\x03\xed"))
	f.Add([]byte("\x03\xe8\xed\xa0\x80"))
	f.Add(append([]byte{0x03, 0xe8}, strings.Repeat("é", 70)...))
	f.Fuzz(func(t *testing.T, p []byte) {
		code, reason, err := wire.ParseClosePayload(p)
		if err == nil {
			if len(p) >= 2 && (!code.Sendable() || !utf8.Valid(reason) || !bytes.Equal(reason, p[2:])) {
				t.Fatalf("ParseClosePayload(%q) = %d, %q", p, code, reason)
			}
			out := wire.AppendClosePayload(nil, code, string(reason))
			if len(p) <= wire.MaxControlPayload && !bytes.Equal(out, p) {
				t.Fatalf("ParseClosePayload(%q) = %d, %q; appended again: %q", p, code, reason, out)
			}
			if !bytes.HasPrefix(p, out) || len(out) > wire.MaxControlPayload {
				t.Fatalf("%q: AppendClosePayload gave %q, not a prefix of at most 125 bytes", p, out)
			}
		} else {
			var pe *wire.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseClosePayload(%q): %v is not a *ProtocolError", p, err)
			}
		}
		// Whatever code and reason, the payload fits a control frame, and
		// parses when the reason is valid UTF-8.
		if len(p) < 2 {
			return
		}
		c := wire.StatusCode(int(p[0])<<8 | int(p[1]))
		out := wire.AppendClosePayload(nil, c, string(p[2:]))
		if len(out) > wire.MaxControlPayload {
			t.Fatalf("AppendClosePayload(%d, %q) is %d bytes long", c, p[2:], len(out))
		}
		if !utf8.Valid(p[2:]) {
			return
		}
		c2, r2, err := wire.ParseClosePayload(out)
		wantCode := c
		if !c.Sendable() {
			wantCode = wire.StatusInternalError
		}
		if c == wire.StatusNoStatusRcvd {
			wantCode = wire.StatusNoStatusRcvd
		}
		if err != nil || c2 != wantCode || !bytes.HasPrefix(p[2:], r2) {
			t.Fatalf("AppendClosePayload(%d, %q) = %q, parses as %d, %q, %v", c, p[2:], out, c2, r2, err)
		}
	})
}

// fuzzReaderLimits are the MaxMessageSize values FuzzReader tries: 64 KiB,
// and one small enough for short inputs to exceed.
var fuzzReaderLimits = []int64{64 << 10, 300}

func FuzzReader(f *testing.F) {
	for _, tc := range readerCases {
		for _, masked := range []bool{false, true} {
			fb := &frameBuilder{masked: masked}
			tc.build(fb)
			if len(fb.b) <= 4096 {
				f.Add(fb.b, uint16(len(fb.b)/3), uint64(len(fb.b)))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16, seed uint64) {
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		for _, server := range []bool{true, false} {
			for _, limit := range fuzzReaderLimits {
				want, wantErrs := refDecode(data, server, limit)
				var first []message
				var firstErr error
				sources := []struct {
					name    string
					r       io.Reader
					bufSize int
				}{
					{"whole", bytes.NewReader(data), 0},
					{fmt.Sprintf("split at %d", cut), io.MultiReader(bytes.NewReader(data[:cut]), bytes.NewReader(data[cut:])), 512},
					{"random chunks", &chunkReader{data: data, rng: rand.New(rand.NewPCG(seed, 7)), max: 1 + int(seed%600)}, 512},
				}
				for i, src := range sources {
					rd := wire.NewReader(src.r, &wire.ReaderOptions{Server: server, MaxMessageSize: limit, ReadBufferSize: src.bufSize})
					msgs, err := readAll(t, rd, len(data)/2+2)
					where := fmt.Sprintf("server=%v limit=%d %s", server, limit, src.name)
					for _, m := range msgs {
						switch {
						case int64(len(m.p)) > limit:
							t.Fatalf("%s: %v is over the limit", where, m)
						case m.op == wire.OpText && !utf8.ValidString(m.p):
							t.Fatalf("%s: %v is not valid UTF-8", where, m)
						case m.op.IsControl() && len(m.p) > wire.MaxControlPayload:
							t.Fatalf("%s: control frame %v is too long", where, m)
						case m.op != wire.OpText && m.op != wire.OpBinary && m.op != wire.OpClose && m.op != wire.OpPing && m.op != wire.OpPong:
							t.Fatalf("%s: returned opcode %v", where, m.op)
						}
					}
					if !slices.Equal(msgs, want) || !slices.ContainsFunc(wantErrs, func(e error) bool { return errors.Is(err, e) }) {
						t.Fatalf("%s: got %v, %v; want %v, one of %v", where, msgs, err, want, wantErrs)
					}
					if i == 0 {
						first, firstErr = msgs, err
					} else if !slices.Equal(msgs, first) || err != firstErr {
						t.Fatalf("%s: got %v, %v; read whole: %v, %v", where, msgs, err, first, firstErr)
					}
				}
				// A non-blocking source, which returns ErrWouldBlock every n
				// bytes or at random, gives the same as the blocking one.
				pts := framePoints(data, server, limit)
				rng := rand.New(rand.NewPCG(seed, 11))
				every := 1 + int(split)%97
				nbSources := []struct {
					name    string
					chunk   func() int
					bufSize int
				}{
					{fmt.Sprintf("would block every %d bytes", every), func() int { return every }, 512},
					{"would block at random", func() int { return 1 + rng.IntN(1+int(seed%2000)) }, 0},
				}
				for _, nb := range nbSources {
					src := &blockingReader{data: data, chunk: nb.chunk, t: t}
					rd := wire.NewReader(src, &wire.ReaderOptions{Server: server, MaxMessageSize: limit, ReadBufferSize: nb.bufSize})
					msgs, err := readAllNB(t, rd, src, pts, nb.bufSize)
					if !slices.Equal(msgs, first) || err != firstErr {
						t.Fatalf("server=%v limit=%d %s: got %v, %v; read whole: %v, %v", server, limit, nb.name, msgs, err, first, firstErr)
					}
				}
			}
		}
	})
}

// refDecode is a plain reading of RFC 6455 section 5 that decodes a whole
// stream held in memory. It returns the messages (and control frames) a
// Reader must return and the errors it may end with: where a frame breaks
// several rules, any of them will do.
func refDecode(b []byte, server bool, limit int64) ([]message, []error) {
	var msgs []message
	var msg []byte // the fragmented message so far
	var msgOp wire.Opcode
	inMsg := false
	// The stream ends inside a header, a payload or a fragmented message.
	eof := []error{io.ErrUnexpectedEOF}
	for {
		if len(b) == 0 {
			if inMsg {
				return msgs, eof
			}
			return msgs, []error{io.EOF}
		}
		if len(b) < 2 {
			return msgs, eof
		}
		fin, rsv, op, masked := b[0]&0x80 != 0, b[0]&0x70, wire.Opcode(b[0]&0x0f), b[1]&0x80 != 0
		var length uint64
		hl := 2
		switch l7 := b[1] & 0x7f; l7 {
		case 126:
			if len(b) < 4 {
				return msgs, eof
			}
			length, hl = uint64(b[2])<<8|uint64(b[3]), 4
		case 127:
			if len(b) < 10 {
				return msgs, eof
			}
			for _, c := range b[2:10] {
				length = length<<8 | uint64(c)
			}
			if length >= 1<<63 {
				return msgs, []error{wire.ErrLengthOverflow}
			}
			hl = 10
		default:
			length = uint64(l7)
		}
		var key [4]byte
		if masked {
			if len(b) < hl+4 {
				return msgs, eof
			}
			copy(key[:], b[hl:])
			hl += 4
		}
		b = b[hl:]

		var bad []error
		control := op&0x8 != 0
		if rsv != 0 {
			bad = append(bad, wire.ErrReservedBits)
		}
		switch op {
		case wire.OpContinuation, wire.OpText, wire.OpBinary, wire.OpClose, wire.OpPing, wire.OpPong:
		default:
			bad = append(bad, wire.ErrReservedOpcode)
		}
		if server && !masked {
			bad = append(bad, wire.ErrUnmasked)
		}
		if !server && masked {
			bad = append(bad, wire.ErrMasked)
		}
		if control && !fin {
			bad = append(bad, wire.ErrFragmentedControl)
		}
		if control && length > wire.MaxControlPayload {
			bad = append(bad, wire.ErrControlTooLong)
		}
		if op == wire.OpContinuation && !inMsg {
			bad = append(bad, wire.ErrUnexpectedContinue)
		}
		if (op == wire.OpText || op == wire.OpBinary) && inMsg {
			bad = append(bad, wire.ErrExpectedContinue)
		}
		if !control && uint64(len(msg))*boolToUint(op == wire.OpContinuation)+length > uint64(limit) {
			bad = append(bad, wire.ErrMessageTooBig)
		}
		if len(bad) > 0 {
			return msgs, bad
		}

		if !control && op != wire.OpContinuation {
			msg, msgOp, inMsg = msg[:0], op, true
		}
		text := !control && msgOp == wire.OpText
		n := min(uint64(len(b)), length)
		p := bytes.Clone(b[:n])
		for i := range p {
			p[i] ^= key[i&3]
		}
		b = b[n:]
		if control {
			if n < length {
				return msgs, eof
			}
			msgs = append(msgs, message{op, string(p)})
			continue
		}
		msg = append(msg, p...)
		if text && !validPrefix(msg) {
			return msgs, []error{wire.ErrInvalidUTF8}
		}
		if n < length {
			return msgs, eof
		}
		if fin {
			if text && !utf8.Valid(msg) {
				return msgs, []error{wire.ErrInvalidUTF8}
			}
			msgs = append(msgs, message{msgOp, string(msg)})
			inMsg = false
		}
	}
}

func boolToUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
