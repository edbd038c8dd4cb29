package natsbroker_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
	"github.com/shockwave-go/shockwave/wire"
)

// TestMain fails the package if a test leaves a goroutine behind. The
// tests with a NATS server are in tests/cluster.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// offline returns a connection that has never reached a server: NATS
// keeps trying to connect, and a publish fails at once.
func offline(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("nats://127.0.0.1:1", nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var quiet = natsbroker.WithLogger(slog.New(slog.DiscardHandler))

func text(s string) runtime.Carried {
	return runtime.Carried{Variants: []runtime.Variant{{Op: wire.OpText, Data: []byte(s)}}}
}

// TestOptions: New refuses what is out of range, every field named.
func TestOptions(t *testing.T) {
	if _, err := natsbroker.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	nc := offline(t)
	for _, tc := range []struct {
		opt   natsbroker.Option
		field string
	}{
		{natsbroker.WithPrefix(""), "Prefix"},
		{natsbroker.WithPrefix("sw.*"), "Prefix"},
		{natsbroker.WithPrefix("a..b"), "Prefix"},
		{natsbroker.WithPrefix("sw "), "Prefix"},
		{natsbroker.WithPrefix(strings.Repeat("p", 129)), "Prefix"},
		{natsbroker.WithNode("node.1"), "Node"},
		{natsbroker.WithNode(strings.Repeat("n", 65)), "Node"},
		{natsbroker.WithPendingLimits(0, 1<<20), "PendingMsgs"},
		{natsbroker.WithPendingLimits(10, -1), "PendingBytes"},
		{natsbroker.WithLogger(nil), "Logger"},
		{natsbroker.WithPropagator(nil), "Propagator"},
	} {
		b, err := natsbroker.New(nc, tc.opt)
		if err == nil {
			b.Close()
			t.Errorf("New with a bad %s succeeded", tc.field)
			continue
		}
		if !strings.Contains(err.Error(), "Options."+tc.field) {
			t.Errorf("bad %s: %v", tc.field, err)
		}
	}
	b, err := natsbroker.New(nc, quiet, natsbroker.WithPrefix("app-1.sw"), natsbroker.WithNode("node-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Node() != "node-a" {
		t.Errorf("Node() = %q", b.Node())
	}
	o := natsbroker.DefaultOptions()
	o.Prefix = "x"
	r, err := natsbroker.New(nc, natsbroker.WithOptions(o))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := r.Node(); len(n) < 16 {
		t.Errorf("a random node of %q", n)
	}
}

// TestOffline: a connection that is down. Subscriptions are made (NATS
// sends them once connected); a publish fails and is counted. A message that cannot be
// carried and a room name too long are refused either way. After Close,
// everything fails with ErrClosed, and the functions Subscribe returned
// do nothing.
func TestOffline(t *testing.T) {
	b, err := natsbroker.New(offline(t), quiet)
	if err != nil {
		t.Fatal(err)
	}
	var delivered int
	unsub, err := b.Subscribe("lobby", func(context.Context, runtime.Carried) { delivered++ })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(strings.Repeat("r", natsbroker.MaxRoomName+1), nil); err == nil {
		t.Error("a room name past MaxRoomName subscribed")
	}
	if err := b.Publish(context.Background(), "lobby", text("lost")); err == nil {
		t.Errorf("publish while down: %v", err)
	}
	if err := b.Publish(context.Background(), "lobby", runtime.Carried{}); err == nil {
		t.Error("a message of no variant published")
	}
	if err := b.Publish(context.Background(), strings.Repeat("r", natsbroker.MaxRoomName+1), text("x")); err == nil {
		t.Error("a room name past MaxRoomName published")
	}
	st := b.Stats()
	if st.Errors.Disconnected != 1 || st.Errors.Invalid != 2 || st.Errors.Subscribe != 1 || st.Published != 0 || st.Subscriptions != 1 {
		t.Errorf("stats %+v", st)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
	unsub()
	unsub()
	if _, err := b.Subscribe("lobby", nil); !errors.Is(err, natsbroker.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	if err := b.Publish(context.Background(), "lobby", text("x")); !errors.Is(err, natsbroker.ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if st := b.Stats(); st.Subscriptions != 0 || st.Errors.Closed != 1 {
		t.Errorf("stats after Close %+v", st)
	}

}
