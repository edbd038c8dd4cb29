package runtime_test

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/internal/netcount"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// chatJSON returns about n bytes of JSON such as a chat sends: it
// compresses several-fold.
func chatJSON(n, seq int) []byte {
	b := []byte(`{"t":"msgs","d":[`)
	for i := 0; len(b) < n-40; i++ {
		b = fmt.Appendf(b, `{"id":%d,"from":"user%d","text":"hello there, how is the weather today"},`, seq*1000+i, i%7)
	}
	return append(b[:len(b)-1], "]}"...)
}

// dialCounting dials url with compression mode, counting the bytes the
// client reads in n.
func dialCounting(t testing.TB, url string, mode wire.CompressionMode, n *atomic.Int64) *wire.Conn {
	t.Helper()
	return dialCountingWith(t, url, wire.Options{Compression: mode}, n)
}

// dialCountingWith is dialCounting with the client's options o.
func dialCountingWith(t testing.TB, url string, o wire.Options, n *atomic.Int64) *wire.Conn {
	t.Helper()
	c, err := dialCtx(url, &wire.DialOptions{
		Options:        o,
		NetDialContext: netcount.Dialer(n),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// TestCompressionEcho echoes messages through sessions for each pairing
// of the server's and the client's compression modes: what was agreed,
// that the messages come back whole, and that those of the threshold or
// more came compressed (fewer bytes on the wire than their text), one at
// a time, so that on the event loop each comes to a session whose reader
// went back to its pool, unless it keeps a window.
func TestCompressionEcho(t *testing.T) { eachTransport(t, testCompressionEcho) }

func testCompressionEcho(t *testing.T) {
	for _, tc := range []struct {
		server, client wire.CompressionMode
		want           wire.CompressionParams
	}{
		{wire.CompressionNoContextTakeover, wire.CompressionNoContextTakeover,
			wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{wire.CompressionNoContextTakeover, wire.CompressionContextTakeover,
			wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{wire.CompressionContextTakeover, wire.CompressionContextTakeover,
			wire.CompressionParams{Enabled: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{wire.CompressionContextTakeover, wire.CompressionNoContextTakeover,
			wire.CompressionParams{Enabled: true, ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{wire.CompressionDisabled, wire.CompressionContextTakeover, wire.CompressionParams{}},
	} {
		t.Run(fmt.Sprintf("server=%v/client=%v", tc.server, tc.client), func(t *testing.T) {
			agreed := make(chan wire.CompressionParams, 1)
			h := session.HandlerFunc(func(s *session.Session, m session.Message) error {
				select {
				case agreed <- s.Compression():
				default:
				}
				return s.Send(m.Op, m.Data)
			})
			_, url := start(t, h, runtime.WithCompression(tc.server, wire.DefaultCompressionThreshold))
			var read atomic.Int64
			c := dialCounting(t, url, tc.client, &read)
			if got := c.Compression(); got != tc.want {
				t.Fatalf("client agreed on %+v, want %+v", got, tc.want)
			}
			var text int64
			for i, n := range []int{0, 100, 511, 512, 600, 5000, 5000, 5000, 100_000} {
				p := chatJSON(n, i)
				if err := c.WriteMessage(wire.OpText, p); err != nil {
					t.Fatal(err)
				}
				before := read.Load()
				op, got, err := c.ReadMessage()
				if err != nil || op != wire.OpText || !bytes.Equal(got, p) {
					t.Fatalf("message %d (%d bytes): %v %d bytes %v", i, len(p), op, len(got), err)
				}
				if len(p) >= wire.DefaultCompressionThreshold {
					text += int64(len(p))
					if on := read.Load() - before; tc.want.Enabled && on > int64(len(p))/2 {
						t.Errorf("message %d: %d bytes of JSON took %d on the wire", i, len(p), on)
					}
				}
			}
			if got := <-agreed; got != tc.want {
				t.Errorf("session agreed on %+v, want %+v", got, tc.want)
			}
			if !tc.want.Enabled && read.Load() < text {
				t.Errorf("uncompressed: %d bytes on the wire for %d of text", read.Load(), text)
			}
			c.Close(wire.StatusNormalClosure, "")
		})
	}
}

// TestCompressionThreshold: with a threshold of zero every data message
// goes out compressed; a negative one, or an unknown mode, is refused.
func TestCompressionThreshold(t *testing.T) {
	if _, err := runtime.New(echo, runtime.WithCompression(wire.CompressionNoContextTakeover, -1)); err == nil ||
		!strings.Contains(err.Error(), "CompressionThreshold") {
		t.Fatalf("New with a negative threshold: %v", err)
	}
	if _, err := runtime.New(echo, runtime.WithCompression(wire.CompressionContextTakeover+1, 0)); err == nil ||
		!strings.Contains(err.Error(), "Options.Compression ") {
		t.Fatalf("New with an unknown mode: %v", err)
	}
	_, url := start(t, echo, runtime.WithCompression(wire.CompressionNoContextTakeover, 0))
	var read atomic.Int64
	c := dialCounting(t, url, wire.CompressionNoContextTakeover, &read)
	p := bytes.Repeat([]byte("ab"), 100) // 200 bytes, under the default threshold
	if err := c.WriteMessage(wire.OpText, p); err != nil {
		t.Fatal(err)
	}
	before := read.Load()
	if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("echo: %q %v", got, err)
	}
	if on := read.Load() - before; on > 50 {
		t.Errorf("200 repeated bytes took %d on the wire", on)
	}
}

// rawDeflate opens a connection offering permessage-deflate with the
// given parameters (after "permessage-deflate; "), and returns a reader
// that inflates what the server sends, as the server's answer says, with
// the number of bytes read from the wire.
func rawDeflate(t testing.TB, url, offer string) (*rawClient, *atomic.Int64) {
	t.Helper()
	n := new(atomic.Int64)
	nc, br, resp := rawHandshake(t, url, 0, "Sec-WebSocket-Extensions: permessage-deflate; "+offer+"\r\n",
		func(nc net.Conn) net.Conn { return netcount.Conn{Conn: nc, N: n} })
	answer := resp.Header.Get("Sec-WebSocket-Extensions")
	t.Logf("offer %q: answer %q", offer, answer)
	params := wire.CompressionParams{Enabled: true, ServerNoContextTakeover: strings.Contains(answer, "server_no_context_takeover")}
	n.Store(int64(br.Buffered()))
	return &rawClient{nc: nc, rd: wire.NewReader(br, &wire.ReaderOptions{MaxMessageSize: 64 << 20, Compression: params})}, n
}

// TestCompressedBroadcast broadcasts to a room whose members compress in
// every way there is: with the frame compressed once for all, with their
// own compressor (context takeover, or a window the client limited), or
// not at all. Each gets every message whole, compressed or not as it
// negotiated.
func TestCompressedBroadcast(t *testing.T) { eachTransport(t, testCompressedBroadcast) }

func testCompressedBroadcast(t *testing.T) {
	for _, mode := range []wire.CompressionMode{wire.CompressionNoContextTakeover, wire.CompressionContextTakeover} {
		t.Run(mode.String(), func(t *testing.T) {
			var ref rtRef
			rt, url := start(t, roomHandler{rt: &ref}, runtime.WithCompression(mode, wire.DefaultCompressionThreshold))
			ref.p.Store(rt)
			type member struct {
				name       string
				read       func() ([]byte, error)
				bytes      *atomic.Int64
				compressed bool
			}
			var members []member
			for _, client := range []wire.CompressionMode{wire.CompressionDisabled, wire.CompressionNoContextTakeover, wire.CompressionContextTakeover} {
				n := new(atomic.Int64)
				c := dialCounting(t, url, client, n)
				members = append(members, member{"dial-" + client.String(), func() ([]byte, error) {
					_, p, err := c.ReadMessage()
					return p, err
				}, n, client != wire.CompressionDisabled})
			}
			for _, o := range []struct{ offer, server string }{
				{"server_max_window_bits=9", "windowed"},
				{"server_no_context_takeover; server_max_window_bits=12", "windowed-alone"},
			} {
				rc, n := rawDeflate(t, url, o.offer)
				members = append(members, member{o.server, func() ([]byte, error) {
					rc.nc.SetReadDeadline(time.Now().Add(bound))
					_, p, err := rc.rd.Next()
					return bytes.Clone(p), err
				}, n, true})
			}
			waitFor(t, func() bool { r, ok := rt.Room("lobby"); return ok && r.Len() == len(members) })
			room, _ := rt.Room("lobby")
			var sent int64
			for i := range 20 {
				p := chatJSON(2000, i)
				sent += int64(len(p))
				if got := room.Broadcast(wire.OpText, p); got != len(members) {
					t.Fatalf("broadcast %d reached %d", i, got)
				}
				for _, m := range members {
					got, err := m.read()
					if err != nil || !bytes.Equal(got, p) {
						t.Fatalf("%s: message %d: %d bytes, %v", m.name, i, len(got), err)
					}
				}
			}
			for _, m := range members {
				on := m.bytes.Load()
				t.Logf("%s: %d bytes of JSON took %d on the wire", m.name, sent, on)
				if m.compressed != (on < sent/2) {
					t.Errorf("%s: %d bytes of JSON took %d on the wire (compressed: %v)", m.name, sent, on, m.compressed)
				}
			}
		})
	}
}

// TestCompressionBomb: a client's compressed message that inflates past
// MaxMessageSize closes its session with 1009, and the runtime's other
// sessions go on.
func TestCompressionBomb(t *testing.T) { eachTransport(t, testCompressionBomb) }

func testCompressionBomb(t *testing.T) {
	_, url := start(t, echo, runtime.WithCompression(wire.CompressionNoContextTakeover, 0), runtime.WithMaxMessageSize(64<<10))
	var n atomic.Int64
	other := dialCounting(t, url, wire.CompressionNoContextTakeover, &n)
	bomb := dialCounting(t, url, wire.CompressionNoContextTakeover, &n)
	if err := bomb.WriteMessage(wire.OpBinary, make([]byte, 16<<20)); err != nil { // 16 MiB of zeros: 16 KiB compressed
		t.Fatal(err)
	}
	wantClose(t, readUntilError(bomb), wire.StatusMessageTooBig, "message exceeds the size limit")
	p := chatJSON(3000, 1)
	if err := other.WriteMessage(wire.OpText, p); err != nil {
		t.Fatal(err)
	}
	if _, got, err := other.ReadMessage(); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("the other session: %d bytes, %v", len(got), err)
	}
}

// TestCompressedFrameUnagreed: a frame with RSV1 set on a connection that
// agreed on no compression closes it with 1002.
func TestCompressedFrameUnagreed(t *testing.T) { eachTransport(t, testCompressedFrameUnagreed) }

func testCompressedFrameUnagreed(t *testing.T) {
	_, url := start(t, echo, runtime.WithCompression(wire.CompressionNoContextTakeover, 0))
	c := rawDial(t, url, 0)
	h := wire.Header{Fin: true, Rsv: wire.RSV1, Opcode: wire.OpText, Masked: true}
	if err := c.write(h, wire.AppendCompressed(nil, []byte("hello, hello, hello"))); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.readClose(t); code != wire.StatusProtocolError {
		t.Fatalf("close code %d, want 1002", code)
	}
}

// TestCompressedRecovery: what a room keeps goes to clients that resume
// compressed, as it went live: the kept frames' compressed forms are
// shared by the live broadcast and every replay.
func TestCompressedRecovery(t *testing.T) {
	rig := newHistoryRig(t, runtime.History{Size: 8}, runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold))
	keeper := dial(t, rig.url)
	ask(t, keeper, "join lobby")
	text := string(chatJSON(2000, 0))
	var last runtime.Position
	for range 8 {
		last = rig.publish(t, "lobby", text)
		next(t, keeper)
	}
	for i := range 3 {
		var read atomic.Int64
		c := dialCounting(t, rig.url, wire.CompressionNoContextTakeover, &read)
		if err := c.WriteMessage(wire.OpText, []byte("resume lobby 0 0 8")); err != nil {
			t.Fatal(err)
		}
		if got, w := next(t, c), fmt.Sprintf("recovered false replayed 8 at %d", last.Offset-8); got != w {
			t.Fatalf("client %d: reply %q, want %q", i, got, w)
		}
		for off := last.Offset - 7; off <= last.Offset; off++ {
			if got, w := next(t, c), fmt.Sprintf("%d %d %s", off, last.Epoch, text); got != w {
				t.Fatalf("client %d: replay of %d: %.40q", i, off, got)
			}
		}
		if on := read.Load(); on > int64(8*len(text)/4) { // the handshake and the reply included
			t.Errorf("client %d: 8 replayed messages of %d bytes took %d on the wire", i, len(text), on)
		}
	}
}
