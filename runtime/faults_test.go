package runtime_test

import (
	"bytes"
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// wantEcho checks that c's session still echoes.
func wantEcho(t testing.TB, c *wire.Conn, msg string) {
	t.Helper()
	if err := c.WriteMessage(wire.OpText, []byte(msg)); err != nil {
		t.Fatalf("bystander write: %v", err)
	}
	c.NetConn().SetReadDeadline(time.Now().Add(bound))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != msg {
		t.Fatalf("bystander got %q, %v; want the echo %q", p, err, msg)
	}
}

var errPlain = errors.New("plain failure")

// TestHandlerFailures makes callbacks of one session panic or fail and
// checks what its client sees, what OnClose and the error hook get, and
// that another session of the runtime carries on.
func TestHandlerFailures(t *testing.T) { eachTransport(t, testHandlerFailures) }

func testHandlerFailures(t *testing.T) {
	type hookCall struct {
		s   *session.Session
		err error
	}
	var (
		hookMu    sync.Mutex
		hookCalls []hookCall
	)
	tr := newTracker()
	h := handler{
		open: func(s *session.Session) error {
			tr.opened(s)
			switch s.Subprotocol() {
			case "reject":
				return wire.CloseError{Code: 4001, Reason: "nope"}
			case "fail-open":
				return errPlain
			case "panic-open":
				panic("boom in OnOpen")
			}
			return nil
		},
		msg: func(s *session.Session, m session.Message) error {
			switch string(m.Data) {
			case "panic":
				panic("boom")
			case "error":
				return errPlain
			case "close-4002":
				return wire.CloseError{Code: 4002, Reason: "bye"}
			case "panic-later":
				*session.State[bool](s) = true // OnClose panics
			}
			return s.Send(m.Op, m.Data)
		},
		close: func(s *session.Session, err error) {
			tr.closed(s, err)
			if *session.State[bool](s) {
				panic("boom in OnClose")
			}
		},
	}
	rt, url := start(t, h,
		runtime.WithSubprotocols("reject", "fail-open", "panic-open", "normal"),
		runtime.WithErrorHandler(func(s *session.Session, err error) {
			hookMu.Lock()
			hookCalls = append(hookCalls, hookCall{s, err})
			hookMu.Unlock()
		}))
	bystander := dial(t, url)
	wantEcho(t, bystander, "before")

	for _, tc := range []struct {
		name     string
		sub      string // subprotocol offered
		send     string // message sent after the handshake, if any
		inFlight int    // bytes of a message sent right after send, still in flight when the session fails
		code     wire.StatusCode
		reason   string
		wantErr  func(error) bool // of OnClose
		wantHook any              // the PanicError value the hook must get, or nil for no call
	}{
		{"OnMessage panics", "normal", "panic", 0, wire.StatusInternalError, "*",
			func(err error) bool {
				var pe *session.PanicError
				return errors.As(err, &pe) && pe.Value == "boom"
			}, "boom"},
		{"OnMessage returns an error", "normal", "error", 0, wire.StatusInternalError, "*",
			func(err error) bool { return errors.Is(err, errPlain) }, nil},
		{"OnMessage returns an error, client still sending", "normal", "error", 8 << 20, wire.StatusInternalError, "*",
			func(err error) bool { return errors.Is(err, errPlain) }, nil},
		{"OnMessage returns a CloseError", "normal", "close-4002", 0, 4002, "bye",
			func(err error) bool { return wire.CloseStatus(err) == 4002 }, nil},
		{"OnOpen returns a CloseError", "reject", "", 0, 4001, "nope",
			func(err error) bool {
				var ce wire.CloseError
				return errors.As(err, &ce) && ce == wire.CloseError{Code: 4001, Reason: "nope"}
			}, nil},
		{"OnOpen returns an error", "fail-open", "", 0, wire.StatusInternalError, "*",
			func(err error) bool { return errors.Is(err, errPlain) }, nil},
		{"OnOpen panics", "panic-open", "", 0, wire.StatusInternalError, "*",
			func(err error) bool {
				var pe *session.PanicError
				return errors.As(err, &pe) && pe.Value == "boom in OnOpen"
			}, "boom in OnOpen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hookMu.Lock()
			hookCalls = nil
			hookMu.Unlock()
			c, err := dialCtx(url, &wire.DialOptions{Subprotocols: []string{tc.sub}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			writeErr := make(chan error, 1)
			go func() {
				var err error
				if tc.send != "" {
					err = c.WriteMessage(wire.OpText, []byte(tc.send))
				}
				if err == nil && tc.inFlight > 0 {
					c.WriteMessage(wire.OpBinary, make([]byte, tc.inFlight)) // fails once the server is gone
				}
				writeErr <- err
			}()
			wantClose(t, readUntilError(c), tc.code, tc.reason)
			if err := <-writeErr; err != nil {
				t.Fatal(err)
			}
			if err := tr.endErr(t, c.NetConn().LocalAddr()); !tc.wantErr(err) {
				t.Errorf("OnClose got %v (%T)", err, err)
			}
			hookMu.Lock()
			calls := hookCalls
			hookMu.Unlock()
			switch {
			case tc.wantHook == nil && len(calls) != 0:
				t.Errorf("error hook called %d times: %v", len(calls), calls[0].err)
			case tc.wantHook != nil:
				var pe *session.PanicError
				if len(calls) != 1 || !errors.As(calls[0].err, &pe) || pe.Value != tc.wantHook {
					t.Errorf("error hook calls %v, want one with a *PanicError of %v", calls, tc.wantHook)
				} else if calls[0].s.RemoteAddr().String() != c.NetConn().LocalAddr().String() {
					t.Errorf("error hook got another session")
				}
			}
			wantEcho(t, bystander, tc.name)
		})
	}

	// A panic in OnClose is recovered and reported too; the registry is
	// cleaned up all the same.
	t.Run("OnClose panics", func(t *testing.T) {
		hookMu.Lock()
		hookCalls = nil
		hookMu.Unlock()
		c := dial(t, url)
		wantEcho(t, c, "panic-later")
		c.CloseNow()
		tr.endErr(t, c.NetConn().LocalAddr())
		eventually(t, bound, "the error hook", func() bool {
			hookMu.Lock()
			defer hookMu.Unlock()
			return len(hookCalls) == 1
		})
		var pe *session.PanicError
		if !errors.As(hookCalls[0].err, &pe) || pe.Value != "boom in OnClose" {
			t.Errorf("hook got %v", hookCalls[0].err)
		}
		eventually(t, bound, "only the bystander left", func() bool { return rt.Len() == 1 })
		wantEcho(t, bystander, "after")
	})
}

// TestBadInput sends what a server must refuse, from well-formed clients
// (too big, bad UTF-8) and from a raw one (protocol errors), and checks
// the close code the client gets and the error OnClose gets, while
// another session keeps echoing.
func TestBadInput(t *testing.T) { eachTransport(t, testBadInput) }

func testBadInput(t *testing.T) {
	const maxSize = 1 << 10
	tr := newTracker()
	_, url := start(t, handler{
		open:  func(s *session.Session) error { tr.opened(s); return nil },
		msg:   func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) },
		close: tr.closed,
	}, runtime.WithMaxMessageSize(maxSize))
	bystander := dial(t, url)

	masked := func(h wire.Header) wire.Header {
		h.Masked, h.Key = true, [4]byte{1, 2, 3, 4}
		return h
	}
	for _, tc := range []struct {
		name string
		// Either a message from a wire.Conn...
		op  wire.Opcode
		msg []byte
		// ...or raw frames.
		raw  []wire.Header
		body [][]byte
		code wire.StatusCode
	}{
		{name: "message one byte too big", op: wire.OpBinary, msg: make([]byte, maxSize+1), code: wire.StatusMessageTooBig},
		{name: "message far too big, still in flight", op: wire.OpBinary, msg: make([]byte, 8<<20), code: wire.StatusMessageTooBig},
		{name: "invalid UTF-8", op: wire.OpText, msg: []byte("ok \xff\xfe"), code: wire.StatusInvalidFramePayloadData},
		{name: "truncated UTF-8", op: wire.OpText, msg: []byte("\xe2\x82"), code: wire.StatusInvalidFramePayloadData},
		{name: "unmasked frame", raw: []wire.Header{{Fin: true, Opcode: wire.OpText}},
			body: [][]byte{[]byte("hi")}, code: wire.StatusProtocolError},
		{name: "reserved bits", raw: []wire.Header{masked(wire.Header{Fin: true, Rsv: 0x40, Opcode: wire.OpText})},
			body: [][]byte{[]byte("hi")}, code: wire.StatusProtocolError},
		{name: "reserved opcode", raw: []wire.Header{masked(wire.Header{Fin: true, Opcode: 3})},
			body: [][]byte{nil}, code: wire.StatusProtocolError},
		{name: "fragmented ping", raw: []wire.Header{masked(wire.Header{Opcode: wire.OpPing})},
			body: [][]byte{nil}, code: wire.StatusProtocolError},
		{name: "continuation without a start", raw: []wire.Header{masked(wire.Header{Fin: true, Opcode: wire.OpContinuation})},
			body: [][]byte{[]byte("x")}, code: wire.StatusProtocolError},
		{name: "close with bad code", raw: []wire.Header{masked(wire.Header{Fin: true, Opcode: wire.OpClose})},
			body: [][]byte{{0x03, 0xed}}, code: wire.StatusProtocolError}, // 1005 may not be sent
		{name: "fragments too big together", raw: []wire.Header{
			masked(wire.Header{Opcode: wire.OpBinary}),
			masked(wire.Header{Fin: true, Opcode: wire.OpContinuation}),
		}, body: [][]byte{make([]byte, maxSize/2+1), make([]byte, maxSize/2+1)}, code: wire.StatusMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addr net.Addr
			if tc.raw == nil {
				c := dial(t, url)
				addr = c.NetConn().LocalAddr()
				writeErr := make(chan error, 1)
				go func() { writeErr <- c.WriteMessage(tc.op, tc.msg) }()
				wantClose(t, readUntilError(c), tc.code, "*")
				<-writeErr // fails when the server cut a message in flight
			} else {
				rc := rawDial(t, url, 0)
				addr = rc.nc.LocalAddr()
				for i, h := range tc.raw {
					if err := rc.write(h, tc.body[i]); err != nil {
						t.Fatal(err)
					}
				}
				if code, _ := rc.readClose(t); code != tc.code {
					t.Fatalf("raw client got close %d, want %d", code, tc.code)
				}
				rc.nc.Close() // as a client does once the server has failed the connection
			}
			err := tr.endErr(t, addr)
			var pe *wire.ProtocolError
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Errorf("OnClose got %v, want a *wire.ProtocolError with code %d", err, tc.code)
			}
			wantEcho(t, bystander, tc.name)
		})
	}
}

// TestHeartbeatKeepsAlive checks that a client that answers pings (as
// wire.Conn does while reading) stays connected across many ping
// intervals, although it sends nothing of its own.
func TestHeartbeatKeepsAlive(t *testing.T) { eachTransport(t, testHeartbeatKeepsAlive) }

func testHeartbeatKeepsAlive(t *testing.T) {
	tr := newTracker()
	rt, url := start(t, handler{
		open:  func(s *session.Session) error { tr.opened(s); return nil },
		msg:   func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) },
		close: tr.closed,
	}, runtime.WithHeartbeat(50*time.Millisecond, 3*time.Second), runtime.WithTick(10*time.Millisecond))
	var pings atomic.Int32
	c, err := dialCtx(url, &wire.DialOptions{Options: wire.Options{OnPing: func([]byte) { pings.Add(1) }}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	msgs := make(chan []byte, 1)
	readErr := make(chan error, 1)
	go func() {
		for {
			_, p, err := c.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			msgs <- bytes.Clone(p)
		}
	}()
	// An unanswered ping is never followed by another: ten pings mean
	// nine pongs were read.
	eventually(t, bound, "10 pings", func() bool {
		select {
		case err := <-readErr:
			t.Fatalf("client dropped: %v", err)
		default:
		}
		return pings.Load() >= 10
	})
	if tr.hasEnded(c.NetConn().LocalAddr()) || rt.Len() != 1 {
		t.Fatal("the session ended")
	}
	if err := c.WriteMessage(wire.OpText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-msgs:
		if string(p) != "still here" {
			t.Fatalf("echo %q", p)
		}
	case err := <-readErr:
		t.Fatal(err)
	case <-time.After(bound):
		t.Fatal("no echo")
	}
}

// TestTimeouts checks the timeouts that end sessions: a client that never
// sends anything (not even pongs) is dropped by the heartbeat; a silent
// client is closed by the idle timeout; a client that does not answer a
// server's close is dropped after CloseTimeout; a client that stops reading
// is dropped after WriteTimeout.
func TestTimeouts(t *testing.T) { eachTransport(t, testTimeouts) }

func testTimeouts(t *testing.T) {
	t.Run("no pong", func(t *testing.T) {
		tr := newTracker()
		rt, url := startTracked(t, tr, runtime.WithHeartbeat(50*time.Millisecond, 100*time.Millisecond), runtime.WithTick(10*time.Millisecond))
		c := rt.Counters()
		rc := rawDial(t, url, 0)
		if err := tr.endErr(t, rc.nc.LocalAddr()); !errors.Is(err, session.ErrTimeout) {
			t.Fatalf("OnClose got %v, want ErrTimeout", err)
		}
		wantCounted(t, "PongTimeouts", &c.PongTimeouts)
		// The client got pings, then the connection ended.
		rc.nc.SetReadDeadline(time.Now().Add(bound))
		pings := 0
		for {
			op, _, err := rc.rd.Next()
			if err != nil {
				break
			}
			if op != wire.OpPing {
				t.Fatalf("client got %v, want only pings", op)
			}
			pings++
		}
		if pings == 0 {
			t.Error("the session was dropped without a ping")
		}
	})

	t.Run("idle", func(t *testing.T) {
		tr := newTracker()
		rt, url := startTracked(t, tr, runtime.WithIdleTimeout(100*time.Millisecond))
		n := rt.Counters()
		c := dial(t, url)
		wantClose(t, readUntilError(c), wire.StatusGoingAway, "*")
		if err := tr.endErr(t, c.NetConn().LocalAddr()); !errors.Is(err, session.ErrTimeout) {
			t.Fatalf("OnClose got %v, want ErrTimeout", err)
		}
		wantCounted(t, "IdleTimeouts", &n.IdleTimeouts)
	})

	t.Run("idle, but talking", func(t *testing.T) {
		// Messages keep the idle timeout away. A message every 20 ms
		// against a timeout of 1 s: a loaded CI machine that stalls the
		// process for a second is rare; for 400 ms, it was not.
		tr := newTracker()
		_, url := startTracked(t, tr, runtime.WithIdleTimeout(time.Second), runtime.WithTick(10*time.Millisecond))
		c := dial(t, url)
		deadline := time.Now().Add(2500 * time.Millisecond) // two and a half idle timeouts
		for time.Now().Before(deadline) {
			wantEcho(t, c, "chatter")
			time.Sleep(20 * time.Millisecond)
		}
		if tr.hasEnded(c.NetConn().LocalAddr()) {
			t.Fatal("a talking client was closed as idle")
		}
	})

	t.Run("close handshake", func(t *testing.T) {
		tr := newTracker()
		rt, url := startTracked(t, tr, runtime.WithCloseTimeout(100*time.Millisecond))
		c := rt.Counters()
		rc := rawDial(t, url, 0)
		s := tr.session(t, rc.nc.LocalAddr())
		s.Close(wire.StatusNormalClosure, "bye")
		if code, reason := rc.readClose(t); code != wire.StatusNormalClosure || reason != "bye" {
			t.Fatalf("client got close %d %q", code, reason)
		}
		// The client never answers: the session ends by itself, and
		// OnClose says why (ErrTimeout: "the client did not ... finish
		// the closing handshake ... in time").
		err := tr.endErr(t, rc.nc.LocalAddr())
		wantEnd(t, rc)
		if !errors.Is(err, session.ErrTimeout) {
			t.Errorf("OnClose got %v, want ErrTimeout", err)
		}
		if err := s.Send(wire.OpText, nil); !errors.Is(err, session.ErrClosed) {
			t.Errorf("Send after the end: %v", err)
		}
		wantCounted(t, "CloseTimeouts", &c.CloseTimeouts)
	})

	t.Run("write", func(t *testing.T) {
		tr := newTracker()
		rt, url := startTracked(t, tr, runtime.WithWriteTimeout(200*time.Millisecond),
			runtime.WithMailbox(64, 1<<20, session.PolicyDropNewest))
		c := rt.Counters()
		rc := rawDial(t, url, 64<<10)
		s := tr.session(t, rc.nc.LocalAddr())
		p := make([]byte, 64<<10)
		for i := 0; ; i++ {
			err := s.Send(wire.OpBinary, p)
			if errors.Is(err, session.ErrClosed) {
				break
			}
			if err != nil && !errors.Is(err, session.ErrDropped) {
				t.Fatal(err)
			}
			if i > 1<<12 {
				t.Fatal("256 MiB sent to a client that reads nothing, and the session is still open")
			}
			if err != nil {
				time.Sleep(time.Millisecond) // the mailbox is full: let the timeout come
			}
		}
		if err := tr.endErr(t, rc.nc.LocalAddr()); !errors.Is(err, session.ErrTimeout) {
			t.Fatalf("OnClose got %v, want ErrTimeout", err)
		}
		wantCounted(t, "WriteTimeouts", &c.WriteTimeouts)
	})
}

// wantCounted checks that a limit acted once.
func wantCounted(t *testing.T, name string, n *atomic.Uint64) {
	t.Helper()
	if got := n.Load(); got != 1 {
		t.Errorf("Counters.%s = %d, want 1", name, got)
	}
}

// startTracked starts an echo runtime whose sessions tr records.
func startTracked(t *testing.T, tr *tracker, opts ...runtime.Option) (*runtime.Runtime, string) {
	t.Helper()
	return start(t, handler{
		open:  func(s *session.Session) error { tr.opened(s); return nil },
		msg:   func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) },
		close: tr.closed,
	}, opts...)
}

// TestOptions checks that New refuses invalid options.
func TestOptions(t *testing.T) { eachTransport(t, testOptions) }

func testOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  runtime.Option
		ok   bool
	}{
		{"max message size 0", runtime.WithMaxMessageSize(0), false},
		{"max message size 1", runtime.WithMaxMessageSize(1), true},
		{"mailbox of 0 frames", runtime.WithMailbox(0, 1, session.PolicyClose), false},
		{"mailbox of 0 bytes", runtime.WithMailbox(1, 0, session.PolicyClose), false},
		{"unknown policy", runtime.WithMailbox(1, 1, session.PolicyDropOldest+1), false},
		{"heartbeat off", runtime.WithHeartbeat(-1, 0), true},
		{"heartbeat 0", runtime.WithHeartbeat(0, time.Second), false},
		{"heartbeat without pong timeout", runtime.WithHeartbeat(time.Second, 0), false},
		{"idle off", runtime.WithIdleTimeout(0), true},
		{"idle -1", runtime.WithIdleTimeout(-1), false},
		{"write 0", runtime.WithWriteTimeout(0), false},
		{"close -1", runtime.WithCloseTimeout(-1), false},
		{"handshake 0", runtime.WithHandshakeTimeout(0), false},
		{"workers by GOMAXPROCS", runtime.WithWorkers(0), true},
		{"workers -1", runtime.WithWorkers(-1), false},
		{"pollers -1", runtime.WithPollers(-1), false},
		{"tick derived", runtime.WithTick(0), true},
		{"tick -1", runtime.WithTick(-1), false},
		{"unknown transport", runtime.WithTransport(runtime.TransportGoroutine + 1), false},
		{"message rate 0", runtime.WithMessageRate(0, 0), false},
		{"message rate NaN", runtime.WithMessageRate(math.NaN(), 0), false},
		{"message rate +Inf", runtime.WithMessageRate(math.Inf(1), 0), false},
		{"message rate off", runtime.WithMessageRate(-1, 0), true},
		{"message burst -1", runtime.WithMessageRate(10, -1), false},
		{"message timeout 0", runtime.WithMessageTimeout(0), false},
		{"message timeout off", runtime.WithMessageTimeout(-1), true},
		{"memory budgets by default", runtime.WithMemoryBudget(0, 0), true},
		{"memory budgets off", runtime.WithMemoryBudget(-1, -1), true},
		{"abort slow", runtime.WithAbortSlow(), true},
		{"invalid trusted proxy", runtime.WithTrustedProxies(netip.Prefix{}), false},
		{"options", runtime.WithOptions(runtime.DefaultOptions()), true},
		{"options with a NaN upgrade rate", runtime.WithOptions(func() runtime.Options {
			o := runtime.DefaultOptions()
			o.Limits.UpgradeRate = math.NaN()
			return o
		}()), false},
		{"options with a slow code that may not be sent", runtime.WithOptions(func() runtime.Options {
			o := runtime.DefaultOptions()
			o.SlowCode = 1005
			return o
		}()), false},
		{"zero options", runtime.WithOptions(runtime.Options{}), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := runtime.New(session.NopHandler{}, tc.opt)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
			if rt != nil {
				if err := rt.Shutdown(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
