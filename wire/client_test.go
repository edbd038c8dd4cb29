package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// hang bounds every wait in these tests: it detects a hang, it does not
// measure speed.
const hang = 10 * time.Second

// closeTimeout is the CloseTimeout of the tests of what it bounds, and
// closeBound their hang detector: far above it, far below the default.
const (
	closeTimeout = 100 * time.Millisecond
	closeBound   = 20 * closeTimeout
)

// await returns what ch yields, failing the test if that takes longer
// than bound.
func await[T any](t *testing.T, ch <-chan T, what string, bound time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(bound):
		t.Fatalf("%s has not returned after %v", what, bound)
		panic("unreachable")
	}
}

// rawPeer is the server end of a client Conn, played by hand over a
// loopback TCP connection or a net.Pipe: it answers the upgrade, sends raw
// frames in order, and reads what the client sends with a server-side
// wire.Reader, which fails on any frame RFC 6455 forbids.
type rawPeer struct {
	nc       net.Conn
	buffered []byte
	out      chan []byte    // frames to send, written in order by one goroutine
	got      chan peerEvent // what the client sent, once collect has started
	cp       wire.CompressionParams
}

type peerEvent struct {
	op  wire.Opcode
	p   string
	err error
}

// respond101 is the answer to an upgrade request with key, with extra
// header lines (each ending in CRLF).
func respond101(key, extra string) string {
	var acc [28]byte
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + string(wire.AcceptKey(&acc, key)) + "\r\n" + extra + "\r\n"
}

// dialPeer dials a client Conn whose server is a rawPeer answering the
// upgrade with respond (respond101 with no extra lines if nil).
func dialPeer(t *testing.T, kind string, opts *wire.DialOptions, respond func(key string) string) (*wire.Conn, *rawPeer, error) {
	t.Helper()
	client, server := connPair(t, kind)
	if respond == nil {
		respond = func(key string) string { return respond101(key, "") }
	}
	p := &rawPeer{nc: server, out: make(chan []byte, 64), got: make(chan peerEvent, 256)}
	handshook := make(chan struct{})
	go func() {
		defer close(handshook)
		br := bufio.NewReader(server)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := server.Write([]byte(respond(req.Header.Get("Sec-WebSocket-Key")))); err != nil {
			return
		}
		p.buffered, _ = br.Peek(br.Buffered())
	}()
	var o wire.DialOptions
	if opts != nil {
		o = *opts
	}
	o.NetDialContext = func(context.Context, string, string) (net.Conn, error) { return client, nil }
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, _, err := wire.Dial(ctx, "ws://peer.test/", &o)
	if err != nil {
		client.Close()
	}
	await(t, handshook, "the peer's handshake", hang)
	go func() {
		failed := false
		for b := range p.out {
			if !failed {
				_, err := server.Write(b)
				failed = err != nil
			}
		}
	}()
	t.Cleanup(func() { close(p.out) })
	return c, p, err
}

// mustDialPeer is dialPeer that fails the test when Dial fails.
func mustDialPeer(t *testing.T, kind string, opts *wire.DialOptions) (*wire.Conn, *rawPeer) {
	t.Helper()
	c, p, err := dialPeer(t, kind, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, p
}

// send queues bytes for the peer to write.
func (p *rawPeer) send(b []byte) { p.out <- b }

// sendFrame queues one frame, as a server sends it (unmasked).
func (p *rawPeer) sendFrame(op wire.Opcode, fin bool, payload string) {
	p.send((&frameBuilder{}).frame(op, fin, payload).b)
}

// collect starts reading what the client sends: messages and control
// frames, then the error that ends reading.
func (p *rawPeer) collect() {
	go func() {
		rd := wire.NewReader(p.nc, &wire.ReaderOptions{Server: true, Buffered: p.buffered, Compression: p.cp})
		defer rd.Release()
		for {
			op, b, err := rd.Next()
			p.got <- peerEvent{op, string(b), err}
			if err != nil {
				return
			}
		}
	}()
}

// next returns the next message or control frame the client sent.
func (p *rawPeer) next(t *testing.T) peerEvent {
	t.Helper()
	ev := await(t, p.got, "the peer's read", hang)
	if ev.err != nil {
		t.Fatalf("peer: %v", ev.err)
	}
	return ev
}

// stuckWriter starts a write of a message far larger than the socket
// buffers, to a peer that reads one byte of it and no more, and returns
// once the write is under way: it holds the write lock, and will not
// finish. The channel yields its error.
func stuckWriter(t *testing.T, c *wire.Conn, p *rawPeer) <-chan error {
	t.Helper()
	if tc, ok := c.NetConn().(*net.TCPConn); ok {
		tc.SetWriteBuffer(16 << 10)
		p.nc.(*net.TCPConn).SetReadBuffer(16 << 10)
	}
	done := make(chan error, 1)
	go func() { done <- c.WriteMessage(wire.OpBinary, make([]byte, 32<<20)) }()
	read := make(chan error, 1)
	go func() {
		_, err := p.nc.Read(make([]byte, 1))
		read <- err
	}()
	if err := await(t, read, "the peer's read of the first byte", hang); err != nil {
		t.Fatal(err)
	}
	return done
}

// TestCloseWithWriterStuck: Close is bounded by CloseTimeout even when
// another goroutine's write holds the connection, blocked on a peer that
// does not read; that write ends too.
func TestCloseWithWriterStuck(t *testing.T) {
	for _, kind := range []string{"tcp", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			c, p := mustDialPeer(t, kind, &wire.DialOptions{Options: wire.Options{CloseTimeout: closeTimeout}})
			written := stuckWriter(t, c, p)
			closed := make(chan error, 1)
			go func() { closed <- c.Close(wire.StatusNormalClosure, "") }()
			if err := await(t, closed, "Close", closeBound); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want the close timeout", err)
			}
			if err := await(t, written, "the stuck write", closeBound); err == nil {
				t.Error("the stuck write succeeded")
			}
		})
	}
}

// TestFailWithWriterStuck: the close frame that answers a peer's close
// frame or protocol error does not wait longer than CloseTimeout for a
// write blocked on a peer that does not read.
func TestFailWithWriterStuck(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		check func(error) bool
	}{
		{"protocol error", (&frameBuilder{}).frame(3, true, "").b, func(err error) bool { return errors.Is(err, wire.ErrReservedOpcode) }},
		{"close frame", (&frameBuilder{}).frame(wire.OpClose, true, string(wire.AppendClosePayload(nil, 4001, "bye"))).b,
			func(err error) bool { return wire.CloseStatus(err) == 4001 }},
	}
	for _, kind := range []string{"tcp", "pipe"} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				c, p := mustDialPeer(t, kind, &wire.DialOptions{Options: wire.Options{CloseTimeout: closeTimeout}})
				written := stuckWriter(t, c, p)
				p.send(tt.frame)
				read := make(chan error, 1)
				go func() {
					_, _, err := c.ReadMessage()
					read <- err
				}()
				if err := await(t, read, "ReadMessage", closeBound); !tt.check(err) {
					t.Errorf("ReadMessage = %v", err)
				}
				await(t, written, "the stuck write", closeBound)
			})
		}
	}
}

// TestWriteRefusesForbiddenFrames: a write that would send a frame RFC 6455
// forbids returns a *UsageError (not a *ProtocolError), sends nothing, and
// leaves the connection usable. The peer's Reader checks every frame that
// does go out.
func TestWriteRefusesForbiddenFrames(t *testing.T) {
	long := make([]byte, wire.MaxControlPayload+1)
	type call struct {
		f    func(c *wire.Conn) error
		want error // nil: the call must succeed
	}
	frame := func(op wire.Opcode, fin bool, p string, want error) call {
		return call{func(c *wire.Conn) error { return c.WriteFrame(op, fin, []byte(p)) }, want}
	}
	message := func(op wire.Opcode, want error) call {
		return call{func(c *wire.Conn) error { return c.WriteMessage(op, []byte("m")) }, want}
	}
	tests := []struct {
		name  string
		calls []call
		want  []peerEvent // what the peer receives before the final "end"
	}{
		{"control frame over 125 bytes", []call{frame(wire.OpPong, true, string(long), wire.ErrWriteControlTooLong)}, nil},
		{"ping over 125 bytes", []call{{func(c *wire.Conn) error { return c.Ping(long) }, wire.ErrWriteControlTooLong}}, nil},
		{"pong over 125 bytes", []call{{func(c *wire.Conn) error { return c.Pong(long) }, wire.ErrWriteControlTooLong}}, nil},
		{"control frame without fin", []call{frame(wire.OpPing, false, "p", wire.ErrWriteFragmentedControl)}, nil},
		{"close frame", []call{frame(wire.OpClose, true, "\x03\xe8", wire.ErrWriteClose)}, nil},
		{"continuation without a message", []call{frame(wire.OpContinuation, true, "c", wire.ErrWriteUnexpectedContinue)}, nil},
		{"continuation after the last fragment", []call{
			frame(wire.OpText, false, "a", nil),
			frame(wire.OpContinuation, true, "b", nil),
			frame(wire.OpContinuation, true, "c", wire.ErrWriteUnexpectedContinue),
		}, []peerEvent{{op: wire.OpText, p: "ab"}}},
		{"new message while a fragmented one is open", []call{
			frame(wire.OpText, false, "a", nil),
			message(wire.OpBinary, wire.ErrWriteExpectedContinue),
			frame(wire.OpText, true, "x", wire.ErrWriteExpectedContinue),
			frame(wire.OpBinary, false, "x", wire.ErrWriteExpectedContinue),
			frame(wire.OpPing, true, "p", nil), // control frames may come between
			frame(wire.OpContinuation, true, "b", nil),
		}, []peerEvent{{op: wire.OpPing, p: "p"}, {op: wire.OpText, p: "ab"}}},
		{"WriteMessage with a control or continuation opcode", []call{
			message(wire.OpPing, wire.ErrWriteNotData),
			message(wire.OpPong, wire.ErrWriteNotData),
			message(wire.OpClose, wire.ErrWriteNotData),
			message(wire.OpContinuation, wire.ErrWriteNotData),
			message(3, wire.ErrWriteNotData),
		}, nil},
	}
	for _, op := range []wire.Opcode{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF, 0x10, 0xFF} {
		tests = append(tests, struct {
			name  string
			calls []call
			want  []peerEvent
		}{"reserved " + op.String(), []call{frame(op, true, "r", wire.ErrWriteReservedOpcode)}, nil})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := mustDialPeer(t, "tcp", nil)
			p.collect()
			for i, call := range tt.calls {
				err := call.f(c)
				if call.want == nil {
					if err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					continue
				}
				var ue *wire.UsageError
				var pe *wire.ProtocolError
				if !errors.Is(err, call.want) || !errors.As(err, &ue) || errors.As(err, &pe) {
					t.Fatalf("call %d = %v, want the *UsageError %v", i, err, call.want)
				}
			}
			if err := c.WriteMessage(wire.OpText, []byte("end")); err != nil {
				t.Fatalf("the connection is not usable after the refused writes: %v", err)
			}
			for _, want := range append(tt.want, peerEvent{op: wire.OpText, p: "end"}) {
				if got := p.next(t); got != want {
					t.Fatalf("peer got %v %q, want %v %q", got.op, got.p, want.op, want.p)
				}
			}
		})
	}
}

// TestUsageErrorMatchesRule: a UsageError matches, for errors.Is, the
// *ProtocolError of the same rule, which code written before UsageError
// existed checks; it is not one for errors.As.
func TestUsageErrorMatchesRule(t *testing.T) {
	tests := []struct {
		err  error
		rule error
	}{
		{wire.ErrWriteControlTooLong, wire.ErrControlTooLong},
		{wire.ErrWriteReservedOpcode, wire.ErrReservedOpcode},
		{wire.ErrWriteFragmentedControl, wire.ErrFragmentedControl},
		{wire.ErrWriteUnexpectedContinue, wire.ErrUnexpectedContinue},
		{wire.ErrWriteExpectedContinue, wire.ErrExpectedContinue},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.rule) {
			t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.rule)
		}
		if errors.Is(tt.err, wire.ErrMessageTooBig) {
			t.Errorf("%v matches another rule", tt.err)
		}
		if got := wire.CodeOf(tt.err); got != wire.StatusInternalError {
			t.Errorf("CodeOf(%v) = %v, want the local 1011", tt.err, got)
		}
	}
}

// TestReadResume: a Read whose context ends, or whose read deadline
// passes, returns without ending the connection; the message half received
// is kept, and a later Read returns it whole. A ping read before is
// answered. Over TCP (read through syscall.RawConn) and net.Pipe.
func TestReadResume(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 100<<10/16)
	text := strings.Repeat("é", 5000)
	shapes := []struct {
		name   string
		frames []byte
		cut    int // the peer sends frames[:cut] first
		op     wire.Opcode
		msg    string
	}{
		{"idle", (&frameBuilder{}).frame(wire.OpText, true, "hello").b, 0, wire.OpText, "hello"},
		{"in place", (&frameBuilder{}).frame(wire.OpPing, true, "are you there").frame(wire.OpText, true, text).b, 5000, wire.OpText, text},
		{"assembled", (&frameBuilder{}).frame(wire.OpPing, true, "are you there").frame(wire.OpBinary, true, string(big)).b, 50 << 10, wire.OpBinary, string(big)},
		{"fragmented", (&frameBuilder{}).frame(wire.OpText, false, "first ").frame(wire.OpPing, true, "are you there").
			frame(wire.OpContinuation, true, text).b, 4000, wire.OpText, "first " + text},
	}
	const wait = 20 * time.Millisecond
	hows := []struct {
		name string
		read func(c *wire.Conn) error
		want error
	}{
		{"context deadline", func(c *wire.Conn) error {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_, _, err := c.Read(ctx)
			return err
		}, context.DeadlineExceeded},
		{"context canceled", func(c *wire.Conn) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer time.AfterFunc(wait, cancel).Stop()
			_, _, err := c.Read(ctx)
			return err
		}, context.Canceled},
		{"context ended before", func(c *wire.Conn) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, _, err := c.Read(ctx)
			return err
		}, context.Canceled},
		{"read deadline", func(c *wire.Conn) error {
			c.NetConn().SetReadDeadline(time.Now().Add(wait))
			defer c.NetConn().SetReadDeadline(time.Time{})
			_, _, err := c.ReadMessage()
			return err
		}, os.ErrDeadlineExceeded},
	}
	for _, kind := range []string{"tcp", "pipe"} {
		for _, sh := range shapes {
			for _, how := range hows {
				t.Run(kind+"/"+sh.name+"/"+how.name, func(t *testing.T) {
					c, p := mustDialPeer(t, kind, nil)
					p.collect()
					if sh.cut > 0 { // net.Pipe would deliver an empty write as a read of nothing
						p.send(sh.frames[:sh.cut])
					}
					for range 2 {
						if err := how.read(c); !errors.Is(err, how.want) {
							t.Fatalf("Read = %v, want %v", err, how.want)
						}
					}
					p.send(sh.frames[sh.cut:])
					op, got, err := c.ReadMessage()
					if err != nil || op != sh.op || string(got) != sh.msg {
						t.Fatalf("Read after the interruption: %v, %d bytes, %v; want %v, %d bytes", op, len(got), err, sh.op, len(sh.msg))
					}
					if bytes.Contains(sh.frames, []byte("are you there")) {
						if ev := p.next(t); ev.op != wire.OpPong || ev.p != "are you there" {
							t.Fatalf("peer got %v %q, want the pong", ev.op, ev.p)
						}
					}
				})
			}
		}
	}
}

// TestReadTimeoutThenPingAndClose: after a Read has timed out, the
// connection still answers pings and does the closing handshake; writes
// after the close frame are refused. The close reason goes out as valid
// UTF-8 even when Close is given a bad byte.
func TestReadTimeoutThenPingAndClose(t *testing.T) {
	for _, kind := range []string{"tcp", "pipe"} {
		t.Run(kind, func(t *testing.T) {
			c, p := mustDialPeer(t, kind, nil)
			p.collect()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if _, _, err := c.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Read = %v, want the context's end", err)
			}
			p.sendFrame(wire.OpPing, true, "p1")
			p.sendFrame(wire.OpText, true, "m")
			if _, got, err := c.ReadMessage(); err != nil || string(got) != "m" {
				t.Fatalf("ReadMessage = %q, %v", got, err)
			}
			if ev := p.next(t); ev.op != wire.OpPong || ev.p != "p1" {
				t.Fatalf("peer got %v %q, want pong p1", ev.op, ev.p)
			}

			closed := make(chan error, 1)
			go func() { closed <- c.Close(4000, "bye \xff") }()
			ev := p.next(t)
			code, reason, err := wire.ParseClosePayload([]byte(ev.p))
			if ev.op != wire.OpClose || err != nil || code != 4000 || string(reason) != "bye \uFFFD" {
				t.Fatalf("peer got %v %q (%v), want close 4000 %q", ev.op, ev.p, err, "bye \uFFFD")
			}
			for name, write := range map[string]func() error{
				"WriteMessage": func() error { return c.WriteMessage(wire.OpText, []byte("late")) },
				"WriteFrame":   func() error { return c.WriteFrame(wire.OpBinary, false, []byte("late")) },
				"Ping":         func() error { return c.Ping(nil) },
			} {
				if err := write(); !errors.Is(err, wire.ErrClosed) {
					t.Errorf("%s after the close frame = %v, want ErrClosed", name, err)
				}
			}
			p.sendFrame(wire.OpClose, true, string(wire.AppendClosePayload(nil, 4000, "")))
			if err := await(t, closed, "Close", hang); err != nil {
				t.Fatalf("Close = %v", err)
			}
		})
	}
}

// TestPongOwed: a pong that cannot go out before the Read's context ends
// (the peer is not reading) is sent by the next Read, not lost, and the
// connection stays usable.
func TestPongOwed(t *testing.T) {
	c, p := mustDialPeer(t, "pipe", nil)
	p.sendFrame(wire.OpPing, true, "owed")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Read = %v, want the context's end", err)
	}
	p.collect()
	p.sendFrame(wire.OpText, true, "m")
	if _, got, err := c.ReadMessage(); err != nil || string(got) != "m" {
		t.Fatalf("ReadMessage = %q, %v", got, err)
	}
	if ev := p.next(t); ev.op != wire.OpPong || ev.p != "owed" {
		t.Fatalf("peer got %v %q, want the owed pong", ev.op, ev.p)
	}
	if err := c.WriteMessage(wire.OpText, []byte("still usable")); err != nil {
		t.Fatal(err)
	}
	if ev := p.next(t); ev.p != "still usable" {
		t.Fatalf("peer got %v %q", ev.op, ev.p)
	}
}

// TestWriteContext: a Write whose context ends before its frame began to go
// out leaves the connection usable; one whose context ends in the middle of
// the frame closes it, and says so.
func TestWriteContext(t *testing.T) {
	const wait = 50 * time.Millisecond
	write := func(c *wire.Conn, p []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		return c.Write(ctx, wire.OpBinary, p)
	}
	t.Run("peer not reading", func(t *testing.T) {
		c, p := mustDialPeer(t, "pipe", nil)
		if err := write(c, []byte("dropped")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write = %v, want the context's end", err)
		}
		p.collect()
		if err := c.WriteMessage(wire.OpText, []byte("sent")); err != nil {
			t.Fatal(err)
		}
		if ev := p.next(t); ev.p != "sent" {
			t.Fatalf("peer got %v %q, want only the second message", ev.op, ev.p)
		}
	})
	t.Run("waiting for another write", func(t *testing.T) {
		c, p := mustDialPeer(t, "pipe", nil)
		stuckWriter(t, c, p)
		if err := write(c, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write = %v, want the context's end", err)
		}
	})
	t.Run("frame cut", func(t *testing.T) {
		c, p := mustDialPeer(t, "pipe", nil)
		written := make(chan error, 1)
		go func() { written <- write(c, make([]byte, 1<<20)) }()
		if _, err := p.nc.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		err := await(t, written, "Write", hang)
		if !errors.Is(err, wire.ErrClosed) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write = %v, want the connection closed", err)
		}
		if err := c.WriteMessage(wire.OpText, []byte("late")); err == nil {
			t.Fatal("a write after a cut frame succeeded")
		}
	})
}
