package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"reflect"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// Client is the Go side of the envelope protocol (docs/protocol.md): what
// codec/js/shockwave.js is to a page, for bots, load tools, tests and Go
// services. Dial opens one; then
//
//	codec.Listen(c, "chat.msg", func(m Chat, meta codec.Meta) { ... })
//	joined, err := c.Join(ctx, "lobby", codec.Recent(50))
//	err = c.Emit(ctx, "chat.send", Chat{Text: "hi"}, codec.InRoom("lobby"))
//	rooms, err := codec.Request[[]string](ctx, c, "rooms.list", query)
//
// # Concurrency
//
// A Client owns one goroutine, its reader, which Dial starts and which
// ends when the client stops for good: Close, or the end of the
// connection when the client does not reconnect. Done is closed when it
// has ended. Every listener is called on it, one at a time, in the order
// the messages arrived, and a reply completes its Request only after the
// listeners of every event that arrived before it have returned: a
// request whose handler published to a room returns after the client's
// listener has seen the publish. While a listener runs, nothing else is
// read, so it should not take long. It may Emit, register listeners and
// Close, but it must not wait for a reply (Request, Join, Leave): the
// reply cannot be read until the listener returns, so such a call could
// only time out. Start a goroutine for that. A panic in a listener is not
// recovered. The hooks of ClientOptions (OnResume, OnReconnect,
// OnDisconnect, ErrorHandler) run on the reader too, under the same
// rules.
//
// Emit, Request, Join and Leave may be called from any number of
// goroutines: writes are serialised by the connection.
//
// # Errors
//
// A request the server refused fails with its *Error (errors.As), the
// code being the server's (CodeUnknownEvent, CodeBadPayload, an
// application's). One that got no reply in time fails with the context's
// error (errors.Is(err, context.DeadlineExceeded)). One whose connection
// was lost after it was sent fails with ErrDisconnected, joined with why
// the connection ended (wire.CloseStatus(err) gives the close code, if
// any): the server may or may not have handled it. One made after Close,
// or after the client stopped for good, fails with wire.ErrClosed
// (net.ErrClosed), joined with the close frame, if any, that ended the
// connection. ErrDisconnected matches wire.ErrClosed too. The server's
// "error" events reach Listen[*Error](c, EventError, ...).
//
// # Reconnection
//
// By default a Client is one connection: when it ends, Done is closed and
// Err says why; reconnecting means dialing again and joining the rooms
// again. With ClientOptions.Reconnect (WithReconnect), a client whose
// connection is lost dials again, with jittered exponential backoff
// (ClientOptions.Backoff: 500 ms, 1 s, 2 s ... up to 30 s, each up to
// half shorter, as the browser client), with the same DialOptions (the
// header, its cookie, included). On each new connection, before anything
// else is sent on it, it joins again every room it joined with Join and
// has not left, with that Join's options and the position of the last
// event it got there (Position), so that a room that keeps history sends
// what the client missed: each re-join's reply reaches
// ClientOptions.OnResume, before the messages that follow it reach their
// listeners; a Joined that is not Recovered means that messages may be
// missing, and the application should resynchronise (Joined.State, and
// the Replayed messages that follow). A re-join the server refuses
// forgets the room and goes to ErrorHandler.
//
// While the client is reconnecting, Emit, Request, Join and Leave wait
// for the new connection, within their context (Request's RequestTimeout
// applies), and are sent after the re-joins; they fail at once once the
// client has stopped. A listener or hook, which runs on the goroutine
// that reconnects, cannot wait: its Emit fails. The client stops for good
// after Close or CloseNow, when the server closes the connection with a
// code of ClientOptions.StopCodes (3000, wire.StatusUnauthorized, by
// default: its credentials expired), when a dial is refused with 401 or
// 403 (the same credentials would be refused again), or after
// ClientOptions.MaxAttempts failed dials in a row, if set; only then is
// Done closed. Other close codes — 1001 at a server's shutdown, 1008 for
// a slow consumer, an application's 4000–4999 — are reconnected after:
// list in StopCodes those that should not be.
type Client struct {
	url    string
	opts   ClientOptions
	codecs []envelopeCodec // the offered codecs, in opts.Codecs' order
	protos []string        // their subprotocols

	listeners atomic.Pointer[map[string]*listener]
	lmu       sync.Mutex // serialises registrations

	nextID atomic.Uint64

	// Lock order: gate, then mu; jmu and lmu alone.
	mu      sync.Mutex          // guards the fields up to ended
	link    *link               // the connection of the moment, nil while there is none
	ready   bool                // link's re-joins are written: calls may use it
	changed chan struct{}       // closed, and replaced, when link, ready, closing or ended change
	cd      envelopeCodec       // the codec of the latest connection
	pending map[uint64]*pending // the requests sent on link waiting for their reply
	closing bool                // Close or CloseNow was called
	ended   error               // why the client stopped, once it has

	// stop ends with Close or CloseNow: the wait between two dials, a
	// dial, the writes of re-joins.
	stop       context.Context
	cancelStop context.CancelFunc

	// reader is the id of the reader goroutine, so that Close called
	// from a listener does not wait for the goroutine it runs on.
	reader atomic.Uint64
	// gate is held by the reader while it dispatches a message, and by
	// Close around the closing handshake; see shut.
	gate     sync.Mutex
	done     chan struct{} // closed when the reader has ended
	closed   chan struct{} // closed when the first Close or CloseNow has closed
	closeErr error         // the first Close's, written before closed is closed

	rooms map[string]string // the reader's: room names it has seen, so that Meta.Room does not allocate

	jmu    sync.Mutex         // guards joined
	joined map[string]*member // the rooms joined with Join, until Leave
}

// link is one connection of a Client.
type link struct {
	conn  *wire.Conn
	codec envelopeCodec // the codec it speaks
}

// ErrDisconnected is the error of a request whose connection was lost
// after it was sent and before its reply came: the server may or may not
// have handled it. It matches wire.ErrClosed too.
var ErrDisconnected error = disconnected{}

type disconnected struct{}

func (disconnected) Error() string        { return "codec: connection lost before the reply" }
func (disconnected) Is(target error) bool { return target == wire.ErrClosed }

// Meta is the envelope of an event, beside its payload.
type Meta struct {
	// Event is the event's name.
	Event string
	// Room is the envelope's room: for an event a Router published, the
	// room it was published to. "" when there is none.
	Room string
	// Traceparent is the envelope's W3C traceparent, or "": the trace of
	// the server's handler that sent the event, when the server traces.
	Traceparent string
	// Epoch and Offset are the event's position in its room's history
	// ("g" and "o"), in a room that keeps history
	// (runtime.WithRoomHistory); zero when it has none.
	Epoch, Offset uint64
}

// listener is a registered Listen function.
type listener struct {
	name string
	// call decodes the payload (or, for error events, takes x) and calls
	// the user's function.
	call func(c envelopeCodec, in inHeader, x *Error, m Meta) error
}

// pending is a request waiting for its reply.
type pending struct {
	event string
	// decode decodes the reply's payload into the caller's result; it
	// runs on the reader goroutine.
	decode func(c envelopeCodec, data []byte) error
	err    error         // set before done is closed
	done   chan struct{} // closed by the reader once err is set; nil for a re-join
	// after, if set, is told the outcome on the reader goroutine, once
	// err is set: a re-join's.
	after func(err error)
}

// finish completes p once p.err is set; on the reader goroutine.
func (p *pending) finish() {
	if p.after != nil {
		p.after(p.err)
	}
	if p.done != nil {
		close(p.done)
	}
}

// ClientOptions are the settings of a Client, in the style of Options:
// Dial applies its ClientOption functions to DefaultClientOptions and
// checks the result. Each field says its default, which
// DefaultClientOptions writes.
type ClientOptions struct {
	// Codecs are the codecs the client speaks, offered as their
	// subprotocols ("shockwave.json", ...) in order of preference. The
	// client speaks the one the server chooses (a Router chooses its
	// default codec when it was offered), or the first when the server
	// chooses none. Each must carry event envelopes (JSON, MsgPack; Raw
	// does not). Defaults to JSON, then MsgPack.
	Codecs []Codec
	// Dial is what Dial passes to wire.Dial, for the first connection
	// and every reconnection: the header of the upgrade request (Cookie,
	// Authorization), TLS, the handshake timeout, the connection's limits
	// and CloseTimeout, which bounds Close. Its Subprotocols are replaced
	// by those of Codecs. Defaults to the zero wire.DialOptions.
	Dial wire.DialOptions
	// RequestTimeout bounds a Request (Join, Leave) whose context has no
	// deadline, the wait for a connection while reconnecting included.
	// Defaults to 10 s, as the browser client's timeout.
	RequestTimeout time.Duration
	// ErrorHandler, if set, is told of every message the client received
	// and could not deliver: one that is not an envelope in the
	// connection's codec, an event whose payload does not decode into its
	// listener's type (the error says where, as a CodeBadPayload message
	// does), an "error" event without an error object; and of every
	// re-join after a reconnection that failed (event EventJoin, the
	// error naming the room; errors.As finds the server's *Error). event
	// is the message's event, or "". It runs on the reader goroutine, as
	// listeners do. Without it such messages are dropped.
	ErrorHandler func(event string, err error)

	// Reconnect makes the client dial again when its connection is lost,
	// and join its rooms again, resuming them (see Client, Reconnection).
	// Defaults to false: the client stops when its connection ends.
	Reconnect bool
	// Backoff says how long to wait before each dial of a reconnection.
	// Defaults to DefaultBackoff.
	Backoff Backoff
	// MaxAttempts, if positive, stops the client after that many failed
	// dials in a row; Err then says the last dial's error. Defaults to 0:
	// the client tries until it is closed.
	MaxAttempts int
	// StopCodes are the close codes after which the client does not
	// reconnect: the server does not want it back as it is. Defaults to
	// 3000 (wire.StatusUnauthorized); WithStopCodes replaces the list.
	StopCodes []wire.StatusCode
	// OnResume, if set, is told of the server's reply to every re-join
	// after a reconnection, on the reader goroutine, before the messages
	// that follow the reply reach their listeners (see Joined).
	OnResume func(j Joined)
	// OnReconnect, if set, is called on the reader goroutine after each
	// reconnection, once the re-joins are written and before their
	// replies are read: the place to Emit what the server should know of
	// the client on a new connection.
	OnReconnect func()
	// OnDisconnect, if set, is called on the reader goroutine when the
	// connection is lost and the client is about to reconnect, with why
	// it ended: once per outage, however many dials fail. It is not
	// called when the client stops (Done says so), nor after Close.
	OnDisconnect func(err error)
}

// Backoff is the wait before each dial of a reconnection: attempt n
// (from 0, reset by each connection made) waits min(Max, Min × Factorⁿ),
// cut by a random fraction up to Jitter, so that clients dropped together
// do not come back together.
type Backoff struct {
	Min, Max time.Duration
	Factor   float64 // at least 1
	Jitter   float64 // from 0 to 1
}

// DefaultBackoff is ClientOptions.Backoff's default, the browser client's:
// 500 ms, 1 s, 2 s ... up to 30 s, each up to half shorter.
var DefaultBackoff = Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Jitter: 0.5}

// Delay returns the wait before attempt n, from 0.
func (b Backoff) Delay(n int) time.Duration {
	d := float64(b.Max)
	if n < 64 {
		d = min(d, float64(b.Min)*math.Pow(b.Factor, float64(n)))
	}
	return time.Duration(d * (1 - b.Jitter*rand.Float64()))
}

// check reports what is wrong with b, if anything.
func (b Backoff) check() error {
	if b.Min <= 0 || b.Max < b.Min || !(b.Factor >= 1) || !(b.Jitter >= 0 && b.Jitter <= 1) {
		return fmt.Errorf("codec: Dial: Backoff %+v: want 0 < Min <= Max, Factor >= 1, Jitter from 0 to 1", b)
	}
	return nil
}

// DefaultRequestTimeout is ClientOptions.RequestTimeout's default.
const DefaultRequestTimeout = 10 * time.Second

// DefaultClientOptions returns the defaults, spelled out.
func DefaultClientOptions() ClientOptions {
	return ClientOptions{
		Codecs:         []Codec{JSON, MsgPack},
		RequestTimeout: DefaultRequestTimeout,
		Backoff:        DefaultBackoff,
		StopCodes:      []wire.StatusCode{wire.StatusUnauthorized},
	}
}

// A ClientOption changes ClientOptions.
type ClientOption func(*ClientOptions)

// WithClientCodecs sets ClientOptions.Codecs, the codecs the client
// offers, in order of preference: WithClientCodecs(MsgPack) speaks
// MessagePack or nothing.
func WithClientCodecs(cs ...Codec) ClientOption {
	return func(o *ClientOptions) { o.Codecs = cs }
}

// WithDialOptions sets ClientOptions.Dial, what wire.Dial is given. It
// replaces the whole of it, a header set by WithHeader included: pass it
// first.
func WithDialOptions(d wire.DialOptions) ClientOption {
	return func(o *ClientOptions) { o.Dial = d }
}

// WithHeader sets the header of the upgrade request
// (ClientOptions.Dial.Header): a sign-in cookie, say,
// http.Header{"Cookie": {"session=..."}}.
func WithHeader(h http.Header) ClientOption {
	return func(o *ClientOptions) { o.Dial.Header = h }
}

// WithRequestTimeout sets ClientOptions.RequestTimeout, the bound of a
// request whose context has no deadline.
func WithRequestTimeout(d time.Duration) ClientOption {
	return func(o *ClientOptions) { o.RequestTimeout = d }
}

// WithClientErrorHandler sets ClientOptions.ErrorHandler, told of every
// message the client could not deliver and every failed re-join.
func WithClientErrorHandler(f func(event string, err error)) ClientOption {
	return func(o *ClientOptions) { o.ErrorHandler = f }
}

// WithReconnect sets ClientOptions.Reconnect: whether the client dials
// again when its connection is lost, and resumes its rooms.
func WithReconnect(on bool) ClientOption {
	return func(o *ClientOptions) { o.Reconnect = on }
}

// WithBackoff sets ClientOptions.Backoff, the wait before each dial of a
// reconnection.
func WithBackoff(b Backoff) ClientOption {
	return func(o *ClientOptions) { o.Backoff = b }
}

// WithMaxAttempts sets ClientOptions.MaxAttempts, the failed dials in a
// row after which the client stops (0: no bound).
func WithMaxAttempts(n int) ClientOption {
	return func(o *ClientOptions) { o.MaxAttempts = n }
}

// WithStopCodes sets ClientOptions.StopCodes, the close codes after which
// the client does not reconnect. It replaces the default: list
// wire.StatusUnauthorized too to keep it.
func WithStopCodes(codes ...wire.StatusCode) ClientOption {
	return func(o *ClientOptions) { o.StopCodes = codes }
}

// WithOnResume sets ClientOptions.OnResume, told of every re-join's
// reply.
func WithOnResume(f func(j Joined)) ClientOption {
	return func(o *ClientOptions) { o.OnResume = f }
}

// WithOnReconnect sets ClientOptions.OnReconnect, called after each
// reconnection.
func WithOnReconnect(f func()) ClientOption {
	return func(o *ClientOptions) { o.OnReconnect = f }
}

// WithOnDisconnect sets ClientOptions.OnDisconnect, told when the
// connection is lost and the client is about to reconnect.
func WithOnDisconnect(f func(err error)) ClientOption {
	return func(o *ClientOptions) { o.OnDisconnect = f }
}

// Dial connects to the Router at url (ws:// or wss://) and starts the
// client's reader. ctx bounds the opening handshake only, as for
// wire.Dial; an upgrade the server refuses (401 for missing credentials,
// say) fails with a *wire.HandshakeError holding the status. Dial makes
// one attempt, whatever ClientOptions.Reconnect says: reconnection starts
// once a connection has been made. Options that are out of range (no
// codec, one that cannot carry envelopes, a RequestTimeout that is not
// positive, a Backoff that does not grow) fail Dial before it connects.
//
// Register listeners before the first Emit or Request whose answer they
// should see: an event that arrives with no listener for it is dropped.
func Dial(ctx context.Context, url string, opts ...ClientOption) (*Client, error) {
	o := DefaultClientOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.Codecs) == 0 {
		return nil, errors.New("codec: Dial: no codec to speak")
	}
	if o.RequestTimeout <= 0 {
		return nil, fmt.Errorf("codec: Dial: RequestTimeout %v: must be positive", o.RequestTimeout)
	}
	if err := o.Backoff.check(); err != nil {
		return nil, err
	}
	if o.MaxAttempts < 0 {
		return nil, fmt.Errorf("codec: Dial: MaxAttempts %d: must not be negative", o.MaxAttempts)
	}
	o.Codecs, o.StopCodes = slices.Clone(o.Codecs), slices.Clone(o.StopCodes)
	c := &Client{
		url:     url,
		opts:    o,
		codecs:  make([]envelopeCodec, len(o.Codecs)),
		protos:  make([]string, len(o.Codecs)),
		changed: make(chan struct{}),
		pending: make(map[uint64]*pending),
		done:    make(chan struct{}),
		closed:  make(chan struct{}),
		rooms:   make(map[string]string),
		joined:  make(map[string]*member),
	}
	for i, cd := range o.Codecs {
		ec, ok := cd.(envelopeCodec)
		if !ok {
			return nil, fmt.Errorf("codec: Dial: the %s codec cannot carry event envelopes", cd.Name())
		}
		c.codecs[i], c.protos[i] = ec, Subprotocol(cd)
	}
	l, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.link, c.ready, c.cd = l, true, l.codec
	c.stop, c.cancelStop = context.WithCancel(context.Background())
	c.listeners.Store(&map[string]*listener{})
	go c.run(l)
	return c, nil
}

// dial makes a connection.
func (c *Client) dial(ctx context.Context) (*link, error) {
	d := c.opts.Dial
	d.Subprotocols = c.protos
	conn, _, err := wire.Dial(ctx, c.url, &d)
	if err != nil {
		return nil, err
	}
	l := &link{conn: conn, codec: c.codecs[0]}
	for i, p := range c.protos {
		if p == conn.Subprotocol() {
			l.codec = c.codecs[i]
		}
	}
	return l, nil
}

// Codec returns the codec the connection speaks: the latest one's, while
// the client reconnects.
func (c *Client) Codec() Codec {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cd
}

// Done returns a channel closed when the client has stopped for good and
// its reader has ended: the connection is over, the client will not
// reconnect, every pending request has failed, and no listener will be
// called again.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped, once Done is closed: a
// wire.CloseError with the server's close code (the answer to Close is
// one too, 1000), the transport's error, or, when it gave up
// reconnecting, the last dial's error (with MaxAttempts, or a
// *wire.HandshakeError of 401 or 403). It returns nil before.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// Close closes the connection with 1000 (normal closure), after the
// closing handshake, stops reconnecting (a wait between dials, or a dial
// in progress, ends at once), and waits for the reader to end. The wire's
// CloseTimeout (ClientOptions.Dial.CloseTimeout, 5 s by default) bounds
// the handshake, once a listener or hook in progress has returned.
// Requests and emits still waiting fail with wire.ErrClosed. Close may be
// called any number of times, from any goroutine, a listener or hook
// included: there it does not wait for the reader it runs on, which ends
// once the listener returns (Done says when). Close returns the error of
// the closing handshake, or nil when there was no connection to close.
func (c *Client) Close() error { return c.shut(false) }

// CloseNow closes the connection at once, without the closing handshake,
// as a lost network would, even while a Close waits for the server's
// answer, stops reconnecting, and waits for the reader as Close does.
func (c *Client) CloseNow() error { return c.shut(true) }

// shut closes the client, its connection at once if now, and waits for
// the reader unless it runs on it.
func (c *Client) shut(now bool) error {
	onReader := goid() == c.reader.Load()
	c.mu.Lock()
	first := !c.closing
	c.closing = true
	l := c.link
	c.signal()
	c.mu.Unlock()
	c.cancelStop()
	if now && l != nil {
		l.conn.CloseNow()
	}
	if first {
		var err error
		switch {
		case now || l == nil:
		case onReader: // in a listener, the reader holding the gate, or in a hook
			err = l.conn.Close(wire.StatusNormalClosure, "")
		default:
			// wire.Conn.Close reads until the server's answer when
			// the reader is not in Read, into the buffer of the
			// message the reader may be dispatching: wait for the
			// dispatch to end, and keep the reader from starting
			// another.
			c.gate.Lock()
			err = l.conn.Close(wire.StatusNormalClosure, "")
			c.gate.Unlock()
		}
		if !errors.Is(err, wire.ErrClosed) {
			c.closeErr = err
		}
		close(c.closed)
	}
	switch {
	case onReader && first:
		return c.closeErr
	case onReader:
		return nil // another goroutine's Close is under way, perhaps waiting for this listener
	}
	<-c.closed
	<-c.done
	return c.closeErr
}

// signal wakes the calls waiting for a connection; c.mu is held.
func (c *Client) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Listen registers fn for the events called event, replacing any function
// it had; a nil fn removes it. fn receives the payload decoded into a T (a
// zero T when the event has none) and the envelope's Meta. A payload that
// does not decode into a T is not delivered: ClientOptions.ErrorHandler
// is told. The value is fn's to keep.
//
// For EventError, the server's "error" events, T must be *Error or Error:
// fn receives the event's error object. Listen panics otherwise, as for
// any other mistake of the program's.
//
// fn runs on the client's reader goroutine, in the order the events
// arrived; see Client for what it may do. Listeners may be registered at
// any time, from any goroutine.
func Listen[T any](c *Client, event string, fn func(v T, m Meta)) {
	var l *listener
	if fn != nil {
		if event == EventError {
			switch any((*T)(nil)).(type) {
			case **Error, *Error:
			default:
				var v T
				panic(fmt.Sprintf("codec: Listen: %q events carry an *Error, not %T", EventError, v))
			}
		}
		l = &listener{name: event, call: func(cd envelopeCodec, in inHeader, x *Error, m Meta) error {
			var v T
			if x != nil { // an error event: T is *Error or Error
				switch p := any(&v).(type) {
				case **Error:
					*p = x
				case *Error:
					*p = *x
				}
			} else if in.data != nil {
				if err := cd.decodeParsed(in.data, &v); err != nil {
					msg := payloadMessage(cd, event, in.data, reflect.TypeOf(&v).Elem(), err)
					return fmt.Errorf("codec: %s: %w", msg, err)
				}
			}
			fn(v, m)
			return nil
		}}
	}
	c.lmu.Lock()
	defer c.lmu.Unlock()
	m := maps.Clone(*c.listeners.Load())
	if l != nil {
		m[event] = l
	} else {
		delete(m, event)
	}
	c.listeners.Store(&m)
}

// A CallOption changes the envelope of one Emit or Request.
type CallOption func(*outHeader)

// InRoom puts room in the envelope ("r"): the room the event is about,
// such as the one a chat message is said in.
func InRoom(room string) CallOption { return func(h *outHeader) { h.room = room } }

// Emit sends event with payload v (none when v is nil), an event that gets
// no reply: the server answers only if it fails, with an "error" event.
// When ctx carries a span (OpenTelemetry), its traceparent goes in the
// envelope, so that a tracing server continues the trace. ctx bounds the
// write as wire.Conn.Write says: a write it ends midway closes the
// connection. While the client reconnects, Emit waits for the connection
// until ctx ends (see Client, Reconnection), and a write that the loss of
// the connection cut short, which the server cannot have handled, is made
// again on the next one. Emit returns once the message is written, and
// fails when v does not encode or the client is closed (wire.ErrClosed).
func (c *Client) Emit(ctx context.Context, event string, v any, opts ...CallOption) error {
	h := outHeader{event: event, trace: traceparent(ctx)}
	for _, o := range opts {
		o(&h)
	}
	var lost *link
	for {
		l, err := c.await(ctx, lost)
		if err == nil {
			var broken bool
			if broken, err = c.send(ctx, l, h, v); err == nil {
				return nil
			} else if broken && c.opts.Reconnect {
				lost = l // not sent whole: again on the next connection
				continue
			}
		} else if err == ctx.Err() {
			err = fmt.Errorf("no connection before the context ended: %w", err)
		}
		return fmt.Errorf("codec: emit %q: %w", event, err)
	}
}

// Request sends event with payload v (none when v is nil) as a request and
// waits for its reply, whose payload it decodes into an R (a zero R when
// the reply has none: use struct{} when no result is expected). It waits
// until ctx ends, or ClientOptions.RequestTimeout (10 s by default) when
// ctx has no deadline, for the connection, while the client reconnects,
// and for the reply. The traceparent of ctx's span, if any, goes in the
// envelope, as for Emit.
//
// It fails with the server's *Error when the server refused the request;
// with an error that is ctx's (context.DeadlineExceeded for a timeout)
// when no reply came in time, the request having perhaps been handled;
// with ErrDisconnected when the connection was lost after it was sent,
// the request having perhaps been handled too; with wire.ErrClosed when
// the client was closed or had stopped; or when v does not encode, or the
// reply's payload does not decode into an R.
func Request[R any](ctx context.Context, c *Client, event string, v any, opts ...CallOption) (R, error) {
	var res R
	decode := func(cd envelopeCodec, data []byte) error { return cd.decodeParsed(data, &res) }
	if err := c.request(ctx, event, v, decode, opts); err != nil {
		var zero R
		return zero, err
	}
	return res, nil
}

// Join joins room with the Router's built-in room.join (see
// Router.HandleRooms) and returns the server's answer once it has come:
// the client then gets what is published to the room, and keeps the
// room's position (Position), to resume from after a reconnection. The
// server's refusal is an *Error (CodeTooManyRooms, CodeBadRequest, or its
// Allow or State function's). opts add to the request, and to the room's
// re-joins after reconnections: Recent asks for the room's latest
// messages.
//
// The messages the join queued (Joined.Replayed of them) follow the
// reply: their listeners run after Join has the reply, perhaps after it
// has returned.
//
// A failed Join (refused, timed out, disconnected) leaves the room as it
// was for the client: one joined before stays joined. Joining a room the
// client is in already is a first join again: the server sends the Recent
// messages again, and the reply is not Recovered.
func (c *Client) Join(ctx context.Context, room string, opts ...JoinOption) (Joined, error) {
	var jc joinConfig
	for _, o := range opts {
		o(&jc)
	}
	var j Joined
	decode := func(cd envelopeCodec, data []byte) (err error) {
		if j, err = decodeJoined(cd, room, data); err == nil {
			c.entered(room, jc, j)
		}
		return err
	}
	var req any
	if jc.recent > 0 {
		req = JoinRequest{Recent: jc.recent}
	}
	if err := c.request(ctx, EventJoin, req, decode, []CallOption{InRoom(room)}); err != nil {
		return Joined{}, err
	}
	j.Room = room // a reply without a payload: a server older than JoinReply
	return j, nil
}

// Leave leaves room with the Router's built-in room.leave, as Join joins
// it. The client forgets the room at once: its position, and its re-join
// after a reconnection.
func (c *Client) Leave(ctx context.Context, room string) error {
	c.forgetRoom(room, nil)
	return c.request(ctx, EventLeave, nil, nil, []CallOption{InRoom(room)})
}

// request sends a request and waits for its reply, whose payload decode,
// if set, decodes on the reader goroutine.
func (c *Client) request(ctx context.Context, event string, v any, decode func(envelopeCodec, []byte) error, opts []CallOption) error {
	timeout := time.Duration(0)
	if _, ok := ctx.Deadline(); !ok {
		timeout = c.opts.RequestTimeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	h := outHeader{event: event, hasID: true, trace: traceparent(ctx)}
	for _, o := range opts {
		o(&h)
	}
	var lost *link
	for {
		h.id = 0
		l, err := c.await(ctx, lost)
		if err != nil {
			if err == ctx.Err() {
				return c.expired(ctx, h, timeout, "no connection")
			}
			return fmt.Errorf("codec: request %q: %w", event, err)
		}
		h.id = c.nextID.Add(1)
		p := &pending{event: event, decode: decode, done: make(chan struct{})}
		if !c.expect(l, h.id, p) {
			continue // l is gone already
		}
		broken, err := c.send(ctx, l, h, v)
		if err != nil {
			if !c.forget(h.id) {
				<-p.done // the reader failed it as the connection ended
			}
			if broken && c.opts.Reconnect {
				lost = l // not sent whole: again on the next connection
				continue
			}
			return fmt.Errorf("codec: request %q: %w", event, err)
		}
		select {
		case <-p.done:
			return p.err
		case <-ctx.Done():
		}
		if !c.forget(h.id) {
			<-p.done // the reader has taken the reply: it is on its way
			return p.err
		}
		return c.expired(ctx, h, timeout, "no reply")
	}
}

// expired is the error of request h whose ctx ended before what it
// waited for came.
func (c *Client) expired(ctx context.Context, h outHeader, timeout time.Duration, what string) error {
	call := fmt.Sprintf("request %q", h.event)
	if h.id != 0 {
		call += fmt.Sprintf(" (id %d)", h.id)
	}
	if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("codec: %s: %s within %v (RequestTimeout): %w", call, what, timeout, ctx.Err())
	}
	return fmt.Errorf("codec: %s: %s before the context ended: %w", call, what, ctx.Err())
}

// await returns the connection to send on, waiting while there is none
// (or only lost, which has failed) until ctx ends, when it returns
// ctx.Err() itself. It fails at once once the client has stopped, and
// when called on the reader goroutine, which makes the connections.
func (c *Client) await(ctx context.Context, lost *link) (*link, error) {
	for {
		c.mu.Lock()
		if c.closing || c.ended != nil {
			err := c.closedError()
			c.mu.Unlock()
			return nil, err
		}
		l, ch := c.link, c.changed
		if l != nil && c.ready && l != lost {
			c.mu.Unlock()
			return l, nil
		}
		c.mu.Unlock()
		if goid() == c.reader.Load() {
			return nil, fmt.Errorf("the connection is down, and the client's reader goroutine, which reconnects, cannot wait for it: %w", wire.ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// expect records request id, to be sent on l, as pending, unless l is no
// longer the client's connection.
func (c *Client) expect(l *link, id uint64, p *pending) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.link != l || c.closing {
		return false
	}
	c.pending[id] = p
	return true
}

// forget removes request id from the pending ones, and reports whether it
// was there: if not, the reader has taken it and will close its done.
func (c *Client) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

// closedError is the error of a call that cannot be made because the
// client is closed or has stopped. c.mu is held.
func (c *Client) closedError() error {
	switch {
	case c.closing || c.ended == nil:
		return fmt.Errorf("the client is closed: %w", wire.ErrClosed)
	case errors.Is(c.ended, wire.ErrClosed):
		return fmt.Errorf("the connection ended: %w", c.ended)
	}
	return fmt.Errorf("the connection ended (%w): %w", c.ended, wire.ErrClosed)
}

// send encodes an envelope in l's codec and writes it on l. A write that
// fails for another reason than ctx, and so may have cut the message,
// breaks l: it is closed, so that the reader sees it end, and broken says
// so (the server handled nothing of it).
func (c *Client) send(ctx context.Context, l *link, h outHeader, v any) (broken bool, err error) {
	bp := bufs.Get().(*[]byte)
	b, err := l.codec.appendEnvelope((*bp)[:0], h, v)
	if err == nil {
		err = l.conn.Write(ctx, l.codec.Opcode(), b) // the client masks a copy: b may be reused
		if broken = err != nil && ctx.Err() == nil; broken && !errors.Is(err, wire.ErrClosed) {
			l.conn.CloseNow() // ErrClosed: closed already, or closing (Close's handshake)
		}
	}
	if cap(b) <= maxKeptBuf {
		*bp = b[:0]
		bufs.Put(bp)
	}
	return broken, err
}

// run is the reader goroutine: it reads each connection until it ends,
// calling listeners and completing requests, and makes the next one, if
// the client reconnects.
func (c *Client) run(l *link) {
	defer close(c.done)
	c.reader.Store(goid())
	for l != nil {
		err := c.read(l)
		if !c.lost(l, err) {
			return
		}
		l = c.reconnect(err)
	}
}

// read reads l until it ends, and returns why.
func (c *Client) read(l *link) error {
	for {
		_, p, err := l.conn.Read(context.Background())
		if err != nil {
			return err
		}
		if !c.gate.TryLock() {
			continue // Close holds it: what comes now is dropped
		}
		c.dispatch(l, p)
		c.gate.Unlock()
	}
}

// lost handles the end of l with err: it fails the requests waiting for
// a reply on it and reports whether the client reconnects; if not, the
// client has stopped.
func (c *Client) lost(l *link, err error) bool {
	l.conn.CloseNow() // a transport error may leave it open
	c.mu.Lock()
	again := c.opts.Reconnect && !c.closing && !slices.Contains(c.opts.StopCodes, wire.CloseStatus(err))
	if !again {
		c.ended = err
	}
	c.link, c.ready = nil, false
	c.signal()
	ps := c.pending
	c.pending = make(map[uint64]*pending)
	for _, p := range ps {
		if c.closing {
			p.err = fmt.Errorf("codec: request %q: %w", p.event, c.closedError())
		} else {
			p.err = fmt.Errorf("codec: request %q: %w: %w", p.event, ErrDisconnected, err)
		}
	}
	c.mu.Unlock()
	for _, p := range ps {
		p.finish()
	}
	if again && c.opts.OnDisconnect != nil {
		c.opts.OnDisconnect(err)
	}
	return again
}

// dispatch handles one message of l; p is valid only during the call.
func (c *Client) dispatch(l *link, p []byte) {
	in, err := l.codec.parseEnvelope(p)
	if err != nil {
		c.report("", fmt.Errorf("codec: a message that is not a %s envelope: %w", l.codec.Name(), err))
		return
	}
	if !in.hasEvent {
		if in.hasID {
			c.reply(l, in, p)
		} else {
			c.report("", errors.New("codec: a message with neither an event nor a request id"))
		}
		return
	}
	if in.offset != 0 && len(in.room) > 0 {
		c.advance(in.room, in.epoch, in.offset) // before the listener: it sees its event's position
	}
	ls := (*c.listeners.Load())[string(in.event)]
	if ls == nil {
		return
	}
	var x *Error
	if ls.name == EventError {
		if x = errorOf(l.codec, p); x == nil {
			c.report(ls.name, errors.New("codec: an error event without an error object"))
			return
		}
	}
	m := Meta{Event: ls.name, Room: c.room(in.room), Epoch: in.epoch, Offset: in.offset}
	if len(in.trace) > 0 {
		m.Traceparent = string(in.trace)
	}
	if err := ls.call(l.codec, in, x, m); err != nil {
		c.report(ls.name, err)
	}
}

// reply completes the request the reply in answers, if it is still
// waiting: a reply that comes after its request gave up is dropped.
func (c *Client) reply(l *link, in inHeader, msg []byte) {
	c.mu.Lock()
	p := c.pending[in.id]
	delete(c.pending, in.id)
	c.mu.Unlock()
	if p == nil {
		return
	}
	if x := errorOf(l.codec, msg); x != nil {
		p.err = x
	} else if in.data != nil && p.decode != nil {
		if err := p.decode(l.codec, in.data); err != nil {
			p.err = fmt.Errorf("codec: the reply to %q does not decode: %w", p.event, err)
		}
	}
	p.finish()
}

// errorOf returns the error object ("x") of msg, or nil. The envelope
// parser, written for the server, skips "x"; replies and error events,
// the only messages that carry one, are decoded again for it here. They
// are few beside events, and small.
func errorOf(cd envelopeCodec, msg []byte) *Error {
	var env struct {
		X *Error `json:"x" msgpack:"x"`
	}
	if cd.Decode(msg, &env) != nil {
		return nil
	}
	return env.X
}

// maxRooms bounds the room names the reader keeps.
const maxRooms = 256

// room returns b as a string, without allocating for a room seen before.
func (c *Client) room(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := c.rooms[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(c.rooms) < maxRooms {
		c.rooms[s] = s
	}
	return s
}

// report tells ClientOptions.ErrorHandler of a message not delivered.
func (c *Client) report(event string, err error) {
	if c.opts.ErrorHandler != nil {
		c.opts.ErrorHandler(event, err)
	}
}

// goid returns the id of the calling goroutine, from the first line of
// its stack: "goroutine 7 [running]:". Only Close asks, to tell whether it
// runs on the reader.
func goid() uint64 {
	var buf [32]byte
	n := goruntime.Stack(buf[:], false)
	var id uint64
	for _, b := range bytes.TrimPrefix(buf[:n], []byte("goroutine ")) {
		if b < '0' || b > '9' {
			break
		}
		id = id*10 + uint64(b-'0')
	}
	return id
}
