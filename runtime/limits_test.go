package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// noExempt makes the per-address limits apply to loopback, where the
// tests' clients are; they dial from 127.0.0.2, 127.0.0.3... to be
// different addresses.
var noExempt = []netip.Prefix{}

// startLimited serves an echo handler, whose sessions tr records, on a
// runtime with limits l. After the runtime's shutdown, it checks that the
// admission counts no session and that its table's count is right.
func startLimited(t *testing.T, tr *tracker, l runtime.Limits, opts ...runtime.Option) (*runtime.Runtime, string) {
	t.Helper()
	var rt *runtime.Runtime
	t.Cleanup(func() { // registered first, so it runs after the shutdown
		if rt == nil {
			return
		}
		if sessions, entries, stored := runtime.Admitted(rt); sessions != 0 || entries != stored {
			t.Errorf("after shutdown, admission counts %d sessions, %d addresses (%d in the table)", sessions, entries, stored)
		}
	})
	rt, url := start(t, handler{
		open:  func(s *session.Session) error { tr.opened(s); return nil },
		msg:   func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) },
		close: tr.closed,
	}, append(opts, runtime.WithLimits(l))...)
	return rt, url
}

// dialFrom dials url from the local address ip, one of 127.0.0.0/8.
func dialFrom(url, ip string) (*wire.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return wire.Dial(ctx, url, &wire.DialOptions{NetDialContext: d.DialContext})
}

// connectFrom dials url from ip, checks the session echoes, and returns
// the connection, closed when t ends.
func connectFrom(t *testing.T, url, ip string) *wire.Conn {
	t.Helper()
	c, _, err := dialFrom(url, ip)
	if err != nil {
		t.Fatalf("from %s: %v", ip, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	wantEcho(t, c, "admitted")
	return c
}

// wantRefused checks that an upgrade from ip is refused with status and a
// Retry-After of retry seconds (any from 1 if retry is 0), before the
// hijack: the response is an HTTP one, with a body.
func wantRefused(t *testing.T, url, ip string, status, retry int) {
	t.Helper()
	c, resp, err := dialFrom(url, ip)
	if err == nil {
		c.CloseNow()
		t.Fatalf("from %s: admitted, want HTTP %d", ip, status)
	}
	var he *wire.HandshakeError
	if !errors.As(err, &he) || he.Status != status || resp == nil {
		t.Fatalf("from %s: %v, want HTTP %d", ip, err, status)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || (retry != 0 && ra != retry) {
		t.Errorf("from %s: Retry-After %q, want %d (0: any from 1)", ip, resp.Header.Get("Retry-After"), retry)
	}
	if !resp.Close {
		t.Errorf("from %s: the refusal keeps the connection open", ip)
	}
}

// closeAll closes the clients and waits until rt counts only left sessions.
func closeAll(t *testing.T, rt *runtime.Runtime, left int, cs ...*wire.Conn) {
	t.Helper()
	for _, c := range cs {
		c.Close(wire.StatusNormalClosure, "")
	}
	eventually(t, bound, fmt.Sprintf("%d sessions left", left), func() bool { return rt.Len() == left })
}

// TestLimitConnections fills MaxConnections: the next upgrade gets 503,
// and gets in once a session has ended.
func TestLimitConnections(t *testing.T) { eachTransport(t, testLimitConnections) }

func testLimitConnections(t *testing.T) {
	rt, url := startLimited(t, newTracker(), runtime.Limits{MaxConnections: 2})
	a := connectFrom(t, url, "127.0.0.2")
	connectFrom(t, url, "127.0.0.3")
	wantRefused(t, url, "127.0.0.4", http.StatusServiceUnavailable, 5)
	wantRefused(t, url, "127.0.0.2", http.StatusServiceUnavailable, 5)
	if n := rt.Refused().Connections.Load(); n != 2 {
		t.Errorf("Refused().Connections = %d, want 2", n)
	}
	closeAll(t, rt, 1, a)
	connectFrom(t, url, "127.0.0.4")
}

// TestLimitConnectionsPerAddress fills one address's quota: its next
// upgrade gets 429, others' do not, and it gets in again once its
// sessions have ended.
func TestLimitConnectionsPerAddress(t *testing.T) { eachTransport(t, testLimitConnectionsPerAddress) }

func testLimitConnectionsPerAddress(t *testing.T) {
	rt, url := startLimited(t, newTracker(), runtime.Limits{MaxConnectionsPerAddress: 2, UpgradeRate: -1, Exempt: noExempt})
	a1 := connectFrom(t, url, "127.0.0.2")
	a2 := connectFrom(t, url, "127.0.0.2")
	wantRefused(t, url, "127.0.0.2", http.StatusTooManyRequests, 5)
	b := connectFrom(t, url, "127.0.0.3")
	if n := rt.Refused().ConnectionsPerAddress.Load(); n != 1 {
		t.Errorf("Refused().ConnectionsPerAddress = %d, want 1", n)
	}
	closeAll(t, rt, 2, a1)
	a3 := connectFrom(t, url, "127.0.0.2")
	wantRefused(t, url, "127.0.0.2", http.StatusTooManyRequests, 5)
	closeAll(t, rt, 0, a2, a3, b)
	if _, entries, _ := runtime.Admitted(rt); entries != 0 {
		t.Errorf("%d addresses in the table with no session and no bucket", entries)
	}
	connectFrom(t, url, "127.0.0.2")
	connectFrom(t, url, "127.0.0.2")
}

// TestLimitUpgradeRate empties an address's bucket: its next upgrade gets
// 429 with a Retry-After of when a token comes, even after its sessions
// end, while another address has a bucket of its own.
func TestLimitUpgradeRate(t *testing.T) { eachTransport(t, testLimitUpgradeRate) }

func testLimitUpgradeRate(t *testing.T) {
	// A token every 1,000 s: the bucket does not refill during the test.
	rt, url := startLimited(t, newTracker(), runtime.Limits{UpgradeRate: 0.001, UpgradeBurst: 2, Exempt: noExempt})
	a := connectFrom(t, url, "127.0.0.2")
	connectFrom(t, url, "127.0.0.2")
	c, resp, err := dialFrom(url, "127.0.0.2")
	if err == nil {
		c.CloseNow()
		t.Fatal("third upgrade admitted, want 429")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third upgrade: %v, want 429", err)
	}
	// 1,000 s less the time the test has taken, rounded up.
	if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra <= 1000-int(bound/time.Second) || ra > 1000 {
		t.Errorf("Retry-After %q, want about 1000", resp.Header.Get("Retry-After"))
	}
	connectFrom(t, url, "127.0.0.3")
	closeAll(t, rt, 2, a)
	wantRefused(t, url, "127.0.0.2", http.StatusTooManyRequests, 0)
	if n := rt.Refused().UpgradeRate.Load(); n != 2 {
		t.Errorf("Refused().UpgradeRate = %d, want 2", n)
	}
}

// TestLimitAddresses fills the address table: a new address gets 503
// until an entry goes, by its sessions ending or its bucket refilling;
// an address in the table still gets in.
func TestLimitAddresses(t *testing.T) { eachTransport(t, testLimitAddresses) }

func testLimitAddresses(t *testing.T) {
	t.Run("sessions", func(t *testing.T) {
		rt, url := startLimited(t, newTracker(), runtime.Limits{MaxAddresses: 2, UpgradeRate: -1, Exempt: noExempt})
		a := connectFrom(t, url, "127.0.0.2")
		connectFrom(t, url, "127.0.0.3")
		wantRefused(t, url, "127.0.0.4", http.StatusServiceUnavailable, 5)
		connectFrom(t, url, "127.0.0.3")
		if n := rt.Refused().Addresses.Load(); n != 1 {
			t.Errorf("Refused().Addresses = %d, want 1", n)
		}
		closeAll(t, rt, 2, a)
		connectFrom(t, url, "127.0.0.4")
	})
	// Sessions do not count per address here: the table holds buckets
	// only, dropped by a sweep once refilled.
	for _, tc := range []struct {
		name   string
		rate   float64
		admits bool
	}{
		{"bucket refilled", 1e9, true}, // in a nanosecond
		{"bucket refilling", 0.001, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, url := startLimited(t, newTracker(), runtime.Limits{
				MaxAddresses: 1, MaxConnectionsPerAddress: -1, UpgradeRate: tc.rate, UpgradeBurst: 1, Exempt: noExempt,
			})
			connectFrom(t, url, "127.0.0.2")
			if tc.admits {
				connectFrom(t, url, "127.0.0.3")
				return
			}
			wantRefused(t, url, "127.0.0.3", http.StatusServiceUnavailable, 5)
			if n := rt.Refused().Addresses.Load(); n != 1 {
				t.Errorf("Refused().Addresses = %d, want 1", n)
			}
		})
	}
}

// TestLimitAddressTableBound fills the address table, then admits and
// releases upgrades from thousands of addresses at once: no more of them
// hold sessions than the table's bound, every refusal is a 503, and the
// counts are right once all are released. The buckets are off, or refill
// in a nanosecond, so that the sweep runs along.
func TestLimitAddressTableBound(t *testing.T) {
	const (
		tableBound = 64
		goroutines = 8
		addrs      = 2_000 // per goroutine
		keep       = 16    // sessions a goroutine holds at most
	)
	for _, tc := range []struct {
		name string
		rate float64
	}{{"bucket off", -1}, {"bucket on", 1e9}} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := runtime.New(session.NopHandler{}, runtime.WithLimits(runtime.Limits{
				MaxConnections: -1, MaxConnectionsPerAddress: 1, UpgradeRate: tc.rate, UpgradeBurst: 1,
				MaxAddresses: tableBound, Exempt: noExempt,
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Shutdown(context.Background())

			var releases []func()
			for i := range tableBound {
				status, release := runtime.Admit(rt, fmt.Sprintf("192.0.2.%d:1", i))
				if status != 0 {
					t.Fatalf("address %d of %d: refused with %d", i, tableBound, status)
				}
				releases = append(releases, release)
			}
			if status, _ := runtime.Admit(rt, "198.51.100.1:1"); status != http.StatusServiceUnavailable {
				t.Fatalf("address %d: %d, want 503", tableBound+1, status)
			}
			for _, r := range releases {
				r()
			}

			var (
				mu      sync.Mutex
				held    int // addresses holding a session, one each
				maxHeld int
				wg      sync.WaitGroup
				errs    = make(chan error, goroutines)
			)
			for g := range goroutines {
				wg.Go(func() {
					var releases []func()
					for i := range addrs {
						status, release := runtime.Admit(rt, fmt.Sprintf("10.%d.%d.%d:1", g, i/250, i%250))
						switch status {
						case 0:
							mu.Lock()
							held++
							maxHeld = max(maxHeld, held)
							mu.Unlock()
							releases = append(releases, release)
						case http.StatusServiceUnavailable:
						default:
							errs <- fmt.Errorf("refused with %d, want 503", status)
							return
						}
						if len(releases) == keep || i == addrs-1 {
							mu.Lock()
							held -= len(releases)
							mu.Unlock()
							for _, r := range releases {
								r()
							}
							releases = releases[:0]
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if maxHeld > tableBound {
				t.Errorf("%d addresses held sessions at once, more than %d", maxHeld, tableBound)
			}
			sessions, entries, stored := runtime.Admitted(rt)
			if sessions != 0 || entries != stored || entries > tableBound || (tc.rate < 0 && entries != 0) {
				t.Errorf("after release: %d sessions, %d entries, %d stored", sessions, entries, stored)
			}
		})
	}
}

// TestLimitAddressKeys checks which RemoteAddrs count as one address: an
// IPv6 /64, an IPv4 address however written, and every RemoteAddr that does
// not parse.
func TestLimitAddressKeys(t *testing.T) {
	for _, tc := range []struct {
		first, second string
		same          bool
	}{
		{"[2001:db8::1]:1000", "[2001:db8::ffff:2]:1001", true},
		{"[2001:db8::1]:1000", "[2001:db8:0:1::1]:1000", false},
		{"192.0.2.1:1000", "192.0.2.1:1001", true},
		{"192.0.2.1:1000", "[::ffff:192.0.2.1]:1000", true},
		{"192.0.2.1:1000", "192.0.2.1", true}, // as proxy middleware may set it
		{"192.0.2.1:1000", "192.0.2.2:1000", false},
		{"[fe80::1%eth0]:1000", "[fe80::2%eth1]:1000", true},
		{"@", "", true},
		{"@", "192.0.2.1:1000", false},
	} {
		t.Run(tc.first+" "+tc.second, func(t *testing.T) {
			rt, err := runtime.New(session.NopHandler{}, runtime.WithLimits(runtime.Limits{
				MaxConnectionsPerAddress: 1, UpgradeRate: -1, Exempt: noExempt,
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Shutdown(context.Background())
			status, release := runtime.Admit(rt, tc.first)
			if status != 0 {
				t.Fatalf("first: %d", status)
			}
			defer release()
			status, release = runtime.Admit(rt, tc.second)
			if release != nil {
				defer release()
			}
			if want := map[bool]int{true: http.StatusTooManyRequests, false: 0}[tc.same]; status != want {
				t.Errorf("second: %d, want %d", status, want)
			}
		})
	}
}

// TestLimitExemptLoopback checks the default Exempt: the per-address limits
// do not apply to loopback, so a local proxy does not limit every client
// together.
func TestLimitExemptLoopback(t *testing.T) {
	rt, err := runtime.New(session.NopHandler{}, runtime.WithLimits(runtime.Limits{MaxConnectionsPerAddress: 1, UpgradeBurst: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	for _, remote := range []string{"127.0.0.1:1", "127.0.0.1:2", "[::1]:1", "[::1]:2", "[::ffff:127.0.0.9]:1"} {
		status, release := runtime.Admit(rt, remote)
		if status != 0 {
			t.Fatalf("%s: refused with %d", remote, status)
		}
		defer release()
	}
	if status, release := runtime.Admit(rt, "192.0.2.1:1"); status != 0 {
		t.Fatalf("192.0.2.1: refused with %d", status)
	} else {
		defer release()
	}
	if status, _ := runtime.Admit(rt, "192.0.2.1:2"); status != http.StatusTooManyRequests {
		t.Fatalf("192.0.2.1 again: %d, want 429", status)
	}
}

// TestLimitRoomsPerSession fills a session's rooms: the next join fails
// with ErrTooManyRooms and leaves no empty room behind; a room it is in
// it may join again, and a new one once it has left one.
func TestLimitRoomsPerSession(t *testing.T) { eachTransport(t, testLimitRoomsPerSession) }

func testLimitRoomsPerSession(t *testing.T) {
	tr := newTracker()
	rt, url := startLimited(t, tr, runtime.Limits{MaxRoomsPerSession: 2, MaxRoomName: 8})
	c := connectFrom(t, url, "127.0.0.2")
	s := tr.session(t, c.NetConn().LocalAddr())
	if r, err := rt.JoinRoom("ninechars", s); r != nil || !errors.Is(err, runtime.ErrRoomName) {
		t.Fatalf("a name of 9 bytes, limit 8: %v, %v; want ErrRoomName", r, err)
	}
	if _, ok := rt.Room("ninechars"); ok || rt.Refused().RoomName.Load() != 1 {
		t.Fatal("the name refused left its room behind, or was not counted")
	}
	for _, name := range []string{"a", "eightchr", "a"} {
		if _, err := rt.JoinRoom(name, s); err != nil {
			t.Fatalf("join %q: %v", name, err)
		}
	}
	if r, err := rt.JoinRoom("c", s); r != nil || !errors.Is(err, runtime.ErrTooManyRooms) {
		t.Fatalf("third room: %v, %v; want ErrTooManyRooms", r, err)
	}
	if rt.Join("c", s) != nil {
		t.Fatal("Join of a third room returned a room")
	}
	if _, ok := rt.Room("c"); ok {
		t.Fatal("the refused join left room c behind")
	}
	if n := rt.Refused().RoomsPerSession.Load(); n != 2 {
		t.Errorf("Refused().RoomsPerSession = %d, want 2", n)
	}
	rt.Leave("a", s)
	if _, err := rt.JoinRoom("c", s); err != nil {
		t.Fatalf("join c after leaving a: %v", err)
	}
	closeAll(t, rt, 0, c)
	if _, err := rt.JoinRoom("d", s); !errors.Is(err, session.ErrClosed) {
		t.Fatalf("join after the end: %v, want session.ErrClosed", err)
	}
}

// TestLimitRefusedNeverLeaks runs every way an upgrade request can fail,
// after its admission or before it, many times over a limit of one
// session: none may keep a count, so the one session still gets in.
func TestLimitRefusedNeverLeaks(t *testing.T) { eachTransport(t, testLimitRefusedNeverLeaks) }

func testLimitRefusedNeverLeaks(t *testing.T) {
	rt, url := startLimited(t, newTracker(), runtime.Limits{MaxConnections: 1, MaxConnectionsPerAddress: 1, Exempt: noExempt},
		runtime.WithOriginPatterns("example.com"))
	httpURL := "http" + strings.TrimPrefix(url, "ws")
	bad := []struct {
		name   string
		header http.Header
	}{
		{"not an upgrade", http.Header{}},
		{"wrong version", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
			"Sec-Websocket-Version": {"8"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}},
		{"foreign origin", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Origin": {"https://evil.test"},
			"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}},
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: bound}
	defer client.CloseIdleConnections()
	for range 5 {
		for _, b := range bad {
			req, _ := http.NewRequest(http.MethodGet, httpURL, nil)
			req.Header = b.header
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", b.name, err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
				t.Fatalf("%s: %s, want the upgrade's own error", b.name, resp.Status)
			}
		}
	}
	eventually(t, bound, "the failed upgrades' counts given back", func() bool {
		sessions, _, _ := runtime.Admitted(rt)
		return sessions == 0
	})
	c := connectFrom(t, url, "127.0.0.2")
	wantRefused(t, url, "127.0.0.2", http.StatusServiceUnavailable, 5) // MaxConnections first
	wantRefused(t, url, "127.0.0.3", http.StatusServiceUnavailable, 5)
	closeAll(t, rt, 0, c)
	closeAll(t, rt, 0, connectFrom(t, url, "127.0.0.2"))

	// Shutdown's 503 comes before admission.
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if servesListener(t) {
		wantShutDown(t, url)
	} else if _, resp, _ := dialFrom(url, "127.0.0.4"); resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "" {
		t.Fatalf("after Shutdown: %v, want 503 without Retry-After", resp)
	}
	if sessions, _, _ := runtime.Admitted(rt); sessions != 0 {
		t.Fatalf("after Shutdown: %d sessions counted", sessions)
	}
}

// TestLimitMetrics acts every limit once and reads
// shockwave.limits.refused by shockwave.limit.
func TestLimitMetrics(t *testing.T) {
	k := newOtelKit(t)
	tr := newTracker()
	rt, url := startLimited(t, tr, runtime.Limits{
		MaxConnections: 4, MaxConnectionsPerAddress: 2, UpgradeRate: 0.001, UpgradeBurst: 3,
		MaxRoomsPerSession: 1, MaxAddresses: 2, Exempt: noExempt,
	}, k.metrics())
	a := connectFrom(t, url, "127.0.0.2")
	connectFrom(t, url, "127.0.0.2")
	wantRefused(t, url, "127.0.0.2", http.StatusTooManyRequests, 5) // connections_per_address, with its last token
	wantRefused(t, url, "127.0.0.2", http.StatusTooManyRequests, 0) // upgrade_rate
	connectFrom(t, url, "127.0.0.3")
	wantRefused(t, url, "127.0.0.4", http.StatusServiceUnavailable, 5) // addresses
	status, release := runtime.Admit(rt, "127.0.0.3:1")                // the fourth session
	if status != 0 {
		t.Fatalf("admit: %d", status)
	}
	defer release()
	wantRefused(t, url, "127.0.0.4", http.StatusServiceUnavailable, 5) // connections
	s := tr.session(t, a.NetConn().LocalAddr())
	rt.Join("one", s)
	if _, err := rt.JoinRoom("two", s); !errors.Is(err, runtime.ErrTooManyRooms) {
		t.Fatalf("second room: %v", err)
	}

	want := map[string]int64{
		"connections": 1, "connections_per_address": 1, "upgrade_rate": 1, "addresses": 1, "rooms_per_session": 1,
		"room_name": 0,
		// The sessions' limits did not act.
		"message_rate": 0, "backpressure": 0, "message_size": 0, "message_timeout": 0, "inbound_memory": 0, "outbound_memory": 0,
		"pong_timeout": 0, "idle_timeout": 0, "write_timeout": 0, "close_timeout": 0, "expired": 0,
	}
	got := k.collect(t).points("shockwave.limits.refused", "shockwave.limit")
	if !sameCounts(got, want) {
		t.Errorf("shockwave.limits.refused = %v, want %v", got, want)
	}
	c := rt.Refused()
	gotGo := map[string]int64{
		"connections": int64(c.Connections.Load()), "connections_per_address": int64(c.ConnectionsPerAddress.Load()),
		"upgrade_rate": int64(c.UpgradeRate.Load()), "addresses": int64(c.Addresses.Load()),
		"rooms_per_session": int64(c.RoomsPerSession.Load()), "room_name": int64(c.RoomName.Load()),
	}
	sc := rt.Counters()
	for k, v := range map[string]*atomic.Uint64{
		"message_rate": &sc.Throttled, "backpressure": &sc.Paused, "message_size": &sc.TooBig,
		"message_timeout": &sc.MessageTimeouts, "inbound_memory": &sc.InboundBudget, "outbound_memory": &sc.OutboundBudget,
		"pong_timeout": &sc.PongTimeouts, "idle_timeout": &sc.IdleTimeouts, "write_timeout": &sc.WriteTimeouts,
		"close_timeout": &sc.CloseTimeouts, "expired": &sc.Expired,
	} {
		gotGo[k] = int64(v.Load())
	}
	if !sameCounts(gotGo, want) {
		t.Errorf("Refused() = %v, want %v", gotGo, want)
	}
}

// TestLimitOptions checks WithLimits' validation and DefaultOptions'
// limits.
func TestLimitOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    runtime.Limits
		ok   bool
	}{
		{"zero: defaults", runtime.Limits{}, true},
		{"negative: no limits", runtime.Limits{
			MaxConnections: -1, MaxConnectionsPerAddress: -1, UpgradeRate: -1, UpgradeBurst: -1,
			MaxRoomsPerSession: -1, MaxAddresses: -1,
		}, true},
		{"NaN rate", runtime.Limits{UpgradeRate: math.NaN()}, false},
		{"infinite rate", runtime.Limits{UpgradeRate: math.Inf(1)}, false},
		{"invalid prefix", runtime.Limits{Exempt: []netip.Prefix{{}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := runtime.New(session.NopHandler{}, runtime.WithLimits(tc.l))
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
			if rt != nil {
				rt.Shutdown(t.Context())
			}
		})
	}
	l := runtime.DefaultOptions().Limits
	if l.MaxConnections != runtime.DefaultMaxConnections || l.MaxConnectionsPerAddress != runtime.DefaultMaxConnectionsPerAddress ||
		l.UpgradeRate != runtime.DefaultUpgradeRate || l.UpgradeBurst != runtime.DefaultUpgradeBurst ||
		l.MaxRoomsPerSession != runtime.DefaultMaxRoomsPerSession || l.MaxAddresses != runtime.DefaultMaxAddresses ||
		len(l.Exempt) != 2 {
		t.Errorf("DefaultOptions().Limits = %+v", l)
	}
}

// TestRegistryEntrySize checks that the client address's key fits the
// padding of a registry entry, which docs/architecture.md counts as 48 B.
func TestRegistryEntrySize(t *testing.T) {
	if runtime.MemberSize != 48 {
		t.Errorf("a registry entry is %d B, want 48", runtime.MemberSize)
	}
}

// TestServerTimeoutsSpareSessions checks what runtime's doc tells of
// http.Server's ReadTimeout and WriteTimeout: net/http clears the
// connection's deadlines when it is hijacked, so sessions outlive them.
func TestServerTimeoutsSpareSessions(t *testing.T) { eachTransport(t, testServerTimeoutsSpareSessions) }

func testServerTimeoutsSpareSessions(t *testing.T) {
	rt, err := runtime.New(echo, runtime.WithTransport(transportOf(t)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 10 * time.Millisecond
	srv := &http.Server{Handler: rt, ReadTimeout: timeout, WriteTimeout: timeout}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	defer func() {
		rt.Shutdown(context.Background())
		srv.Close()
		<-done
	}()
	c := dial(t, "ws://"+ln.Addr().String())
	time.Sleep(5 * timeout) // past both deadlines, had they been kept
	wantEcho(t, c, "after the server's timeouts")
	c.Close(wire.StatusNormalClosure, "")
}
