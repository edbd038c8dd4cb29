package session

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// TestWatchdogSleeps checks that the event loop's watchdog sleeps while no
// turn runs, and that a callback that blocks wakes it all the same: the
// other session on the poller still gets its echoes.
func TestWatchdogSleeps(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hd := funcs{msg: func(s *Session, m Message) error {
		if string(m.Data) == "block" {
			<-release
		}
		return s.Send(m.Op, m.Data)
	}}
	h := newHarness(t, schedulerConfig{Workers: 2})
	a := h.serve("epoll", hd, config{}, nil)
	b := h.serve("epoll", hd, config{}, nil)
	pp := &h.poll.pollers
	waitAsleep := func(when string) {
		t.Helper()
		deadline := time.Now().Add(bound)
		for !pp.asleep.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the watchdog still looks after %v without a turn", when, bound)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitAsleep("at the start")
	a.mustSend(wire.OpText, []byte("block"))
	for i := range 50 {
		p := fmt.Sprint(i)
		b.mustSend(wire.OpText, []byte(p))
		b.mustNext(wire.OpText, p)
	}
	release <- struct{}{}
	a.mustNext(wire.OpText, "block")
	waitAsleep("after the blocked turn")
}

// TestIdleSessionHoldsNothing checks that an event-loop session that has
// read and written, in place, assembled and fragmented, holds no Reader,
// mailbox or pending write once it is quiet again, and never made its
// coldPart (the heartbeat ran meanwhile: it only looks).
func TestIdleSessionHoldsNothing(t *testing.T) {
	h := newHarness(t, schedulerConfig{Workers: 2, Tick: time.Millisecond})
	c := h.serve("epoll", echoFuncs(make(chan error, 1)), config{}, nil)
	quiet := func(what string) {
		t.Helper()
		deadline := time.Now().Add(bound)
		for {
			// The burst ends with rstate idle, the drain with stateRunning
			// clear: after those, this goroutine may look at the fields.
			// Then a CAS that changes nothing on each of those words orders
			// the look before the next burst's or drain's writes (which
			// begin with a CAS on them): the race detector cannot see
			// that the next burst waits for this test's next message.
			st := c.s.state.Load()
			if c.s.loop.rstate.Load() == readIdle && st&(stateRunning|stateInHandler) == 0 && c.s.mb.Load() == nil {
				rd, pending := c.s.rd != nil, c.s.pending != nil || c.s.cork.Load() != nil
				if c.s.state.CompareAndSwap(st, st) && c.s.loop.rstate.CompareAndSwap(readIdle, readIdle) {
					if rd || pending {
						t.Fatalf("%s: quiet, the session holds a Reader (%v) or a pending write or cork (%v)", what, rd, pending)
					}
					if c.s.cold.Load() != nil {
						t.Fatalf("%s: quiet, the session made its coldPart", what)
					}
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not quiet after %v", what, bound)
			}
			time.Sleep(time.Millisecond)
		}
	}
	c.mustSend(wire.OpText, []byte("small"))
	c.mustNext(wire.OpText, "small")
	quiet("after a small message")
	big := strings.Repeat("b", 100_000)
	c.mustSend(wire.OpBinary, []byte(big))
	c.mustNext(wire.OpBinary, big)
	quiet("after a large message")
	c.wmu.Lock()
	c.client.Write(clientFrame(false, wire.OpText, []byte("frag")))
	c.client.Write(clientFrame(true, wire.OpContinuation, []byte("ment")))
	c.wmu.Unlock()
	c.mustNext(wire.OpText, "fragment")
	quiet("after a fragmented message")
}

// TestRemoteAddrKept checks the address an event-loop session keeps for
// RemoteAddr once its net.Conn is let go, IPv4 and IPv6.
func TestRemoteAddrKept(t *testing.T) {
	for _, a := range []string{"127.0.0.1:80", "10.1.2.3:65535", "[::1]:443", "[2001:db8::1]:9", "[::ffff:10.0.0.1]:1"} {
		ap := netip.MustParseAddrPort(a)
		s := &Session{}
		s.tr, s.loop.fd = new(poller), 3
		s.loop.setRemote(ap)
		if got, want := s.RemoteAddr().String(), net.TCPAddrFromAddrPort(ap).String(); got != want {
			t.Errorf("%s: RemoteAddr() = %s, want %s", a, got, want)
		}
	}
}

// TestHangUpWithLastBytes sends a message and the end of the connection
// (FIN) while the poller is held in another session's callback, so that
// one event brings both: the reader must not take its short read for a
// drained socket (fdReader.Read) and miss the end, which brings no event
// of its own. Every session must echo and end.
func TestHangUpWithLastBytes(t *testing.T) {
	h := newHarness(t, schedulerConfig{Workers: 2})
	in, hold := make(chan struct{}), make(chan struct{})
	staller := h.serve("epoll", funcs{msg: func(s *Session, m Message) error {
		in <- struct{}{}
		<-hold // the watchdog gives the poller another goroutine meanwhile
		return nil
	}}, config{}, nil)
	t.Cleanup(func() { close(hold) }) // before the staller's end is awaited
	for i := range 20 {
		ended := make(chan error, 1)
		c := h.serve("epoll", echoFuncs(ended), config{}, nil)
		c.mustSend(wire.OpText, []byte("hello"))
		c.mustNext(wire.OpText, "hello")

		staller.mustSend(wire.OpText, []byte("hold"))
		<-in
		msg := fmt.Sprintf("last words %d", i)
		c.wmu.Lock()
		c.client.Write(clientFrame(true, wire.OpText, []byte(msg)))
		c.client.(*net.TCPConn).CloseWrite()
		c.wmu.Unlock()
		c.mustNext(wire.OpText, msg)
		recv(t, ended, "OnClose")
		hold <- struct{}{}
	}
}
