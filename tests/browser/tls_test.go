package browser

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/codec/js"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/tests/internal/testcert"
	"github.com/shockwave-go/shockwave/wire"
)

// TestTLS loads a page over https, with a certificate made for the test
// (Chromium started with --ignore-certificate-errors), from an http.Server
// serving TLS as docs/security.md says: ServeTLS, HTTP/2 on for the page.
// From the page, the browser's own WebSocket echoes text and binary
// messages of many sizes over wss and closes from either side with a clean
// handshake, and two shockwave.js clients, in JSON and in MessagePack,
// join a room, make a request and hear each other's events.
func TestTLS(t *testing.T) {
	browser := newBrowser(t, chromedp.IgnoreCertErrors)
	origin := serveTLSPage(t)

	tb := newTab(t, browser, "wss", 800, 600)
	tb.do("open the page", chromedp.Navigate(origin+"/"))
	tb.waitFor("the page's module", `window.ready === true`)
	// The page came over HTTP/2; a WebSocket takes an HTTP/1.1 connection
	// of its own, as net/http offers no WebSocket over HTTP/2.
	if p := eval[string](tb, `location.protocol + ' ' + performance.getEntriesByType('navigation')[0].nextHopProtocol`); p != "https: h2" {
		t.Errorf("the page came over %q, want https: h2", p)
	}

	// 16 KiB is a TLS record, 125 and 65,535 bytes the frame header's
	// limits; the largest is over 400 KB of UTF-8.
	bad := eval[[]string](tb, `echo([0, 1, 125, 126, 1000, 16383, 16384, 16385, 65535, 65536, 100000, 300000])`, chromedp.EvalAwaitPromise)
	for _, b := range bad {
		t.Error("echo: " + b)
	}

	type closed struct {
		Code   int
		Reason string
		Clean  bool
	}
	if c := eval[closed](tb, `serverClose()`, chromedp.EvalAwaitPromise); c != (closed{4001, "as you asked", true}) {
		t.Errorf("closed by the server: the page saw %+v, want a clean 4001 \"as you asked\"", c)
	}

	type exchange struct {
		Protocol, Reply, Said, Room string
	}
	for _, c := range []string{"json", "msgpack"} {
		got := eval[exchange](tb, `clients(`+jsString(c)+`)`, chromedp.EvalAwaitPromise)
		want := exchange{"shockwave." + c, "OVER TLS", "hello over wss", "lobby"}
		if got != want {
			t.Errorf("shockwave.js with codec %s: %+v, want %+v", c, got, want)
		}
	}
}

// serveTLSPage serves, over TLS on loopback: the page at "/", the browser
// client at "/shockwave.js" and "/msgpack.js", an echo Runtime at "/raw"
// and a codec.Router's at "/ws". It returns the page's origin; all stops
// when the test ends.
func serveTLSPage(t *testing.T) string {
	t.Helper()
	cert, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}

	raw, err := runtime.New(session.HandlerFunc(func(s *session.Session, m session.Message) error {
		if m.Op == wire.OpText && string(m.Data) == "close-me" {
			s.Close(4001, "as you asked")
			return nil
		}
		return s.Send(m.Op, m.Data)
	}))
	if err != nil {
		t.Fatal(err)
	}
	type note struct {
		Text string `json:"text"`
	}
	r := codec.NewRouter(codec.JSON)
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...))
	if err != nil {
		t.Fatal(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	codec.Handle(r, "shout", func(s *session.Session, n note) (note, error) {
		return note{strings.ToUpper(n.Text)}, nil
	})
	codec.On(r, "say", func(s *session.Session, ev codec.Event[note]) error {
		room, ok := rt.Room(ev.Room)
		if !ok {
			return &codec.Error{Code: codec.CodeBadRequest, Message: "no room " + ev.Room}
		}
		_, err := r.Publish(room, "said", ev.Data)
		return err
	})

	mux := http.NewServeMux()
	mux.Handle("GET /raw", raw)
	mux.Handle("GET /ws", rt)
	static := http.FileServerFS(js.FS)
	mux.Handle("GET /shockwave.js", static)
	mux.Handle("GET /msgpack.js", static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(tlsPage))
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: mux, TLSConfig: cert.ServerConfig(), ReadHeaderTimeout: bound,
		ErrorLog: log.New(io.Discard, "", 0), // Chromium resetting the connections it leaves
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		for _, rt := range []*runtime.Runtime{raw, rt} {
			if err := rt.Shutdown(ctx); err != nil {
				t.Errorf("Runtime.Shutdown: %v", err)
			}
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("http.Server.Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	return "https://" + ln.Addr().String()
}

// tlsPage is the page of TestTLS: functions the test calls, each
// resolving to what it saw.
const tlsPage = `<!doctype html>
<meta charset="utf-8">
<title>Shockwave over wss</title>
<script type="module">
import { connect } from './shockwave.js';

// open resolves to a WebSocket to path on this origin, over wss, once
// it is open; ws.next() resolves to the next message, ws.closed to how the
// connection ended.
function open(path) {
  const ws = new WebSocket('wss://' + location.host + path);
  ws.binaryType = 'arraybuffer';
  const got = [], waiting = [];
  ws.onmessage = (e) => (waiting.length ? waiting.shift()(e.data) : got.push(e.data));
  ws.next = () => (got.length ? Promise.resolve(got.shift()) : new Promise((resolve) => waiting.push(resolve)));
  ws.closed = new Promise((resolve) => {
    ws.onclose = (e) => resolve({ code: e.code, reason: e.reason, clean: e.wasClean });
  });
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(path + ': the WebSocket failed'));
  });
}

// Characters of one, two and three bytes in UTF-8, none cut in two by
// a slice.
const pattern = 'wss \u26a1 h\u00e9llo \u2211 ';

// echo sends a text and a binary message of each size and compares what
// comes back, then closes; it resolves to what went wrong.
window.echo = async (sizes) => {
  const ws = await open('/raw');
  const bad = [];
  for (const n of sizes) {
    const text = pattern.repeat(Math.ceil(n / pattern.length)).slice(0, n);
    ws.send(text);
    const t = await ws.next();
    if (t !== text) bad.push('text of ' + n + ' characters: got ' + typeof t + ' of length ' + t.length);
    const bin = new Uint8Array(n);
    for (let i = 0; i < n; i++) bin[i] = (i * 7 + (i >> 8) + n) & 255;
    ws.send(bin);
    const b = await ws.next();
    const same = b instanceof ArrayBuffer && b.byteLength === n && new Uint8Array(b).every((v, i) => v === bin[i]);
    if (!same) bad.push('binary of ' + n + ' bytes: got ' + (b instanceof ArrayBuffer ? b.byteLength + ' bytes' : typeof b));
  }
  ws.close(1000, 'done');
  const c = await ws.closed;
  if (c.code !== 1000 || !c.clean) bad.push('closed by the page: ' + JSON.stringify(c));
  return bad;
};

// serverClose asks the server to close, and resolves to how it ended.
window.serverClose = async () => {
  const ws = await open('/raw');
  ws.send('close-me');
  return ws.closed;
};

// clients connects two shockwave.js clients with codec, which join the
// lobby; one makes a request, then says something the other hears.
window.clients = async (codec) => {
  const url = 'wss://' + location.host + '/ws';
  const a = connect(url, { codec }), b = connect(url, { codec });
  try {
    await Promise.all([a.join('lobby'), b.join('lobby')]);
    const heard = new Promise((resolve) => b.on('said', (d, meta) => resolve({ text: d.text, room: meta.room })));
    const reply = await a.request('shout', { text: 'over tls' });
    a.emit('say', { text: 'hello over wss' }, { room: 'lobby' });
    const said = await heard;
    return { Protocol: a.ws.protocol, Reply: reply.text, Said: said.text, Room: said.room };
  } finally {
    a.close();
    b.close();
  }
};

window.ready = true;
</script>
`
