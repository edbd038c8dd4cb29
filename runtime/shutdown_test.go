package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// noLeaks checks, after every other cleanup of the test (registered
// later, so run earlier), that the test left no goroutine behind.
func noLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// The streams of TestShutdownUnderLoad, as stream ids of seqMsg.
const (
	streamID    = iota // the session's id, sent once by OnOpen
	streamEcho         // echoes of the client's messages
	streamPush         // frames a goroutine sends to the session
	streamBcast        // room broadcasts
	streamHello        // the client's first message, which starts the pusher
	streams
)

// loadSession is the server's record of one session under load.
type loadSession struct {
	echoAccepted atomic.Int64 // echo Sends that returned nil
	echoRefused  atomic.Bool  // an echo Send failed: no later one may succeed
	echoLate     atomic.Int64 // echo Sends that succeeded after one failed
	pushAccepted atomic.Int64
	pushDone     chan error // the pusher's verdict
}

// loadClient is a client's view of its session under load.
type loadClient struct {
	c        *wire.Conn
	id       atomic.Uint64
	got      [streams]atomic.Int64 // messages received per stream, in order
	finished atomic.Bool           // reading has ended
	readErr  chan error            // how reading ended
}

// TestShutdownUnderLoad shuts the runtime down while clients send (and get
// echoes), a goroutine per session sends to it, and a room broadcasts. Every
// frame whose Send returned nil must reach its client before the 1001 close
// frame, in order and without gaps; Sends after that fail with ErrClosed; a
// client that never answers the close does not keep Shutdown from
// returning nil once CloseTimeout has passed; new upgrades get 503.
func TestShutdownUnderLoad(t *testing.T) { eachTransport(t, testShutdownUnderLoad) }

func testShutdownUnderLoad(t *testing.T) {
	noLeaks(t)
	const (
		clients = 8
		window  = 64 // frames a stream may run ahead of its client
		before  = 50 // frames of each stream every client gets before Shutdown
	)
	var (
		ref          rtRef
		bySession    sync.Map // id -> *loadSession
		byClient     sync.Map // id -> *loadClient
		bcastAccepts atomic.Int64
	)
	// behind reports whether a stream must wait for its client, which
	// keeps every mailbox short: the closing handshake has CloseTimeout to
	// complete, and a long backlog would not be written in time (see
	// TestCloseAfterBacklog).
	behind := func(lc *loadClient, stream int, seq int64) bool {
		return !lc.finished.Load() && seq > lc.got[stream].Load()+window
	}
	pusher := func(s *session.Session, ls *loadSession, lc *loadClient) {
		var seq int64
		for {
			for behind(lc, streamPush, seq) {
				time.Sleep(100 * time.Microsecond)
			}
			err := s.Send(wire.OpBinary, seqMsg(streamPush, uint32(seq), 8))
			if err != nil {
				if !errors.Is(err, session.ErrClosed) {
					ls.pushDone <- fmt.Errorf("push %d: %w, want ErrClosed", seq, err)
					return
				}
				if err := s.Send(wire.OpBinary, seqMsg(streamPush, uint32(seq+1), 8)); !errors.Is(err, session.ErrClosed) {
					ls.pushDone <- fmt.Errorf("push after ErrClosed: %v", err)
					return
				}
				ls.pushDone <- nil
				return
			}
			ls.pushAccepted.Add(1)
			seq++
		}
	}
	h := handler{
		open: func(s *session.Session) error {
			bySession.Store(s.ID(), &loadSession{pushDone: make(chan error, 1)})
			return s.Send(wire.OpBinary, seqMsg(streamID, uint32(s.ID()), 8))
		},
		msg: func(s *session.Session, m session.Message) error {
			v, _ := bySession.Load(s.ID())
			ls := v.(*loadSession)
			stream, seq, err := parseSeq(m.Data)
			if err != nil {
				return err
			}
			if stream == streamHello {
				ref.get().Join("all", s)
				v, _ := byClient.Load(s.ID())
				go pusher(s, ls, v.(*loadClient))
				return nil
			}
			if err := s.Send(wire.OpBinary, seqMsg(streamEcho, seq, 8)); err != nil {
				ls.echoRefused.Store(true)
				return nil // keep reading: the session is closing anyway
			}
			if ls.echoRefused.Load() {
				ls.echoLate.Add(1)
			}
			ls.echoAccepted.Add(1)
			return nil
		},
	}
	rt, url := start(t, h,
		runtime.WithMailbox(1<<14, 64<<20, session.PolicyClose),
		runtime.WithCloseTimeout(2*time.Second))
	ref.p.Store(rt)

	// A client that completes the handshake and then ignores everything.
	deaf := rawDial(t, url, 0)

	lcs := make([]*loadClient, clients)
	for i := range lcs {
		lc := &loadClient{c: dial(t, url), readErr: make(chan error, 1)}
		lcs[i] = lc
		// The first frame names the session.
		lc.c.NetConn().SetReadDeadline(time.Now().Add(bound))
		_, p, err := lc.c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		stream, id, err := parseSeq(p)
		if err != nil || stream != streamID {
			t.Fatalf("first frame %x, %v", p, err)
		}
		lc.id.Store(uint64(id))
		byClient.Store(uint64(id), lc)
		go func() {
			next := make([]int64, streams)
			defer lc.finished.Store(true)
			lc.readErr <- func() error {
				for {
					_, p, err := lc.c.ReadMessage()
					if err != nil {
						return err
					}
					stream, seq, err := parseSeq(p)
					if err != nil {
						return err
					}
					if stream >= streams || int64(seq) != next[stream] {
						return fmt.Errorf("stream %d: seq %d, want %d", stream, seq, next[stream])
					}
					next[stream]++
					lc.got[stream].Add(1)
				}
			}()
		}()
		if err := lc.c.WriteMessage(wire.OpBinary, seqMsg(streamHello, 0, 8)); err != nil {
			t.Fatal(err)
		}
	}
	var room *runtime.Room
	eventually(t, bound, "every session to join", func() bool {
		var ok bool
		room, ok = rt.Room("all")
		return ok && room.Len() == clients
	})

	// Load: each client writes, a goroutine broadcasts.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, lc := range lcs {
		wg.Go(func() {
			for seq := int64(0); ; seq++ {
				for behind(lc, streamEcho, seq) {
					select {
					case <-stop:
						return
					default:
						time.Sleep(100 * time.Microsecond)
					}
				}
				if lc.c.WriteMessage(wire.OpBinary, seqMsg(streamEcho, uint32(seq), 8)) != nil {
					return // the close handshake is done
				}
			}
		})
	}
	wg.Go(func() {
		for seq := int64(0); ; seq++ {
			for _, lc := range lcs {
				for behind(lc, streamBcast, seq) {
					select {
					case <-stop:
						return
					default:
						time.Sleep(100 * time.Microsecond)
					}
				}
			}
			n := room.Broadcast(wire.OpBinary, seqMsg(streamBcast, uint32(seq), 8))
			bcastAccepts.Add(int64(n))
			if n == 0 {
				return // every member is closing
			}
		}
	})
	defer close(stop)

	eventually(t, bound, "load on every stream", func() bool {
		for _, lc := range lcs {
			for _, s := range []int{streamEcho, streamPush, streamBcast} {
				if lc.got[s].Load() < before {
					return false
				}
			}
		}
		return true
	})
	shutErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		shutErr <- rt.Shutdown(ctx)
	}()

	// Every client reads up to the 1001 close frame.
	for i, lc := range lcs {
		select {
		case err := <-lc.readErr:
			var ce wire.CloseError
			if !errors.As(err, &ce) || ce.Code != wire.StatusGoingAway {
				t.Errorf("client %d: reading ended with %v, want close 1001", i, err)
			}
		case <-time.After(bound):
			t.Fatalf("client %d: no close frame", i)
		}
		if i == 0 {
			// Shutdown is under way (it waits for the deaf client):
			// upgrades are refused.
			wantShutDown(t, url)
		}
	}
	select {
	case err := <-shutErr:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(2 * bound):
		t.Fatal("Shutdown did not return")
	}
	wantShutDown(t, url)
	if n := rt.Len(); n != 0 {
		t.Errorf("%d sessions left after Shutdown", n)
	}
	if _, ok := rt.Room("all"); ok {
		t.Error("room left after Shutdown")
	}

	// Every accepted frame arrived; the readers checked order and gaps.
	var gotBcast int64
	for i, lc := range lcs {
		v, _ := bySession.Load(lc.id.Load())
		ls := v.(*loadSession)
		if got, acc := lc.got[streamEcho].Load(), ls.echoAccepted.Load(); got != acc {
			t.Errorf("client %d: %d echoes received, %d accepted", i, got, acc)
		}
		if n := ls.echoLate.Load(); n != 0 {
			t.Errorf("client %d: %d echo Sends succeeded after one failed", i, n)
		}
		select {
		case err := <-ls.pushDone:
			if err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		case <-time.After(bound):
			t.Fatalf("client %d: the pusher never saw ErrClosed", i)
		}
		if got, acc := lc.got[streamPush].Load(), ls.pushAccepted.Load(); got != acc {
			t.Errorf("client %d: %d pushes received, %d accepted", i, got, acc)
		}
		gotBcast += lc.got[streamBcast].Load()
	}
	if acc := bcastAccepts.Load(); gotBcast != acc {
		t.Errorf("broadcasts: %d received in all, %d accepted", gotBcast, acc)
	}
	wantEnd(t, deaf)
}

// wantEnd checks that the server has closed the raw client's connection:
// reading reaches EOF (or a reset) before the failure bound.
func wantEnd(t testing.TB, c *rawClient) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(bound))
	if _, err := io.Copy(io.Discard, c.nc); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("raw client: connection still open after %v", bound)
	}
}

// TestShutdownExpiredContext shuts down with a context that ends before a
// deaf client would let the closing handshake finish: Shutdown returns the
// context's error, and still tears everything down.
func TestShutdownExpiredContext(t *testing.T) { eachTransport(t, testShutdownExpiredContext) }

func testShutdownExpiredContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"canceled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			tr := newTracker()
			rt, url := start(t, handler{open: func(s *session.Session) error { tr.opened(s); return nil }, close: tr.closed},
				runtime.WithCloseTimeout(time.Minute)) // only the context can end the wait
			deaf := rawDial(t, url, 0)
			polite := dial(t, url)
			politeErr := make(chan error, 1)
			go func() { politeErr <- readUntilError(polite) }()
			tr.session(t, deaf.nc.LocalAddr())
			tr.session(t, polite.NetConn().LocalAddr())

			ctx, cancel := tc.ctx()
			defer cancel()
			if err := rt.Shutdown(ctx); !errors.Is(err, tc.want) {
				t.Fatalf("Shutdown: %v, want %v", err, tc.want)
			}
			// Everything is torn down by the time Shutdown returns.
			if n := rt.Len(); n != 0 {
				t.Errorf("%d sessions left", n)
			}
			for _, addr := range []net.Addr{deaf.nc.LocalAddr(), polite.NetConn().LocalAddr()} {
				if !tr.hasEnded(addr) {
					t.Errorf("session of %s has not ended", addr)
				}
			}
			wantEnd(t, deaf)
			select {
			case err := <-politeErr:
				if err == nil {
					t.Error("polite client still connected")
				}
			case <-time.After(bound):
				t.Error("polite client still connected")
			}
			wantShutDown(t, url)
			// Shutdown again is harmless.
			if err := rt.Shutdown(context.Background()); err != nil {
				t.Errorf("second Shutdown: %v", err)
			}
		})
	}
}

// TestShutdownRacingUpgrade calls Shutdown while an upgrade is in flight:
// past the 503 check, not yet registered. That session must not escape the
// shutdown: either it is refused, or it is closed with 1001 like the
// others, and Shutdown returns nil without waiting for its context.
func TestShutdownRacingUpgrade(t *testing.T) { eachTransport(t, testShutdownRacingUpgrade) }

func testShutdownRacingUpgrade(t *testing.T) {
	noLeaks(t)
	held := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	rt, url := start(t, echo, runtime.WithCheckOrigin(func(r *http.Request) bool {
		if r.Header.Get("X-Hold") != "" {
			close(held)
			<-release
		}
		return true
	}))
	first := dial(t, url)
	firstErr := make(chan error, 1)
	go func() { firstErr <- readUntilError(first) }()
	eventually(t, bound, "the first session", func() bool { return rt.Len() == 1 })

	type dialed struct {
		c   *wire.Conn
		err error
	}
	late := make(chan dialed, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		c, _, err := wire.Dial(ctx, url, &wire.DialOptions{Header: http.Header{"X-Hold": {"1"}}})
		late <- dialed{c, err}
	}()
	select {
	case <-held:
	case <-time.After(bound):
		t.Fatal("the held upgrade never reached the origin check")
	}

	shutErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		shutErr <- rt.Shutdown(ctx)
	}()
	// Once the first client has its close frame, Shutdown has been
	// through the registry; then the held upgrade goes on.
	wantClose(t, <-firstErr, wire.StatusGoingAway, "*")
	releaseOnce.Do(func() { close(release) })

	d := <-late
	if d.err == nil {
		t.Cleanup(func() { d.c.CloseNow() })
		if err := readUntilError(d.c); wire.CloseStatus(err) != wire.StatusGoingAway {
			t.Errorf("upgraded during Shutdown: reading ended with %v, want close 1001", err)
		}
	} else {
		var he *wire.HandshakeError
		if !errors.As(d.err, &he) || he.Status != http.StatusServiceUnavailable {
			t.Errorf("upgrade during Shutdown: %v, want 503 or a session closed with 1001", d.err)
		}
	}
	if err := <-shutErr; err != nil {
		t.Errorf("Shutdown: %v, want nil (the late session escaped it)", err)
	}
}

// TestChurn connects and disconnects 2,000 clients, in batches, half with
// the closing handshake and half abruptly: the registry and the rooms end
// empty, and no goroutine is left behind.
func TestChurn(t *testing.T) { eachTransport(t, testChurn) }

func testChurn(t *testing.T) {
	noLeaks(t)
	const (
		cycles = 2000
		batch  = 100
		rooms  = 5
	)
	var (
		ref    rtRef
		opens  atomic.Int64
		closes atomic.Int64
	)
	rt, url := start(t, handler{
		open: func(s *session.Session) error {
			opens.Add(1)
			ref.get().Join("everyone", s)
			ref.get().Join(fmt.Sprintf("room-%d", s.ID()%rooms), s)
			return s.Send(wire.OpText, []byte("welcome"))
		},
		msg: func(s *session.Session, m session.Message) error {
			return s.Send(m.Op, m.Data)
		},
		close: func(*session.Session, error) { closes.Add(1) },
	})
	ref.p.Store(rt)
	for b := 0; b < cycles; b += batch {
		var wg sync.WaitGroup
		errs := make(chan error, batch)
		for i := b; i < b+batch; i++ {
			wg.Go(func() {
				c, err := dialCtx(url, nil)
				if err != nil {
					errs <- err
					return
				}
				defer c.CloseNow()
				c.NetConn().SetDeadline(time.Now().Add(bound))
				if _, p, err := c.ReadMessage(); err != nil || string(p) != "welcome" {
					errs <- fmt.Errorf("cycle %d: welcome: %q %v", i, p, err)
					return
				}
				if i%4 == 0 {
					if err := c.WriteMessage(wire.OpText, []byte("ping")); err != nil {
						errs <- err
						return
					}
					if _, _, err := c.ReadMessage(); err != nil {
						errs <- err
						return
					}
				}
				if i%2 == 0 {
					if err := c.Close(wire.StatusNormalClosure, ""); err != nil {
						errs <- fmt.Errorf("cycle %d: Close: %w", i, err)
					}
				}
				// Odd cycles: CloseNow, deferred.
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	eventually(t, bound, "every session to end", func() bool { return rt.Len() == 0 })
	if o, c := opens.Load(), closes.Load(); o != cycles || c != cycles {
		t.Errorf("OnOpen %d, OnClose %d times, want %d", o, c, cycles)
	}
	for r := range rt.Rooms() {
		t.Errorf("room %q left with %d members", r.Name(), r.Len())
	}
	if _, ok := rt.Room("everyone"); ok {
		t.Error(`room "everyone" still registered`)
	}
}

// TestCloseAfterBacklog closes a session whose mailbox holds more than the
// socket takes at once, while its client reads steadily but slowly. Close
// promises that the frames already queued are written, then the close
// frame: CloseTimeout bounds the closing handshake, which starts when the
// close frame is written, not the writing of the backlog before it (that
// is WriteTimeout's job, per write).
func TestCloseAfterBacklog(t *testing.T) { eachTransport(t, testCloseAfterBacklog) }

func testCloseAfterBacklog(t *testing.T) {
	const (
		frames = 200
		size   = 64 << 10 // 12.5 MiB in all: more than the socket buffers
	)
	tr := newTracker()
	_, url := start(t, handler{open: func(s *session.Session) error { tr.opened(s); return nil }, close: tr.closed},
		runtime.WithMailbox(1024, 64<<20, session.PolicyClose),
		runtime.WithCloseTimeout(200*time.Millisecond))
	c := dial(t, url)
	s := tr.session(t, c.NetConn().LocalAddr())
	for i := range frames {
		if err := s.Send(wire.OpBinary, seqMsg(0, uint32(i), size)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	s.Close(wire.StatusNormalClosure, "done")
	c.NetConn().SetReadDeadline(time.Now().Add(bound))
	for i := 0; ; i++ {
		_, p, err := c.ReadMessage()
		if err != nil {
			if i != frames {
				t.Fatalf("client got %d of %d frames queued before Close, then %v", i, frames, err)
			}
			wantClose(t, err, wire.StatusNormalClosure, "done")
			break
		}
		if _, seq, _ := parseSeq(p); seq != uint32(i) {
			t.Fatalf("frame %d has seq %d", i, seq)
		}
		time.Sleep(2 * time.Millisecond) // a slow reader: the backlog takes longer than CloseTimeout
	}
}
