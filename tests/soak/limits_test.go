package soak

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// maskedFrame encodes a client frame header announcing length bytes,
// followed by the first len(p) of them.
func maskedFrame(op wire.Opcode, length int64, p []byte) []byte {
	h := wire.Header{Fin: true, Opcode: op, Masked: true, Length: length, Key: [4]byte{1, 2, 3, 4}}
	b := wire.AppendHeader(nil, h)
	start := len(b)
	b = append(b, p...)
	wire.Mask(b[start:], h.Key, 0)
	return b
}

// TestHeaderOnlyMemory: 1,000 connections that each send a frame header
// announcing the largest message and one byte of it, then nothing, cost the
// server less than 1 KiB each over what they cost idle (heap and stacks on
// the event loop, heap on goroutines): memory is taken as bytes arrive, not
// as lengths are announced (it was 1 MiB each).
func TestHeaderOnlyMemory(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			const n = 1000
			srv := startServer(t, tr, "SHOCKWAVE_BUDGET=1")
			defer srv.stop()
			conns := upgrade(t, srv.addr, n)
			defer closeAll(conns)
			idle := waitSessions(t, srv.addr, "every session open", func(st memStats) bool { return st.Sessions >= n })
			frame := maskedFrame(wire.OpBinary, budgetMessage, []byte{'x'}) // a 14-byte header
			for _, c := range conns {
				if _, err := c.Write(frame); err != nil {
					t.Fatal(err)
				}
			}
			// Each waiting message holds its smallest assembly buffer; the
			// goroutine transport's readers give their read buffers back
			// as they park, a moment after.
			held := waitSessions(t, srv.addr, "every header read", func(st memStats) bool { return st.Inbound >= n*512 })
			cost := func(st memStats) (heap, stack float64) {
				return float64(int64(st.Heap)-int64(idle.Heap)) / n, float64(int64(st.Stack)-int64(idle.Stack)) / n
			}
			// What is judged: heap and stacks on the event loop; on
			// goroutines, the heap, as their stacks grow now and then
			// (2 KiB more for a goroutine that ran deep once, a cost of
			// the transport, not of what the client announced).
			judged := func(st memStats) float64 {
				h, s := cost(st)
				if tr == "goroutine" {
					return h
				}
				return h + s
			}
			for deadline := time.Now().Add(5 * time.Second); judged(held) > 1024 && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
				held = stats(t, srv.addr)
			}
			heap, stack := cost(held)
			t.Logf("%s: %d connections, each a header announcing %d bytes and 1 byte: %.0f B each over idle "+
				"(heap %.0f, stacks %.0f; %d B of assembly buffers in all)",
				tr, n, budgetMessage, heap+stack, heap, stack, held.Inbound)
			if j := judged(held); j > 1024 && !raceEnabled() {
				t.Errorf("a header costs %.0f B, more than 1 KiB", j)
			}
		})
	}
}

// The server of TestBudgetUnderLoad and TestSlowConsumersBudget:
// messages up to 1 MiB, 16 MiB for all the messages being assembled at
// once, 16 MiB for all the frames queued.
const (
	budgetMessage  = 1 << 20
	budgetInbound  = 16 << 20
	budgetOutbound = 16 << 20
	fillFrames     = 512 // of 16 KiB: 8 MiB, twice what Linux lets a socket's send buffer hold
)

// budgetHandler echoes, and answers "fill" with fillFrames frames of
// 16 KiB, each its own.
func budgetHandler(s *session.Session, m session.Message) error {
	if string(m.Data) != "fill" {
		return s.Send(m.Op, m.Data)
	}
	p := make([]byte, 16<<10)
	for range fillFrames {
		if err := s.Send(wire.OpBinary, p); err != nil {
			return nil // refused: the session is closing as a slow consumer
		}
	}
	return nil
}

// TestBudgetUnderLoad: 200 clients send a 1 MiB message (the largest) at
// once, 200 MiB in all, to a server whose inbound budget is 16 MiB. The
// ones that would take it past its budget are closed with 1013 (try again
// later), the others are echoed, the server's peak RSS grows by a fraction
// of what the messages weigh, and small round trips of other clients all
// complete meanwhile (their latency is logged, not judged).
func TestBudgetUnderLoad(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			const big, small = 200, 8
			srv := startServer(t, tr, "SHOCKWAVE_BUDGET=1")
			defer srv.stop()
			bigs := upgrade(t, srv.addr, big)
			defer closeAll(bigs)
			smalls := upgrade(t, srv.addr, small)
			defer closeAll(smalls)
			base := waitSessions(t, srv.addr, "every session open", func(st memStats) bool { return st.Sessions >= big+small })

			stop := make(chan struct{})
			var rtts []time.Duration
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make(chan error, big+small)
			for i, c := range smalls {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d, err := pingPong(c, i, stop)
					mu.Lock()
					rtts = append(rtts, d...)
					mu.Unlock()
					if err != nil {
						errs <- fmt.Errorf("small client %d: %w", i, err)
					}
				}()
			}
			frame := maskedFrame(wire.OpBinary, budgetMessage, make([]byte, budgetMessage))
			var echoed sync.WaitGroup
			var nEchoed, nRefused int
			var cmu sync.Mutex
			for _, c := range bigs {
				echoed.Add(1)
				go func() {
					defer echoed.Done()
					code, err := sendBig(c, frame)
					cmu.Lock()
					defer cmu.Unlock()
					switch {
					case err != nil:
						errs <- err
					case code == wire.StatusTryAgainLater:
						nRefused++
					default:
						nEchoed++
					}
				}()
			}
			echoed.Wait()
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			after := stats(t, srv.addr)
			slices.Sort(rtts)
			pct := func(p float64) time.Duration {
				if len(rtts) == 0 {
					return 0
				}
				return rtts[int(p*float64(len(rtts)-1))]
			}
			grew := int64(after.PeakRSS) - int64(base.PeakRSS)
			t.Logf("%s: %d of %d 1 MiB messages echoed, %d refused with 1013 (server counted %d); peak RSS +%d MiB; "+
				"%d small round trips meanwhile: p50 %v, p99 %v, max %v",
				tr, nEchoed, big, nRefused, after.Refused, grew>>20, len(rtts), pct(0.5), pct(0.99), pct(1))
			if nEchoed+nRefused != big || nEchoed == 0 {
				t.Errorf("%d echoed and %d refused of %d", nEchoed, nRefused, big)
			}
			// Without the budget the messages held 200 MiB at once.
			if grew > 4*budgetInbound+32<<20 && !raceEnabled() {
				t.Errorf("peak RSS grew by %d MiB with a budget of %d MiB", grew>>20, budgetInbound>>20)
			}
		})
	}
}

// sendBig writes frame and reads until its echo or a close frame; it
// returns the close code, or 0 for the echo.
func sendBig(c net.Conn, frame []byte) (wire.StatusCode, error) {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(frame)
		werr <- err
	}()
	rd := wire.NewReader(c, &wire.ReaderOptions{MaxMessageSize: 2 << 20})
	defer rd.Release()
	for {
		op, p, err := rd.Next()
		switch {
		case err != nil:
			return 0, fmt.Errorf("big client: %w", err)
		case op == wire.OpClose:
			code, _, _ := wire.ParseClosePayload(p)
			<-werr // the write fails or ends: either is fine once refused
			return code, nil
		case op == wire.OpBinary:
			if len(p) != budgetMessage {
				return 0, fmt.Errorf("big client: echo of %d bytes", len(p))
			}
			return 0, <-werr
		}
	}
}

// pingPong sends small messages one at a time and times their echoes,
// until stop.
func pingPong(c net.Conn, id int, stop <-chan struct{}) ([]time.Duration, error) {
	rd := wire.NewReader(c, nil)
	defer rd.Release()
	var rtts []time.Duration
	var msg [16]byte
	for seq := uint64(0); ; seq++ {
		select {
		case <-stop:
			return rtts, nil
		default:
		}
		binary.BigEndian.PutUint64(msg[:], uint64(id))
		binary.BigEndian.PutUint64(msg[8:], seq)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		start := time.Now()
		if _, err := c.Write(maskedFrame(wire.OpBinary, 16, msg[:])); err != nil {
			return rtts, err
		}
		op, p, err := rd.Next()
		if errors.Is(err, io.EOF) || err == nil && (op != wire.OpBinary || string(p) != string(msg[:])) {
			return rtts, fmt.Errorf("round trip %d: %v %q %v", seq, op, p, err)
		}
		if err != nil {
			return rtts, err
		}
		rtts = append(rtts, time.Since(start))
		time.Sleep(time.Millisecond)
	}
}

// TestStreamingClients: clients that write 64 KiB messages without waiting
// for their echoes, reading them on another goroutine, against a server
// with the default options. A blocking server slows such a client through
// TCP; the runtime must too, by reading less, not close it as a slow
// consumer (it closed some of 8 on two of three runs of an independent
// load generator).
func TestStreamingClients(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			const conns, perConn, size = 8, 300, 64 << 10
			transport := runtime.TransportAuto
			if tr == "goroutine" {
				transport = runtime.TransportGoroutine
			}
			echo := session.HandlerFunc(func(s *session.Session, m session.Message) error { return s.Send(m.Op, m.Data) })
			rt, err := runtime.New(echo, runtime.WithTransport(transport))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(rt)
			defer srv.Close()
			defer rt.Shutdown(context.Background())
			frame := maskedFrame(wire.OpBinary, size, make([]byte, size))
			var wg sync.WaitGroup
			errs := make(chan error, 2*conns)
			for i := range conns {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, _, err := wire.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				nc := c.NetConn()
				nc.SetDeadline(time.Now().Add(60 * time.Second))
				wg.Add(2)
				go func() { // the writer: never waits for an echo
					defer wg.Done()
					for range perConn {
						if _, err := nc.Write(frame); err != nil {
							errs <- fmt.Errorf("client %d write: %w", i, err)
							return
						}
					}
				}()
				go func() {
					defer wg.Done()
					defer c.CloseNow()
					for n := range perConn {
						if _, p, err := c.ReadMessage(); err != nil || len(p) != size {
							errs <- fmt.Errorf("client %d, echo %d of %d: %d bytes, %w", i, n, perConn, len(p), err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			c := rt.Counters()
			t.Logf("%s: %d clients x %d messages of 64 KiB echoed; reading paused %d times, %d closed as slow",
				tr, conns, perConn, c.Paused.Load(), c.ClosedSlow.Load())
			if n := c.ClosedSlow.Load(); n != 0 {
				t.Errorf("%d sessions closed as slow consumers", n)
			}
		})
	}
}

// raceEnabled reports whether the test (and so the server, the same
// binary) was built with -race, whose shadow memory and pools that drop
// items make memory figures meaningless: .ci/run judges them in a run
// without it.
func raceEnabled() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// TestSlowConsumersBudget: 200 clients that read nothing are each sent
// 8 MiB of frames of their own, 1.6 GiB in all, which their sessions'
// mailboxes (1,024 frames, 16 MiB in this server) let through: at least
// half of it cannot leave the process, since a socket's send buffer holds
// 4 MiB at most. The outbound budget (16 MiB) closes them as slow
// consumers instead, the server's peak RSS grows by a fraction of what was
// sent, and a client that reads keeps its round trips.
func TestSlowConsumersBudget(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			const slow = 200
			srv := startServer(t, tr, "SHOCKWAVE_BUDGET=1")
			defer srv.stop()
			conns := upgrade(t, srv.addr, slow)
			defer closeAll(conns)
			reader := upgrade(t, srv.addr, 1)
			defer closeAll(reader)
			base := waitSessions(t, srv.addr, "every session open", func(st memStats) bool { return st.Sessions >= slow+1 })
			stop := make(chan struct{})
			var rtts []time.Duration
			var rerr error
			done := make(chan struct{})
			go func() {
				defer close(done)
				rtts, rerr = pingPong(reader[0], 0, stop)
			}()
			fill := maskedFrame(wire.OpText, 4, []byte("fill"))
			for _, c := range conns {
				c.(*net.TCPConn).SetReadBuffer(16 << 10)
				if _, err := c.Write(fill); err != nil {
					t.Fatal(err)
				}
			}
			// Every slow session ends closed, or holds what the budget let
			// it queue.
			after := waitSessions(t, srv.addr, "the slow consumers dealt with", func(st memStats) bool {
				return st.ClosedSlow > 0 && st.Outbound <= budgetOutbound+slow*(64<<10+16<<10)
			})
			close(stop)
			<-done
			if rerr != nil {
				t.Errorf("the reading client: %v", rerr)
			}
			after = stats(t, srv.addr)
			grew := int64(after.PeakRSS) - int64(base.PeakRSS)
			t.Logf("%s: %d slow consumers sent %d MiB in all: %d closed as slow, %d MiB queued now, peak RSS +%d MiB; %d round trips of a reading client",
				tr, slow, slow*fillFrames*16>>10, after.ClosedSlow, after.Outbound>>20, grew>>20, len(rtts))
			// Without the budget the frames held 1 GiB at once.
			if limit := int64(4*budgetOutbound + slow*(64<<10+16<<10) + 32<<20); grew > limit && !raceEnabled() {
				t.Errorf("peak RSS grew by %d MiB, more than %d MiB", grew>>20, limit>>20)
			}
		})
	}
}
