package browser

import (
	"bufio"
	"bytes"
	"compress/flate"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// TestChatDeflate runs examples/chat with permessage-deflate on, as the
// command does by default, behind a proxy that parses the WebSocket
// frames both ways. Chromium agrees on deflate, each message on its own
// (the page's WebSocket says so in its extensions, and so does every
// handshake the proxy saw). Alice posts a message of more than 512 bytes:
// it leaves her browser compressed (RSV1), as everything a browser sends
// once deflate is agreed, the chat reads it and sends it on compressed to
// both pages, and to carol's, who joins later, in the room's history;
// each page shows it whole. What the chat sends under 512 bytes goes
// plain, and everything from 512 compressed.
func TestChatDeflate(t *testing.T) {
	browser := newBrowser(t)
	url := serveChat(t, chatserver.Config{Runtime: []runtime.Option{
		runtime.WithCompression(wire.CompressionNoContextTakeover, wire.DefaultCompressionThreshold), // examples/chat's
	}})
	tap := url.watch()

	alice := newTab(t, newProfile(t, browser), "alice", 880, 600)
	bob := newTab(t, newProfile(t, browser), "bob", 880, 600)
	alice.login(url.addr, "alice", "lobby")
	bob.login(url.addr, "bob", "lobby")
	alice.waitFor("bob in the member list", `[...document.querySelectorAll('#members .member')].some((b) => b.firstChild.textContent === 'bob')`)

	const agreed = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	got := eval[string](alice, `new Promise((resolve) => {
		const ws = new WebSocket(new URL('ws', location.href).href.replace(/^http/, 'ws'), 'shockwave.json');
		ws.onopen = () => { resolve(ws.extensions); ws.close(); };
		ws.onclose = (e) => resolve('closed ' + e.code);
	})`, chromedp.EvalAwaitPromise)
	if got != agreed {
		t.Fatalf("the page's WebSocket has extensions %q, want %q", got, agreed)
	}

	// Letters, spaces and full stops: the same in JSON as on the page.
	long := strings.Repeat("Deflate finds what repeats within a message. ", 20) + time.Now().Format("15 04 05.000000")
	alice.do("post a long message",
		chromedp.SetValue(chromedp.ID("input"), long, chromedp.NodeVisible, chromedp.NodeEnabled),
		chromedp.Click(chromedp.ID("send")),
	)
	for _, tb := range []*tab{alice, bob} {
		tb.waitForMessage("alice", long)
	}
	carol := newTab(t, newProfile(t, browser), "carol", 880, 600)
	carol.login(url.addr, "carol", "lobby")
	carol.waitForMessage("alice", long) // from the room's history

	hs, msgs := tap.seen()
	if len(hs) < 4 { // the three pages and alice's probe
		t.Errorf("the proxy saw %d WebSocket handshakes, want 4 or more", len(hs))
	}
	for i, h := range hs {
		if !strings.Contains(h.offer, "permessage-deflate") || h.answer != agreed {
			t.Errorf("handshake %d: Chromium offered %q, the chat answered %q, want %q", i, h.offer, h.answer, agreed)
		}
	}
	var sent, received int // compressed messages carrying the long text
	conns := map[*tapConn]bool{}
	var counts [2][2]int // [to server][compressed]
	for _, m := range msgs {
		if m.err != nil {
			t.Errorf("a message to the %s with RSV1 does not inflate: %v", side(m.toServer), m.err)
			continue
		}
		counts[b2i(m.toServer)][b2i(m.compressed)]++
		if !m.toServer && m.compressed != (len(m.data) >= wire.DefaultCompressionThreshold) {
			t.Errorf("the chat sent %d bytes with RSV1 %v, with a threshold of %d: %.80s",
				len(m.data), m.compressed, wire.DefaultCompressionThreshold, m.data)
		}
		if !bytes.Contains(m.data, []byte(long)) {
			continue
		}
		if !m.compressed {
			t.Errorf("the long message went to the %s uncompressed", side(m.toServer))
		}
		if m.toServer {
			sent++
		} else {
			received++
			conns[m.conn] = true
		}
		t.Logf("the long message to the %s: %d bytes, %d on the wire, RSV1 %v", side(m.toServer), len(m.data), m.onWire, m.compressed)
	}
	if sent != 1 || received != 3 || len(conns) != 3 {
		t.Errorf("the long message went to the server %d times, want 1, and to the pages %d times on %d connections, want 3 on 3",
			sent, received, len(conns))
	}
	t.Logf("messages to the chat: %d compressed, %d plain; to the pages: %d compressed, %d plain",
		counts[1][1], counts[1][0], counts[0][1], counts[0][0])
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func side(toServer bool) string {
	if toServer {
		return "server"
	}
	return "browser"
}

// watch parses the WebSocket frames of the connections made through the
// proxy from now on.
func (u *chatURL) watch() *frameTap {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.tap = new(frameTap)
	return u.tap
}

// frameTap keeps the WebSocket handshakes and data messages of the
// connections through a proxy, inflating those with RSV1 (each on its
// own: the tests agree on no context takeover).
type frameTap struct {
	mu   sync.Mutex // guards the fields below
	hs   []*tapConn
	msgs []tapped
}

// tapConn is one connection, and its handshake once seen.
type tapConn struct {
	offer, answer string // Sec-WebSocket-Extensions of the request and of the 101
}

// tapped is a data message.
type tapped struct {
	conn       *tapConn
	toServer   bool
	compressed bool   // RSV1 on its first frame
	onWire     int    // its frames' payloads
	data       []byte // inflated
	err        error  // inflating it
}

// seen returns the handshakes and messages so far.
func (ft *frameTap) seen() ([]tapConn, []tapped) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	hs := make([]tapConn, len(ft.hs))
	for i, h := range ft.hs {
		hs[i] = *h
	}
	return hs, append([]tapped(nil), ft.msgs...)
}

// conn returns readers of client and server that parse what they read,
// for the proxy to copy from.
func (ft *frameTap) conn(client, server io.Reader) (up, down io.Reader) {
	c := new(tapConn)
	return io.TeeReader(client, &tapStream{ft: ft, c: c, toServer: true}),
		io.TeeReader(server, &tapStream{ft: ft, c: c})
}

// tapStream parses one direction of a connection: an HTTP header, then,
// if it is a WebSocket handshake, frames. Another connection is let be.
type tapStream struct {
	ft       *frameTap
	c        *tapConn
	toServer bool
	frames   bool // past the handshake
	done     bool // not a WebSocket, or a frame it cannot parse
	buf      []byte
	msg      *tapped // whose frames are coming
}

func (s *tapStream) Write(p []byte) (int, error) {
	if s.done {
		return len(p), nil
	}
	s.buf = append(s.buf, p...)
	if !s.frames {
		end := bytes.Index(s.buf, []byte("\r\n\r\n"))
		if end < 0 {
			return len(p), nil
		}
		if !s.handshake(s.buf[:end+4]) {
			s.done, s.buf = true, nil
			return len(p), nil
		}
		s.frames = true
		s.buf = append([]byte(nil), s.buf[end+4:]...)
	}
	for {
		h, n, err := wire.ParseHeader(s.buf)
		if err != nil {
			s.done = true
			return len(p), nil
		}
		if n == 0 || int64(len(s.buf)-n) < h.Length {
			return len(p), nil
		}
		s.frame(h, s.buf[n:n+int(h.Length)])
		s.buf = append(s.buf[:0], s.buf[n+int(h.Length):]...)
	}
}

// handshake reads an HTTP header, and reports whether it is a WebSocket
// handshake: a request to upgrade, or a 101.
func (s *tapStream) handshake(head []byte) bool {
	br := bufio.NewReader(bytes.NewReader(head))
	s.ft.mu.Lock()
	defer s.ft.mu.Unlock()
	if s.toServer {
		req, err := http.ReadRequest(br)
		if err != nil || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			return false
		}
		s.c.offer = req.Header.Get("Sec-WebSocket-Extensions")
		s.ft.hs = append(s.ft.hs, s.c)
		return true
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return false
	}
	s.c.answer = resp.Header.Get("Sec-WebSocket-Extensions")
	return true
}

// frame takes a frame: a data message's are gathered until its last.
func (s *tapStream) frame(h wire.Header, payload []byte) {
	if h.Opcode.IsControl() {
		return
	}
	p := bytes.Clone(payload)
	if h.Masked {
		wire.Mask(p, h.Key, 0)
	}
	if h.Opcode != wire.OpContinuation || s.msg == nil {
		s.msg = &tapped{conn: s.c, toServer: s.toServer, compressed: h.Rsv&wire.RSV1 != 0}
	}
	m := s.msg
	m.onWire += len(p)
	m.data = append(m.data, p...)
	if !h.Fin {
		return
	}
	s.msg = nil
	if m.compressed {
		// The sync flush the sender took off, then an empty final block.
		zr := flate.NewReader(bytes.NewReader(append(m.data, 0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff)))
		m.data, m.err = io.ReadAll(zr)
	}
	s.ft.mu.Lock()
	s.ft.msgs = append(s.ft.msgs, *m)
	s.ft.mu.Unlock()
}
