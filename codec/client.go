package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	goruntime "runtime"
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
// A Client owns one goroutine, its reader, which Dial starts and Close
// (or the end of the connection) stops; Done is closed when it has ended.
// Every listener is called on it, one at a time, in the order the
// messages arrived, and a reply completes its Request only after the
// listeners of every event that arrived before it have returned: a
// request whose handler published to a room returns after the client's
// listener has seen the publish. While a listener runs, nothing else is
// read, so it should not take long. It may Emit, register listeners and
// Close, but it must not wait for a reply (Request, Join, Leave): the
// reply cannot be read until the listener returns, so such a call could
// only time out. Start a goroutine for that. A panic in a listener is not
// recovered.
//
// Emit, Request, Join and Leave may be called from any number of
// goroutines: writes are serialised by the connection.
//
// # Errors
//
// A request the server refused fails with its *Error (errors.As), the
// code being the server's (CodeUnknownEvent, CodeBadPayload, an
// application's). One that got no reply in time fails with the context's
// error (errors.Is(err, context.DeadlineExceeded)); one whose connection
// ended first, or that was made after Close, with wire.ErrClosed
// (net.ErrClosed), joined with the close frame, if any, that ended the
// connection (wire.CloseStatus(err)). The server's "error" events reach
// Listen[*Error](c, EventError, ...).
//
// # Reconnection
//
// A Client is one connection: when it ends, Done is closed and Err says
// why; reconnecting means dialing again and joining the rooms again. The
// protocol is gaining room positions and resumption (issue 17); when it
// has them, ClientOptions will gain fields to reconnect and resume (off by
// default) and Meta the position of each event, without changing what
// is here.
type Client struct {
	conn  *wire.Conn
	codec envelopeCodec
	opts  ClientOptions

	listeners atomic.Pointer[map[string]*listener]
	lmu       sync.Mutex // serialises registrations

	nextID atomic.Uint64

	// Lock order: gate, then mu; lmu alone.
	mu      sync.Mutex // guards pending, closing and ended
	pending map[uint64]*pending
	closing bool  // Close or CloseNow was called
	ended   error // why the reader stopped, once it has

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

	jmu    sync.Mutex         // guards joined; taken alone
	joined map[string]*member // the rooms joined with Join, until Leave
}

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
	done   chan struct{} // closed by the reader once err is set
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
	// Dial is what Dial passes to wire.Dial: the header of the upgrade
	// request (Cookie, Authorization), TLS, the handshake timeout, the
	// connection's limits and CloseTimeout, which bounds Close. Its
	// Subprotocols are replaced by those of Codecs. Defaults to the zero
	// wire.DialOptions.
	Dial wire.DialOptions
	// RequestTimeout bounds a Request (Join, Leave) whose context has no
	// deadline. Defaults to 10 s, as the browser client's timeout.
	RequestTimeout time.Duration
	// ErrorHandler, if set, is told of every message the client received
	// and could not deliver: one that is not an envelope in the
	// connection's codec, an event whose payload does not decode into its
	// listener's type (the error says where, as a CodeBadPayload message
	// does), an "error" event without an error object. event is the
	// message's event, or "". It runs on the reader goroutine, as
	// listeners do. Without it such messages are dropped.
	ErrorHandler func(event string, err error)
}

// DefaultRequestTimeout is ClientOptions.RequestTimeout's default.
const DefaultRequestTimeout = 10 * time.Second

// DefaultClientOptions returns the defaults, spelled out.
func DefaultClientOptions() ClientOptions {
	return ClientOptions{Codecs: []Codec{JSON, MsgPack}, RequestTimeout: DefaultRequestTimeout}
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
// message the client could not deliver.
func WithClientErrorHandler(f func(event string, err error)) ClientOption {
	return func(o *ClientOptions) { o.ErrorHandler = f }
}

// Dial connects to the Router at url (ws:// or wss://) and starts the
// client's reader. ctx bounds the opening handshake only, as for
// wire.Dial; an upgrade the server refuses (401 for missing credentials,
// say) fails with a *wire.HandshakeError holding the status. Options that
// are out of range (no codec, one that cannot carry envelopes, a
// RequestTimeout that is not positive) fail Dial before it connects.
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
	codecs := make([]envelopeCodec, len(o.Codecs))
	protos := make([]string, len(o.Codecs))
	for i, cd := range o.Codecs {
		ec, ok := cd.(envelopeCodec)
		if !ok {
			return nil, fmt.Errorf("codec: Dial: the %s codec cannot carry event envelopes", cd.Name())
		}
		codecs[i], protos[i] = ec, Subprotocol(cd)
	}
	d := o.Dial
	d.Subprotocols = protos
	conn, _, err := wire.Dial(ctx, url, &d)
	if err != nil {
		return nil, err
	}
	c := &Client{
		conn:    conn,
		codec:   codecs[0],
		opts:    o,
		pending: make(map[uint64]*pending),
		done:    make(chan struct{}),
		closed:  make(chan struct{}),
		rooms:   make(map[string]string),
		joined:  make(map[string]*member),
	}
	for i, p := range protos {
		if p == conn.Subprotocol() {
			c.codec = codecs[i]
		}
	}
	c.listeners.Store(&map[string]*listener{})
	go c.read()
	return c, nil
}

// Codec returns the codec the connection speaks.
func (c *Client) Codec() Codec { return c.codec }

// Done returns a channel closed when the client's reader has ended: the
// connection is over, every pending request has failed, and no listener
// will be called again.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, once Done is closed: a
// wire.CloseError with the server's close code (the answer to Close is
// one too, 1000), or the transport's error. It returns nil before.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// Close closes the connection with 1000 (normal closure), after the
// closing handshake, and waits for the reader to end. The wire's
// CloseTimeout (ClientOptions.Dial.CloseTimeout, 5 s by default) bounds
// both, once a listener in progress has returned. Requests still waiting fail with wire.ErrClosed. Close may be
// called any number of times, from any goroutine, a listener included:
// there it does not wait for the reader it runs on, which ends once the
// listener returns (Done says when). Close returns the error of the
// closing handshake, or nil when the connection had ended already.
func (c *Client) Close() error { return c.shut(false) }

// CloseNow closes the connection at once, without the closing handshake,
// as a lost network would, even while a Close waits for the server's
// answer, and waits for the reader as Close does.
func (c *Client) CloseNow() error { return c.shut(true) }

// shut closes the connection, at once if now, and waits for the reader
// unless it runs on it.
func (c *Client) shut(now bool) error {
	onReader := goid() == c.reader.Load()
	if now {
		c.conn.CloseNow()
	}
	c.mu.Lock()
	first := !c.closing
	c.closing = true
	c.mu.Unlock()
	if first {
		var err error
		switch {
		case now:
		case onReader: // in a listener, the reader holding the gate
			err = c.conn.Close(wire.StatusNormalClosure, "")
		default:
			// wire.Conn.Close reads until the server's answer when
			// the reader is not in Read, into the buffer of the
			// message the reader may be dispatching: wait for the
			// dispatch to end, and keep the reader from starting
			// another.
			c.gate.Lock()
			err = c.conn.Close(wire.StatusNormalClosure, "")
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
// connection. Emit returns once the message is written, and fails when v
// does not encode or the connection is closed (wire.ErrClosed).
func (c *Client) Emit(ctx context.Context, event string, v any, opts ...CallOption) error {
	h := outHeader{event: event, trace: traceparent(ctx)}
	for _, o := range opts {
		o(&h)
	}
	if err := c.send(ctx, h, v); err != nil {
		return fmt.Errorf("codec: emit %q: %w", event, err)
	}
	return nil
}

// Request sends event with payload v (none when v is nil) as a request and
// waits for its reply, whose payload it decodes into an R (a zero R when
// the reply has none: use struct{} when no result is expected). It waits
// until ctx ends, or ClientOptions.RequestTimeout (10 s by default) when
// ctx has no deadline. The traceparent of ctx's span, if any, goes in the
// envelope, as for Emit.
//
// It fails with the server's *Error when the server refused the request;
// with an error that is ctx's (context.DeadlineExceeded for a timeout)
// when no reply came in time, the request having perhaps been handled;
// with wire.ErrClosed when the connection ended first, or the client was
// closed; or when v does not encode, or the reply's payload does not
// decode into an R.
func Request[R any](ctx context.Context, c *Client, event string, v any, opts ...CallOption) (R, error) {
	var res R
	p := &pending{event: event, done: make(chan struct{})}
	p.decode = func(cd envelopeCodec, data []byte) error { return cd.decodeParsed(data, &res) }
	if err := c.request(ctx, event, v, p, opts); err != nil {
		var zero R
		return zero, err
	}
	return res, nil
}

// Join joins room with the Router's built-in room.join (see
// Router.HandleRooms) and returns the server's answer once it has come:
// the client then gets what is published to the room. The server's
// refusal is an *Error (CodeTooManyRooms, CodeBadRequest, or its Allow or
// State function's). opts add to the request: Recent asks for the room's
// latest messages.
//
// The messages the join queued (Joined.Replayed of them) follow the
// reply: their listeners run after Join has the reply, perhaps after it
// has returned.
func (c *Client) Join(ctx context.Context, room string, opts ...JoinOption) (Joined, error) {
	var jc joinConfig
	for _, o := range opts {
		o(&jc)
	}
	var j Joined
	p := &pending{event: EventJoin, done: make(chan struct{})}
	p.decode = func(cd envelopeCodec, data []byte) (err error) {
		if j, err = decodeJoined(cd, room, data); err == nil {
			c.entered(room, jc, j)
		}
		return err
	}
	var req any
	if jc.recent > 0 {
		req = JoinRequest{Recent: jc.recent}
	}
	if err := c.request(ctx, EventJoin, req, p, []CallOption{InRoom(room)}); err != nil {
		return Joined{}, err
	}
	j.Room = room // a reply without a payload: a server older than JoinReply
	return j, nil
}

// Leave leaves room with the Router's built-in room.leave, as Join joins
// it, and forgets the room's position at once.
func (c *Client) Leave(ctx context.Context, room string) error {
	c.forgetRoom(room, nil)
	return c.request(ctx, EventLeave, nil, &pending{event: EventLeave, done: make(chan struct{})}, []CallOption{InRoom(room)})
}

// request sends a request and waits for p to be answered.
func (c *Client) request(ctx context.Context, event string, v any, p *pending, opts []CallOption) error {
	timeout := time.Duration(0)
	if _, ok := ctx.Deadline(); !ok {
		timeout = c.opts.RequestTimeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	id := c.nextID.Add(1)
	h := outHeader{event: event, id: id, hasID: true, trace: traceparent(ctx)}
	for _, o := range opts {
		o(&h)
	}
	c.mu.Lock()
	if c.closing || c.ended != nil {
		err := c.closedError(event)
		c.mu.Unlock()
		return err
	}
	c.pending[id] = p
	c.mu.Unlock()

	if err := c.send(ctx, h, v); err != nil {
		if c.forget(id) {
			return fmt.Errorf("codec: request %q: %w", event, err)
		}
		<-p.done // the reader failed it as it ended
		return p.err
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
	}
	if !c.forget(id) {
		<-p.done // the reader has taken the reply: it is on its way
		return p.err
	}
	if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("codec: request %q (id %d): no reply within %v (RequestTimeout): %w", event, id, timeout, ctx.Err())
	}
	return fmt.Errorf("codec: request %q (id %d): no reply before the context ended: %w", event, id, ctx.Err())
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

// closedError is the error of a request that cannot be answered because
// the client is closed or its connection ended. c.mu is held.
func (c *Client) closedError(event string) error {
	if c.closing || c.ended == nil {
		return fmt.Errorf("codec: request %q: the client is closed: %w", event, wire.ErrClosed)
	}
	if errors.Is(c.ended, wire.ErrClosed) {
		return fmt.Errorf("codec: request %q: the connection ended: %w", event, c.ended)
	}
	return fmt.Errorf("codec: request %q: the connection ended (%w): %w", event, c.ended, wire.ErrClosed)
}

// send encodes an envelope and writes it.
func (c *Client) send(ctx context.Context, h outHeader, v any) error {
	bp := bufs.Get().(*[]byte)
	b, err := c.codec.appendEnvelope((*bp)[:0], h, v)
	if err == nil {
		err = c.conn.Write(ctx, c.codec.Opcode(), b) // the client masks a copy: b may be reused
	}
	if cap(b) <= maxKeptBuf {
		*bp = b[:0]
		bufs.Put(bp)
	}
	return err
}

// read is the reader goroutine: it reads until the connection ends,
// calling listeners and completing requests, then fails the requests
// still waiting.
func (c *Client) read() {
	defer close(c.done)
	c.reader.Store(goid())
	for {
		_, p, err := c.conn.Read(context.Background())
		if err != nil {
			c.end(err)
			return
		}
		if !c.gate.TryLock() {
			continue // Close holds it: what comes now is dropped
		}
		c.dispatch(p)
		c.gate.Unlock()
	}
}

// end records why the connection ended and fails the pending requests.
func (c *Client) end(err error) {
	c.conn.CloseNow() // a transport error may leave it open
	c.mu.Lock()
	c.ended = err
	ps := c.pending
	c.pending = nil
	for _, p := range ps {
		p.err = c.closedError(p.event)
	}
	c.mu.Unlock()
	for _, p := range ps {
		close(p.done)
	}
}

// dispatch handles one message; p is valid only during the call.
func (c *Client) dispatch(p []byte) {
	in, err := c.codec.parseEnvelope(p)
	if err != nil {
		c.report("", fmt.Errorf("codec: a message that is not a %s envelope: %w", c.codec.Name(), err))
		return
	}
	if !in.hasEvent {
		if in.hasID {
			c.reply(in, p)
		} else {
			c.report("", errors.New("codec: a message with neither an event nor a request id"))
		}
		return
	}
	if in.offset != 0 && len(in.room) > 0 {
		c.advance(in.room, in.epoch, in.offset) // before the listener: it sees its event's position
	}
	l := (*c.listeners.Load())[string(in.event)]
	if l == nil {
		return
	}
	var x *Error
	if l.name == EventError {
		if x = c.errorOf(p); x == nil {
			c.report(l.name, errors.New("codec: an error event without an error object"))
			return
		}
	}
	m := Meta{Event: l.name, Room: c.room(in.room), Epoch: in.epoch, Offset: in.offset}
	if len(in.trace) > 0 {
		m.Traceparent = string(in.trace)
	}
	if err := l.call(c.codec, in, x, m); err != nil {
		c.report(l.name, err)
	}
}

// reply completes the request the reply in answers, if it is still
// waiting: a reply that comes after its request gave up is dropped.
func (c *Client) reply(in inHeader, msg []byte) {
	c.mu.Lock()
	p := c.pending[in.id]
	delete(c.pending, in.id)
	c.mu.Unlock()
	if p == nil {
		return
	}
	if x := c.errorOf(msg); x != nil {
		p.err = x
	} else if in.data != nil && p.decode != nil {
		if err := p.decode(c.codec, in.data); err != nil {
			p.err = fmt.Errorf("codec: the reply to %q does not decode: %w", p.event, err)
		}
	}
	close(p.done)
}

// errorOf returns the error object ("x") of msg, or nil. The envelope
// parser, written for the server, skips "x"; replies and error events,
// the only messages that carry one, are decoded again for it here. They
// are few beside events, and small.
func (c *Client) errorOf(msg []byte) *Error {
	var env struct {
		X *Error `json:"x" msgpack:"x"`
	}
	if c.codec.Decode(msg, &env) != nil {
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
