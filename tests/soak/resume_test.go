package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/wire"
)

// TestReconnectStorm: 1,000 clients of one room drop at once, the room
// publishes 100 messages while they are away, and they all come back at
// once, each asking to resume from the last position it saw. Every one
// gets the join's reply saying it recovered, then all 100, in order, none
// twice. It logs the time from the first dial to the last one live, and
// the process's peak heap (clients included).
func TestReconnectStorm(t *testing.T) {
	const clients, missed = 1000, 100
	r := codec.NewRouter(codec.JSON)
	rt, err := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...), runtime.WithMessageRate(-1, 0),
		runtime.WithRoomHistory(func(string) runtime.History { return runtime.History{Size: 2 * missed} }))
	if err != nil {
		t.Fatal(err)
	}
	r.HandleRooms(rt, codec.Rooms{})
	srv := httptest.NewServer(rt)
	defer srv.Close()
	defer rt.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	type envelope struct {
		E string          `json:"e"`
		G uint64          `json:"g"`
		O uint64          `json:"o"`
		I *uint64         `json:"i"`
		D json.RawMessage `json:"d"`
	}
	dial := func(ctx context.Context) (*wire.Conn, error) {
		c, _, err := wire.Dial(ctx, url, &wire.DialOptions{Subprotocols: []string{codec.Subprotocol(codec.JSON)}})
		return c, err
	}
	read := func(c *wire.Conn) (envelope, error) {
		c.NetConn().SetReadDeadline(time.Now().Add(60 * time.Second))
		_, p, err := c.ReadMessage()
		var e envelope
		if err == nil {
			err = json.Unmarshal(p, &e)
		}
		return e, err
	}
	join := func(c *wire.Conn, since codec.JoinRequest) error {
		b, _ := json.Marshal(map[string]any{"e": codec.EventJoin, "r": "storm", "i": 1, "d": since})
		return c.WriteMessage(wire.OpText, b)
	}
	publish := func(i int) {
		room, _ := rt.Room("storm")
		if _, err := r.Publish(room, "news", i); err != nil {
			t.Fatal(err)
		}
	}

	// The keeper stays: a room goes with its last member, and its history
	// with it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keeper, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer keeper.CloseNow()
	go func() { // read and drop, so that the keeper's mailbox never fills
		for {
			if _, _, err := keeper.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := join(keeper, codec.JoinRequest{}); err != nil {
		t.Fatal(err)
	}
	conns := make([]*wire.Conn, clients)
	for i := range conns {
		if conns[i], err = dial(ctx); err != nil {
			t.Fatal(err)
		}
		if err := join(conns[i], codec.JoinRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := read(conns[i]); err != nil { // the reply
			t.Fatal(err)
		}
	}
	publish(0)
	var since codec.JoinRequest
	for _, c := range conns {
		e, err := read(c)
		if err != nil || e.E != "news" || e.O == 0 {
			t.Fatalf("first message: %+v, %v", e, err)
		}
		since = codec.JoinRequest{Epoch: e.G, Offset: e.O}
		c.CloseNow() // a dropped network: no closing handshake
	}
	room, _ := rt.Room("storm")
	deadline := time.Now().Add(time.Minute)
	for room.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d members left, want the keeper alone", room.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range missed {
		publish(i + 1)
	}

	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		var ms goruntime.MemStats
		for {
			goruntime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(ctx)
			if err != nil {
				errs <- fmt.Errorf("client %d: dial: %w", i, err)
				return
			}
			defer c.CloseNow()
			if err := join(c, since); err != nil {
				errs <- err
				return
			}
			// The join's reply first, then the replay.
			e, err := read(c)
			var reply codec.JoinReply
			if err == nil && e.I != nil {
				err = json.Unmarshal(e.D, &reply)
			}
			if err != nil || e.I == nil || !reply.Recovered || reply.Replayed != missed ||
				reply.Epoch != since.Epoch || reply.Offset != since.Offset {
				errs <- fmt.Errorf("client %d: reply %s, %v", i, e.D, err)
				return
			}
			for want := since.Offset + 1; want <= since.Offset+missed; want++ {
				e, err := read(c)
				if err != nil {
					errs <- fmt.Errorf("client %d after offset %d: %w", i, want-1, err)
					return
				}
				if e.O != want || e.G != since.Epoch {
					errs <- fmt.Errorf("client %d: offset %d (epoch %d), want %d", i, e.O, e.G, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	sampler.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d clients recovered %d messages each, in order, none twice: the last was live %v after the first dial; peak heap %.1f MiB (clients included)",
		clients, missed, took.Round(time.Millisecond), float64(peak.Load())/(1<<20))
}
