package runtime_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// serve serves rt on a loopback listener with Serve, and checks when t
// ends that Shutdown made Serve return http.ErrServerClosed. wrap, if
// given, wraps the listener (a listener that is not a *net.TCPListener
// is served by net/http).
func serve(t testing.TB, rt *runtime.Runtime, wrap ...func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	for _, w := range wrap {
		ln = w(ln)
	}
	done := make(chan error, 1)
	go func() { done <- rt.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(bound):
			t.Errorf("Serve has not returned after Shutdown")
		}
	})
	return "ws://" + addr
}

// plainListener hides a *net.TCPListener, so that Serve falls back on
// net/http.
type plainListener struct{ net.Listener }

func wrapPlain(ln net.Listener) net.Listener { return plainListener{ln} }

// listeners are the two ways Serve serves: on the event loop, and with
// net/http for any other listener.
var listeners = []struct {
	name string
	wrap []func(net.Listener) net.Listener
}{
	{"eventloop", nil},
	{"nethttp", []func(net.Listener) net.Listener{wrapPlain}},
}

// rawRequest sends head (and what follows it) on a new connection to url
// and returns the server's response, with the connection.
func rawRequest(t *testing.T, url string, chunks ...string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "ws://"), bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(bound))
	for i, c := range chunks {
		if i > 0 {
			time.Sleep(10 * time.Millisecond) // each in a packet of its own
		}
		if _, err := io.WriteString(nc, c); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return resp, nc, br
}

const upgradeHead = "GET /any/path?x=1 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

func TestServe(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			rt, err := runtime.New(echo, runtime.WithSubprotocols("b", "a"))
			if err != nil {
				t.Fatal(err)
			}
			url := serve(t, rt, l.wrap...)

			t.Run("echo", func(t *testing.T) {
				c, _, err := wire.Dial(context.Background(), url+"/chat", &wire.DialOptions{Subprotocols: []string{"a", "b"}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if c.Subprotocol() != "b" {
					t.Errorf("subprotocol %q, want b", c.Subprotocol())
				}
				for _, n := range []int{0, 10, 125, 126, 70000} {
					msg := strings.Repeat("x", n)
					if err := c.Write(context.Background(), wire.OpText, []byte(msg)); err != nil {
						t.Fatal(err)
					}
					op, p, err := c.Read(context.Background())
					if err != nil || op != wire.OpText || string(p) != msg {
						t.Fatalf("echo of %d bytes: %v %v %d bytes", n, op, err, len(p))
					}
				}
			})

			t.Run("frames with the head", func(t *testing.T) {
				// The head and two frames in one packet, then the head in
				// pieces: what comes after the head is the session's.
				frames := string(wire.AppendFrame(nil, wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Length: 2}, []byte("hi"))) +
					string(wire.AppendFrame(nil, wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Length: 3}, []byte("you")))
				for _, chunks := range [][]string{
					{upgradeHead + "\r\n" + frames},
					{upgradeHead[:10], upgradeHead[10:40], upgradeHead[40:] + "\r", "\n" + frames[:3], frames[3:]},
				} {
					resp, _, br := rawRequest(t, url, chunks...)
					if resp.StatusCode != http.StatusSwitchingProtocols {
						t.Fatalf("status %s", resp.Status)
					}
					rd := wire.NewReader(br, nil)
					for _, want := range []string{"hi", "you"} {
						_, p, err := rd.Next()
						if err != nil || string(p) != want {
							t.Fatalf("read %q, %v; want %q", p, err, want)
						}
					}
				}
			})

			// What is not an upgrade is refused with the status wire.Upgrade
			// answers on the net/http path, and the connection closed.
			for _, tc := range []struct {
				name, head string
				status     int
			}{
				{"not an upgrade", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusUpgradeRequired},
				{"method", strings.Replace(upgradeHead, "GET", "POST", 1) + "Content-Length: 0\r\n\r\n", http.StatusMethodNotAllowed},
				{"version", strings.Replace(upgradeHead, "Version: 13", "Version: 8", 1) + "\r\n", http.StatusUpgradeRequired},
				{"key", strings.Replace(upgradeHead, "dGhlIHNhbXBsZSBub25jZQ==", "short", 1) + "\r\n", http.StatusBadRequest},
				{"origin", upgradeHead + "Origin: https://evil.example\r\n\r\n", http.StatusForbidden},
				{"malformed", "GET / HTTP/1.1\r\nHost x\r\n\r\n", http.StatusBadRequest},
				{"too large", upgradeHead + "X-Pad: " + strings.Repeat("p", 21<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
			} {
				t.Run(tc.name, func(t *testing.T) {
					resp, _, br := rawRequest(t, url, tc.head)
					if resp.StatusCode != tc.status {
						t.Fatalf("status %s, want %d", resp.Status, tc.status)
					}
					io.Copy(io.Discard, resp.Body)
					if l.wrap != nil {
						return // net/http keeps the connection for the next request
					}
					// Closed: at once, or reset, with the rest of a head
					// too large unread.
					if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
						t.Errorf("after the refusal: %v, want the end", err)
					}
				})
			}
		})
	}
}

// TestServeHandshakeTimeout: a client that does not finish its head is
// let go after the HandshakeTimeout, and one that sends nothing too.
func TestServeHandshakeTimeout(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			rt, err := runtime.New(echo, runtime.WithHandshakeTimeout(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			url := serve(t, rt, l.wrap...)
			for _, sent := range []string{"", upgradeHead} {
				nc, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "ws://"), bound)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(bound))
				io.WriteString(nc, sent)
				// Whatever net/http answers (408, or nothing), then the end.
				if _, err := io.ReadAll(nc); err != nil {
					t.Fatalf("with %d bytes of the head sent: %v, want the connection closed", len(sent), err)
				}
			}
		})
	}
}

// TestServeLimits: the Limits, the AdmitFunc and the trusted proxies apply
// to Serve's handshakes as to ServeHTTP's.
func TestServeLimits(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			type who struct{ name string }
			opened := make(chan *session.Session, 4)
			h := handler{open: func(s *session.Session) error { opened <- s; return nil }}
			rt, err := runtime.New(h,
				runtime.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")),
				runtime.WithLimits(runtime.Limits{MaxConnectionsPerAddress: 1}),
				runtime.WithAdmit(func(r *http.Request) (runtime.Admission, error) {
					tok := r.Header.Get("Authorization")
					if tok == "" {
						return runtime.Admission{}, &runtime.Refusal{Status: http.StatusUnauthorized, Message: "who are you?"}
					}
					return runtime.Admission{Identity: who{tok}}, nil
				}))
			if err != nil {
				t.Fatal(err)
			}
			url := serve(t, rt, l.wrap...)

			resp, _, _ := rawRequest(t, url, upgradeHead+"\r\n")
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("without a token: %s, want 401", resp.Status)
			}
			head := upgradeHead + "Authorization: ann\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n"
			if resp, _, _ := rawRequest(t, url, head); resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("with a token: %s", resp.Status)
			}
			s := <-opened
			if id, _ := session.Identity[who](s); id.name != "ann" {
				t.Errorf("Identity %v, want ann", id)
			}
			if got := s.ClientAddr(); got != netip.MustParseAddr("192.0.2.7") {
				t.Errorf("ClientAddr %v, want the forwarded 192.0.2.7", got)
			}
			// A second connection from the same forwarded client is over
			// MaxConnectionsPerAddr.
			if resp, _, _ := rawRequest(t, url, head); resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("second from the client: %s, want 429", resp.Status)
			}
		})
	}
}

// servesListener reports whether t runs on the listener transport (start
// serves with Serve).
func servesListener(t testing.TB) bool { return strings.Contains(t.Name()+"/", "/listener/") }

// wantShutDown checks that url takes no more upgrades once Shutdown has
// begun: behind net/http they are refused with 503; a listener the
// Runtime serves is closed.
func wantShutDown(t testing.TB, url string) {
	t.Helper()
	if !servesListener(t) {
		wantStatus(t, url, http.StatusServiceUnavailable)
		return
	}
	// Refused, or reset if it came in while the listener closed.
	if c, err := dialCtx(url, nil); !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.ECONNRESET) {
		if err == nil {
			c.CloseNow()
		}
		t.Fatalf("dial after Shutdown: %v, want the connection refused", err)
	}
}

// TestServeShutdownPending: Shutdown lets go of the connections whose
// request head has not come, and Serve returns.
func TestServeShutdownPending(t *testing.T) {
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			rt, err := runtime.New(echo)
			if err != nil {
				t.Fatal(err)
			}
			url := serve(t, rt, l.wrap...)
			nc, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "ws://"), bound)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			io.WriteString(nc, upgradeHead[:20]) // and no more
			time.Sleep(10 * time.Millisecond)    // let it be accepted
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			defer cancel()
			if err := rt.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			nc.SetDeadline(time.Now().Add(bound))
			if _, err := io.ReadAll(nc); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("after Shutdown: %v, want the connection closed", err)
			}
		})
	}
}

// TestServeHeadBudget: the buffer of a head that comes in pieces counts in
// the inbound memory budget, and a head that finds it spent is refused
// with 503.
func TestServeHeadBudget(t *testing.T) {
	rt, err := runtime.New(echo, runtime.WithMemoryBudget(100, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, rt)
	resp, _, _ := rawRequest(t, url, upgradeHead[:30], upgradeHead[30:]+"\r\n")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a head in pieces past the budget: %s, want 503", resp.Status)
	}
	eventually(t, bound, "the head's buffer given back", func() bool { in, _ := rt.MemoryInUse(); return in == 0 })
}
