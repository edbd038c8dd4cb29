package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/wire"
)

// bound is the failure bound of every wait: a generous deadline that a
// correct run never comes near, on a busy 2-core machine under -race.
const bound = 30 * time.Second

// transports are the ways a session runs: on a socket with a reader
// goroutine (vectored writes that never wait, and writeSlow), on a
// net.Conn that is not a socket (blocking writes on a goroutine of their
// own), and on the event loop (epoll, where there is one).
var transports = []string{"tcp", "pipe", "epoll"}

// funcs implements Handler with optional functions.
type funcs struct {
	open  func(s *Session) error
	msg   func(s *Session, m Message) error
	close func(s *Session, err error)
}

func (h funcs) OnOpen(s *Session) error {
	if h.open != nil {
		return h.open(s)
	}
	return nil
}

func (h funcs) OnMessage(s *Session, m Message) error {
	if h.msg != nil {
		return h.msg(s, m)
	}
	return nil
}

func (h funcs) OnClose(s *Session, err error) {
	if h.close != nil {
		h.close(s, err)
	}
}

// echoFuncs echoes and reports the end on ended.
func echoFuncs(ended chan<- error) funcs {
	return funcs{
		msg:   func(s *Session, m Message) error { return s.Send(m.Op, m.Data) },
		close: func(s *Session, err error) { ended <- err },
	}
}

// harness runs sessions on a scheduler of its own.
type harness struct {
	t     *testing.T
	sc    schedulerConfig
	sched *scheduler
	poll  *scheduler // with an event loop, made on first use
	mu    sync.Mutex
	live  map[*Session]struct{}
}

func newHarness(t *testing.T, sc schedulerConfig) *harness {
	t.Helper()
	h := &harness{t: t, live: make(map[*Session]struct{})}
	if sc.Tick == 0 {
		sc.Tick = 10 * time.Millisecond
	}
	sc.Sessions = func(yield func(*Session) bool) {
		h.mu.Lock()
		list := slices.Collect(maps.Keys(h.live))
		h.mu.Unlock()
		for _, s := range list {
			if !yield(s) {
				return
			}
		}
	}
	h.sc = sc
	h.sched = newScheduler(sc)
	t.Cleanup(h.sched.Close) // registered first: runs after every session has ended
	return h
}

// testSettings returns c's settings, with the fields a test left zero
// set as the runtime's DefaultOptions sets them (the runtime fills every
// field; this package cannot import it).
func testSettings(c config) *settings {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	c.MaxMessageSize = cmp.Or(c.MaxMessageSize, 1<<20)
	c.MailboxSize = cmp.Or(c.MailboxSize, 256)
	c.MaxQueuedBytes = cmp.Or(c.MaxQueuedBytes, 4<<20)
	c.SlowCode = cmp.Or(c.SlowCode, wire.StatusPolicyViolation)
	def(&c.PingInterval, 30*time.Second)
	def(&c.PongTimeout, 15*time.Second)
	def(&c.WriteTimeout, 10*time.Second)
	def(&c.CloseTimeout, 5*time.Second)
	def(&c.MessageTimeout, time.Minute)
	c.MessageRate = cmp.Or(c.MessageRate, 1000)
	c.MessageBurst = cmp.Or(c.MessageBurst, int(max(1, c.MessageRate)))
	return newSettings(c)
}

// scheduler returns the scheduler of transport's sessions.
func (h *harness) scheduler(transport string) *scheduler {
	if transport != "epoll" {
		return h.sched
	}
	if h.poll == nil {
		sc := h.sc
		sc.Pollers = 1
		h.poll = newScheduler(sc)
		if !h.poll.EventLoop() {
			h.t.Skip("no event loop on this system") // the other transports cover it
		}
		h.t.Cleanup(h.poll.Close)
	}
	return h.poll
}

// ending wraps a handler to report the end of its session: on the event
// loop, Serve returns long before.
type ending struct {
	Handler
	end func()
}

func (e ending) OnClose(s *Session, err error) {
	defer e.end()
	e.Handler.OnClose(s, err)
}

// conn is a session on one end of a connection, and a raw client on the
// other end.
type conn struct {
	t      *testing.T
	s      *Session
	client net.Conn
	rd     *wire.Reader
	done   chan struct{} // closed when the session has ended
	wmu    sync.Mutex
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	return server, client
}

// serve starts a session with handler hd over the transport, as if
// upgraded with buffered bytes already read.
func (h *harness) serve(transport string, hd Handler, cfg config, buffered []byte) *conn {
	h.t.Helper()
	return h.serveUpgraded(transport, hd, cfg, wire.Upgraded{Buffered: buffered, Subprotocol: "chat"})
}

// serveUpgraded is serve with what the handshake agreed in u (its Conn
// aside): the client's reader inflates as u.Compression says.
func (h *harness) serveUpgraded(transport string, hd Handler, cfg config, u wire.Upgraded) *conn {
	t := h.t
	t.Helper()
	var srv, cli net.Conn
	switch transport {
	case "tcp", "epoll":
		srv, cli = tcpPair(t)
	case "pipe":
		srv, cli = net.Pipe()
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	c := &conn{
		t:      t,
		client: cli,
		rd:     wire.NewReader(cli, &wire.ReaderOptions{MaxMessageSize: 64 << 20, Compression: u.Compression}),
		done:   make(chan struct{}),
	}
	var s *Session
	end := func() {
		h.mu.Lock()
		delete(h.live, s)
		h.mu.Unlock()
		close(c.done)
	}
	u.Conn = srv
	s = newSession(u, ending{hd, end}, h.scheduler(transport), testSettings(cfg))
	c.s = s
	h.mu.Lock()
	h.live[s] = struct{}{}
	h.mu.Unlock()
	go s.serve()
	t.Cleanup(func() {
		cli.Close()
		select {
		case <-c.done:
		case <-time.After(bound):
			t.Errorf("the session did not end %v after the client closed", bound)
		}
	})
	return c
}

// clientFrame encodes a masked client frame.
func clientFrame(fin bool, op wire.Opcode, p []byte) []byte {
	h := wire.Header{Fin: fin, Opcode: op, Masked: true}
	rand.Read(h.Key[:])
	return wire.AppendFrame(nil, h, p)
}

// send writes one masked, final frame.
func (c *conn) send(op wire.Opcode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.client.SetWriteDeadline(time.Now().Add(bound))
	_, err := c.client.Write(clientFrame(true, op, p))
	return err
}

// mustSend is send for the test goroutine.
func (c *conn) mustSend(op wire.Opcode, p []byte) {
	c.t.Helper()
	if err := c.send(op, p); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// next reads the server's next frame.
func (c *conn) next() (wire.Opcode, []byte, error) {
	c.client.SetReadDeadline(time.Now().Add(bound))
	return c.rd.Next()
}

// mustNext reads the server's next frame and checks its type and payload.
func (c *conn) mustNext(op wire.Opcode, p string) {
	c.t.Helper()
	gop, gp, err := c.next()
	if err != nil || gop != op || string(gp) != p {
		c.t.Fatalf("client got %v %q, %v; want %v %q", gop, gp, err, op, p)
	}
}

// mustClose reads the server's close frame and checks its payload.
func (c *conn) mustClose(code wire.StatusCode, reason string) {
	c.t.Helper()
	op, p, err := c.next()
	if err != nil || op != wire.OpClose {
		c.t.Fatalf("client got %v %q, %v; want a close frame", op, p, err)
	}
	gcode, greason, err := wire.ParseClosePayload(p)
	if err != nil || gcode != code || (reason != "*" && string(greason) != reason) {
		c.t.Fatalf("client got close %d %q (%v), want %d %q", gcode, greason, err, code, reason)
	}
}

// mustEnd checks that the server closes the connection: no more frames.
func (c *conn) mustEnd() {
	c.t.Helper()
	c.client.SetReadDeadline(time.Now().Add(bound))
	n, err := io.Copy(io.Discard, c.client)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("connection still open after %v", bound)
	}
	if n != 0 {
		c.t.Fatalf("%d bytes after the end", n)
	}
}

// waitEnd waits for the session to end.
func (c *conn) waitEnd() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(bound):
		c.t.Fatalf("the session did not end in %v", bound)
	}
}

// recv waits for the value of an OnClose channel.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("no %s in %v", what, bound)
		panic("unreachable")
	}
}

func seqMsg(stream, seq uint32, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint32(p, stream)
	binary.BigEndian.PutUint32(p[4:], seq)
	return p
}

func parseSeq(p []byte) (stream, seq uint32, err error) {
	if len(p) < 8 {
		return 0, 0, fmt.Errorf("message of %d bytes", len(p))
	}
	return binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]), nil
}

func TestEcho(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{})
			ended := make(chan error, 1)
			c := h.serve(tr, echoFuncs(ended), config{}, nil)
			for _, n := range []int{0, 1, 125, 126, 0xFFFF, 0x10000, 300_000, 1 << 20} {
				for _, op := range []wire.Opcode{wire.OpText, wire.OpBinary} {
					p := make([]byte, n)
					for i := range p {
						p[i] = 'a' + byte(i%26)
					}
					c.mustSend(op, p)
					gop, gp, err := c.next()
					if err != nil || gop != op || string(gp) != string(p) {
						t.Fatalf("%v of %d bytes: got %v of %d bytes, %v", op, n, gop, len(gp), err)
					}
				}
			}
			c.mustSend(wire.OpClose, wire.AppendClosePayload(nil, wire.StatusNormalClosure, ""))
			c.mustClose(wire.StatusNormalClosure, "")
			c.mustEnd()
			wantCloseErr(t, recv(t, ended, "OnClose"), wire.StatusNormalClosure, "")
		})
	}
}

// wantCloseErr checks that err is a wire.CloseError with code and reason.
func wantCloseErr(t *testing.T, err error, code wire.StatusCode, reason string) {
	t.Helper()
	var ce wire.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
		t.Fatalf("OnClose got %v, want close %d %q", err, code, reason)
	}
}

// TestSendersThenClose has goroutines send to a session, and its client
// send messages it echoes, when the session is closed: every Send that
// returned nil is written, in order per sender, before the close frame,
// and nothing after it; callbacks never overlap; Sends after Close fail.
func TestSendersThenClose(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { testSendersThenClose(t, tr) })
	}
}

func testSendersThenClose(t *testing.T, transport string) {
	const (
		senders   = 8
		perSender = 1000 // 8,000 frames at most: the mailbox holds them all
		closeAt   = 2000 // frames accepted before Close
		echo      = senders
	)
	var (
		inCallback, overlaps atomic.Int32
		echoAccepted         atomic.Int64
		accepted             [senders]atomic.Int64
	)
	ended := make(chan error, 1)
	hd := funcs{
		msg: func(s *Session, m Message) error {
			if inCallback.Add(1) != 1 {
				overlaps.Add(1)
			}
			defer inCallback.Add(-1)
			_, seq, err := parseSeq(m.Data)
			if err != nil {
				return err
			}
			if s.Send(wire.OpBinary, seqMsg(echo, seq, 8)) == nil {
				echoAccepted.Add(1)
			}
			return nil
		},
		close: func(s *Session, err error) {
			if inCallback.Add(1) != 1 {
				overlaps.Add(1)
			}
			defer inCallback.Add(-1)
			ended <- err
		},
	}
	h := newHarness(t, schedulerConfig{Workers: 2})
	c := h.serve(transport, hd, config{MailboxSize: 1 << 14, MaxQueuedBytes: 64 << 20, CloseTimeout: bound}, nil)

	// The client reads everything up to the close frame.
	type result struct {
		got   [senders + 1]int64
		close []byte
		err   error
	}
	res := make(chan result, 1)
	go func() {
		var r result
		for {
			op, p, err := c.next()
			if err != nil {
				r.err = err
				break
			}
			if op == wire.OpClose {
				r.close = p
				break
			}
			stream, seq, err := parseSeq(p)
			if err == nil && (stream > senders || int64(seq) != r.got[stream]) {
				err = fmt.Errorf("stream %d: seq %d, want %d", stream, seq, r.got[stream])
			}
			if err != nil {
				r.err = err
				break
			}
			r.got[stream]++
		}
		res <- r
	}()

	var total atomic.Int64
	closed := make(chan struct{})
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range perSender {
				var err error
				p := seqMsg(uint32(g), uint32(i), 8+g)
				switch g % 3 {
				case 0:
					err = c.s.Send(wire.OpBinary, p)
				case 1:
					err = c.s.SendFrame(NewFrame(wire.OpBinary, p))
				case 2:
					err = c.s.Enqueue(NewFrame(wire.OpBinary, p), PolicyDropNewest)
				}
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("sender %d: %v", g, err)
					}
					return
				}
				accepted[g].Add(1)
				if total.Add(1) == closeAt {
					c.s.Close(wire.StatusNormalClosure, "done")
					close(closed)
				}
			}
		})
	}
	var writer sync.WaitGroup
	writer.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopWriting:
				return
			default:
			}
			if c.send(wire.OpBinary, seqMsg(99, uint32(i), 8)) != nil {
				return
			}
		}
	})
	wg.Wait()
	select {
	case <-closed:
	default:
		t.Fatalf("only %d frames accepted, Close never called", total.Load())
	}
	r := recv(t, res, "close frame")
	close(stopWriting)
	writer.Wait()
	if r.err != nil {
		t.Fatalf("client: %v", r.err)
	}
	code, reason, err := wire.ParseClosePayload(r.close)
	if err != nil || code != wire.StatusNormalClosure || string(reason) != "done" {
		t.Fatalf("close frame %d %q %v", code, reason, err)
	}
	t.Logf("accepted %d frames, %d echoes", total.Load(), echoAccepted.Load())
	for g := range senders {
		if got, acc := r.got[g], accepted[g].Load(); got != acc {
			t.Errorf("sender %d: %d frames received, %d accepted", g, got, acc)
		}
	}
	if got, acc := r.got[echo], echoAccepted.Load(); got != acc {
		t.Errorf("echo: %d received, %d accepted", got, acc)
	}
	if err := c.s.Send(wire.OpText, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	// The client answers; the session ends with Close's reason.
	c.mustSend(wire.OpClose, wire.AppendClosePayload(nil, wire.StatusNormalClosure, ""))
	wantCloseErr(t, recv(t, ended, "OnClose"), wire.StatusNormalClosure, "done")
	c.mustEnd()
	if n := overlaps.Load(); n != 0 {
		t.Errorf("callbacks overlapped %d times", n)
	}
}

// TestPolicies fills the mailbox of a session whose client does not read,
// then lets the client read, and checks what each policy did: PolicyClose
// closes with 1008 after a gapless prefix, the drop policies drop and
// count, and every frame is either delivered, in order, or dropped.
func TestPolicies(t *testing.T) {
	for _, tr := range transports {
		for _, p := range []Policy{PolicyClose, PolicyDropNewest, PolicyDropOldest} {
			t.Run(tr+"/"+p.String(), func(t *testing.T) { testPolicy(t, tr, p) })
		}
	}
}

func testPolicy(t *testing.T, transport string, policy Policy) {
	const (
		size    = 4 << 10
		maxSent = 16 << 10 // 64 MiB: more than any socket holds
		extra   = 20       // sends after the policy first acted
	)
	var counters Counters
	fates := newFates()
	ended := make(chan error, 1)
	h := newHarness(t, schedulerConfig{})
	c := h.serve(transport, funcs{close: func(s *Session, err error) { ended <- err }}, config{
		MailboxSize:    16,
		MaxQueuedBytes: 64 << 10,
		Policy:         policy,
		Counters:       &counters,
		WriteTimeout:   bound,
		CloseTimeout:   bound,
		Tracer:         fates,
	}, nil)
	if tc, ok := c.client.(*net.TCPConn); ok {
		// Not smaller: below one loopback segment (64 KiB), Linux may
		// keep the window shut even once the reader catches up.
		tc.SetReadBuffer(64 << 10)
	}

	// The client reads nothing while the sends fill the session up.
	var results []error
	acted := -1
	for seq := 0; acted < 0 || seq <= acted+extra; seq++ {
		if seq == maxSent {
			t.Fatalf("%s never acted after %d frames", policy, seq)
		}
		err := c.s.SendContext(fates.ctx(seq), wire.OpBinary, seqMsg(0, uint32(seq), size))
		results = append(results, err)
		switch {
		case err == nil:
		case errors.Is(err, ErrDropped) && policy != PolicyClose:
		case errors.Is(err, ErrSlowConsumer) && policy == PolicyClose && acted < 0:
		case errors.Is(err, ErrClosed) && policy == PolicyClose && acted >= 0:
		default:
			t.Fatalf("Send %d: %v under %s", seq, err, policy)
		}
		if acted < 0 && (err != nil || c.s.Dropped() > 0) {
			acted = seq
		}
	}
	t.Logf("%s acted at frame %d; %d dropped", policy, acted, c.s.Dropped())
	count := func(target error) (n uint64) {
		for _, err := range results {
			if errors.Is(err, target) {
				n++
			}
		}
		return n
	}

	switch policy {
	case PolicyClose:
		if n := counters.ClosedSlow.Load(); n != 1 {
			t.Errorf("ClosedSlow = %d", n)
		}
		if d := c.s.Dropped() + counters.DroppedNewest.Load() + counters.DroppedOldest.Load(); d != 0 {
			t.Errorf("%d drops under PolicyClose", d)
		}
		// Reading now: a gapless prefix of what was accepted, then 1008.
		for seq := uint32(0); ; seq++ {
			op, p, err := c.next()
			if err != nil {
				t.Fatalf("after %d frames: %v", seq, err)
			}
			if op == wire.OpClose {
				code, reason, _ := wire.ParseClosePayload(p)
				if code != wire.StatusPolicyViolation || string(reason) != "slow consumer" {
					t.Fatalf("close %d %q, want 1008 \"slow consumer\"", code, reason)
				}
				break
			}
			if _, got, _ := parseSeq(p); got != seq || results[seq] != nil {
				t.Fatalf("frame %d has seq %d (its Send returned %v)", seq, got, results[seq])
			}
		}
		c.mustSend(wire.OpClose, wire.AppendClosePayload(nil, wire.StatusPolicyViolation, ""))
		if err := recv(t, ended, "OnClose"); !errors.Is(err, ErrSlowConsumer) {
			t.Fatalf("OnClose got %v, want ErrSlowConsumer", err)
		}
		c.mustEnd()

	case PolicyDropNewest, PolicyDropOldest:
		mine, other := &counters.DroppedNewest, &counters.DroppedOldest
		if policy == PolicyDropOldest {
			mine, other = other, mine
		}
		if d := c.s.Dropped(); d == 0 || mine.Load() != d || other.Load() != 0 {
			t.Errorf("Dropped() = %d, counters %d and %d", d, mine.Load(), other.Load())
		}
		if policy == PolicyDropNewest && count(ErrDropped) != c.s.Dropped() {
			t.Errorf("%d Sends returned ErrDropped, Dropped() = %d", count(ErrDropped), c.s.Dropped())
		}
		// Now read, and send a last frame until it is accepted. The
		// reader reports each frame; the marker may be read before the
		// sender can name it, so the test, not the reader, waits for it.
		type got struct {
			seqs []uint32
			err  error
		}
		frames := make(chan uint32, 1<<16)
		var readErr error
		go func() {
			for {
				_, p, err := c.next()
				if err != nil {
					readErr = err
					close(frames)
					return
				}
				_, seq, _ := parseSeq(p)
				frames <- seq
			}
		}()
		seq := len(results)
		for ; ; seq++ {
			err := c.s.SendContext(fates.ctx(seq), wire.OpBinary, seqMsg(0, uint32(seq), size))
			results = append(results, err)
			if err == nil {
				break
			}
			if !errors.Is(err, ErrDropped) || seq > 2*maxSent {
				t.Fatalf("last Send: %v", err)
			}
			time.Sleep(100 * time.Microsecond) // let the client catch up
		}
		var g got
		timeout := time.After(bound)
	collect:
		for {
			select {
			case s, ok := <-frames:
				if !ok {
					g.err = readErr
					break collect
				}
				g.seqs = append(g.seqs, s)
				if s == uint32(seq) {
					break collect
				}
			case <-timeout:
				t.Fatalf("no last frame in %v", bound)
			}
		}
		if g.err != nil {
			t.Fatalf("client, after %d frames: %v", len(g.seqs), g.err)
		}
		var want []uint32
		if policy == PolicyDropNewest {
			// Exactly the accepted frames, in order.
			for i, err := range results {
				if err == nil {
					want = append(want, uint32(i))
				}
			}
			if !slices.Equal(g.seqs, want) {
				t.Fatalf("client got %d frames, not the %d accepted ones in order", len(g.seqs), len(want))
			}
		}
		if !slices.IsSorted(g.seqs) || slices.Compact(slices.Clone(g.seqs)) == nil {
			t.Fatal("frames out of order")
		}
		if delivered, dropped := uint64(len(g.seqs)), c.s.Dropped(); delivered+dropped != uint64(len(results)) {
			t.Errorf("%d delivered + %d dropped != %d sent", delivered, dropped, len(results))
		}
		c.client.Close()
		recv(t, ended, "OnClose")
	}
	fates.check(t, policy, results)
}

// fates is an engine.Tracer recording what became of each frame sent in
// one of its contexts, by sequence number.
type fates struct {
	mu  sync.Mutex
	got map[int][]error
}

type seqKey struct{}

func newFates() *fates { return &fates{got: make(map[int][]error)} }

func (f *fates) ctx(seq int) context.Context {
	return context.WithValue(context.Background(), seqKey{}, seq)
}

func (f *fates) Traced(ctx context.Context) bool { return ctx.Value(seqKey{}) != nil }

func (f *fates) Closing(context.Context, *Session, error, context.Context) context.Context {
	return nil
}

func (f *fates) Delivered(ctx context.Context, s *Session, since int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seq := ctx.Value(seqKey{}).(int)
	f.got[seq] = append(f.got[seq], err)
}

// check waits until every frame's fate is told, then checks that each was
// told once, and agrees with what its Send returned: a refused frame
// with the same error; an accepted one written, or, after the policy
// acted, dropped to make room (PolicyDropOldest) or discarded with its
// closing session (PolicyClose).
func (f *fates) check(t *testing.T, policy Policy, results []error) {
	t.Helper()
	waitFor(t, "every frame's fate", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.got) >= len(results)
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	told := map[string]int{}
	for seq, sent := range results {
		got := f.got[seq]
		if len(got) != 1 {
			t.Fatalf("frame %d: told %d times (%v)", seq, len(got), got)
		}
		fate := got[0]
		told[fmt.Sprint(fate)]++
		switch {
		case sent != nil && !errors.Is(fate, sent):
			t.Errorf("frame %d: Send returned %v, its fate is %v", seq, sent, fate)
		case sent == nil && fate != nil &&
			!(policy == PolicyDropOldest && errors.Is(fate, engine.ErrDroppedOldest)) &&
			!(policy == PolicyClose && errors.Is(fate, ErrClosed)):
			t.Errorf("frame %d: accepted, then %v under %s", seq, fate, policy)
		}
	}
	t.Logf("fates: %v", told)
}

// TestControlFrames checks pings, pongs and the client's closing
// handshake.
func TestControlFrames(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{})

			ended := make(chan error, 1)
			c := h.serve(tr, echoFuncs(ended), config{}, nil)
			c.mustSend(wire.OpPing, []byte("p1"))
			c.mustNext(wire.OpPong, "p1")
			c.mustSend(wire.OpPong, []byte("unsolicited")) // ignored
			c.mustSend(wire.OpPing, nil)
			c.mustNext(wire.OpPong, "")
			c.mustSend(wire.OpText, []byte("still echoing"))
			c.mustNext(wire.OpText, "still echoing")
			c.mustSend(wire.OpClose, wire.AppendClosePayload(nil, 4000, "app says bye"))
			c.mustClose(4000, "")
			c.mustEnd()
			wantCloseErr(t, recv(t, ended, "OnClose"), 4000, "app says bye")

			// A close frame without a code is answered in kind.
			c = h.serve(tr, echoFuncs(ended), config{}, nil)
			c.mustSend(wire.OpClose, nil)
			op, p, err := c.next()
			if err != nil || op != wire.OpClose || len(p) != 0 {
				t.Fatalf("got %v %x %v, want an empty close frame", op, p, err)
			}
			c.mustEnd()
			wantCloseErr(t, recv(t, ended, "OnClose"), wire.StatusNoStatusRcvd, "")
		})
	}
}

// TestBufferedBytes checks that frames the HTTP server read past the
// handshake come first.
func TestBufferedBytes(t *testing.T) {
	h := newHarness(t, schedulerConfig{})
	var got []string
	gotc := make(chan []string, 1)
	hd := funcs{
		msg: func(s *Session, m Message) error {
			got = append(got, string(m.Data))
			return nil
		},
		close: func(*Session, error) { gotc <- got },
	}
	buffered := append(clientFrame(true, wire.OpText, []byte("early")), clientFrame(true, wire.OpPing, []byte("hi"))...)
	c := h.serve("tcp", hd, config{}, buffered)
	c.mustNext(wire.OpPong, "hi")
	c.mustSend(wire.OpText, []byte("late"))
	c.mustSend(wire.OpClose, nil)
	c.mustClose(wire.StatusNoStatusRcvd, "")
	if got := recv(t, gotc, "OnClose"); !slices.Equal(got, []string{"early", "late"}) {
		t.Fatalf("messages %q", got)
	}
}

// TestCloseNow checks the end without a handshake.
func TestCloseNow(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{})
			ended := make(chan error, 1)
			c := h.serve(tr, echoFuncs(ended), config{}, nil)
			c.s.CloseNow()
			c.mustEnd()
			if err := recv(t, ended, "OnClose"); !errors.Is(err, ErrClosed) {
				t.Fatalf("OnClose got %v, want ErrClosed", err)
			}

			// CloseNow during a closing handshake keeps Close's cause.
			c = h.serve(tr, echoFuncs(ended), config{CloseTimeout: bound}, nil)
			c.s.Close(4001, "closing")
			c.mustClose(4001, "closing")
			c.s.CloseNow()
			c.mustEnd()
			wantCloseErr(t, recv(t, ended, "OnClose"), 4001, "closing")
		})
	}
}

// TestMessagesWhileClosing checks that messages arriving after Close are
// not handed to OnMessage.
func TestMessagesWhileClosing(t *testing.T) {
	h := newHarness(t, schedulerConfig{})
	var messages atomic.Int32
	ended := make(chan error, 1)
	c := h.serve("tcp", funcs{
		msg: func(s *Session, m Message) error {
			messages.Add(1)
			return s.Send(m.Op, m.Data)
		},
		close: func(s *Session, err error) { ended <- err },
	}, config{CloseTimeout: bound}, nil)
	c.mustSend(wire.OpText, []byte("before"))
	c.mustNext(wire.OpText, "before")
	c.s.Close(wire.StatusGoingAway, "")
	c.mustClose(wire.StatusGoingAway, "")
	c.mustSend(wire.OpText, []byte("after 1"))
	c.mustSend(wire.OpBinary, []byte("after 2"))
	c.mustSend(wire.OpClose, wire.AppendClosePayload(nil, wire.StatusGoingAway, ""))
	wantCloseErr(t, recv(t, ended, "OnClose"), wire.StatusGoingAway, "")
	if n := messages.Load(); n != 1 {
		t.Fatalf("OnMessage called %d times, want 1", n)
	}
}

// TestHandlerErrors checks the close codes of failed callbacks, and the
// OnError hook, at the session level.
func TestHandlerErrors(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{})
			var hooked atomic.Pointer[PanicError]
			ended := make(chan error, 1)
			hd := funcs{
				msg: func(s *Session, m Message) error {
					switch string(m.Data) {
					case "panic":
						panic(fmt.Sprintf("boom %d", s.ID()))
					case "4000":
						return wire.CloseError{Code: 4000, Reason: "app"}
					}
					return errors.New("plain")
				},
				close: func(s *Session, err error) { ended <- err },
			}
			cfg := config{OnError: func(s *Session, err error) {
				var pe *PanicError
				if errors.As(err, &pe) {
					hooked.Store(pe)
				}
			}}
			for _, tc := range []struct {
				send   string
				code   wire.StatusCode
				reason string
			}{
				{"panic", wire.StatusInternalError, "internal error"},
				{"4000", 4000, "app"},
				{"other", wire.StatusInternalError, "internal error"},
			} {
				c := h.serve(tr, hd, cfg, nil)
				c.mustSend(wire.OpText, []byte(tc.send))
				c.mustClose(tc.code, tc.reason)
				c.mustEnd()
				err := recv(t, ended, "OnClose")
				if tc.send == "panic" {
					var pe *PanicError
					want := fmt.Sprintf("boom %d", c.s.ID())
					if !errors.As(err, &pe) || pe.Value != want || hooked.Load() != pe {
						t.Fatalf("OnClose got %v, hook got %v; want the same *PanicError of %q", err, hooked.Load(), want)
					}
					if msg := pe.Error(); msg != "session: handler panic: "+want {
						t.Errorf("Error() = %q", msg)
					}
				} else if tc.send == "4000" {
					wantCloseErr(t, err, 4000, "app")
				} else if err == nil || err.Error() != "plain" {
					t.Fatalf("OnClose got %v, want the handler's error", err)
				}
			}
		})
	}
}

// TestAccessors covers ID, Subprotocol, RemoteAddr, State and Context.
func TestAccessors(t *testing.T) {
	h := newHarness(t, schedulerConfig{})
	type counter struct{ n int }
	type label struct{ s string }
	var kept atomic.Bool
	states := make(chan int, 1)
	ended := make(chan error, 1)
	hd := funcs{
		msg: func(s *Session, m Message) error {
			st := State[counter](s)
			if State[counter](s) != st {
				return errors.New("State returned another pointer")
			}
			st.n++
			states <- st.n
			return nil
		},
		close: func(s *Session, err error) {
			// Another type starts from zero beside the first, which
			// keeps its value.
			l := State[label](s)
			l.s = "x"
			kept.Store(State[counter](s).n > 0 && State[label](s) == l && l.s == "x" && *State[int](s) == 0)
			ended <- err
		},
	}
	a := h.serve("tcp", hd, config{}, nil)
	b := h.serve("tcp", hd, config{}, nil)
	if a.s.ID() == 0 || a.s.ID() == b.s.ID() {
		t.Fatalf("IDs %d and %d", a.s.ID(), b.s.ID())
	}
	if a.s.Subprotocol() != "chat" {
		t.Fatalf("Subprotocol() = %q", a.s.Subprotocol())
	}
	if a.s.RemoteAddr().String() != a.client.LocalAddr().String() {
		t.Fatalf("RemoteAddr() = %v, client is %v", a.s.RemoteAddr(), a.client.LocalAddr())
	}
	for want := 1; want <= 3; want++ {
		a.mustSend(wire.OpText, nil)
		if n := recv(t, states, "a message"); n != want {
			t.Fatalf("state %d, want %d", n, want)
		}
	}
	b.mustSend(wire.OpText, nil)
	if n := recv(t, states, "a message"); n != 1 {
		t.Fatalf("b's state %d: states are per session", n)
	}

	ctx := a.s.Context()
	if ctx.Err() != nil {
		t.Fatal("context done while the session lives")
	}
	a.client.Close()
	recv(t, ended, "OnClose")
	if !kept.Load() {
		t.Fatal("States of several types did not each keep their own value")
	}
	select {
	case <-ctx.Done():
	case <-time.After(bound):
		t.Fatal("context not canceled at the end")
	}
	// A context asked for after the end is canceled already.
	b.s.CloseNow()
	recv(t, ended, "OnClose")
	b.waitEnd()
	if b.s.Context().Err() == nil {
		t.Fatal("a context made after the end is not canceled")
	}
}

// TestFramesReleased checks that every reference a session takes is
// released once the frame is written, refused or discarded.
func TestFramesReleased(t *testing.T) {
	h := newHarness(t, schedulerConfig{})
	const n = 4
	cs := make([]*conn, n)
	for i := range cs {
		cs[i] = h.serve("tcp", funcs{}, config{}, nil)
	}
	f := NewFrame(wire.OpText, []byte("shared"))
	f.Retain(n)
	for _, c := range cs {
		if err := c.s.SendFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cs {
		c.mustNext(wire.OpText, "shared")
	}
	deadline := time.Now().Add(bound)
	for f.refs.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d references left once every session wrote the frame", f.refs.Load())
		}
		time.Sleep(time.Millisecond)
	}
	// Refused by a closed session: the reference is released too.
	cs[0].s.CloseNow()
	cs[0].waitEnd()
	f.Retain(1)
	if err := cs[0].s.SendFrame(f); !errors.Is(err, ErrClosed) {
		t.Fatalf("SendFrame to a closed session: %v", err)
	}
	if r := f.refs.Load(); r != 1 {
		t.Fatalf("%d references after a refused SendFrame, want 1", r)
	}
	f.Release()
}

// TestRunQueueFull gives the scheduler a run queue of 2 and one worker
// while 16 sessions are sent to from 16 goroutines: sessions that do not
// fit in the queue get a goroutine of their own, and nothing is lost.
func TestRunQueueFull(t *testing.T) {
	const (
		sessions = 16
		frames   = 300
	)
	h := newHarness(t, schedulerConfig{Workers: 1, QueueSize: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 2*sessions)
	for range sessions {
		c := h.serve("tcp", funcs{}, config{MailboxSize: frames}, nil)
		wg.Go(func() {
			for i := range frames {
				if err := c.s.Send(wire.OpBinary, seqMsg(0, uint32(i), 64)); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() {
			for i := range frames {
				_, p, err := c.next()
				if err == nil {
					if _, seq, _ := parseSeq(p); seq != uint32(i) {
						err = fmt.Errorf("seq %d, want %d", seq, i)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSchedulerLifecycle checks the clock and that Close stops every
// goroutine, more than once.
func TestSchedulerLifecycle(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	sc := newScheduler(schedulerConfig{Workers: 3, Tick: time.Millisecond})
	t0 := sc.Now()
	if d := time.Since(time.Unix(0, t0)); d < -time.Second || d > time.Minute {
		t.Fatalf("clock %v off", d)
	}
	deadline := time.Now().Add(bound)
	for sc.Now() == t0 {
		if time.Now().After(deadline) {
			t.Fatal("the clock does not move")
		}
		time.Sleep(time.Millisecond)
	}
	sc.Close()
	sc.Close()
	goleak.VerifyNone(t, ignore)

	// Defaults.
	sc = newScheduler(schedulerConfig{})
	if sc.tick != time.Second {
		t.Errorf("default tick %v", sc.tick)
	}
	sc.Close()
	goleak.VerifyNone(t, ignore)
}

func TestPolicyString(t *testing.T) {
	for p, want := range map[Policy]string{
		PolicyClose:      "close",
		PolicyDropNewest: "drop-newest",
		PolicyDropOldest: "drop-oldest",
		Policy(9):        "policy(?)",
	} {
		if got := p.String(); got != want {
			t.Errorf("%d: %q, want %q", p, got, want)
		}
	}
}

func TestHandlerAdapters(t *testing.T) {
	var called bool
	var h Handler = HandlerFunc(func(s *Session, m Message) error {
		called = string(m.Data) == "x"
		return errors.New("from f")
	})
	if err := h.OnOpen(nil); err != nil {
		t.Error(err)
	}
	if err := h.OnMessage(nil, Message{Data: []byte("x")}); err == nil || !called {
		t.Error("HandlerFunc did not call f")
	}
	h.OnClose(nil, nil)
	h = NopHandler{}
	if h.OnOpen(nil) != nil || h.OnMessage(nil, Message{}) != nil {
		t.Error("NopHandler returned an error")
	}
	h.OnClose(nil, nil)
}

// TestHeartbeatPingUnderBackpressure sends the heartbeat's ping to a
// session whose mailbox is full (its client reads slowly, or not yet). The
// ping is not the application's data: it must reach the client once the
// client reads, whatever the data policy, and must not count as a frame
// the policy dropped. Otherwise a client that is alive but behind (the very
// client the drop policies are for) misses the ping, cannot answer it, and
// is dropped with ErrTimeout after PongTimeout.
func TestHeartbeatPingUnderBackpressure(t *testing.T) {
	for _, policy := range []Policy{PolicyDropNewest, PolicyDropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			var counters Counters
			// The timer ticks once an hour: the test drives heartbeat by hand.
			h := newHarness(t, schedulerConfig{Tick: time.Hour})
			c := h.serve("pipe", funcs{}, config{
				MailboxSize:  4,
				Policy:       policy,
				Counters:     &counters,
				PingInterval: time.Second,
				PongTimeout:  time.Hour,
				WriteTimeout: bound,
				CloseTimeout: bound,
			}, nil)
			// The client reads nothing yet: the first frame blocks the
			// writer, the next ones fill the mailbox.
			seq := 0
			send := func() error {
				err := c.s.Send(wire.OpBinary, seqMsg(0, uint32(seq), 8))
				seq++
				return err
			}
			for c.s.Dropped() == 0 {
				if seq > 1000 {
					t.Fatal("the mailbox never filled")
				}
				send()
			}
			dropped := c.s.Dropped()
			c.s.heartbeat(h.sched.Now() + int64(2*time.Second))
			if c.s.pingSent.Load() == 0 {
				t.Fatal("heartbeat sent no ping")
			}
			if d := c.s.Dropped(); d != dropped {
				t.Errorf("the ping counted as a dropped frame: Dropped() %d -> %d", dropped, d)
			}
			if policy == PolicyDropOldest && counters.DroppedNewest.Load() != 0 {
				t.Errorf("DroppedNewest = %d under PolicyDropOldest", counters.DroppedNewest.Load())
			}
			// More data while the client is still behind.
			for range 8 {
				send()
			}

			// Now the client reads; a last frame marks the end. The
			// reader reports what it reads, and the test waits for the
			// marker, which may be read before the sender can name it.
			type got struct {
				pings int
				err   error
			}
			seqs := make(chan int64, 1<<16)
			var pings atomic.Int32
			go func() {
				for {
					op, p, err := c.next()
					if err != nil {
						close(seqs)
						return
					}
					if op == wire.OpPing {
						pings.Add(1)
						continue
					}
					_, s, _ := parseSeq(p)
					seqs <- int64(s)
				}
			}()
			marker := int64(-1)
			for {
				m := seq
				if err := send(); err == nil {
					marker = int64(m)
					break
				}
				if seq > 1<<20 {
					t.Fatal("the session never took a frame again")
				}
				time.Sleep(100 * time.Microsecond)
			}
			timeout := time.After(bound)
		wait:
			for {
				select {
				case s, ok := <-seqs:
					if !ok {
						t.Fatal("the connection ended before the last frame")
					}
					if s == marker {
						break wait
					}
				case <-timeout:
					t.Fatalf("no last frame in %v", bound)
				}
			}
			g := got{pings: int(pings.Load())}
			if g.err != nil {
				t.Fatal(g.err)
			}
			if g.pings != 1 {
				t.Errorf("the client got %d pings, want 1: it cannot answer the heartbeat, and will be dropped as dead", g.pings)
			}
		})
	}
}

// TestSessionSize checks that a Session, which every idle connection
// holds, fits the 240-byte size class. What an idle session never needs
// is in its coldPart (closing, the cause, Context, a slow consumer's
// trace, the frames dropped), made only when the session starts closing,
// is asked for its Context, records a slow consumer's trace or drops a
// frame; it stays within 80 bytes.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 240 {
		t.Errorf("a Session is %d bytes, over the 240-byte size class", n)
	}
	if n := unsafe.Sizeof(coldPart{}); n > 80 {
		t.Errorf("a Session's coldPart is %d bytes, over 80", n)
	}
}

// TestHeartbeatAllocs checks that a heartbeat's ping costs no allocation:
// every session shares one frame (heartbeatPing), which lives on.
func TestHeartbeatAllocs(t *testing.T) {
	h := newHarness(t, schedulerConfig{Tick: time.Hour}) // the test drives heartbeat
	c := h.serve("pipe", funcs{}, config{PingInterval: time.Second, PongTimeout: time.Hour}, nil)
	go io.Copy(io.Discard, c.client)
	now := h.sched.Now()
	allocs := testing.AllocsPerRun(100, func() {
		now += int64(2 * time.Second)
		c.s.pingSent.Store(0) // as if the client had answered
		c.s.heartbeat(now)
	})
	if allocs != 0 {
		t.Errorf("a heartbeat's ping: %v allocations, want 0", allocs)
	}
	if f := c.s.ping.Load(); f != nil && f != heartbeatPing {
		t.Errorf("the ping is a frame of its own")
	}
	if c.s.cold.Load() != nil {
		t.Errorf("the heartbeats of a live session made its coldPart")
	}
}

// TestSendHandsOver checks the echo without a copy (Session.offer): a
// long message sent back whole from its callback, or from a goroutine the
// callback waits for, becomes the frame itself; a short one, a part of
// one, or a second Send of it is copied. Message.Data stays the message
// until the callback returns, and every echo is right, however the
// buffers are reused; the inbound budget counts a lent message until
// its frame is released, then gets its bytes back.
func TestSendHandsOver(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{})
			budget := wire.NewBudget(64 << 20)
			took := make(chan bool, 1)
			c := h.serve(tr, funcs{msg: func(s *Session, m Message) error {
				want := string(m.Data)
				offered := s.lend.Load() != nil
				if offered && budget.InUse() < int64(len(m.Data)) {
					t.Errorf("the inbound budget counts %d bytes while a message of %d is lent", budget.InUse(), len(m.Data))
				}
				var err error
				if m.Op == wire.OpText { // from a goroutine the callback waits for
					done := make(chan struct{})
					go func() { err = s.Send(m.Op, m.Data); close(done) }()
					<-done
				} else {
					err = s.Send(m.Op, m.Data)
				}
				took <- offered && s.lend.Load() == nil
				if err == nil && len(m.Data) > 1 {
					err = s.Send(m.Op, m.Data[1:]) // a part: copied
				}
				if string(m.Data) != want {
					t.Errorf("Message.Data changed during its callback")
				}
				return err
			}}, config{InboundBudget: budget}, nil)
			for i, tc := range []struct {
				n, frag int
				lent    bool
			}{
				{100, 0, false},
				{lendMin - 1, 10, false}, // short, though in fragments
				{lendMin, 1000, true},
				{100_000, 0, true},
				{300_000, 70_000, true},
				{1 << 20, 0, true},
				{200, 50, false},
				{100_000, 0, true},
			} {
				for _, op := range []wire.Opcode{wire.OpBinary, wire.OpText} {
					p := make([]byte, tc.n)
					for j := range p {
						p[j] = 'a' + byte((i+j)%26)
					}
					c.wmu.Lock()
					for rest, first := p, true; first || len(rest) > 0; first = false {
						k := len(rest)
						if tc.frag > 0 {
							k = min(k, tc.frag)
						}
						fop := op
						if !first {
							fop = wire.OpContinuation
						}
						c.client.Write(clientFrame(k == len(rest), fop, rest[:k]))
						rest = rest[k:]
					}
					c.wmu.Unlock()
					if got := recv(t, took, "the callback"); got != tc.lent {
						t.Errorf("%v of %d bytes in fragments of %d: handed over %v, want %v", op, tc.n, tc.frag, got, tc.lent)
					}
					for _, want := range [][]byte{p, p[1:]} {
						gop, gp, err := c.next()
						if err != nil || gop != op || string(gp) != string(want) {
							t.Fatalf("%v of %d bytes: got %v of %d bytes, %v", op, len(want), gop, len(gp), err)
						}
					}
				}
			}
			// The last Release of a lent frame, which gives its buffer
			// back to the budget, may come just after the client read it.
			for deadline := time.Now().Add(bound); budget.InUse() != 0 && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if n := budget.InUse(); n != 0 {
				t.Errorf("the inbound budget still counts %d bytes", n)
			}
		})
	}
}

// TestCorkOrder checks the order of replies that go through the cork
// (corkReply) against frames queued around them. Each callback k sends
// its reply (stream 0, number 2k; every third one too long for the cork),
// then has a goroutine send number 2k+1 (after it in happens-before
// order: the callback waits for it), while another goroutine sends
// stream 2 all along and pings come in between. Both streams must arrive
// in order and whole, so each callback's reply before its goroutine's.
func TestCorkOrder(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{})
			const n = 3000
			c := h.serve(tr, funcs{msg: func(s *Session, m Message) error {
				_, seq, err := parseSeq(m.Data)
				if err != nil {
					return err
				}
				size := 16
				if seq%3 == 2 {
					size = corkMaxReply + 1
				}
				if err := s.Send(wire.OpBinary, seqMsg(0, 2*seq, size)); err != nil {
					return err
				}
				done := make(chan error)
				go func() { done <- s.Send(wire.OpBinary, seqMsg(0, 2*seq+1, 8)) }()
				return <-done
			}}, config{MailboxSize: 1 << 12, MaxQueuedBytes: 64 << 20}, nil)
			go func() {
				for i := range uint32(n) {
					if c.s.Send(wire.OpBinary, seqMsg(2, i, 8)) != nil {
						return
					}
				}
			}()
			go func() {
				// Bursts of messages, so that the reader corks many
				// callbacks in a row, with a ping now and then.
				var b []byte
				for i := range uint32(n) {
					b = append(b, clientFrame(true, wire.OpBinary, seqMsg(9, i, 8))...)
					if i%100 == 99 {
						b = append(b, clientFrame(true, wire.OpPing, []byte("p"))...)
						c.wmu.Lock()
						c.client.Write(b)
						c.wmu.Unlock()
						b = b[:0]
					}
				}
			}()
			next := map[uint32]uint32{}
			pongs := 0
			for next[0] < 2*n || next[2] < n {
				op, p, err := c.next()
				if err != nil {
					t.Fatalf("after %v and %d pongs: %v", next, pongs, err)
				}
				if op == wire.OpPong {
					pongs++
					continue
				}
				stream, seq, err := parseSeq(p)
				if err != nil || seq != next[stream] {
					t.Fatalf("stream %d: got %d (%v), want %d", stream, seq, err, next[stream])
				}
				next[stream]++
			}
			if pongs == 0 {
				t.Error("no pong") // a pong may answer several pings (RFC 6455 5.5.3)
			}
		})
	}
}
