package session

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// TestMailboxRetired checks that a session gives its mailbox back once it
// is quiet, and that frames sent while the timer takes it away (every
// millisecond here) are neither lost nor reordered.
func TestMailboxRetired(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { testMailboxRetired(t, tr) })
	}
}

func testMailboxRetired(t *testing.T, transport string) {
	const (
		senders = 4
		rounds  = 5
		burst   = 300 // per sender and round
	)
	h := newHarness(t, schedulerConfig{Workers: 2, Tick: time.Millisecond})
	c := h.serve(transport, funcs{}, config{MailboxSize: 64}, nil)

	waitRetired := func(round int) {
		t.Helper()
		deadline := time.Now().Add(bound)
		for c.s.mb.Load() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the quiet session still holds its mailbox after %v", round, bound)
			}
			time.Sleep(time.Millisecond)
		}
	}
	got := make(chan error, 1)
	go func() {
		var next [senders]uint32
		for n := 0; n < senders*rounds*burst; n++ {
			_, p, err := c.next()
			if err != nil {
				got <- err
				return
			}
			g, seq, err := parseSeq(p)
			if err == nil && (g >= senders || seq != next[g]) {
				err = fmt.Errorf("sender %d: seq %d, want %d", g, seq, next[min(g, senders-1)])
			}
			if err != nil {
				got <- err
				return
			}
			next[g]++
		}
		got <- nil
	}()
	for round := range rounds {
		var wg sync.WaitGroup
		for g := range senders {
			wg.Go(func() {
				for i := range burst {
					seq := uint32(round*burst + i)
					// PolicyDropNewest with retries: a full mailbox is not
					// what this test is about.
					for {
						err := c.s.Enqueue(NewFrame(wire.OpBinary, seqMsg(uint32(g), seq, 16)), PolicyDropNewest)
						if err == nil {
							break
						}
						if err != ErrDropped {
							t.Errorf("sender %d: %v", g, err)
							return
						}
						time.Sleep(100 * time.Microsecond)
					}
				}
			})
		}
		wg.Wait()
		waitRetired(round)
	}
	if err := recv(t, got, "frames"); err != nil {
		t.Fatal(err)
	}
}
