package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shockwave-go/shockwave/examples/chat/chatserver"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
)

// bus is the chat's share of a NATS deployment (-nats): the connection,
// which the program owns, and the Broker over it, which carries the rooms
// to the other chat processes on the same NATS.
type bus struct {
	nc     *nats.Conn
	b      *natsbroker.Broker
	closed chan struct{} // closed once the connection is, after Drain
}

// connectBus connects to the NATS server at url, checks that it has
// JetStream, where the rooms' history is kept, and makes the Broker:
// node names this process among the chat's (random when empty), and the
// stream keeps keep messages of each room. logf receives what the
// connection reports: errors, disconnections, reconnections.
func connectBus(url, node string, keep int, logf func(format string, args ...any)) (*bus, error) {
	bs := &bus{closed: make(chan struct{})}
	name := "shockwave chat"
	if node != "" {
		name += " " + node
	}
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),                   // NATS gives up after 60 attempts by default: the node would be cut off for good
		nats.ReconnectWait(250*time.Millisecond), // not 2 s: the rooms' publishes wait for NATS to come back
		nats.NoEcho(),                            // this node's messages need not come back to it
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			// Slow consumers among them: the Broker counts those too.
			if sub != nil {
				logf("chat: nats: %s: %v", sub.Subject, err)
				return
			}
			logf("chat: nats: %v", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logf("chat: nats: disconnected: %v", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { logf("chat: nats: reconnected to %s", nc.ConnectedUrlRedacted()) }),
		nats.ClosedHandler(func(*nats.Conn) { close(bs.closed) }),
	)
	if err != nil {
		return nil, fmt.Errorf("chat: -nats: %w", err)
	}
	bs.nc = nc
	if err := checkJetStream(nc); err != nil {
		nc.Close()
		return nil, err
	}
	opts := []natsbroker.Option{natsbroker.WithLog(keep, 0)}
	if node != "" {
		opts = append(opts, natsbroker.WithNode(node))
	}
	if bs.b, err = natsbroker.New(nc, opts...); err != nil {
		nc.Close()
		return nil, fmt.Errorf("chat: -nats: %w", err)
	}
	return bs, nil
}

// checkJetStream fails, with what to do about it, when the server has no
// JetStream: the Broker would start, and every join of a room fail.
func checkJetStream(nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("chat: -nats: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("chat: -nats: the server at %s has no JetStream, where the rooms' history is kept: start it with -js (nats-server -js)", nc.ConnectedUrlRedacted())
	case err != nil:
		return fmt.Errorf("chat: -nats: JetStream: %w", err)
	}
	return nil
}

// joinBus connects to the NATS server at url (connectBus) and sets cfg up
// for it: the Broker goes to the chat's runtime, and the node's name to
// the page. The stream keeps one message more of each room than the chat's
// history: what a node reads when a room's first member there joins, and
// all a client that comes back needs to recover on any node.
func joinBus(cfg *chatserver.Config, url, node string, logf func(string, ...any)) (*bus, error) {
	size := cfg.History
	if size <= 0 {
		size = 100 // chatserver's default
	}
	bs, err := connectBus(url, node, size+1, logf)
	if err != nil {
		return nil, err
	}
	cfg.Runtime = append(cfg.Runtime, runtime.WithBroker(bs.b))
	cfg.Node = bs.b.Node()
	return bs, nil
}

// shutdown is the last of the bus, once the chat's runtime has shut down
// (its rooms unsubscribed as they emptied): the Broker closes, then the
// connection drains, within ctx.
func (bs *bus) shutdown(ctx context.Context) error {
	errs := []error{bs.b.Close()}
	if err := bs.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, err)
	}
	select {
	case <-bs.closed:
	case <-ctx.Done():
		bs.nc.Close()
		errs = append(errs, fmt.Errorf("chat: nats: drain: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}
