package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/shockwave-go/shockwave/runtime/natsbroker"
	"github.com/shockwave-go/shockwave/tests/bench/internal/peers"
)

// nodeMain is a Shockwave node: the bench's shockwave server
// (internal/peers, whose /room joins every session to one room and
// broadcasts its messages there with Room.Broadcast, or, with -history,
// publishes them with Room.Publish to the room's history), with a
// natsbroker.Broker when -nats is set: with -history too, the room is
// durable, its history the Broker's JetStream log. It prints
//
//	ready pid=<pid> addr=<host:port>
//
// once it listens, serves until SIGTERM or SIGINT, shuts down in the
// documented order (Runtime, Broker, connection drained) and, with a
// Broker, prints
//
//	stats published=<n> received=<n> dropped=<n> errors=<n> gaps=<n>
//
// (dropped: slow consumer and malformed; gaps: the times a durable room's
// messages could not be read from the stream.)
func nodeMain(args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	natsURL := fs.String("nats", "", "NATS server; empty: no Broker, rooms on this node alone")
	name := fs.String("name", "", "the node's name in Sw-Origin (random if empty)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the node's whole life to this file")
	history := fs.Int("history", 0, "if positive, the room keeps this many messages and publishes with Room.Publish; with -nats, in the Broker's log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	o := peers.Options{RoomHistory: *history}
	var nc *nats.Conn
	var b *natsbroker.Broker
	closed := make(chan struct{})
	if *natsURL != "" {
		var err error
		nc, err = nats.Connect(*natsURL, nats.Name("shockwave-"+*name), nats.NoEcho(), nats.MaxReconnects(-1),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}), // the Broker counts
			nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
		if err != nil {
			return err
		}
		defer nc.Close()
		opts := []natsbroker.Option{natsbroker.WithNode(*name)}
		if *history > 0 {
			opts = append(opts, natsbroker.WithLog(*history+1, 0)) // as the chat does: LogKeep at least History.Size
		}
		if b, err = natsbroker.New(nc, opts...); err != nil {
			return err
		}
		o.RoomBroker = b
	}
	r, err := peers.Start("shockwave", *addr, o)
	if err != nil {
		return err
	}
	fmt.Printf("ready pid=%d addr=%s\n", os.Getpid(), r.Addr)
	<-ctx.Done()
	r.Stop()
	if b == nil {
		return nil
	}
	b.Close()
	st := b.Stats()
	e := st.Errors
	fmt.Printf("stats published=%d received=%d dropped=%d errors=%d gaps=%d\n", st.Published, st.Received,
		st.Dropped.SlowConsumer+st.Dropped.Malformed,
		e.Disconnected+e.Closed+e.MaxPayload+e.Invalid+e.Publish+e.Subscribe, st.Dropped.Gap)
	if err := nc.Drain(); err != nil {
		return err
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
	}
	return nil
}
