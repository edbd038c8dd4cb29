package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	goruntime "runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/tests/internal/testcert"
	"github.com/shockwave-go/shockwave/wire"
)

// tlsRoom is the room every session of the wss server joins.
const tlsRoom = "lobby"

// tlsHandler is the wss server's handler: it echoes, broadcasts a text
// message that starts with "all:" to the room, closes on "close-me", and
// reports how each session ended.
type tlsHandler struct {
	rt     *runtime.Runtime
	opened atomic.Int64
	closed atomic.Int64
	ends   chan error // OnClose's errors
}

func (h *tlsHandler) OnOpen(s *session.Session) error {
	h.opened.Add(1)
	_, err := h.rt.JoinRoom(tlsRoom, s)
	return err
}

func (h *tlsHandler) OnMessage(s *session.Session, m session.Message) error {
	switch {
	case m.Op == wire.OpText && bytes.HasPrefix(m.Data, []byte("all:")):
		if r, ok := h.rt.Room(tlsRoom); ok {
			r.Broadcast(m.Op, m.Data)
		}
		return nil
	case m.Op == wire.OpText && string(m.Data) == "close-me":
		s.Close(4001, "as you asked")
		return nil
	}
	return s.Send(m.Op, m.Data)
}

func (h *tlsHandler) OnClose(s *session.Session, err error) {
	h.closed.Add(1)
	select {
	case h.ends <- err:
	default:
	}
}

// settle waits until every session that opened has ended, and forgets how
// they ended: the next step sees its own sessions' ends only.
func (h *tlsHandler) settle(t *testing.T) {
	t.Helper()
	if t.Failed() {
		return // the sessions of a step cut short end with the test
	}
	checkFor(t, "every session to end", func() bool { return h.closed.Load() == h.opened.Load() })
	for {
		select {
		case <-h.ends:
		default:
			return
		}
	}
}

// checkFor polls cond until it holds, failing the test after waitFor.
func checkFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serveRuntime serves a Runtime with handler h at /ws on loopback, over TLS
// with cert when cert is not nil. The Runtime shuts down, then the server
// closes, when the test ends.
func serveRuntime(t *testing.T, h session.Handler, cert *testcert.Cert) (*runtime.Runtime, *httptest.Server) {
	t.Helper()
	rt, err := runtime.New(h, runtime.WithMaxMessageSize(maxMsg))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rt)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	if cert != nil {
		// Offered as http.Server.ServeTLS offers it: HTTP/2 as well, which
		// a WebSocket client does not ask for.
		srv.EnableHTTP2 = true
		srv.TLS = cert.ServerConfig()
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		srv.Close()
	})
	return rt, srv
}

// dialWSS opens a wss connection to srv trusting cert, with a deadline
// that ends a hung test.
func dialWSS(t *testing.T, srv *httptest.Server, cert *testcert.Cert) *wire.Conn {
	t.Helper()
	url := "wss://" + srv.Listener.Addr().String() + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, _, err := wire.Dial(ctx, url, &wire.DialOptions{
		Options:   wire.Options{MaxMessageSize: maxMsg},
		TLSConfig: cert.ClientConfig(),
	})
	if err != nil {
		t.Fatalf("Dial %s: %v", url, err)
	}
	c.NetConn().SetDeadline(time.Now().Add(lifetime))
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// read reads the next message of c within waitFor.
func read(t *testing.T, c *wire.Conn) message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	op, p, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return message{op, bytes.Clone(p)}
}

// sessionGoroutines counts the goroutines of this process running
// session.(*Session).serve: the sessions on the goroutine transport. An
// event-loop session's Serve returns as soon as it waits for its client.
func sessionGoroutines() int {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "/session.(*Session).serve(")
}

// TestRuntimeTLS serves a runtime.Runtime over TLS (wss) with a
// certificate made for the test, and checks with wire.Dial that messages
// of every size come back whole, whether sent in one frame or in
// fragments; that a room broadcasts to every wss client; the closing
// handshake from either side; that TLS sessions run on the goroutine
// transport (a goroutine each, where plain TCP ones on Linux hold none);
// and that a client that does not trust the certificate, or speaks ws://
// to the TLS port, fails at once and leaves the server as it was.
func TestRuntimeTLS(t *testing.T) {
	cert, err := testcert.New()
	if err != nil {
		t.Fatal(err)
	}
	h := &tlsHandler{ends: make(chan error, 16)}
	rt, srv := serveRuntime(t, h, cert)
	h.rt = rt

	t.Run("echo", func(t *testing.T) {
		defer h.settle(t)
		c := dialWSS(t, srv, cert)
		if _, ok := c.NetConn().(*tls.Conn); !ok {
			t.Fatalf("the client's connection is a %T, not TLS", c.NetConn())
		}
		// Around a TLS record (16 KiB) and the read buffer (16 KiB), and
		// beyond both.
		sizes := []int{0, 1, 125, 126, 1000, 16<<10 - 1, 16 << 10, 16<<10 + 1, 64<<10 + 3, 300 << 10, 1 << 20}
		for _, op := range []wire.Opcode{wire.OpText, wire.OpBinary} {
			for _, n := range sizes {
				want := payload(op, n, n)
				t.Run(fmt.Sprintf("%v/%d", op, n), func(t *testing.T) {
					if err := c.WriteMessage(op, want); err != nil {
						t.Fatalf("WriteMessage: %v", err)
					}
					checkMessage(t, read(t, c), op, want)
				})
				if n <= 16<<10 {
					continue
				}
				// Fragments of uneven sizes, text cut inside characters,
				// with a ping between two of them.
				t.Run(fmt.Sprintf("%v/%d/fragmented", op, n), func(t *testing.T) {
					cuts := []int{0, 7, n / 3, 2 * n / 3, n}
					for i := 1; i < len(cuts); i++ {
						fop := wire.OpContinuation
						if i == 1 {
							fop = op
						}
						if err := c.WriteFrame(fop, i == len(cuts)-1, want[cuts[i-1]:cuts[i]]); err != nil {
							t.Fatalf("WriteFrame %d: %v", i, err)
						}
						if i == 2 {
							if err := c.Ping([]byte("between fragments")); err != nil {
								t.Fatalf("Ping: %v", err)
							}
						}
					}
					checkMessage(t, read(t, c), op, want)
				})
			}
		}
		if err := c.Close(wire.StatusNormalClosure, ""); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	t.Run("broadcast", func(t *testing.T) {
		defer h.settle(t)
		clients := make([]*wire.Conn, 4)
		for i := range clients {
			clients[i] = dialWSS(t, srv, cert)
		}
		checkFor(t, "every client in the room", func() bool {
			r, ok := rt.Room(tlsRoom)
			return ok && r.Len() == len(clients)
		})
		for i, from := range clients {
			want := append([]byte(fmt.Sprintf("all: from client %d ", i)), payload(wire.OpText, 20<<10, i)...)
			if err := from.WriteMessage(wire.OpText, want); err != nil {
				t.Fatalf("client %d: WriteMessage: %v", i, err)
			}
			for j, to := range clients {
				got := read(t, to)
				if got.op != wire.OpText || !bytes.Equal(got.data, want) {
					t.Fatalf("client %d got %v of %d bytes, want client %d's broadcast of %d", j, got.op, len(got.data), i, len(want))
				}
			}
		}
		for _, c := range clients {
			if err := c.Close(wire.StatusNormalClosure, ""); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})

	t.Run("close-from-client", func(t *testing.T) {
		defer h.settle(t)
		c := dialWSS(t, srv, cert)
		if err := c.Close(wire.StatusGoingAway, "client leaving"); err != nil {
			t.Fatalf("Close: %v (the server must answer the close frame)", err)
		}
		err := recv(t, h.ends, "OnClose")
		var ce wire.CloseError
		if !errors.As(err, &ce) || ce.Code != wire.StatusGoingAway || ce.Reason != "client leaving" {
			t.Errorf("OnClose got %v, want the client's close 1001 \"client leaving\"", err)
		}
	})

	t.Run("close-from-server", func(t *testing.T) {
		defer h.settle(t)
		c := dialWSS(t, srv, cert)
		if err := c.WriteMessage(wire.OpText, []byte("close-me")); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_, _, err := c.Read(ctx)
		var ce wire.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "as you asked" {
			t.Fatalf("Read: %v, want the server's close 4001 \"as you asked\"", err)
		}
		// Read answered the close frame: the server ends the session with
		// its own code, without waiting for CloseTimeout.
		err = recv(t, h.ends, "OnClose")
		if wire.CloseStatus(err) != 4001 || errors.Is(err, session.ErrTimeout) {
			t.Errorf("OnClose got %v, want close 4001 answered in time", err)
		}
	})

	t.Run("goroutine-transport", func(t *testing.T) {
		defer h.settle(t)
		const n = 4
		// The earlier steps' sessions have called OnClose (settle), but
		// their goroutines may not have returned yet: wait, or one that
		// ends after the count would make it one short for ever.
		checkFor(t, "the earlier sessions' goroutines to end", func() bool { return sessionGoroutines() == 0 })
		for range n {
			c := dialWSS(t, srv, cert)
			defer c.Close(wire.StatusNormalClosure, "")
		}
		checkFor(t, fmt.Sprintf("%d goroutines in Session.serve", n), func() bool { return sessionGoroutines() == n })
		if goruntime.GOOS != "linux" {
			return // no event loop to compare with
		}
		// The same over plain TCP: taken over by the event loop, the
		// sessions leave Serve and hold no goroutine.
		ph := &tlsHandler{ends: make(chan error, 16)}
		prt, psrv := serveRuntime(t, ph, nil)
		ph.rt = prt
		for range n {
			c, _, err := wire.Dial(context.Background(), "ws://"+psrv.Listener.Addr().String()+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.CloseNow() })
		}
		checkFor(t, "the plain sessions open", func() bool { return ph.opened.Load() == n })
		checkFor(t, "the plain sessions to leave serve", func() bool { return sessionGoroutines() == n })
	})

	t.Run("refused", func(t *testing.T) {
		defer h.settle(t)
		addr := srv.Listener.Addr().String()
		before := h.opened.Load()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()

		// The default TLS config trusts the system's roots, not ours.
		_, _, err := wire.Dial(ctx, "wss://"+addr+"/ws", nil)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("wss:// without trusting the certificate: %v, want x509.UnknownAuthorityError", err)
		}

		// Plain HTTP to the TLS port: net/http answers 400 in clear.
		_, resp, err := wire.Dial(ctx, "ws://"+addr+"/ws", nil)
		var he *wire.HandshakeError
		if !errors.As(err, &he) || he.Status != 400 || resp == nil {
			t.Errorf("ws:// to the TLS port: %v (response %v), want a HandshakeError with status 400", err, resp)
		}
		if ctx.Err() != nil {
			t.Errorf("the refusals took until the deadline")
		}
		if n := h.opened.Load(); n != before {
			t.Errorf("%d sessions opened by refused clients", n-before)
		}

		// The server serves on.
		c := dialWSS(t, srv, cert)
		if err := c.WriteMessage(wire.OpText, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		checkMessage(t, read(t, c), wire.OpText, []byte("still here"))
		c.Close(wire.StatusNormalClosure, "")
	})
}
