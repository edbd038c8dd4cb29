package session

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// trickle writes frame to the client's connection n bytes at a time, every
// d, until it is written or the connection fails.
func (c *conn) trickle(frame []byte, n int, d time.Duration) error {
	for len(frame) > 0 {
		k := min(n, len(frame))
		c.wmu.Lock()
		c.client.SetWriteDeadline(time.Now().Add(bound))
		_, err := c.client.Write(frame[:k])
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		frame = frame[k:]
		time.Sleep(d)
	}
	return nil
}

// TestSilenceIsNoBytes: the heartbeat counts bytes, not whole messages. A
// client that uploads one message slowly, taking many times PingInterval
// plus PongTimeout, and answers no ping, is not dropped as silent while its
// bytes arrive.
func TestSilenceIsNoBytes(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			h := newHarness(t, schedulerConfig{Tick: 5 * time.Millisecond})
			c := h.serve(tr, echoFuncs(make(chan error, 1)), config{
				PingInterval:   40 * time.Millisecond,
				PongTimeout:    40 * time.Millisecond,
				MessageTimeout: bound,
			}, nil)
			payload := bytes.Repeat([]byte("s"), 3000)
			go c.trickle(clientFrame(true, wire.OpBinary, payload), 100, 20*time.Millisecond) // 0.6 s
			// Pings may come before the first bytes: the client does not
			// answer them, and the message must still come back.
			for {
				op, p, err := c.next()
				if err != nil {
					t.Fatalf("while the message arrived: %v", err)
				}
				if op == wire.OpPing {
					continue
				}
				if op != wire.OpBinary || !bytes.Equal(p, payload) {
					t.Fatalf("got %v of %d bytes", op, len(p))
				}
				break
			}
		})
	}
}

// TestMessageTimeout: a message that takes longer than MessageTimeout to
// arrive closes the session with 1008, while a stream of small messages
// that lasts longer than it does not.
func TestMessageTimeout(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			var counters Counters
			ended := make(chan error, 1)
			h := newHarness(t, schedulerConfig{Tick: 5 * time.Millisecond})
			c := h.serve(tr, echoFuncs(ended), config{
				MessageTimeout: 100 * time.Millisecond,
				Counters:       &counters,
			}, nil)
			// 40 messages, one every 10 ms: 0.4 s in all, each in time.
			for i := range 40 {
				msg := []byte(fmt.Sprint("m", i))
				c.mustSend(wire.OpText, msg)
				c.mustNext(wire.OpText, string(msg))
				time.Sleep(10 * time.Millisecond)
			}
			// Then one that would take 2 s.
			go c.trickle(clientFrame(true, wire.OpBinary, make([]byte, 2000)), 10, 10*time.Millisecond)
			c.mustClose(wire.StatusPolicyViolation, "message timeout")
			c.client.Close()
			wantEnded(t, ended, ErrMessageTimeout, &counters.MessageTimeouts)
		})
	}
}

// TestFastSenderSlowed: a client that sends faster than it reads its own
// replies is slowed, not closed: its session stops reading while the
// mailbox is half full of its echoes, and every echo arrives in order.
func TestFastSenderSlowed(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			const n, size = 2000, 8 << 10 // 16 MiB: more than the sockets hold
			var counters Counters
			h := newHarness(t, schedulerConfig{})
			c := h.serve(tr, echoFuncs(make(chan error, 1)), config{
				MailboxSize:    16,
				MaxQueuedBytes: 64 << 10,
				Policy:         PolicyClose,
				MessageRate:    -1,
				Counters:       &counters,
			}, nil)
			if tc, ok := c.client.(*net.TCPConn); ok {
				// Small client buffers: the server's hold less than 16 MiB.
				tc.SetReadBuffer(64 << 10)
				tc.SetWriteBuffer(64 << 10)
			}
			written := make(chan error, 1)
			go func() {
				var b []byte
				for i := range n {
					b = append(b, clientFrame(true, wire.OpBinary, seqMsg(0, uint32(i), size))...)
					if len(b) >= 256<<10 || i == n-1 {
						c.wmu.Lock()
						c.client.SetWriteDeadline(time.Now().Add(bound))
						_, err := c.client.Write(b)
						c.wmu.Unlock()
						if err != nil {
							written <- err
							return
						}
						b = b[:0]
					}
				}
				written <- nil
			}()
			// Read nothing until the writer is done or stuck.
			select {
			case err := <-written:
				t.Fatalf("16 MiB written while nothing was read (%v): nothing slowed the client", err)
			case <-time.After(300 * time.Millisecond):
			}
			for i := range n {
				op, p, err := c.next()
				if err != nil || op != wire.OpBinary {
					t.Fatalf("echo %d: %v %v (closed: %d slow)", i, op, err, counters.ClosedSlow.Load())
				}
				if _, seq, _ := parseSeq(p); seq != uint32(i) {
					t.Fatalf("echo %d has seq %d", i, seq)
				}
			}
			if err := <-written; err != nil {
				t.Fatal(err)
			}
			if n := counters.ClosedSlow.Load(); n != 0 {
				t.Fatalf("ClosedSlow = %d", n)
			}
			// Over a net.Pipe, writes block the reader itself: no pause.
			if counters.Paused.Load() == 0 && tr != "pipe" {
				t.Fatal("Paused = 0: nothing stopped reading")
			}
		})
	}
}

// TestMessageRate: a client over MessageRate is slowed, nothing lost: its
// session stops reading until the rate allows, and every message is
// handled in order.
func TestMessageRate(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			const n = 60
			var counters Counters
			h := newHarness(t, schedulerConfig{Tick: 5 * time.Millisecond})
			c := h.serve(tr, echoFuncs(make(chan error, 1)), config{
				MessageRate:  200,
				MessageBurst: 10,
				Counters:     &counters,
			}, nil)
			var b []byte
			for i := range n {
				b = append(b, clientFrame(true, wire.OpBinary, seqMsg(0, uint32(i), 8))...)
			}
			go c.client.Write(b) // all at once: 50 more than the burst
			for i := range n {
				op, p, err := c.next()
				if err != nil || op != wire.OpBinary {
					t.Fatalf("echo %d: %v %v", i, op, err)
				}
				if _, seq, _ := parseSeq(p); seq != uint32(i) {
					t.Fatalf("echo %d has seq %d", i, seq)
				}
			}
			if counters.Throttled.Load() == 0 {
				t.Fatal("Throttled = 0: the rate never acted")
			}
		})
	}
}

// TestSlowConsumerAbort: with AbortSlow, a session refused under
// PolicyClose is cut at once instead of waiting for a closing handshake
// that a client which does not read will not finish (CloseTimeout here is
// longer than the test's bound).
func TestSlowConsumerAbort(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			var counters Counters
			ended := make(chan error, 1)
			h := newHarness(t, schedulerConfig{})
			c := h.serve(tr, funcs{close: func(s *Session, err error) { ended <- err }}, config{
				MailboxSize:    16,
				MaxQueuedBytes: 64 << 10,
				AbortSlow:      true,
				CloseTimeout:   10 * bound,
				WriteTimeout:   10 * bound,
				Counters:       &counters,
			}, nil)
			for seq := 0; ; seq++ {
				if seq == 1<<16 {
					t.Fatal("never refused")
				}
				if err := c.s.Send(wire.OpBinary, seqMsg(0, uint32(seq), 4<<10)); err != nil {
					if !errors.Is(err, ErrSlowConsumer) {
						t.Fatalf("Send: %v", err)
					}
					break
				}
			}
			wantEnded(t, ended, ErrSlowConsumer, &counters.ClosedSlow)
		})
	}
}

// TestInboundBudget: sessions sharing an InboundBudget: a message that
// would take it past its limit closes its own session with 1013, the
// others carry on, and the budget is whole again once they are done.
func TestInboundBudget(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			var counters Counters
			// Room for one 64 KiB assembly buffer as it grows from 16 KiB
			// (both are held for a moment), not for a second one.
			budget := wire.NewBudget(96 << 10)
			cfg := config{InboundBudget: budget, Counters: &counters, MaxMessageSize: 1 << 20}
			h := newHarness(t, schedulerConfig{})
			ended := make(chan error, 2)
			big := h.serve(tr, echoFuncs(ended), cfg, nil)
			small := h.serve(tr, echoFuncs(ended), cfg, nil)
			// The small one holds 40 KB of a fragmented message (a 64 KiB
			// buffer): the big one's 100 KB cannot fit beside it.
			small.mustSendFrame(false, wire.OpBinary, make([]byte, 40_000))
			waitFor(t, "the first fragment", func() bool { return budget.InUse() >= 64<<10 })
			go big.send(wire.OpBinary, make([]byte, 100_000))
			big.mustClose(wire.StatusTryAgainLater, "*")
			small.mustSendFrame(true, wire.OpContinuation, []byte("end"))
			if op, p, err := small.next(); err != nil || op != wire.OpBinary || len(p) != 40_003 {
				t.Fatalf("the other session: %v, %d bytes, %v", op, len(p), err)
			}
			if n := counters.InboundBudget.Load(); n != 1 {
				t.Fatalf("InboundBudget = %d", n)
			}
			big.client.Close()
			small.client.Close()
			recv(t, ended, "OnClose")
			recv(t, ended, "OnClose")
			waitFor(t, "the budget given back", func() bool { return budget.InUse() == 0 })
		})
	}
}

// TestTooBigCounted: a message over MaxMessageSize closes with 1009 and is
// counted.
func TestTooBigCounted(t *testing.T) {
	var counters Counters
	h := newHarness(t, schedulerConfig{})
	c := h.serve("tcp", echoFuncs(make(chan error, 1)), config{MaxMessageSize: 100, Counters: &counters}, nil)
	go c.send(wire.OpBinary, make([]byte, 101))
	c.mustClose(wire.StatusMessageTooBig, "*")
	if n := counters.TooBig.Load(); n != 1 {
		t.Fatalf("TooBig = %d", n)
	}
}

// TestOutboundBudget: while the frames queued in the process are over
// OutboundBudget, sessions with a backlog of their own are refused (and
// closed, under PolicyClose), while a session that keeps up gets every
// frame; once everything is written or dropped, the budget is whole.
func TestOutboundBudget(t *testing.T) {
	for _, tr := range transports {
		for _, policy := range []Policy{PolicyClose, PolicyDropNewest} {
			t.Run(tr+"/"+policy.String(), func(t *testing.T) { testOutboundBudget(t, tr, policy) })
		}
	}
}

func testOutboundBudget(t *testing.T, tr string, policy Policy) {
	const slow, size = 4, 16 << 10
	var counters Counters
	budget := wire.NewBudget(1 << 20)
	cfg := config{OutboundBudget: budget, Counters: &counters, WriteTimeout: bound, CloseTimeout: bound, Policy: policy}
	h := newHarness(t, schedulerConfig{})
	ended := make(chan error, slow+1)
	onClose := funcs{close: func(s *Session, err error) { ended <- err }}
	var sessions []*conn
	for range slow {
		c := h.serve(tr, onClose, cfg, nil)
		if tc, ok := c.client.(*net.TCPConn); ok {
			tc.SetReadBuffer(64 << 10)
		}
		sessions = append(sessions, c)
	}
	fast := h.serve(tr, onClose, cfg, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	var got atomic.Int64
	go func() { // the fast client reads everything
		defer wg.Done()
		for {
			op, _, err := fast.next()
			if err != nil || op == wire.OpClose {
				return
			}
			got.Add(1)
		}
	}()
	frame := make([]byte, size)
	sent, refused := 0, 0
	want := ErrSlowConsumer // once per session: it is closed
	if policy != PolicyClose {
		want = ErrOverBudget // the first of each session's refusals is counted here
	}
	wasRefused := make([]bool, slow)
	for round := 0; refused < slow; round++ {
		if round == 1<<14 {
			t.Fatalf("after %d rounds, %d slow sessions refused", round, refused)
		}
		for i, c := range sessions {
			if err := c.s.Send(wire.OpBinary, frame); errors.Is(err, want) && !wasRefused[i] {
				wasRefused[i] = true
				refused++
			}
		}
		if err := fast.s.Send(wire.OpBinary, frame); err != nil {
			t.Fatalf("the session that keeps up: %v after %d frames (%d in use)", err, sent, budget.InUse())
		}
		sent++
		waitFor(t, "the fast client keeping up", func() bool { return got.Load() == int64(sent) })
		if budget.InUse() > budget.Limit()+int64(slow*(64<<10+2*size)+size*sent) {
			t.Fatalf("%d bytes in use, limit %d", budget.InUse(), budget.Limit())
		}
	}
	if n := counters.OutboundBudget.Load(); n < slow {
		t.Fatalf("OutboundBudget = %d", n)
	}
	fast.s.Close(wire.StatusNormalClosure, "")
	wg.Wait()
	if got.Load() != int64(sent) {
		t.Fatalf("the session that keeps up got %d of %d frames", got.Load(), sent)
	}
	for _, c := range append(sessions, fast) {
		c.client.Close()
	}
	for range slow + 1 {
		recv(t, ended, "OnClose")
	}
	waitFor(t, "the budget given back", func() bool { return budget.InUse() == 0 })
}

// mustSendFrame writes one masked frame, final or not.
func (c *conn) mustSendFrame(fin bool, op wire.Opcode, p []byte) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.client.SetWriteDeadline(time.Now().Add(bound))
	if _, err := c.client.Write(clientFrame(fin, op, p)); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// waitFor polls cond until it holds, for bound at most.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("no %s in %v", what, bound)
		}
		time.Sleep(time.Millisecond)
	}
}

// wantEnded checks that the session ended with target, counted once.
func wantEnded(t *testing.T, ended <-chan error, target error, counter *atomic.Uint64) {
	t.Helper()
	if err := recv(t, ended, "OnClose"); !errors.Is(err, target) {
		t.Fatalf("OnClose: %v, want %v", err, target)
	}
	if n := counter.Load(); n != 1 {
		t.Fatalf("counted %d times, want once", n)
	}
}

// TestCloseFor: the one mapping from why the server closes to its close
// frame.
func TestCloseFor(t *testing.T) {
	s := &Session{cfg: testSettings(config{SlowCode: 4008})}
	for _, tc := range []struct {
		why    error
		code   wire.StatusCode
		reason string
	}{
		{clientClosed{wire.CloseError{Code: 1000, Reason: "bye"}}, 1000, ""},
		{ErrSlowConsumer, 4008, "slow consumer"},
		{ErrMessageTimeout, wire.StatusPolicyViolation, "message timeout"},
		{errIdle, wire.StatusGoingAway, "idle timeout"},
		{ErrExpired, wire.StatusUnauthorized, "credentials expired"},
		{wire.ErrMessageTooBig, wire.StatusMessageTooBig, wire.ErrMessageTooBig.Msg},
		{wire.ErrBudgetExhausted, wire.StatusTryAgainLater, wire.ErrBudgetExhausted.Msg},
		{wire.ErrInvalidUTF8, wire.StatusInvalidFramePayloadData, wire.ErrInvalidUTF8.Msg},
		{wire.CloseError{Code: 4001, Reason: "kicked"}, 4001, "kicked"},
		{fmt.Errorf("handler: %w", wire.CloseError{Code: 4002}), 4002, ""},
		{errors.New("database down"), wire.StatusInternalError, "internal error"},
		{&PanicError{Value: "boom"}, wire.StatusInternalError, "internal error"},
	} {
		code, reason := s.closeFor(tc.why)
		if code != tc.code || reason != tc.reason {
			t.Errorf("%v: %d %q, want %d %q", tc.why, code, reason, tc.code, tc.reason)
		}
	}
	if !errors.Is(errIdle, ErrTimeout) {
		t.Error("the idle timeout's cause does not match ErrTimeout")
	}
}
