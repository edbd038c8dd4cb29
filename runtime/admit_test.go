package runtime_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// user is an application's identity: what its handlers need of the
// upgrade request, copied out of it.
type user struct {
	Name string
	Lang string // from a header
	Room string // from the query
}

// admitUsers admits ?token=alice and ?token=bob, refuses the rest as a
// service with a token store would.
func admitUsers(r *http.Request) (runtime.Admission, error) {
	switch tok := r.URL.Query().Get("token"); tok {
	case "alice", "bob":
		return runtime.Admission{Identity: user{tok, r.Header.Get("Accept-Language"), r.URL.Query().Get("room")}}, nil
	case "":
		return runtime.Admission{}, &runtime.Refusal{Status: http.StatusUnauthorized, Message: "sign in first"}
	case "flood":
		return runtime.Admission{}, &runtime.Refusal{Status: http.StatusTooManyRequests, Message: "slow down", RetryAfter: 1500 * time.Millisecond}
	case "broken":
		return runtime.Admission{}, errors.New("token store unreachable")
	case "panic":
		panic("boom")
	}
	return runtime.Admission{}, &runtime.Refusal{Status: http.StatusForbidden, Message: "unknown token"}
}

// TestAdmit: the AdmitFunc refuses before the upgrade with its status and
// message (never a 101), answers 503 for an error or a panic, gives back
// the admission's counts when it refuses, and admits with an identity that
// every callback reads.
func TestAdmit(t *testing.T) { eachTransport(t, testAdmit) }

func testAdmit(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{} // callback -> names
	saw := func(cb string, s *session.Session) {
		u, ok := session.Identity[user](s)
		mu.Lock()
		defer mu.Unlock()
		if ok {
			seen[cb] = append(seen[cb], u.Name+"/"+u.Lang+"/"+u.Room)
		} else {
			seen[cb] = append(seen[cb], "?")
		}
	}
	ended := make(chan struct{}, 4)
	h := handler{
		open: func(s *session.Session) error { saw("open", s); return nil },
		msg: func(s *session.Session, m session.Message) error {
			saw("msg", s)
			u, _ := session.Identity[user](s)
			return s.Send(wire.OpText, []byte("hello "+u.Name))
		},
		close: func(s *session.Session, err error) { saw("close", s); ended <- struct{}{} },
	}
	// One connection per address, loopback included: a refusal that kept
	// its count would lock the address out.
	var asked atomic.Int32
	counted := func(r *http.Request) (runtime.Admission, error) { asked.Add(1); return admitUsers(r) }
	_, url := start(t, h, runtime.WithAdmit(counted),
		runtime.WithLimits(runtime.Limits{MaxConnectionsPerAddress: 1, UpgradeRate: -1, Exempt: []netip.Prefix{}}))
	for _, tc := range []struct {
		query  string
		status int
		body   string
		retry  string
	}{
		{"", http.StatusUnauthorized, "sign in first", ""},
		{"?token=mallory", http.StatusForbidden, "unknown token", ""},
		{"?token=flood", http.StatusTooManyRequests, "slow down", "2"},
		{"?token=broken", http.StatusServiceUnavailable, "shockwave: could not admit the connection", "5"},
		{"?token=panic", http.StatusServiceUnavailable, "shockwave: could not admit the connection", "5"},
	} {
		resp, body := upgradeRequest(t, url+tc.query, nil)
		if resp.StatusCode != tc.status || strings.TrimSpace(body) != tc.body || resp.Header.Get("Retry-After") != tc.retry {
			t.Errorf("%q: %d %q, Retry-After %q; want %d %q, %q", tc.query, resp.StatusCode, body, resp.Header.Get("Retry-After"), tc.status, tc.body, tc.retry)
		}
	}
	// Requests that cannot be upgraded are answered before the AdmitFunc
	// is asked.
	req, _ := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(url, "ws")+"?token=alice", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("a plain GET: %v %v, want 426", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, _ := upgradeRequest(t, url+"?token=alice", http.Header{"Origin": {"https://evil.example"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an upgrade from another origin: %d, want 403", resp.StatusCode)
	}
	if n := asked.Load(); n != 5 {
		t.Errorf("the AdmitFunc was asked %d times, want 5 (the refusals above, not the requests that cannot be upgraded)", n)
	}
	c, _, err := wire.Dial(context.Background(), url+"?token=alice&room=lobby", &wire.DialOptions{Header: http.Header{"Accept-Language": {"fr"}}})
	if err != nil {
		t.Fatalf("admitted after five refusals from the same address: %v", err)
	}
	wantEcho := func(c *wire.Conn, want string) {
		t.Helper()
		if err := c.WriteMessage(wire.OpText, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		c.NetConn().SetReadDeadline(time.Now().Add(bound))
		if _, p, err := c.ReadMessage(); err != nil || string(p) != want {
			t.Fatalf("got %q %v, want %q", p, err, want)
		}
	}
	wantEcho(c, "hello alice")
	c.Close(wire.StatusNormalClosure, "")
	<-ended
	mu.Lock()
	defer mu.Unlock()
	for _, cb := range []string{"open", "msg", "close"} {
		if got := strings.Join(seen[cb], ","); got != "alice/fr/lobby" {
			t.Errorf("%s saw identity %q, want alice/fr/lobby", cb, got)
		}
	}
}

// upgradeRequest sends an upgrade request to a ws:// URL with net/http and
// returns the response and its body.
func upgradeRequest(t *testing.T, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http"+strings.TrimPrefix(url, "ws"), nil)
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestAdmitExpiry: credentials that expire close the session with 3000
// and ErrExpired, counted; a session that authorizes itself again in-band
// (a fresh token in a message) keeps going past the first expiry.
func TestAdmitExpiry(t *testing.T) { eachTransport(t, testAdmitExpiry) }

func testAdmitExpiry(t *testing.T) {
	ends := make(chan error, 2)
	h := handler{
		msg: func(s *session.Session, m session.Message) error {
			if string(m.Data) == "refresh" {
				u, _ := session.Identity[user](s)
				s.Authorize(u, time.Now().Add(time.Hour))
			}
			return s.Send(m.Op, m.Data)
		},
		close: func(s *session.Session, err error) { ends <- err },
	}
	rt, url := start(t, h, runtime.WithTick(5*time.Millisecond),
		runtime.WithAdmit(func(r *http.Request) (runtime.Admission, error) {
			return runtime.Admission{Identity: user{Name: "alice"}, Expires: time.Now().Add(150 * time.Millisecond)}, nil
		}))

	expiring := dial(t, url)
	refreshed := dial(t, url)
	firstExpiry := time.Now().Add(150 * time.Millisecond) // refreshed's, at the latest
	wantEcho(t, refreshed, "refresh")
	wantClose(t, readUntilError(expiring), wire.StatusUnauthorized, "credentials expired")
	if err := <-ends; !errors.Is(err, session.ErrExpired) {
		t.Fatalf("OnClose: %v, want ErrExpired", err)
	}
	time.Sleep(time.Until(firstExpiry) + 50*time.Millisecond) // ten ticks past it
	wantEcho(t, refreshed, "still here")
	if n := rt.Counters().Expired.Load(); n != 1 {
		t.Fatalf("Counters.Expired = %d, want 1", n)
	}
}

// TestAdmitDuringShutdown: once Shutdown has begun, requests get 503 and
// the AdmitFunc is not asked.
func TestAdmitDuringShutdown(t *testing.T) { eachTransport(t, testAdmitDuringShutdown) }

func testAdmitDuringShutdown(t *testing.T) {
	var calls atomic.Int32
	rt, url := start(t, handler{}, runtime.WithAdmit(func(r *http.Request) (runtime.Admission, error) {
		calls.Add(1)
		return runtime.Admission{}, nil
	}))
	if err := rt.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantShutDown(t, url)
	if calls.Load() != 0 {
		t.Fatalf("during Shutdown: AdmitFunc asked %d times", calls.Load())
	}
}

// TestClientAddr: the client's address is RemoteAddr's unless RemoteAddr
// is a trusted proxy (FromTrustedProxy); then it is the last address of
// the forwarding header that is not a trusted proxy.
func TestClientAddr(t *testing.T) {
	rt, err := runtime.New(session.NopHandler{}, runtime.WithTrustedProxies(
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	for _, tc := range []struct {
		remote string
		header string // Name: value
		want   string
	}{
		{"203.0.113.9:5555", "", "203.0.113.9"},
		{"203.0.113.9:5555", "X-Forwarded-For: 198.51.100.1", "203.0.113.9"}, // not a proxy: the header is the client's
		{"10.1.2.3:80", "X-Forwarded-For: 198.51.100.1", "198.51.100.1"},
		{"10.1.2.3:80", "X-Forwarded-For: 192.0.2.66, 198.51.100.1, 10.9.9.9", "198.51.100.1"}, // forged first hop ignored
		{"10.1.2.3:80", "X-Forwarded-For: 10.0.0.1, 10.0.0.2", "10.0.0.1"},
		{"10.1.2.3:80", "X-Forwarded-For: garbage, 198.51.100.1", "198.51.100.1"},
		{"10.1.2.3:80", "X-Forwarded-For: 198.51.100.1, garbage", "10.1.2.3"}, // stops at what it cannot read
		{"10.1.2.3:80", "", "10.1.2.3"},
		{"10.1.2.3:80", `Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"`, "2001:db8:cafe::17"},
		{"10.1.2.3:80", `Forwarded: For="[2001:db8::1]"`, "2001:db8::1"},
		{"10.1.2.3:80", `Forwarded: for=unknown`, "10.1.2.3"},
		{"10.1.2.3:80", `Forwarded: for="fe80::1%eth0"`, "10.1.2.3"}, // a zone is the proxy's: unreadable
		{"[2001:db8:1::5]:443", "X-Forwarded-For: ::ffff:198.51.100.2", "198.51.100.2"},
		{"@", "X-Forwarded-For: 198.51.100.1", "invalid IP"}, // a Unix socket
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if k, v, ok := strings.Cut(tc.header, ": "); ok {
			r.Header.Set(k, v)
		}
		if got := rt.ClientAddr(r).String(); got != tc.want {
			t.Errorf("%s with %q: %s, want %s", tc.remote, tc.header, got, tc.want)
		}
		proxy := strings.HasPrefix(tc.remote, "10.") || strings.HasPrefix(tc.remote, "[2001:db8:1:")
		if got := rt.FromTrustedProxy(r); got != proxy {
			t.Errorf("FromTrustedProxy(%s) = %v", tc.remote, got)
		}
	}
}

// TestClientAddrSession: behind a trusted proxy (loopback here), the
// per-address limits count the forwarded address, and the session's
// ClientAddr reports it.
func TestClientAddrSession(t *testing.T) { eachTransport(t, testClientAddrSession) }

func testClientAddrSession(t *testing.T) {
	addrs := make(chan netip.Addr, 4)
	_, url := start(t, handler{open: func(s *session.Session) error { addrs <- s.ClientAddr(); return nil }},
		runtime.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")),
		runtime.WithLimits(runtime.Limits{MaxConnectionsPerAddress: 1, UpgradeRate: -1, Exempt: []netip.Prefix{}}))
	from := func(ip string) (*wire.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c, _, err := wire.Dial(ctx, url, &wire.DialOptions{Header: http.Header{"X-Forwarded-For": {ip}}})
		if c != nil {
			t.Cleanup(func() { c.CloseNow() })
		}
		return c, err
	}
	if _, err := from("198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	if got := <-addrs; got != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("ClientAddr = %v", got)
	}
	if _, err := from("198.51.100.1"); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("a second session from the same forwarded address: %v, want 429", err)
	}
	if _, err := from("198.51.100.2"); err != nil {
		t.Fatalf("another forwarded address: %v", err)
	}
	if got := <-addrs; got != netip.MustParseAddr("198.51.100.2") {
		t.Fatalf("ClientAddr = %v", got)
	}
}

// FuzzClientAddr: the forwarding headers are the client's to write, and
// whatever they say, ClientAddr does not panic, takes them only from a
// trusted proxy, and returns either RemoteAddr's address or one that
// stands in them.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1:80", "198.51.100.1, 10.0.0.2", "")
	f.Add("10.0.0.1:80", "", `for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`)
	f.Add("10.0.0.1:80", strings.Repeat("10.0.0.3,", 100), `for=""`)
	f.Add("203.0.113.9:1", "198.51.100.1", "for=198.51.100.2")
	f.Add("[::1]:1", ",,,", `For="[::1`)
	rt, err := runtime.New(session.NopHandler{}, runtime.WithTrustedProxies(
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")))
	if err != nil {
		f.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header["X-Forwarded-For"] = []string{xff}
		if fwd != "" {
			r.Header["Forwarded"] = []string{fwd}
		}
		got := rt.ClientAddr(r)
		peer, perr := netip.ParseAddrPort(remote)
		// RemoteAddr's own address, read as clientIP reads it: a zone
		// names one of this host's interfaces and is dropped.
		if perr != nil || !got.IsValid() || got == peer.Addr().Unmap().WithZone("") {
			return
		}
		if !peer.Addr().Unmap().IsPrivate() && !peer.Addr().IsLoopback() {
			t.Fatalf("%s is no trusted proxy, yet ClientAddr = %s", remote, got)
		}
		// got must be one of the addresses written in the headers.
		// Tokens are split at the headers' separators only: a zone may
		// hold a space ("::% 0").
		for _, tok := range strings.FieldsFunc(xff+","+fwd, func(r rune) bool { return strings.ContainsRune(`,;="`, r) }) {
			same := func(ip netip.Addr) bool { return ip.Unmap().WithZone("") == got }
			tok = strings.Trim(strings.TrimSpace(tok), "[]")
			if ip, err := netip.ParseAddr(tok); err == nil && same(ip) {
				return
			}
			if ap, err := netip.ParseAddrPort(tok); err == nil && same(ap.Addr()) {
				return
			}
			if ap, err := netip.ParseAddrPort("[" + tok); err == nil && same(ap.Addr()) {
				return
			}
		}
		t.Fatalf("ClientAddr = %s, in neither header", got)
	})
}

// TestOf: a handler reaches its Runtime from every callback, OnClose
// included, without keeping a pointer; a session no Runtime serves has
// none.
func TestOf(t *testing.T) { eachTransport(t, testOf) }

func testOf(t *testing.T) {
	var ref rtRef // set after start: see roomHandler
	var ended atomic.Pointer[session.Session]
	got := make(chan bool, 3)
	h := handler{
		open: func(s *session.Session) error {
			got <- runtime.Of(s) == ref.get()
			runtime.Of(s).Join("lobby", s)
			return nil
		},
		msg: func(s *session.Session, m session.Message) error {
			got <- runtime.Of(s) == ref.get()
			return s.Send(m.Op, m.Data)
		},
		close: func(s *session.Session, err error) { ended.Store(s); got <- runtime.Of(s) == ref.get() },
	}
	rt, url := start(t, h)
	ref.p.Store(rt)
	c := dial(t, url)
	wantEcho(t, c, "hi")
	c.Close(wire.StatusNormalClosure, "")
	for _, cb := range []string{"OnOpen", "OnMessage", "OnClose"} {
		if !<-got {
			t.Errorf("Of in %s is not the session's Runtime", cb)
		}
	}
	waitFor(t, func() bool { return rt.Len() == 0 })
	if runtime.Of(ended.Load()) != nil {
		t.Fatal("Of of a session that has ended is not nil")
	}
}
