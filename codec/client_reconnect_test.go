package codec_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// quick is the backoff of the tests' reconnecting clients.
var quick = codec.Backoff{Min: time.Millisecond, Max: 10 * time.Millisecond, Factor: 2, Jitter: 0.5}

// outages is a reconnecting client's view of its outages: the test cuts
// its connection as a network failure would, learns of each loss
// (OnDisconnect) and of each re-join (OnResume), and, when hold is set,
// says when the client may dial again, so that the room moves on while it
// is away.
type outages struct {
	t       *testing.T
	hold    bool
	down    chan error        // OnDisconnect's errors
	resumed chan codec.Joined // OnResume's replies
	log     chan string       // OnResume's and the "said" listener's calls, in order, when logged
	proceed chan struct{}     // a value lets a held client dial again
	quit    chan struct{}     // closed when the test ends: no more holding

	mu   sync.Mutex
	last net.Conn // the client's latest TCP connection
}

func newOutages(t *testing.T, hold bool) *outages {
	return &outages{
		t: t, hold: hold,
		down: make(chan error, 100), resumed: make(chan codec.Joined, 100), log: make(chan string, 1000),
		proceed: make(chan struct{}), quit: make(chan struct{}),
	}
}

// dial connects a reconnecting client of user to s, with opts after the
// outages' own.
func (o *outages) dial(s *roomServer, user string, opts ...codec.ClientOption) *codec.Client {
	o.t.Helper()
	c := s.dial(user, append([]codec.ClientOption{
		codec.WithDialOptions(wire.DialOptions{NetDialContext: o.netDial}),
		codec.WithReconnect(true),
		codec.WithBackoff(quick),
		codec.WithOnResume(func(j codec.Joined) {
			put(o.resumed, j)
			put(o.log, fmt.Sprintf("resume %s %v %d", j.Room, j.Recovered, j.Replayed))
		}),
		codec.WithOnDisconnect(func(err error) {
			put(o.down, err)
			if o.hold {
				select {
				case <-o.proceed:
				case <-o.quit:
				}
			}
		}),
	}, opts...)...)
	o.t.Cleanup(func() { close(o.quit) }) // before the client's Close, which waits for OnDisconnect
	return c
}

// put sends v on ch unless it is full: a test that gets more than it
// expects fails, rather than hang the reader, and Close with it.
func put[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

func (o *outages) netDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err == nil {
		o.mu.Lock()
		o.last = nc
		o.mu.Unlock()
	}
	return nc, err
}

// cut closes the client's connection under it, without a closing
// handshake, as a network failure would.
func (o *outages) cut() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last.Close()
}

// outage cuts the connection and waits until the client knows it lost it;
// a held client then waits for again.
func (o *outages) outage() error {
	o.t.Helper()
	o.cut()
	return receive(o.t, o.down, "the loss of the connection")
}

// again lets a held client dial again.
func (o *outages) again() {
	o.t.Helper()
	select {
	case o.proceed <- struct{}{}:
	case <-time.After(within):
		o.t.Fatal("the client does not wait to dial again")
	}
}

// logSaid logs the "said" events c gets, as "said <text> <offset>", in
// the log where OnResume logs its calls.
func (o *outages) logSaid(c *codec.Client) {
	codec.Listen(c, "said", func(text string, m Meta) { put(o.log, fmt.Sprintf("said %s %d", text, m.Offset)) })
}

// expectLog checks the next entries of the log.
func (o *outages) expectLog(want ...string) {
	o.t.Helper()
	for _, w := range want {
		if got := receive(o.t, o.log, w); got != w {
			o.t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// bothCodecs runs f in a subtest for each codec.
func bothCodecs(t *testing.T, f func(t *testing.T, cd codec.Codec)) {
	for _, cd := range []codec.Codec{codec.JSON, codec.MsgPack} {
		t.Run(cd.Name(), func(t *testing.T) { f(t, cd) })
	}
}

// TestClientResume: a client whose connection ends, however it ends,
// dials again and resumes its room from the last position it got: the
// re-join's reply reaches OnResume, recovered, before the messages it
// missed reach their listener, each once, in order.
func TestClientResume(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(o *outages, c *codec.Client) error
		code wire.StatusCode // OnDisconnect's, -1 for none
	}{
		{"network failure", func(o *outages, _ *codec.Client) error { return o.outage() }, -1},
		{"server restart 1012", kick(wire.StatusServiceRestart), wire.StatusServiceRestart},
		{"slow consumer 1008", kick(wire.StatusPolicyViolation), wire.StatusPolicyViolation},
		{"application code 4001", kick(4001), 4001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothCodecs(t, func(t *testing.T, cd codec.Codec) {
				s := newRoomServer(t, cd, roomConfig{history: runtime.History{Size: 16}})
				o := newOutages(t, true)
				a, b := o.dial(s, ""), s.dial("")
				o.logSaid(a)
				j, err := a.Join(ctx(t), "r")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.Join(ctx(t), "r"); err != nil {
					t.Fatal(err)
				}
				say(t, b, "r", "m1")
				say(t, b, "r", "m2")
				o.expectLog("said m1 1", "said m2 2")

				if err := tc.end(o, a); wire.CloseStatus(err) != tc.code {
					t.Fatalf("disconnected with %v, want code %d", err, tc.code)
				}
				say(t, b, "r", "m3")
				say(t, b, "r", "m4")
				o.again()
				o.expectLog("resume r true 2", "said m3 3", "said m4 4")
				say(t, b, "r", "m5")
				o.expectLog("said m5 5")
				if e, off, ok := a.Position("r"); !ok || e != j.Epoch || off != 5 {
					t.Fatalf("position %d/%d %v", e, off, ok)
				}
				if err := a.Err(); err != nil {
					t.Fatalf("Err %v while reconnected", err)
				}
			})
		})
	}
}

// kick has the server close the client's session with code.
func kick(code wire.StatusCode) func(o *outages, c *codec.Client) error {
	return func(o *outages, c *codec.Client) error {
		if err := c.Emit(ctx(o.t), "kick", int(code)); err != nil {
			o.t.Fatal(err)
		}
		return receive(o.t, o.down, "the loss of the connection")
	}
}

// TestClientResumeTrimmed: a client that was away longer than the room's
// history reaches is told it did not recover, with the latest messages
// that Join's Recent asked for, which follow.
func TestClientResumeTrimmed(t *testing.T) {
	bothCodecs(t, func(t *testing.T, cd codec.Codec) {
		s := newRoomServer(t, cd, roomConfig{history: runtime.History{Size: 4}})
		o := newOutages(t, true)
		a, b := o.dial(s, ""), s.dial("")
		o.logSaid(a)
		if _, err := a.Join(ctx(t), "r", codec.Recent(3)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Join(ctx(t), "r"); err != nil {
			t.Fatal(err)
		}
		say(t, b, "r", "m1")
		o.expectLog("said m1 1")
		o.outage()
		for i := 2; i <= 10; i++ {
			say(t, b, "r", fmt.Sprint("m", i))
		}
		o.again()
		o.expectLog("resume r false 3", "said m8 8", "said m9 9", "said m10 10")
		j := receive(t, o.resumed, "the resume")
		if j.Offset != 7 {
			t.Fatalf("resumed at %d, want 7", j.Offset)
		}
		if _, off, _ := a.Position("r"); off != 10 {
			t.Fatalf("position %d", off)
		}
	})
}

// TestClientResumeRacing: a client that loses its connection again and
// again while another keeps publishing gets every message once, in order.
func TestClientResumeRacing(t *testing.T) {
	const n, every = 400, 50
	bothCodecs(t, func(t *testing.T, cd codec.Codec) {
		s := newRoomServer(t, cd, roomConfig{history: runtime.History{Size: 2 * n}})
		o := newOutages(t, false)
		a, b := o.dial(s, ""), s.dial("")
		got := make(chan int, 2*n)
		codec.Listen(a, "said", func(text string, m Meta) {
			var i int
			fmt.Sscan(text, &i)
			if i%every == 0 && i < n {
				o.cut() // from the listener: the reader is at i
			}
			got <- i
		})
		if _, err := a.Join(ctx(t), "r"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Join(ctx(t), "r"); err != nil {
			t.Fatal(err)
		}
		// b publishes as fast as the server takes it, each a request so
		// that b, a member too, is no slow consumer of its own flood.
		errc := make(chan error, 1)
		go func() {
			for i := 1; i <= n; i++ {
				if _, err := codec.Request[int](ctx(t), b, "say", fmt.Sprint(i), codec.InRoom("r")); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for want := 1; want <= n; want++ {
			if i := receive(t, got, fmt.Sprint("message ", want)); i != want {
				t.Fatalf("got message %d, want %d", i, want)
			}
		}
		if err := receive(t, errc, "the publisher's end"); err != nil {
			t.Fatal(err)
		}
		resumes := 0
		for len(o.resumed) > 0 {
			if j := <-o.resumed; !j.Recovered {
				t.Fatalf("not recovered: %+v", j)
			}
			resumes++
		}
		if resumes == 0 || resumes > n/every {
			t.Fatalf("%d resumes", resumes)
		}
	})
}

// TestClientResumeNewEpoch: a room removed while the client was away, and
// made again, has another epoch: the client does not recover, and takes
// the new epoch's position.
func TestClientResumeNewEpoch(t *testing.T) {
	bothCodecs(t, func(t *testing.T, cd codec.Codec) {
		s := newRoomServer(t, cd, roomConfig{history: runtime.History{Size: 8}})
		o := newOutages(t, true)
		a := o.dial(s, "")
		o.logSaid(a)
		j, err := a.Join(ctx(t), "e", codec.Recent(5))
		if err != nil {
			t.Fatal(err)
		}
		say(t, a, "e", "old")
		o.expectLog("said old 1")
		o.outage()
		// Its only member gone, the room goes.
		for deadline := time.Now().Add(within); ; time.Sleep(time.Millisecond) {
			if _, ok := s.rt.Room("e"); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the room stays")
			}
		}
		b := s.dial("")
		if _, err := b.Join(ctx(t), "e"); err != nil {
			t.Fatal(err)
		}
		say(t, b, "e", "new")
		o.again()
		o.expectLog("resume e false 1", "said new 1")
		r := receive(t, o.resumed, "the resume")
		if r.Epoch == j.Epoch || r.Epoch == 0 {
			t.Fatalf("epoch %d, was %d", r.Epoch, j.Epoch)
		}
		if e, off, ok := a.Position("e"); !ok || e != r.Epoch || off != 1 {
			t.Fatalf("position %d/%d %v", e, off, ok)
		}
	})
}

// TestClientResumeManyRooms: every room joined is re-joined and resumed.
func TestClientResumeManyRooms(t *testing.T) {
	const rooms = 20
	bothCodecs(t, func(t *testing.T, cd codec.Codec) {
		s := newRoomServer(t, cd, roomConfig{history: runtime.History{Size: 4}})
		o := newOutages(t, true)
		a, b := o.dial(s, ""), s.dial("")
		said := listen[string](a, "said")
		for i := range rooms {
			room := fmt.Sprint("room", i)
			if _, err := a.Join(ctx(t), room); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Join(ctx(t), room); err != nil {
				t.Fatal(err)
			}
			say(t, b, room, "before")
			receive(t, said, "before")
		}
		o.outage()
		for i := range rooms {
			say(t, b, fmt.Sprint("room", i), "after")
		}
		o.again()
		seen := map[string]bool{}
		for range rooms {
			j := receive(t, o.resumed, "a resume")
			if !j.Recovered || j.Replayed != 1 || seen[j.Room] {
				t.Fatalf("resume %+v (seen %v)", j, seen[j.Room])
			}
			seen[j.Room] = true
		}
		for range rooms {
			if g := receive(t, said, "after"); g.v != "after" || g.m.Offset != 2 {
				t.Fatalf("got %+v", g)
			}
		}
		for i := range rooms {
			if _, off, ok := a.Position(fmt.Sprint("room", i)); !ok || off != 2 {
				t.Fatalf("room%d: position %d %v", i, off, ok)
			}
		}
	})
}

// TestClientResumePresence: a member whose connection drops and who comes
// back within the room's grace period is never seen to leave; one who
// does not come back is seen to leave after it.
func TestClientResumePresence(t *testing.T) {
	bothCodecs(t, func(t *testing.T, cd codec.Codec) {
		s := newRoomServer(t, cd, roomConfig{
			history:  runtime.History{Size: 16},
			presence: &runtime.Presence{Grace: 500 * time.Millisecond},
		})
		o := newOutages(t, false)
		alice := o.dial(s, "alice")
		bob, mallory := s.dial("bob"), s.dial("mallory")
		seen := listen[codec.PresenceEvent](bob, codec.EventPresence)
		next := func() string {
			t.Helper()
			g := receive(t, seen, "a presence event")
			return fmt.Sprint(g.v.Key, " ", g.v.Present)
		}
		for _, c := range []*codec.Client{alice, bob, mallory} {
			if _, err := c.Join(ctx(t), "p"); err != nil {
				t.Fatal(err)
			}
		}
		if got := []string{next(), next()}; !slices.Equal(got, []string{"bob true", "mallory true"}) {
			t.Fatalf("bob saw %q", got)
		}

		o.cut()
		j := receive(t, o.resumed, "alice's resume")
		if len(j.Present) != 3 || j.Count != 3 || j.Present["alice"] != "ALICE" {
			t.Fatalf("present %v", j.Present)
		}
		mallory.CloseNow()
		// Had alice been seen to leave, or to arrive, it would come
		// first: her outage came before mallory's.
		if got := next(); got != "mallory false" {
			t.Fatalf("bob saw %q, want mallory's departure", got)
		}
		carol := s.dial("carol")
		if _, err := carol.Join(ctx(t), "p"); err != nil {
			t.Fatal(err)
		}
		if got := next(); got != "carol true" {
			t.Fatalf("bob saw %q", got)
		}
	})
}

// TestClientReconnectWaits: while the client is away, requests and emits
// wait for the connection, and reach the server after the re-joins; a
// request pending when the connection was lost fails with
// ErrDisconnected; a context that ends first ends the wait.
func TestClientReconnectWaits(t *testing.T) {
	bothCodecs(t, func(t *testing.T, cd codec.Codec) {
		s := newRoomServer(t, cd, roomConfig{history: runtime.History{Size: 16}})
		o := newOutages(t, true)
		a := o.dial(s, "", codec.WithRequestTimeout(within))
		o.logSaid(a)
		if _, err := a.Join(ctx(t), "r"); err != nil {
			t.Fatal(err)
		}
		say(t, a, "r", "first")
		o.expectLog("said first 1")
		waited := make(chan error, 1)
		go func() {
			_, err := codec.Request[string](ctx(t), a, "wait", nil)
			waited <- err
		}()
		receive(t, s.waiting, "the request")
		o.outage()
		err := receive(t, waited, "the request's end")
		if !errors.Is(err, codec.ErrDisconnected) || !errors.Is(err, wire.ErrClosed) ||
			!strings.Contains(err.Error(), `request "wait": codec: connection lost before the reply`) {
			t.Fatalf("pending request: %v", err)
		}

		short, cancel := context.WithTimeout(ctx(t), 10*time.Millisecond)
		defer cancel()
		if err := a.Emit(short, "say", "never", codec.InRoom("r")); !errors.Is(err, context.DeadlineExceeded) ||
			!strings.Contains(err.Error(), "no connection before the context ended") {
			t.Fatalf("emit with a short context: %v", err)
		}
		if _, err := codec.Request[bool](short, a, "in", nil, codec.InRoom("r")); !errors.Is(err, context.DeadlineExceeded) ||
			!strings.Contains(err.Error(), "no connection before the context ended") {
			t.Fatalf("request with a short context: %v", err)
		}

		in := make(chan error, 1)
		go func() {
			ok, err := codec.Request[bool](ctx(t), a, "in", nil, codec.InRoom("r"))
			if err == nil && !ok {
				err = errors.New("not in the room")
			}
			in <- err
		}()
		emitted := make(chan error, 1)
		go func() { emitted <- a.Emit(ctx(t), "say", "queued", codec.InRoom("r")) }()
		o.again()
		if err := receive(t, in, "the request"); err != nil {
			t.Fatal(err)
		}
		if err := receive(t, emitted, "the emit"); err != nil {
			t.Fatal(err)
		}
		o.expectLog("resume r true 0", "said queued 2")
	})
}

// TestClientStops: the client stops for good, and Done is closed, when it
// does not reconnect (the default), when the server's close code is one
// of StopCodes, when an upgrade is refused with 401, after MaxAttempts
// failed dials, and when it is closed while it waits to dial again.
func TestClientStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []codec.ClientOption
		// end ends the connection, and returns what Err should match.
		end  func(t *testing.T, s *roomServer, o *outages, c *codec.Client) func(error) bool
		down bool // OnDisconnect is told
	}{
		{"reconnection off", []codec.ClientOption{codec.WithReconnect(false)},
			func(t *testing.T, s *roomServer, o *outages, c *codec.Client) func(error) bool {
				o.cut()
				return func(err error) bool { return errors.Is(err, net.ErrClosed) }
			}, false},
		{"unauthorized", nil,
			func(t *testing.T, s *roomServer, o *outages, c *codec.Client) func(error) bool {
				c.Emit(ctx(t), "kick", int(wire.StatusUnauthorized))
				return func(err error) bool { return wire.CloseStatus(err) == wire.StatusUnauthorized }
			}, false},
		{"a stop code of the application's", []codec.ClientOption{codec.WithStopCodes(4009)},
			func(t *testing.T, s *roomServer, o *outages, c *codec.Client) func(error) bool {
				c.Emit(ctx(t), "kick", 4009)
				return func(err error) bool { return wire.CloseStatus(err) == 4009 }
			}, false},
		{"upgrade refused", nil,
			func(t *testing.T, s *roomServer, o *outages, c *codec.Client) func(error) bool {
				s.refuse.Store(http.StatusUnauthorized)
				o.cut()
				return func(err error) bool {
					var he *wire.HandshakeError
					return errors.As(err, &he) && he.Status == http.StatusUnauthorized
				}
			}, true},
		{"max attempts", []codec.ClientOption{codec.WithMaxAttempts(3)},
			func(t *testing.T, s *roomServer, o *outages, c *codec.Client) func(error) bool {
				s.refuse.Store(http.StatusServiceUnavailable) // tried again, unlike 401
				o.cut()
				return func(err error) bool {
					var he *wire.HandshakeError
					return errors.As(err, &he) && he.Status == http.StatusServiceUnavailable &&
						strings.Contains(err.Error(), "no connection after 3 attempts")
				}
			}, true},
		{"closed while waiting to dial again", []codec.ClientOption{codec.WithBackoff(codec.Backoff{Min: time.Hour, Max: time.Hour, Factor: 1})},
			func(t *testing.T, s *roomServer, o *outages, c *codec.Client) func(error) bool {
				o.outage() // after which it waits an hour
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				return func(err error) bool { return errors.Is(err, net.ErrClosed) }
			}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothCodecs(t, func(t *testing.T, cd codec.Codec) {
				s := newRoomServer(t, cd, roomConfig{history: runtime.History{Size: 16}})
				o := newOutages(t, false)
				c := o.dial(s, "", tc.opts...)
				match := tc.end(t, s, o, c)
				receive(t, c.Done(), "the client's end")
				if err := c.Err(); !match(err) {
					t.Fatalf("Err %v", err)
				}
				if tc.down != (len(o.down) > 0) {
					t.Fatalf("OnDisconnect told %d times", len(o.down))
				}
				// Stopped: calls fail at once.
				if err := c.Emit(context.Background(), "say", "late", codec.InRoom("r")); !errors.Is(err, wire.ErrClosed) {
					t.Fatalf("emit after the end: %v", err)
				}
				if _, err := c.Join(context.Background(), "r"); !errors.Is(err, wire.ErrClosed) {
					t.Fatalf("join after the end: %v", err)
				}
			})
		})
	}
}

// TestBackoff: each wait is within its bounds, and the options are
// checked.
func TestBackoff(t *testing.T) {
	b := codec.DefaultBackoff
	for n, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		for range 100 {
			if d := b.Delay(n); d > want || d < want/2 {
				t.Fatalf("attempt %d: %v, want %v to %v", n, d, want/2, want)
			}
		}
	}
	for _, n := range []int{6, 7, 100, 1 << 30} {
		if d := b.Delay(n); d > 30*time.Second || d < 15*time.Second {
			t.Fatalf("attempt %d: %v", n, d)
		}
	}
	s := newRoomServer(t, codec.JSON, roomConfig{})
	for _, tc := range []struct {
		opt  codec.ClientOption
		want string
	}{
		{codec.WithBackoff(codec.Backoff{}), "Backoff"},
		{codec.WithBackoff(codec.Backoff{Min: time.Second, Max: time.Millisecond, Factor: 2}), "Backoff"},
		{codec.WithBackoff(codec.Backoff{Min: time.Millisecond, Max: time.Second, Factor: 0.5}), "Backoff"},
		{codec.WithBackoff(codec.Backoff{Min: time.Millisecond, Max: time.Second, Factor: 2, Jitter: 2}), "Backoff"},
		{codec.WithMaxAttempts(-1), "MaxAttempts -1"},
	} {
		if c, err := codec.Dial(ctx(t), s.url, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}
