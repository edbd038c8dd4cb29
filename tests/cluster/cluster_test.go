package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/shockwave-go/shockwave/codec"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/runtime/natsbroker"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// bound is the failure bound of every wait: a deadline that a correct run
// never comes near, on a busy 2-core machine under -race.
const bound = 30 * time.Second

// eventually polls cond until it holds, failing the test after bound.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	return c
}

// startNATS starts a NATS server on 127.0.0.1: on port, or a random one
// when port is -1. stopNATS stops it; the test's end does too.
func startNATS(t testing.TB, port int) *server.Server {
	t.Helper()
	return startServer(t, &server.Options{Port: port})
}

// startJetStream starts a NATS server with JetStream on 127.0.0.1, its
// store in dir: on port, or a random one when port is -1. A server
// started again on the same dir has the streams the last one stored.
func startJetStream(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	return startServer(t, &server.Options{Port: port, JetStream: true, StoreDir: dir})
}

// startServer starts a NATS server with o, on 127.0.0.1.
func startServer(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	o.Host, o.NoLog, o.NoSigs = "127.0.0.1", true, true
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(bound) {
		t.Fatal("the NATS server did not start")
	}
	t.Cleanup(func() { stopNATS(s) })
	return s
}

func stopNATS(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func natsPort(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }

// interest returns the client ids of the subscriptions to room's
// subject on s.
func interest(t testing.TB, s *server.Server, room string) []uint64 {
	t.Helper()
	return subscribers(t, s, natsbroker.Subject("sw", room))
}

// subscribers returns the client ids of the subscriptions on s that
// match subject.
func subscribers(t testing.TB, s *server.Server, subject string) []uint64 {
	t.Helper()
	sz, err := s.Subsz(&server.SubszOptions{Subscriptions: true, Test: subject})
	if err != nil {
		t.Fatal(err)
	}
	var cids []uint64
	for _, d := range sz.Subs {
		cids = append(cids, d.Cid)
	}
	slices.Sort(cids)
	return cids
}

// waitInterest waits until room's subscribers on s are the nodes ns.
func waitInterest(t testing.TB, s *server.Server, room string, ns ...*node) {
	t.Helper()
	var want []uint64
	for _, n := range ns {
		id, err := n.nc.GetClientID()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	slices.Sort(want)
	eventually(t, fmt.Sprintf("the subscriptions to %q to be those of %d nodes", room, len(ns)), func() bool {
		return slices.Equal(interest(t, s, room), want)
	})
}

// node is a Shockwave node: a Runtime with a natsbroker.Broker, behind an
// httptest server, with its own meter and tracer. Its handlers:
//   - room.join and room.leave (codec.Router.HandleRooms);
//   - "say" publishes its Said to the envelope's room (Router.Publish:
//     a variant per codec, keyed);
//   - "signal" signals it (Router.Signal);
//   - "shout" broadcasts a JSON envelope of it (Room.Broadcast: one
//     variant, no key).
type node struct {
	name    string
	nc      *nats.Conn
	b       *natsbroker.Broker
	rt      *runtime.Runtime
	srv     *httptest.Server
	url     string
	metrics *sdkmetric.ManualReader
	spans   *tracetest.SpanRecorder
	once    sync.Once
}

// Said is what members say: who, and the how-manyth of theirs.
type Said struct {
	From string `json:"from"`
	Seq  int    `json:"seq"`
}

// startNode starts a node on the NATS server at url. Its connection
// reconnects by itself, every 20 ms, for ever; opts add to that.
func startNode(t testing.TB, url, name string, opts ...nats.Option) *node {
	t.Helper()
	return startNodeWith(t, url, name, nil, opts...)
}

// startNodeWith is startNode with options for the Broker, after the
// node's own.
func startNodeWith(t testing.TB, url, name string, bopts []natsbroker.Option, opts ...nats.Option) *node {
	t.Helper()
	return startNodeRT(t, url, name, bopts, nil, opts...)
}

// startNodeRT is startNodeWith with options for the Runtime, after the
// node's own.
func startNodeRT(t testing.TB, url, name string, bopts []natsbroker.Option, ropts []runtime.Option, opts ...nats.Option) *node {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond),
		nats.ReconnectJitter(0, 0),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, nc: nc, metrics: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(n.metrics))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(n.spans))
	n.b, err = natsbroker.New(nc, append([]natsbroker.Option{natsbroker.WithNode(name), natsbroker.WithMeterProvider(mp),
		natsbroker.WithTracerProvider(tp), natsbroker.WithLogger(slog.New(slog.DiscardHandler))}, bopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r := codec.NewRouter(codec.JSON)
	n.rt, err = runtime.New(r, append([]runtime.Option{runtime.WithSubprotocols(r.Subprotocols()...), runtime.WithMessageRate(-1, 0),
		runtime.WithBroker(n.b), runtime.WithTracerProvider(tp)}, ropts...)...)
	if err != nil {
		t.Fatal(err)
	}
	r.HandleRooms(n.rt, codec.Rooms{})
	in := func(ev codec.Event[Said]) (*runtime.Room, error) {
		room, ok := n.rt.Room(ev.Room)
		if !ok {
			return nil, &codec.Error{Code: "not_joined", Message: ev.Room}
		}
		return room, nil
	}
	codec.On(r, "say", func(_ *session.Session, ev codec.Event[Said]) error {
		room, err := in(ev)
		if err == nil {
			_, err = r.PublishContext(ev.Ctx, room, "said", ev.Data)
		}
		return err
	})
	codec.On(r, "signal", func(_ *session.Session, ev codec.Event[Said]) error {
		room, err := in(ev)
		if err == nil {
			_, err = r.Signal(ev.Ctx, room, nil, "signaled", ev.Data)
		}
		return err
	})
	codec.On(r, "shout", func(_ *session.Session, ev codec.Event[Said]) error {
		room, err := in(ev)
		if err == nil {
			env, _ := json.Marshal(map[string]any{"e": "shouted", "r": ev.Room, "d": ev.Data})
			room.Broadcast(wire.OpText, env)
		}
		return err
	})
	n.srv = httptest.NewServer(n.rt)
	n.url = "ws" + strings.TrimPrefix(n.srv.URL, "http")
	t.Cleanup(func() {
		n.stop(t)
		_ = mp.Shutdown(context.Background())
		_ = tp.Shutdown(context.Background())
	})
	return n
}

// stop shuts the node down as a program would: the Runtime (its sessions
// closed, its rooms unsubscribed), the Broker, the connection.
func (n *node) stop(t testing.TB) {
	n.once.Do(func() {
		c, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		if err := n.rt.Shutdown(c); err != nil {
			t.Errorf("%s: Shutdown: %v", n.name, err)
		}
		n.srv.Close()
		if err := n.b.Close(); err != nil {
			t.Errorf("%s: Close: %v", n.name, err)
		}
		n.nc.Close()
	})
}

// metric returns the value of the broker's counter name with the
// attribute shockwave.broker.reason = reason ("" for none), as the
// node's meter reads it.
func (n *node) metric(t testing.TB, name, reason string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := n.metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("%s is a %T", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				v, _ := dp.Attributes.Value("shockwave.broker.reason")
				if v.AsString() == reason {
					return dp.Value
				}
			}
		}
	}
	t.Fatalf("no %s{%s} in the node's metrics", name, reason)
	return 0
}

// member is a codec client on a node, with what it got.
type member struct {
	name string
	c    *codec.Client

	mu   sync.Mutex
	got  []got   // "said", "signaled" and "shouted" events, in order
	errs []error // error events, and payloads that did not decode
}

type got struct {
	event, room string
	Said
	at uint64 // the event's offset in its room's history, 0 for none
}

// dial connects a member speaking cd to n, closed at the test's end.
func (n *node) dial(t testing.TB, name string, cd codec.Codec, opts ...codec.ClientOption) *member {
	t.Helper()
	return dialURL(t, n.url, name, cd, opts...)
}

// dialURL connects a member speaking cd to the node at url.
func dialURL(t testing.TB, url, name string, cd codec.Codec, opts ...codec.ClientOption) *member {
	t.Helper()
	m := &member{name: name}
	c, err := codec.Dial(ctx(t), url, append([]codec.ClientOption{codec.WithClientCodecs(cd),
		codec.WithClientErrorHandler(func(event string, err error) { m.fail(fmt.Errorf("%s: %w", event, err)) })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.c = c
	t.Cleanup(func() { c.CloseNow() })
	for _, ev := range []string{"said", "signaled", "shouted"} {
		codec.Listen(c, ev, func(v Said, meta codec.Meta) {
			m.mu.Lock()
			m.got = append(m.got, got{event: meta.Event, room: meta.Room, Said: v, at: meta.Offset})
			m.mu.Unlock()
		})
	}
	codec.Listen(c, codec.EventError, func(x *codec.Error, _ codec.Meta) { m.fail(x) })
	return m
}

func (m *member) fail(err error) {
	m.mu.Lock()
	m.errs = append(m.errs, err)
	m.mu.Unlock()
}

func (m *member) join(t testing.TB, rooms ...string) {
	t.Helper()
	for _, room := range rooms {
		if _, err := m.c.Join(ctx(t), room); err != nil {
			t.Fatalf("%s: join %q: %v", m.name, room, err)
		}
	}
}

// emit sends event with s to room.
func (m *member) emit(t testing.TB, event, room string, s Said) {
	t.Helper()
	if err := m.c.Emit(ctx(t), event, s, codec.InRoom(room)); err != nil {
		t.Fatalf("%s: %s: %v", m.name, event, err)
	}
}

// say says seq in room.
func (m *member) say(t testing.TB, room string, seq int) {
	t.Helper()
	m.emit(t, "say", room, Said{From: m.name, Seq: seq})
}

// received returns a copy of what m got, and fails the test with its
// errors, if any.
func (m *member) received(t testing.TB) []got {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) > 0 {
		t.Fatalf("%s: %v", m.name, m.errs)
	}
	return slices.Clone(m.got)
}

// wait waits until m got n events, and returns them.
func (m *member) wait(t testing.TB, n int) []got {
	t.Helper()
	var g []got
	eventually(t, fmt.Sprintf("%s to get %d events", m.name, n), func() bool {
		g = m.received(t)
		return len(g) >= n
	})
	return g
}

// seqs returns the sequence numbers of what from said in g, in order.
func seqs(g []got, from string) []int {
	var s []int
	for _, e := range g {
		if e.From == from {
			s = append(s, e.Seq)
		}
	}
	return s
}

// upTo returns the sequence numbers from to to, with those of skip left
// out.
func upTo(from, to int, skip ...[2]int) []int {
	var s []int
next:
	for i := from; i <= to; i++ {
		for _, r := range skip {
			if r[0] <= i && i <= r[1] {
				continue next
			}
		}
		s = append(s, i)
	}
	return s
}
