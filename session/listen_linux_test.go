package session

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/wire"
)

// TestListenPendingBound: a listener on the event loop with maxPending
// handshakes under way accepts no more until one ends, and then takes
// the next from the backlog.
func TestListenPendingBound(t *testing.T) {
	defer func(m int32) { maxPending = m }(maxPending)
	maxPending = 2
	sc := newScheduler(schedulerConfig{Workers: 1, Tick: 10 * time.Millisecond, Pollers: 1})
	defer sc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var heads atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sc.listen(ctx, testSettings(config{}), ln, time.Minute, false, func(h engine.Handshake[*Session, Handler]) {
			heads.Add(1)
			h.Refuse(wire.AppendRefusal(h.Buffer(), http.StatusForbidden, "no", 0))
		})
	}()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second))
		return c
	}
	// Two silent clients take the two places; the backlog is FIFO, so
	// they are accepted before the third, which sends its head at once.
	first, _ := dial(), dial()
	third := dial()
	io.WriteString(third, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // time to be accepted, if the bound let it
	if n := heads.Load(); n != 0 {
		t.Fatalf("%d heads answered with both places taken", n)
	}
	first.Close() // its end frees a place
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("the third client, once a place is free: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || heads.Load() != 1 {
		t.Fatalf("the third client: %s, %d heads", resp.Status, heads.Load())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("listen: %v", err)
	}
}
