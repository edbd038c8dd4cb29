package natsbroker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/internal/bufpool"
	"github.com/shockwave-go/shockwave/runtime"
)

// HeaderOrigin is the header that names the node a message comes from
// (Options.Node).
const HeaderOrigin = "Sw-Origin"

// ErrClosed is returned by Subscribe and Publish once the Broker is
// closed.
var ErrClosed = errors.New("natsbroker: closed")

// Broker is a runtime.Broker over core NATS: a room's messages go on its
// subject, <Prefix>.r.<token>, at most once, and reach the nodes that
// subscribe to it. See the package doc.
type Broker struct {
	nc     *nats.Conn
	opts   Options
	node   string
	tracer trace.Tracer
	tel    *telemetry
	logs   [nLogs]limiter
	done   atomic.Bool   // Close was called
	log    logState      // the stream of the rooms that keep history (Log)
	pres   presenceState // the bucket of the rooms' presence (PresenceBroker)

	mu   sync.Mutex
	subs map[*sub]struct{} // mu guards subs: the live room subscriptions
}

// sub is one room's subscription.
type sub struct {
	b       *Broker
	room    string
	deliver func(context.Context, runtime.Carried)
	ns      *nats.Subscription // set before Subscribe returns
	dropped atomic.Int64       // the NATS client's count of drops, as last read

	mu      sync.Mutex  // held while delivering
	closed  bool        // mu guards closed: no delivery once it is set
	closing atomic.Bool // set before close takes mu
	log     *follow     // the room's log, followed (Follow); nil: a room without one. mu guards its state
}

// New returns a Broker over nc, a connection the application made, with
// the options it needs (servers, credentials, reconnection) and keeps:
// the Broker neither drains nor closes it. nats.MaxReconnects(-1) keeps
// a node trying through a long outage (NATS gives up after 60 attempts by
// default, and New logs a warning), and nats.NoEcho() spares the node its
// own messages, which the Broker otherwise receives and drops by their
// HeaderOrigin. A connection carries one Broker: two on one connection
// with NoEcho would not hear each other.
func New(nc *nats.Conn, opts ...Option) (*Broker, error) {
	if nc == nil {
		return nil, errors.New("natsbroker: New needs a connection")
	}
	o := DefaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	if nc.IsClosed() {
		return nil, errors.New("natsbroker: the connection is closed")
	}
	if nc.IsConnected() && !nc.HeadersSupported() {
		return nil, errors.New("natsbroker: the NATS server does not support headers (2.2 or later does)")
	}
	if mp := nc.MaxPayload(); mp > 0 && int64(o.PendingBytes) < mp {
		return nil, fmt.Errorf("natsbroker: Options.PendingBytes (%d) must be over the server's max_payload (%d), or larger messages are all dropped", o.PendingBytes, mp)
	}
	if o.Node == "" {
		o.Node = rand.Text()
	}
	tp := o.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	b := &Broker{
		nc:     nc,
		opts:   o,
		node:   o.Node,
		tracer: tp.Tracer(instrumentation),
		subs:   make(map[*sub]struct{}),
		log:    logState{name: streamName(o.Prefix), subject: o.Prefix + ".log.>"},
	}
	tel, err := newTelemetry(b, o.MeterProvider)
	if err != nil {
		return nil, err
	}
	b.tel = tel
	b.initPresence()
	b.watchReconnects()
	if !nc.Opts.AllowReconnect || nc.Opts.MaxReconnect >= 0 {
		o.Logger.Warn("natsbroker: the NATS connection stops reconnecting after a number of attempts; nats.MaxReconnects(-1) keeps the node in the deployment through a long outage",
			"allow_reconnect", nc.Opts.AllowReconnect, "max_reconnects", nc.Opts.MaxReconnect)
	}
	return b, nil
}

// Node returns this node's name (Options.Node, or the random one New
// made).
func (b *Broker) Node() string { return b.node }

// subject returns room's subject.
func (b *Broker) subject(room string) (string, error) {
	if len(room) > MaxRoomName {
		return "", errRoomName
	}
	return Subject(b.opts.Prefix, room), nil
}

// Subscribe implements runtime.Broker: one NATS subscription to the
// room's subject, with Options.PendingMsgs and PendingBytes as its
// limits. Its messages are delivered in order on a goroutine of the NATS
// client's, one per subscription; deliver gets their trace context. The
// function it returns unsubscribes, once, and waits for a delivery in
// progress, so that deliver is not called after it returns; it must not
// be called from deliver.
func (b *Broker) Subscribe(room string, deliver func(ctx context.Context, m runtime.Carried)) (unsubscribe func(), err error) {
	s, err := b.subscribe(room, deliver, nil)
	if err != nil {
		return nil, err
	}
	return s.unsubscribe, nil
}

// subscribe subscribes to room's subject; f, if not nil, follows its log.
func (b *Broker) subscribe(room string, deliver func(ctx context.Context, m runtime.Carried), f *follow) (s *sub, err error) {
	defer func() {
		if err != nil {
			b.fail(errSubscribe, room, err)
		}
	}()
	subj, err := b.subject(room)
	if err != nil {
		return nil, err
	}
	s = &sub{b: b, room: room, deliver: deliver, log: f}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done.Load() {
		return nil, ErrClosed
	}
	ns, err := b.nc.Subscribe(subj, s.receive)
	if err != nil {
		return nil, err
	}
	if err := ns.SetPendingLimits(b.opts.PendingMsgs, b.opts.PendingBytes); err != nil {
		_ = ns.Unsubscribe()
		return nil, err
	}
	s.ns = ns
	b.subs[s] = struct{}{}
	return s, nil
}

// receive is the NATS client's callback for the room's messages.
func (s *sub) receive(m *nats.Msg) {
	b := s.b
	s.sawDrops(m.Sub)
	if s.log != nil && m.Header.Get(jetstream.StreamHeader) != "" {
		s.receiveLogged(m)
		return
	}
	origin := m.Header.Get(HeaderOrigin)
	if origin == b.node {
		return // our own: nats.NoEcho() spares us these
	}
	c, err := decodeMessage(m.Data)
	if err != nil {
		b.tel.malformed.Add(1)
		b.logs[logMalformed].log(b.opts.Logger, "natsbroker: a message that does not decode, dropped",
			"room", s.room, "origin", origin, "error", err)
		return
	}
	ctx := b.opts.Propagator.Extract(context.Background(), headerCarrier(m.Header))
	ctx, span := b.tracer.Start(ctx, "nats receive", consumer, receiveSpan(m, origin))
	s.mu.Lock()
	if !s.closed {
		s.deliver(ctx, c)
		b.tel.received.Add(1)
	}
	s.mu.Unlock()
	span.End()
}

// sawDrops notes the NATS client's count of the messages it dropped from
// the subscription, and logs that it grew.
func (s *sub) sawDrops(ns *nats.Subscription) {
	d, err := ns.Dropped()
	if err != nil {
		return
	}
	if prev := s.dropped.Swap(int64(d)); int64(d) > prev {
		s.b.logs[logSlow].log(s.b.opts.Logger, "natsbroker: a room's subscription is over its pending limits: messages dropped",
			"room", s.room, "dropped", int64(d)-prev)
	}
}

// unsubscribe is the function Subscribe returns.
func (s *sub) unsubscribe() {
	if !s.close() {
		return
	}
	b := s.b
	b.mu.Lock()
	_, live := b.subs[s]
	if live {
		b.retire(s)
	}
	b.mu.Unlock()
	if live {
		s.end()
	}
}

// close stops the deliveries, waiting for one in progress. It reports
// whether it was the first to.
func (s *sub) close() bool {
	s.closing.Store(true) // a read from the stream under way gives up (retry)
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.closed
	s.closed = true
	return first
}

// retire takes s out of the live subscriptions, its drops counted among
// those of the subscriptions that were. b.mu is held.
func (b *Broker) retire(s *sub) {
	if d, err := s.ns.Dropped(); err == nil {
		s.dropped.Store(int64(d))
	}
	b.tel.retiredDrops.Add(s.dropped.Load())
	delete(b.subs, s)
}

// end unsubscribes s from NATS.
func (s *sub) end() {
	err := s.ns.Unsubscribe()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		s.b.logs[logUnsubscribe].log(s.b.opts.Logger, "natsbroker: unsubscribe", "room", s.room, "error", err)
	}
}

// Publish implements runtime.Broker: m goes on room's subject with this
// node's HeaderOrigin and the trace context of ctx, without waiting for
// NATS. It fails, and counts the failure (shockwave.broker.errors), when
// m cannot be carried (no variant, too many, an opcode other than text
// or binary, a room name past MaxRoomName), when it is over the server's
// max_payload, when the connection is down and its reconnect buffer full
// (nats.ReconnectBufSize; until then NATS keeps what is published, and
// sends it once reconnected), or when it is closed. It may block while
// the connection's write buffer is flushed to a slow link, as long as
// nats.FlusherTimeout allows.
func (b *Broker) Publish(ctx context.Context, room string, m runtime.Carried) error {
	if b.done.Load() {
		b.fail(errClosed, room, ErrClosed)
		return ErrClosed
	}
	n, err := encodedLen(m)
	if err != nil {
		b.fail(errInvalid, room, err)
		return err
	}
	subj, err := b.subject(room)
	if err != nil {
		b.fail(errInvalid, room, err)
		return err
	}
	ctx, span := b.tracer.Start(ctx, "nats send", producer, sendSpan(subj, n))
	defer span.End()
	bp := bufpool.Get(n)
	defer bufpool.Put(bp)
	h := nats.Header{HeaderOrigin: []string{b.node}}
	b.opts.Propagator.Inject(ctx, headerCarrier(h))
	err = b.nc.PublishMsg(&nats.Msg{Subject: subj, Header: h, Data: appendMessage((*bp)[:0], m)})
	if err != nil {
		failed(span, err)
		b.fail(b.publishReason(err), room, err)
		return err
	}
	b.tel.published.Add(1)
	return nil
}

// publishReason returns the reason a failed publish is counted under.
func (b *Broker) publishReason(err error) int {
	switch {
	case errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrHeadersNotSupported) && !b.nc.IsConnected(): // never connected yet
		return errDisconnected
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return errClosed
	case errors.Is(err, nats.ErrMaxPayload):
		return errMaxPayload
	}
	return errPublish
}

// fail counts an error and logs it, at most once a second for each
// reason.
func (b *Broker) fail(reason int, room string, err error) {
	b.tel.errors[reason].Add(1)
	b.logs[reason].log(b.opts.Logger, errorLogs[reason], "room", room, "error", err)
}

// Close unsubscribes every room, waiting for deliveries in progress, and
// makes later Subscribe and Publish calls fail with ErrClosed; the
// functions Subscribe returned do nothing after it. It does not drain or
// close the connection, which is the application's: shut the Runtime
// down first, then Close the Broker, then nc.Drain(). Close is
// idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.done.Swap(true) {
		b.mu.Unlock()
		return nil
	}
	subs := make([]*sub, 0, len(b.subs))
	for s := range b.subs {
		b.retire(s)
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.close() // outside b.mu: a delivery may be under way
		s.end()
	}
	b.nc.RemoveStatusListener(b.log.watch)
	b.log.watched.Wait()
	b.closePresence()
	return b.tel.close()
}

// Stats are a Broker's counts since New: what its metrics report.
type Stats struct {
	// Published counts the messages handed to NATS; Received, those of
	// the other nodes delivered to this node's rooms.
	Published, Received int64
	// Dropped counts the messages received but not delivered.
	Dropped struct {
		// SlowConsumer: dropped by the NATS client, a room's subscription
		// over its pending limits (Options.PendingMsgs, PendingBytes).
		SlowConsumer int64
		// Malformed: a body this node could not decode.
		Malformed int64
		// Gap: the times a followed room's logged messages could not be
		// read from the stream, after a gap in what it republished or a
		// reconnection (see Follow): each lost an unknown number of
		// messages for this node's members.
		Gap int64
	}
	// Errors counts the failures, by reason.
	Errors struct {
		// Disconnected: publishes refused while the connection was
		// down, its reconnect buffer full.
		Disconnected int64
		// Closed: publishes refused by a closed or draining connection, or
		// after Close.
		Closed int64
		// MaxPayload: publishes over the server's max_payload.
		MaxPayload int64
		// Invalid: messages that cannot be carried (see Publish).
		Invalid int64
		// Publish: publishes that failed otherwise.
		Publish int64
		// Subscribe: subscriptions that failed.
		Subscribe int64
	}
	// Subscriptions is how many rooms the node subscribes to now.
	Subscriptions int
	// Presence counts the rooms' presence (SharePresence).
	Presence PresenceStats
}

// Stats returns the Broker's counts.
func (b *Broker) Stats() Stats {
	var st Stats
	st.Presence = b.presenceStats()
	t := b.tel
	st.Published, st.Received = t.published.Load(), t.received.Load()
	st.Dropped.Malformed, st.Dropped.Gap = t.malformed.Load(), t.gaps.Load()
	e := &st.Errors
	for i, p := range [nErrors]*int64{&e.Disconnected, &e.Closed, &e.MaxPayload, &e.Invalid, &e.Publish, &e.Subscribe} {
		*p = t.errors[i].Load()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st.Subscriptions = len(b.subs)
	st.Dropped.SlowConsumer = t.retiredDrops.Load()
	for s := range b.subs {
		d := s.dropped.Load()
		if n, err := s.ns.Dropped(); err == nil {
			d = max(d, int64(n))
		}
		st.Dropped.SlowConsumer += d
	}
	return st
}

var _ runtime.Broker = (*Broker)(nil)
