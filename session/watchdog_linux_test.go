package session

import (
	"fmt"
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
	h := newHarness(t, SchedulerConfig{Workers: 2})
	a := h.serve("epoll", hd, Config{}, nil)
	b := h.serve("epoll", hd, Config{}, nil)
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
