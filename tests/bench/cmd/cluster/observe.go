package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/shockwave-go/shockwave/tests/bench/internal/peers"
)

// An observer is one more member of the room, on one node, for -restart.
// The load generator's members check that every message arrives once and
// in order, but a member that misses one or gets one twice reports it as
// an error and is closed, and the load stops publishing (a message not
// yet with every member holds its window): they say that something was
// lost, not how much. An observer goes on: it counts, by each message's
// number among all published (from the load generator's stamp), what its
// node's members missed, got twice or out of order, and the longest
// silence between two messages, the outage as the node's members saw it.
type observer struct {
	node string
	c    *websocket.Conn
	done chan struct{} // closed when its read loop has returned

	mu        sync.Mutex // guards what follows
	seen      []bool     // by message number
	distinct  int64      // numbers seen
	dups      int64      // messages delivered again
	reordered int64      // messages delivered after a later one
	top       uint32     // the highest number delivered
	first     time.Time  // when the first numbered message came
	last      time.Time  // and the last
	silence   time.Duration
	stopped   time.Time // when nats-server was told to stop
	after     int64     // messages delivered since
	err       error     // why the read loop ended, if not by close
}

// stampNumber is where the load generator's stamp holds a message's
// number among all published, little-endian, 0 for its probes (see
// internal/load: send time 8 bytes, publisher 4, its sequence 4, number 4).
const stampNumber = 16

// observe joins the room on the node at addr.
func observe(node, addr string, timeout time.Duration) (*observer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/room", nil)
	if err != nil {
		return nil, fmt.Errorf("observer on %s: %w", node, err)
	}
	c.SetReadLimit(peers.MaxMessage)
	o := &observer{node: node, c: c, done: make(chan struct{})}
	go o.read()
	return o, nil
}

func (o *observer) read() {
	defer close(o.done)
	for {
		_, p, err := o.c.Read(context.Background())
		if err != nil {
			o.mu.Lock()
			o.err = err
			o.mu.Unlock()
			return
		}
		if len(p) < stampNumber+4 {
			o.mu.Lock()
			o.err = fmt.Errorf("a message of %d bytes, shorter than a stamp", len(p))
			o.mu.Unlock()
			return
		}
		if g := binary.LittleEndian.Uint32(p[stampNumber:]); g != 0 {
			o.got(g, time.Now())
		}
	}
}

// got counts message g, which came at now.
func (o *observer) got(g uint32, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first.IsZero() {
		o.first = now
	} else {
		o.silence = max(o.silence, now.Sub(o.last))
	}
	o.last = now
	if !o.stopped.IsZero() {
		o.after++
	}
	for int(g) >= len(o.seen) {
		o.seen = append(o.seen, make([]bool, len(o.seen)+1024)...)
	}
	switch {
	case o.seen[g]:
		o.dups++
	case g < o.top:
		o.reordered++
	}
	if !o.seen[g] {
		o.seen[g] = true
		o.distinct++
	}
	o.top = max(o.top, g)
}

// stopping tells o that nats-server is being stopped now.
func (o *observer) stopping(now time.Time) {
	o.mu.Lock()
	o.stopped = now
	o.mu.Unlock()
}

// started returns when the first numbered message came, zero before.
func (o *observer) started() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.first
}

// observed is what an observer counted.
type observed struct {
	Node      string
	Lost      int64 // of the messages published, those it never got
	Dups      int64
	Reordered int64
	Silence   time.Duration // the longest between two messages
	After     int64         // messages delivered since nats-server was told to stop
	Err       error         // its connection ended before the run's
}

// finish waits, up to wait, for every observer to have every message any
// of them got, closes them and returns what each counted. The messages
// published are taken to be those numbered up to the highest any observer
// got: node a's members get every message its publisher sends, unless the
// room is durable and the log lost the last ones, which the load
// generator then reports as missing.
func finish(obs []*observer, wait time.Duration) ([]observed, uint32) {
	total := func() (top uint32, complete bool) {
		complete = true
		for _, o := range obs {
			o.mu.Lock()
			top = max(top, o.top)
			o.mu.Unlock()
		}
		for _, o := range obs {
			o.mu.Lock()
			complete = complete && o.distinct == int64(top) && o.err == nil
			o.mu.Unlock()
		}
		return top, complete
	}
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if _, ok := total(); ok {
			break
		}
	}
	top, _ := total()
	var out []observed
	for _, o := range obs {
		o.mu.Lock()
		err := o.err // before the close, which ends the read loop
		o.mu.Unlock()
		o.c.CloseNow()
		<-o.done
		if err != nil && errors.Is(err, context.Canceled) {
			err = nil
		}
		out = append(out, observed{Node: o.node, Lost: int64(top) - o.distinct, Dups: o.dups,
			Reordered: o.reordered, Silence: o.silence, After: o.after, Err: err})
	}
	return out, top
}
