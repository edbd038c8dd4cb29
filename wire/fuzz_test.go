package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

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

// fuzzReaderLimits are the MaxMessageSize values FuzzReader tries: the
// default, 64 KiB, and one small enough for short inputs to exceed.
var fuzzReaderLimits = []int64{wire.DefaultMaxMessageSize, 64 << 10, 300}

// maxHolding bounds the memory of a Reader that has been given fed bytes:
// a few times what arrived, plus a read buffer. A length that a header
// merely announces must not reserve memory.
func maxHolding(fed int) int { return 4*fed + 64<<10 }

// meteredReader is a Reader's source that counts the bytes it gives and,
// before each Read, checks that the Reader holds no more than maxHolding
// of them. Reads are when a Reader waits for a peer: what it holds then is
// what a peer that stops sending can make it keep.
type meteredReader struct {
	src   io.Reader
	rd    *wire.Reader
	fed   int
	t     testing.TB
	where string
}

func (m *meteredReader) Read(p []byte) (int, error) {
	m.check()
	n, err := m.src.Read(p)
	m.fed += n
	return n, err
}

func (m *meteredReader) check() {
	if h := m.rd.Holding(); h > maxHolding(m.fed) {
		m.t.Fatalf("%s: the Reader holds %d bytes after %d bytes of input", m.where, h, m.fed)
	}
}

// newMeteredReader returns a Reader of src, through a meteredReader.
func newMeteredReader(t testing.TB, where string, src io.Reader, opts *wire.ReaderOptions) *wire.Reader {
	m := &meteredReader{src: src, t: t, where: where}
	m.rd = wire.NewReader(m, opts)
	return m.rd
}

// FuzzReader reads fuzzed streams as a server (masked frames) and as a
// client, with three size limits, from sources that give the input whole,
// in two pieces at the fuzzed split, in random chunks, and with
// ErrWouldBlock between pieces. Every way must give what refDecode gives,
// no message over the limit, and hold memory in proportion to the bytes
// given so far (maxHolding): testdata/fuzz/FuzzReader has the two reported
// length bugs, a continuation announcing 2^63-1 bytes after a first
// fragment, and a 14-byte header announcing 16 MiB followed by one byte.
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
					where := fmt.Sprintf("server=%v limit=%d %s", server, limit, src.name)
					rd := newMeteredReader(t, where, src.r, &wire.ReaderOptions{Server: server, MaxMessageSize: limit, ReadBufferSize: src.bufSize})
					msgs, err := readAll(t, rd, len(data)/2+2)
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
					where := fmt.Sprintf("server=%v limit=%d %s", server, limit, nb.name)
					src := &blockingReader{data: data, chunk: nb.chunk, t: t}
					rd := newMeteredReader(t, where, src, &wire.ReaderOptions{Server: server, MaxMessageSize: limit, ReadBufferSize: nb.bufSize})
					msgs, err := readAllNB(t, rd, src, pts, nb.bufSize)
					if !slices.Equal(msgs, first) || err != firstErr {
						t.Fatalf("%s: got %v, %v; read whole: %v, %v", where, msgs, err, first, firstErr)
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

// memConn is a net.Conn in memory: reads come from in, made on the first
// Read from what was written before it (a peer's answer to a request),
// and writes go to out. Nothing blocks, so deadlines are ignored.
type memConn struct {
	in      io.Reader
	respond func(written []byte) []byte
	out     bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.in == nil && c.respond != nil {
		c.in = bytes.NewReader(c.respond(c.out.Bytes()))
	}
	if c.in == nil {
		return 0, io.EOF
	}
	return c.in.Read(p)
}

func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// hijackRecorder is a ResponseRecorder that can be hijacked: the
// connection is a memConn, and br holds what the client sent after its
// request.
type hijackRecorder struct {
	*httptest.ResponseRecorder
	conn memConn
	br   *bufio.Reader
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return &h.conn, bufio.NewReadWriter(h.br, bufio.NewWriter(&h.conn)), nil
}

// The server side of FuzzAccept and the client side of FuzzDialResponse.
var (
	fuzzSubprotocols = []string{"chat", "superchat"}
	fuzzOrigins      = []string{"*.example.com"}
)

// refHasToken reports whether a comma-separated list, in any of the header
// lines vals, holds token, as RFC 9110 section 5.6.1 reads lists:
// elements trimmed of spaces and tabs, compared ignoring ASCII case.
func refHasToken(vals []string, token string) bool {
	return slices.ContainsFunc(refTokens(vals), func(t string) bool {
		return strings.ToLower(t) == token // token is lower case ASCII
	})
}

// refTokens returns the elements of comma-separated lists.
func refTokens(vals []string) []string {
	var ts []string
	for _, v := range vals {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.Trim(t, " \t"); t != "" {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// refAcceptKey is Sec-WebSocket-Accept as RFC 6455 section 4.2.2 defines it.
func refAcceptKey(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// refAcceptStatus is the status RFC 6455 section 4.2.1 gives a request,
// checked in the order Accept documents: 101 for an upgrade, or the
// refusal. The origin check is left out (0 means "101 or 403").
func refAcceptStatus(r *http.Request) int {
	key := r.Header.Get("Sec-WebSocket-Key")
	raw, err := base64.StdEncoding.DecodeString(key)
	switch {
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed
	case r.ProtoMajor < 1 || r.ProtoMajor == 1 && r.ProtoMinor < 1:
		return http.StatusBadRequest
	case !refHasToken(r.Header.Values("Connection"), "upgrade") || !refHasToken(r.Header.Values("Upgrade"), "websocket"):
		return http.StatusUpgradeRequired
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return http.StatusUpgradeRequired
	case len(key) != 24 || err != nil || len(raw) != 16:
		return http.StatusBadRequest
	}
	return 0
}

// originVerdict says what must become of r's Origin, whatever the
// patterns: no Origin, or one naming the request's host, must be allowed;
// one that is no URL with a host must be refused.
func originVerdict(r *http.Request) (mustAllow, mustRefuse bool) {
	origin := r.Header.Get("Origin")
	u, err := url.Parse(origin)
	switch {
	case origin == "":
		return true, false
	case err != nil || u.Host == "":
		return false, true
	}
	return strings.EqualFold(u.Host, r.Host), false
}

// FuzzAccept runs the server's side of the opening handshake on requests
// built from fuzzed header values (a value with newlines is several
// header lines). A refusal is a 4xx status, the one RFC 6455 gives; an
// upgrade answers 101 with the right Sec-WebSocket-Accept and the first of
// the server's subprotocols the client offered, and hands over the bytes
// that followed the request.
func FuzzAccept(f *testing.F) {
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	f.Add("GET", uint8(1), uint8(1), "Upgrade", "websocket", "13", key, "chat", "", "", "example.com", []byte{})
	f.Add("GET", uint8(1), uint8(1), "keep-alive, Upgrade", "WebSocket", "13", key, "a, superchat,chat", "permessage-deflate; client_max_window_bits",
		"https://app.example.com", "example.com", []byte("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"))
	f.Add("GET", uint8(1), uint8(0), "Upgrade", "websocket", "13", key, "", "", "", "example.com", []byte{})
	f.Add("POST", uint8(1), uint8(1), "Upgrade", "websocket", "13", key, "", "", "", "example.com", []byte{})
	f.Add("GET", uint8(2), uint8(0), "close\nUpgrade", "h2c, websocket", "13", key, "\n, ,chat", "", "", "example.com", []byte{})
	f.Add("GET", uint8(1), uint8(1), "Upgrade", "websocket", "8\n13", key, "", "", "", "example.com", []byte{})
	f.Add("GET", uint8(1), uint8(1), "Upgrade", "websocket", "13", "dGhlIHNhbXBsZSBub25jZQ", "", "", "", "example.com", []byte{})
	f.Add("GET", uint8(1), uint8(1), "Upgrade", "websocket", "13", "AAAAAAAAAAAAAAAAAAAAAAAAAA==", "", "", "", "example.com", []byte{})
	f.Add("GET", uint8(1), uint8(1), "Upgrade", "websocket", "13", key, "", "", "http://evil.test", "example.com", []byte{})
	f.Add("GET", uint8(1), uint8(1), "Upgrade", "websocket", "13", key, "", "", "null", "example.com", []byte{})
	f.Add("GET", uint8(1), uint8(1), "Upgrade", "websocket", "13", key, "", "", "https://EXAMPLE.com:443", "example.com:443", []byte{})
	f.Fuzz(func(t *testing.T, method string, major, minor uint8, connection, upgrade, version, key, protocol, extensions, origin, host string, after []byte) {
		r := &http.Request{
			Method: method, URL: &url.URL{Path: "/"}, Host: host, Header: make(http.Header),
			Proto: fmt.Sprintf("HTTP/%d.%d", major, minor), ProtoMajor: int(major), ProtoMinor: int(minor),
		}
		for name, v := range map[string]string{
			"Connection": connection, "Upgrade": upgrade, "Sec-WebSocket-Version": version,
			"Sec-WebSocket-Key": key, "Sec-WebSocket-Protocol": protocol,
			"Sec-WebSocket-Extensions": extensions, "Origin": origin,
		} {
			if v != "" {
				for line := range strings.SplitSeq(v, "\n") {
					r.Header.Add(name, line)
				}
			}
		}
		after = after[:min(len(after), 4096)]
		w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), br: bufio.NewReaderSize(bytes.NewReader(after), 4096)}
		w.br.Peek(len(after)) // buffered, as an HTTP server leaves them
		u, err := wire.Upgrade(w, r, &wire.AcceptOptions{Subprotocols: fuzzSubprotocols, OriginPatterns: fuzzOrigins})

		want := refAcceptStatus(r)
		if err != nil {
			var he *wire.HandshakeError
			if !errors.As(err, &he) || he.Status != w.Code || w.conn.out.Len() != 0 {
				t.Fatalf("%v: status %d, %d bytes written to the connection", err, w.Code, w.conn.out.Len())
			}
			if w.Code != want && (want != 0 || w.Code != http.StatusForbidden) {
				t.Fatalf("refused with %d (%v), want %d", w.Code, err, want)
			}
			if mustAllow, _ := originVerdict(r); w.Code == http.StatusForbidden && mustAllow {
				t.Fatalf("refused Origin %q, Host %q", r.Header.Get("Origin"), r.Host)
			}
			return
		}
		if _, mustRefuse := originVerdict(r); want != 0 || mustRefuse {
			t.Fatalf("upgraded, want %d: %+v", want, r.Header)
		}
		resp, rerr := http.ReadResponse(bufio.NewReader(&w.conn.out), nil)
		if rerr != nil {
			t.Fatalf("101 response %q: %v", w.conn.out.String(), rerr)
		}
		wantSub := ""
		for _, s := range fuzzSubprotocols {
			if slices.Contains(refTokens(r.Header.Values("Sec-WebSocket-Protocol")), s) {
				wantSub = s
				break
			}
		}
		switch {
		case resp.StatusCode != http.StatusSwitchingProtocols ||
			!refHasToken(resp.Header.Values("Upgrade"), "websocket") || !refHasToken(resp.Header.Values("Connection"), "upgrade"):
			t.Fatalf("response %q", w.conn.out.String())
		case resp.Header.Get("Sec-WebSocket-Accept") != refAcceptKey(r.Header.Get("Sec-WebSocket-Key")):
			t.Fatalf("key %q: Sec-WebSocket-Accept %q", r.Header.Get("Sec-WebSocket-Key"), resp.Header.Get("Sec-WebSocket-Accept"))
		case u.Subprotocol != wantSub || resp.Header.Get("Sec-WebSocket-Protocol") != wantSub:
			t.Fatalf("offered %q: chose %q (response %q), want %q", r.Header.Values("Sec-WebSocket-Protocol"),
				u.Subprotocol, resp.Header.Get("Sec-WebSocket-Protocol"), wantSub)
		case !bytes.Equal(u.Buffered, after):
			t.Fatalf("Buffered = %q, want %q", u.Buffered, after)
		}
	})
}

// TestAcceptTokenLists checks how the Connection and Upgrade lists are
// read: elements trimmed of spaces and tabs only and compared ignoring
// ASCII case only, as RFC 9110 reads lists (FuzzAccept found "\rUpgrade"
// taken for "upgrade").
func TestAcceptTokenLists(t *testing.T) {
	const upgraded = http.StatusSwitchingProtocols
	for _, tc := range []struct {
		name, connection, upgrade string
		want                      int
	}{
		{"plain", "Upgrade", "websocket", upgraded},
		{"capitals", "UPGRADE", "WebSocket", upgraded},
		{"list with spaces and tabs", "keep-alive ,\tUpgrade\t", " websocket ", upgraded},
		{"empty elements", ",,Upgrade,", "h2c,,websocket", upgraded},
		{"carriage return", "\rUpgrade", "websocket", http.StatusUpgradeRequired},
		{"vertical tab", "Upgrade", "\vwebsocket", http.StatusUpgradeRequired},
		{"no-break space", "\u00a0Upgrade", "websocket", http.StatusUpgradeRequired},
		{"next line", "Upgrade\u0085", "websocket", http.StatusUpgradeRequired},
		{"long s", "Upgrade", "web\u017focket", http.StatusUpgradeRequired},
		{"kelvin sign", "Upgrade", "websoc\u212aet", http.StatusUpgradeRequired},
		{"prefix", "Upgrade", "websocket2", http.StatusUpgradeRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://example.com/ws", nil)
			r.Header.Set("Connection", tc.connection)
			r.Header.Set("Upgrade", tc.upgrade)
			r.Header.Set("Sec-WebSocket-Version", "13")
			r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), br: bufio.NewReader(strings.NewReader(""))}
			_, err := wire.Upgrade(w, r, nil)
			got := w.Code
			if err == nil {
				got = upgraded
			}
			if got != tc.want {
				t.Fatalf("Connection %q, Upgrade %q: status %d (%v), want %d", tc.connection, tc.upgrade, got, err, tc.want)
			}
		})
	}
}

// FuzzDialResponse runs the client's side of the opening handshake
// against fuzzed server responses, in which "{accept}" stands for the
// right Sec-WebSocket-Accept. Dial succeeds only on a 101 that RFC 6455
// section 4.1 accepts, then reads the frames that followed the response;
// any other answer is an error, a *HandshakeError with the status when the
// server answered with another one.
func FuzzDialResponse(f *testing.F) {
	const ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
	for _, s := range []string{
		ok + "\r\n",
		ok + "Sec-WebSocket-Protocol: superchat\r\n\r\n\x81\x02hi\x89\x00\x88\x02\x03\xe8",
		ok + "Sec-WebSocket-Protocol: other\r\n\r\n",
		ok + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
		ok + "\r\n\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: {accept}\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 4294967296\r\n\r\nno",
		"HTTP/1.1 426 Upgrade Required\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx",
		"HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n",
		"HTTP/1.1 101",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		var sent []byte   // the response, with the accept key in place
		var accept string // the right key
		nc := &memConn{respond: func(req []byte) []byte {
			r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req)))
			if err != nil {
				t.Fatalf("Dial sent %q: %v", req, err)
			}
			accept = refAcceptKey(r.Header.Get("Sec-WebSocket-Key"))
			sent = bytes.ReplaceAll(answer, []byte("{accept}"), []byte(accept))
			return sent
		}}
		c, resp, err := wire.Dial(context.Background(), "ws://example.com/ws", &wire.DialOptions{
			Subprotocols:   fuzzSubprotocols,
			NetDialContext: func(context.Context, string, string) (net.Conn, error) { return nc, nil },
		})
		if err != nil {
			var he *wire.HandshakeError
			switch {
			case c != nil:
				t.Fatalf("%v, and a connection", err)
			case resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && (!errors.As(err, &he) || he.Status != resp.StatusCode):
				t.Fatalf("status %d: %v", resp.StatusCode, err)
			}
			return
		}
		defer c.CloseNow()
		want, rerr := http.ReadResponse(bufio.NewReader(bytes.NewReader(sent)), nil)
		if rerr != nil {
			t.Fatalf("accepted %q, which net/http does not read: %v", sent, rerr)
		}
		sub := want.Header.Get("Sec-WebSocket-Protocol")
		switch {
		case want.StatusCode != http.StatusSwitchingProtocols || resp.StatusCode != want.StatusCode:
			t.Fatalf("accepted status %d", want.StatusCode)
		case !refHasToken(want.Header.Values("Upgrade"), "websocket") || !refHasToken(want.Header.Values("Connection"), "upgrade"):
			t.Fatalf("accepted %q without the upgrade headers", sent)
		case want.Header.Get("Sec-WebSocket-Accept") != accept:
			t.Fatalf("accepted %q with a wrong Sec-WebSocket-Accept", sent)
		case sub != "" && !slices.Contains(fuzzSubprotocols, sub) || c.Subprotocol() != sub:
			t.Fatalf("accepted subprotocol %q (Subprotocol() = %q)", sub, c.Subprotocol())
		case want.Header.Get("Sec-WebSocket-Extensions") != "":
			t.Fatalf("accepted extensions %q", want.Header.Get("Sec-WebSocket-Extensions"))
		}
		for range len(sent) + 1 {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
		t.Fatalf("ReadMessage did not fail after %d messages", len(sent)+1)
	})
}

// FuzzParseRequest parses fuzzed request heads, whole and cut at split,
// and holds ParseRequest to net/http: a head it takes, http.ReadRequest
// reads the same way (method, target, every field), and one ReadRequest
// refuses, it refuses too. It refuses more on purpose (bare LF line
// endings, a target not in origin-form, a body, see ParseRequest). The
// handshake then goes both ways, Request.CheckUpgrade and AppendAccept
// against Upgrade, with the same answer to the byte, and the origin check
// agrees with url.Parse (refOriginAllowed).
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		chromeHead,
		chromeDeflateHead + "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
		upgradeHead("Sec-WebSocket-Protocol: superchat, chat", "Origin: https://a.example.com",
			"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9; client_no_context_takeover"),
		upgradeHead("Origin: http://[::1]:80", "Host: [::1]:80"),
		upgradeHead("Origin: http://EXAMPLE.com:", "Content-Length: 0"),
		upgradeHead("Origin: null", "Upgrade: h2c"),
		head("GET /%41?%zz HTTP/1.0", "A: \t b \t", "a: c"),
		head("POST /ws HTTP/1.1", "Host: a", "Content-Length: 10"),
		head("GET / HTTP/1.1", "Host: a", "Transfer-Encoding: chunked"),
		head("GET / HTTP/1.1", "Host: a", "X: b", " folded"),
		head("GET / HTTP/1.1", "Host : a"),
		head("GET http://a/ HTTP/1.1", "Host: a"),
		head("GET / HTTP/2.0", "Host: a"),
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, b []byte, split uint16) {
		var r wire.Request
		n, err := wire.ParseRequest(&r, b)
		var he *wire.HandshakeError
		switch {
		case err == nil && (n <= 0 || n > len(b)):
			t.Fatalf("length %d of %d bytes", n, len(b))
		case err != nil && n != 0:
			t.Fatalf("length %d with %v", n, err)
		case err != nil && err != wire.ErrIncomplete && (!errors.As(err, &he) || he.Status != 400 && he.Status != 431 && he.Status != 505):
			t.Fatalf("err %v", err)
		}
		// A prefix is incomplete, or its head is judged as the whole.
		var r2 wire.Request
		i := int(split) % (len(b) + 1)
		if n2, err2 := wire.ParseRequest(&r2, b[:i]); err2 != wire.ErrIncomplete && (err2 != err || n2 != n) {
			t.Fatalf("prefix of %d bytes: %d, %v; the whole: %d, %v", i, n2, err2, n, err)
		}

		hr, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if herr != nil {
			t.Fatalf("ParseRequest took %q, http.ReadRequest refuses it: %v", b[:n], herr)
		}
		compareRequest(t, &r, hr)
		within := func(p []byte) {
			if len(p) == 0 {
				return
			}
			start := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
			head := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			if start < head || start+uintptr(len(p)) > head+uintptr(n) || cap(p) != len(p) {
				t.Fatalf("slice %q (cap %d) outside the head", p, cap(p))
			}
		}
		within(r.Method())
		within(r.Target())
		r.Fields(func(name, value []byte) bool {
			within(name)
			within(value)
			within(r.Header(string(name)))
			return true
		})

		opts := &wire.AcceptOptions{
			Options:        wire.Options{Compression: wire.CompressionMode(split % 3)},
			Subprotocols:   fuzzSubprotocols,
			OriginPatterns: fuzzOrigins,
		}
		rawErr := r.CheckUpgrade(opts)
		w := &hijackRecorder{ResponseRecorder: httptest.NewRecorder(), br: bufio.NewReader(bytes.NewReader(nil))}
		u, httpErr := wire.Upgrade(w, hr, opts)
		if fmt.Sprint(rawErr) != fmt.Sprint(httpErr) {
			t.Fatalf("Request.CheckUpgrade: %v; Upgrade: %v", rawErr, httpErr)
		}
		if s := status(rawErr); rawErr == nil || s == http.StatusForbidden {
			origin := hr.Header.Get("Origin")
			if want := refOriginAllowed(origin, hr.Host, fuzzOrigins); want != (rawErr == nil) {
				t.Fatalf("Origin %q, Host %q: %v, allowed %v", origin, hr.Host, rawErr, want)
			}
		}
		if rawErr != nil {
			return
		}
		resp, sub, cp := r.AppendAccept(nil, opts)
		if !bytes.Equal(resp, w.conn.out.Bytes()) || sub != u.Subprotocol || cp != u.Compression {
			t.Fatalf("AppendAccept %q %q %+v\nUpgrade %q %q %+v", resp, sub, cp, w.conn.out.Bytes(), u.Subprotocol, u.Compression)
		}
	})
}
