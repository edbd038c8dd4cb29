package codec

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// Event names with a meaning of their own.
const (
	// EventError is the event of the errors a Router sends that are not
	// replies to a request: its "x" holds an Error.
	EventError = "error"
	// EventJoin and EventLeave ask to join or leave the room named in the
	// envelope; see Router.HandleRooms.
	EventJoin  = "room.join"
	EventLeave = "room.leave"
	// EventPresence tells a room that a user arrived or departed (a
	// PresenceEvent); see Router.PublishPresence.
	EventPresence = "room.presence"
)

// Error codes the Router sends. Handlers may use codes of their own.
const (
	// CodeBadMessage: the message is not an envelope in the session's
	// codec, or has no event name.
	CodeBadMessage = "bad_message"
	// CodeUnknownEvent: no handler is registered for the event.
	CodeUnknownEvent = "unknown_event"
	// CodeBadPayload: the payload does not decode into the handler's type.
	// The message says where and why in the words of the session's codec
	// (`payload of "chat.send": field "text" must be a string, not a
	// number`), not Go's; docs/protocol.md lists them.
	CodeBadPayload = "bad_payload"
	// CodeInternal: the handler failed with an error that is not an *Error.
	// Its text is not sent; see WithErrorHandler.
	CodeInternal = "internal"
	// CodeBadRequest: a request the handler refused, such as a room.join
	// without a room.
	CodeBadRequest = "bad_request"
	// CodeTooManyRooms: a room.join from a session already in
	// runtime.Limits.MaxRoomsPerSession rooms. The client may leave one
	// and try again.
	CodeTooManyRooms = "too_many_rooms"
)

// Error is the error object a client receives, as the "x" of a reply to a
// request or of an "error" event. A handler returns an *Error to choose the
// code and message the client sees; any other error reaches the client as
// CodeInternal, "internal error".
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Event is a payload together with its envelope. A handler that needs the
// room, the request id or the trace context registers for Event[T] instead
// of T: On[codec.Event[Chat]](r, "chat.send", ...). The Router fills the
// fields and decodes the payload into Data.
type Event[T any] struct {
	Name  string // the event name
	Room  string // the envelope's room, or ""
	Trace string // the W3C traceparent, or ""
	ID    uint64 // the request id, when HasID
	HasID bool
	Data  T
	// Ctx is the message's context (session.Message.Context): when
	// tracing is on it carries the message's span, which continues the
	// client's trace when the envelope had one. Pass it to PublishContext
	// or EmitContext to carry the trace on.
	Ctx context.Context `json:"-" msgpack:"-"`
}

func (e *Event[T]) setMeta(name string, in inHeader) {
	e.Name, e.Room, e.Trace = name, string(in.room), string(in.trace)
	e.ID, e.HasID = in.id, in.hasID
	e.Ctx = in.ctx
}

func (e *Event[T]) payload() any { return &e.Data }

// withMeta is implemented by *Event[T].
type withMeta interface {
	setMeta(name string, in inHeader)
	payload() any
}

// Router is a session.Handler that reads every message as an event envelope
// (see docs/protocol.md) and calls the handler registered for its event
// with the payload decoded into the handler's type. It answers requests —
// messages with an id — with exactly one reply or error, and sends events
// to sessions and rooms.
//
// Each session speaks one codec: the one whose subprotocol
// ("shockwave.json", "shockwave.msgpack") was chosen in the opening
// handshake, or else the Router's default. Serve the Router's
// Subprotocols so that clients can choose:
//
//	r := codec.NewRouter(codec.JSON)
//	rt, _ := runtime.New(r, runtime.WithSubprotocols(r.Subprotocols()...))
//
// OnOpen and OnClose do nothing: embed the Router in a type of your own to
// add them. Handlers may be registered at any time; a Router is safe for
// concurrent use.
type Router struct {
	codecs []envelopeCodec // the default first
	protos []string        // the subprotocol of each codec
	strict bool
	onErr  func(s *session.Session, event string, err error)

	mu     sync.Mutex // serializes registrations
	routes atomic.Pointer[map[string]*route]
}

// route is a registered handler.
type route struct {
	name string
	// call decodes the payload and runs the handler; a request's result
	// is returned to be sent back.
	call func(s *session.Session, c envelopeCodec, in inHeader) (any, error)
}

// Options are the settings of a Router, in the style of runtime.Options:
// NewRouter applies its Option functions to DefaultOptions. Each field says
// its default, which DefaultOptions writes.
type Options struct {
	// Codecs are the codecs that sessions may choose by subprotocol,
	// besides NewRouter's default. Each must carry event envelopes (JSON,
	// MsgPack; Raw does not). Defaults to JSON and MsgPack.
	Codecs []Codec
	// Strict makes the Router close a session that sends a message it
	// cannot route, instead of answering with an error and reading on
	// (the default): 1003 (unsupported data) for an unknown event, 1007
	// (invalid payload data) for a message or payload that does not
	// decode. Handler errors never close the session. Off by default.
	Strict bool
	// ErrorHandler, if set, is called with every error the Router reports
	// to a client or closes a session for: an *Error for messages it
	// cannot route (for CodeBadPayload, one that wraps the *Error sent
	// and the decoder's own error, such as a *json.UnmarshalTypeError,
	// which the client is not sent), or the error a handler returned
	// (including those sent as CodeInternal, whose text the client does
	// not see). It runs on the session's goroutine, before the error is
	// sent.
	ErrorHandler func(s *session.Session, event string, err error)
}

// DefaultOptions returns the defaults, spelled out.
func DefaultOptions() Options { return Options{Codecs: []Codec{JSON, MsgPack}} }

// An Option changes Options.
type Option func(*Options)

// WithCodecs sets Options.Codecs, the codecs that sessions may choose by
// subprotocol besides the default.
func WithCodecs(cs ...Codec) Option { return func(o *Options) { o.Codecs = cs } }

// WithStrict sets Options.Strict: a message the Router cannot route closes
// its session.
func WithStrict() Option { return func(o *Options) { o.Strict = true } }

// WithErrorHandler sets Options.ErrorHandler, told of every error the
// Router reports to a client or closes a session for.
func WithErrorHandler(f func(s *session.Session, event string, err error)) Option {
	return func(o *Options) { o.ErrorHandler = f }
}

// NewRouter returns a Router whose sessions speak def unless they choose
// another codec by subprotocol, with DefaultOptions changed by opts. def
// and Options.Codecs must carry event envelopes (JSON, MsgPack): NewRouter
// panics otherwise, as for any other mistake of the program's.
func NewRouter(def Codec, opts ...Option) *Router {
	o := DefaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	r := &Router{strict: o.Strict, onErr: o.ErrorHandler}
	r.addCodec(def)
	for _, c := range o.Codecs {
		r.addCodec(c)
	}
	r.routes.Store(&map[string]*route{})
	return r
}

func (r *Router) addCodec(c Codec) {
	ec, ok := c.(envelopeCodec)
	if !ok {
		panic(fmt.Sprintf("codec: the %s codec cannot carry event envelopes", c.Name()))
	}
	for _, have := range r.codecs {
		if have.Name() == c.Name() {
			return
		}
	}
	r.codecs = append(r.codecs, ec)
	r.protos = append(r.protos, Subprotocol(c))
}

// Subprotocol returns the WebSocket subprotocol that selects c:
// "shockwave." + c.Name().
func Subprotocol(c Codec) string { return "shockwave." + c.Name() }

// Subprotocols returns the subprotocols of the Router's codecs, the
// default first, for runtime.WithSubprotocols.
func (r *Router) Subprotocols() []string { return append([]string(nil), r.protos...) }

// Codec returns the codec session s speaks.
func (r *Router) Codec(s *session.Session) Codec { return r.codecs[r.codecIndex(s)] }

func (r *Router) codecIndex(s *session.Session) int {
	if sub := s.Subprotocol(); sub != "" {
		for i, p := range r.protos {
			if p == sub {
				return i
			}
		}
	}
	return 0
}

func (r *Router) add(rt *route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.routes.Load()
	m := make(map[string]*route, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[rt.name] = rt
	r.routes.Store(&m)
}

// On registers fn for event, replacing any handler it had. fn receives the
// payload decoded into a T (a zero T when the envelope has none; use
// Event[P] as T to see the envelope too). If the message is a request, the
// client gets an empty reply when fn returns nil, or the error.
//
// An error fn returns goes back to the client as an error (see Error);
// the session stays open, unless the error is a wire.CloseError, which
// closes it with that code. A handler that closes the session itself
// (s.Close) ends it before the reply: the client sees the close instead.
func On[T any](r *Router, event string, fn func(s *session.Session, m T) error) {
	r.add(&route{name: event, call: func(s *session.Session, c envelopeCodec, in inHeader) (any, error) {
		var m T
		if err := decodePayload(c, event, in, &m); err != nil {
			return nil, err
		}
		return nil, fn(s, m)
	}})
}

// Handle registers fn as the request handler of event, replacing any
// handler it had. A request (a message with an id) gets fn's result as its
// reply, or its error; the result of a message without an id is dropped.
// Payload and errors are as for On.
func Handle[T, R any](r *Router, event string, fn func(s *session.Session, req T) (R, error)) {
	r.add(&route{name: event, call: func(s *session.Session, c envelopeCodec, in inHeader) (any, error) {
		var req T
		if err := decodePayload(c, event, in, &req); err != nil {
			return nil, err
		}
		res, err := fn(s, req)
		if err != nil || !in.hasID {
			return nil, err
		}
		return res, nil
	}})
}

func decodePayload[T any](c envelopeCodec, name string, in inHeader, v *T) error {
	var target any = v
	if m, ok := target.(withMeta); ok {
		m.setMeta(name, in)
		target = m.payload()
	}
	if in.data == nil {
		return nil
	}
	if err := c.decodeParsed(in.data, target); err != nil {
		t := reflect.TypeOf(target).Elem()
		return decodeError{err: err, msg: payloadMessage(c, name, in.data, t, err)}
	}
	return nil
}

// OnOpen does nothing.
func (r *Router) OnOpen(*session.Session) error { return nil }

// OnClose does nothing.
func (r *Router) OnClose(*session.Session, error) {}

// OnMessage routes one message: it parses the envelope, runs the event's
// handler and answers a request. A message that cannot be routed is
// answered with an error (or closes the session, WithStrict).
//
// When tracing is on, the message's span (the runtime's "receive" span,
// m.Context()) is marked with every failure the Router handles: status
// Error and the error code as shockwave.error.code; the reply or error it
// sends carries the span's context, so that its delivery is traced too.
func (r *Router) OnMessage(s *session.Session, m session.Message) error {
	c := r.codecs[r.codecIndex(s)]
	ctx := m.Context()
	in, err := c.parseEnvelope(m.Data)
	if err != nil {
		return r.refuse(s, c, &inHeader{ctx: ctx}, wire.StatusInvalidFramePayloadData,
			&Error{Code: CodeBadMessage, Message: err.Error()}, nil)
	}
	in.ctx = ctx
	if !in.hasEvent {
		return r.refuse(s, c, &in, wire.StatusInvalidFramePayloadData,
			&Error{Code: CodeBadMessage, Message: "message has no event name"}, nil)
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attribute.String("shockwave.event", string(in.event)))
		if len(in.room) > 0 {
			span.SetAttributes(semconv.MessagingDestinationName(string(in.room)))
		}
	}
	rt, ok := (*r.routes.Load())[string(in.event)]
	if !ok {
		return r.refuse(s, c, &in, wire.StatusUnsupportedData,
			&Error{Code: CodeUnknownEvent, Message: fmt.Sprintf("unknown event %q", in.event)}, nil)
	}
	res, err := rt.call(s, c, in)
	if err != nil {
		var de decodeError
		var ce wire.CloseError
		switch {
		case errors.As(err, &de):
			return r.refuse(s, c, &in, wire.StatusInvalidFramePayloadData,
				&Error{Code: CodeBadPayload, Message: de.msg}, de.err)
		case errors.As(err, &ce):
			return ce // the runtime marks the span with it
		}
		if r.onErr != nil {
			r.onErr(s, rt.name, err)
		}
		var e *Error
		if errors.As(err, &e) {
			// The client's doing, not the server's, but the request
			// failed: a span's status says whether the operation
			// succeeded, and its description and code let a trace be
			// searched for refused requests. No exception event: an
			// *Error is an answer, not a fault.
			failed(ctx, e.Code, e.Message, nil)
		} else {
			e = &Error{Code: CodeInternal, Message: "internal error"}
			failed(ctx, CodeInternal, err.Error(), err)
		}
		r.sendError(s, c, &in, e)
		return nil
	}
	if _, done := res.(answered); in.hasID && !done {
		f, err := encodeFrame(c, outHeader{id: in.id, hasID: in.hasID}, res)
		if err != nil {
			// The result does not encode: the request still gets its
			// one answer.
			if r.onErr != nil {
				r.onErr(s, rt.name, err)
			}
			failed(ctx, CodeInternal, "the result does not encode: "+err.Error(), err)
			r.sendError(s, c, &in, &Error{Code: CodeInternal, Message: "internal error"})
			return nil
		}
		s.SendFrameContext(ctx, f)
	}
	return nil
}

// refuse answers a message that cannot be routed with e, or closes the
// session with code when the Router is strict. cause, if not nil, is the
// error behind e, for the server's eyes only.
func (r *Router) refuse(s *session.Session, c envelopeCodec, in *inHeader, code wire.StatusCode, e *Error, cause error) error {
	if r.onErr != nil {
		var err error = e
		if cause != nil {
			err = fmt.Errorf("%w (%w)", e, cause)
		}
		r.onErr(s, string(in.event), err)
	}
	failed(in.ctx, e.Code, e.Message, cause)
	if r.strict {
		return wire.CloseError{Code: code, Reason: e.Code}
	}
	r.sendError(s, c, in, e)
	return nil
}

// sendError sends e as the reply to a request, or as an "error" event, in
// the message's trace.
func (r *Router) sendError(s *session.Session, c envelopeCodec, in *inHeader, e *Error) {
	h := outHeader{id: in.id, hasID: in.hasID, err: e}
	if !in.hasID {
		h.event = EventError
	}
	r.send(in.ctx, s, c, h, nil)
}

// attrErrorCode is the attribute of a message's span that holds the code
// of the error the client was sent.
const attrErrorCode = "shockwave.error.code"

// failed marks the span of ctx, when it records, as failed with an error
// of code: status Error with desc, and cause, if not nil, recorded as an
// exception.
func failed(ctx context.Context, code, desc string, cause error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String(attrErrorCode, code))
	if cause != nil {
		span.RecordError(cause)
	}
	span.SetStatus(codes.Error, desc)
}

// Emit sends event with payload v to session s, in the session's codec. A
// nil v sends no payload. It never blocks; it fails like session.Send, or
// when v does not encode. See EmitContext to trace it.
func (r *Router) Emit(s *session.Session, event string, v any) error {
	return r.send(context.Background(), s, r.codecs[r.codecIndex(s)], outHeader{event: event}, v)
}

// EmitContext is Emit in the trace of ctx (an Event's Ctx, say): the
// envelope's traceparent names ctx's span, and, when that span records,
// the runtime records the frame's delivery as its child ("deliver"). Like
// Emit, it allocates nothing more when ctx's span does not record.
func (r *Router) EmitContext(ctx context.Context, s *session.Session, event string, v any) error {
	return r.send(ctx, s, r.codecs[r.codecIndex(s)], outHeader{event: event, trace: traceparent(ctx)}, v)
}

// TraceParent implements runtime.TraceParenter: it returns the envelope's
// traceparent, so that the runtime's span of the message continues the
// client's trace. The runtime calls it only when tracing is on.
func (r *Router) TraceParent(s *session.Session, m session.Message) string {
	in, err := r.codecs[r.codecIndex(s)].parseEnvelope(m.Data)
	if err != nil {
		return ""
	}
	return string(in.trace)
}

// traceparent returns the W3C traceparent of ctx's span, or "".
func traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	flags := "00"
	if sc.IsSampled() {
		flags = "01"
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + flags
}

// send encodes an envelope and sends it to s, in the trace of ctx.
func (r *Router) send(ctx context.Context, s *session.Session, c envelopeCodec, h outHeader, v any) error {
	f, err := encodeFrame(c, h, v)
	if err != nil {
		return err
	}
	return s.SendFrameContext(ctx, f) // its delivery in ctx's trace, when ctx records
}

// Publish sends event with payload v to every member of room; see
// PublishExceptContext.
func (r *Router) Publish(room *runtime.Room, event string, v any) (int, error) {
	return r.PublishExceptContext(context.Background(), room, nil, event, v)
}

// PublishContext is Publish in the trace of ctx; see PublishExceptContext.
func (r *Router) PublishContext(ctx context.Context, room *runtime.Room, event string, v any) (int, error) {
	return r.PublishExceptContext(ctx, room, nil, event, v)
}

// PublishExcept sends event with payload v to every member of room but
// except; see PublishExceptContext.
func (r *Router) PublishExcept(room *runtime.Room, except *session.Session, event string, v any) (int, error) {
	return r.PublishExceptContext(context.Background(), room, except, event, v)
}

// PublishExceptContext sends event with payload v to every member of room
// but except (which may be nil), with the room's name in the envelope, and
// returns how many members accepted it. v is encoded once per codec in use
// among the members, into one shared frame each; a member costs a mailbox
// push, whatever the size of the room. It never blocks. If v does not
// encode in a codec, the members speaking it get nothing and the error is
// returned.
//
// ctx carries the trace (an Event's Ctx, say): the envelope's traceparent
// names ctx's span, the runtime's "publish" span is its child, and the
// members' deliveries are recorded under the publish (see
// runtime.Options.TraceDeliveries). With a context whose span does not
// record, such as context.Background(), it costs what PublishExcept does.
func (r *Router) PublishExceptContext(ctx context.Context, room *runtime.Room, except *session.Session, event string, v any) (int, error) {
	m := r.roomMsg(ctx, room, event, v)
	_, n, err := room.Publish(ctx, except, m)
	m.free()
	return n, err
}

// Signal sends event with payload v to every member of room but except
// (which may be nil), as PublishExceptContext does, but outside the room's
// history (runtime.Room.Signal): no position, never replayed to a client
// that resumes. For what matters only live: typing indicators, cursors.
// Presence events are signals (PublishPresence).
func (r *Router) Signal(ctx context.Context, room *runtime.Room, except *session.Session, event string, v any) (int, error) {
	m := r.roomMsg(ctx, room, event, v)
	n, err := room.Signal(ctx, except, m)
	m.free()
	return n, err
}

// roomMsg is an event published to a room: runtime.Room.Publish's
// Encoder, with a variant per codec of the Router, and the message's
// position in the room's history (if it keeps one) in the envelope.
// Pooled, so that a publish does not allocate.
type roomMsg struct {
	r *Router
	h outHeader
	v any
}

var roomMsgs = sync.Pool{New: func() any { return new(roomMsg) }}

// roomMsg returns a pooled roomMsg of event v to room, in ctx's trace.
func (r *Router) roomMsg(ctx context.Context, room *runtime.Room, event string, v any) *roomMsg {
	m := roomMsgs.Get().(*roomMsg)
	m.r, m.h, m.v = r, outHeader{event: event, room: room.Name(), trace: traceparent(ctx)}, v
	return m
}

// free puts m back in the pool.
func (m *roomMsg) free() {
	*m = roomMsg{}
	roomMsgs.Put(m)
}

func (m *roomMsg) Variants() int                  { return len(m.r.codecs) }
func (m *roomMsg) Variant(s *session.Session) int { return m.r.codecIndex(s) }

// Key names variant v by its codec's subprotocol, so that a
// runtime.Broker can carry every variant to the other nodes.
func (m *roomMsg) Key(v int) string { return m.r.protos[v] }

func (m *roomMsg) Encode(pos runtime.Position, v int) (*session.Frame, error) {
	h := m.h
	h.epoch, h.offset = pos.Epoch, pos.Offset
	return encodeFrame(m.r.codecs[v], h, m.v)
}

// JoinRequest is the payload of EventJoin: empty for a first join; for a
// client that comes back, the last position it saw in the room (the "g"
// and "o" of the room's last message it got), so that it gets what it
// missed (see runtime.Runtime.Resume).
type JoinRequest struct {
	Epoch  uint64 `json:"g,omitempty" msgpack:"g,omitempty"`
	Offset uint64 `json:"o,omitempty" msgpack:"o,omitempty"`
	// Recent asks, when the client cannot recover (a first join
	// included), for up to this many of the latest messages the room
	// keeps, sent after the reply: a chat's last lines. The room's
	// history bounds it; zero or less asks for none.
	Recent int `json:"n,omitempty" msgpack:"n,omitempty"`
}

// JoinReply is the reply to EventJoin. It comes before the messages the
// join queued to the client: those it missed since the position it gave,
// when Recovered, or else the Recent latest it asked for.
type JoinReply struct {
	// Recovered says that the messages the client missed follow, and
	// nothing is lost; false — a first join, a room that keeps no
	// history, a position it no longer serves — and the client
	// resynchronises, with State and the Replayed messages that follow.
	Recovered bool `json:"recovered" msgpack:"recovered"`
	// Replayed is how many messages of the room follow the reply.
	Replayed int `json:"replayed,omitempty" msgpack:"replayed,omitempty"`
	// Epoch and Offset are the position just before the first message
	// that follows, in a room that keeps history: the client takes it as
	// its own, unless it has already seen a later event of the same
	// epoch, so that it can resume even before the room publishes again.
	// An Epoch without an Offset (0): the room has published nothing
	// yet.
	Epoch  uint64 `json:"g,omitempty" msgpack:"g,omitempty"`
	Offset uint64 `json:"o,omitempty" msgpack:"o,omitempty"`
	// Present lists who is in the room, key to info, when the room tracks
	// presence (runtime.WithRoomPresence), the joiner included, and has
	// at most Rooms.MaxPresent users: a page shows the members without a
	// second request.
	Present map[string]any `json:"present,omitempty" msgpack:"present,omitempty"`
	// Count is how many users are present, whether Present lists them or
	// the room has too many to list.
	Count int `json:"count,omitempty" msgpack:"count,omitempty"`
	// State is the application's state of the room (Rooms.State), as of
	// the reply's position.
	State any `json:"state,omitempty" msgpack:"state,omitempty"`
}

// PresenceEvent is the payload of EventPresence: a user (its presence key,
// and the info others see of it) arrived in the room or departed.
type PresenceEvent struct {
	Key     string `json:"key" msgpack:"key"`
	Info    any    `json:"info,omitempty" msgpack:"info,omitempty"`
	Present bool   `json:"present" msgpack:"present"`
}

// PublishPresence publishes an EventPresence to the room's members: it
// is a runtime.Presence's Changed, ready to use (Changed:
// router.PublishPresence). A signal (see Signal): not kept in the room's
// history, so that a client that resumes is not replayed presence the
// join's reply has given it fresh. Encoded once per codec, as every
// publish. The arriving user's own session gets it too, after its join's
// reply. It reaches this node's members only (runtime.Room.SignalLocal):
// with a runtime.PresenceBroker, every node is told of every change and
// tells its own.
func (r *Router) PublishPresence(room *runtime.Room, key string, info any, present bool) {
	m := r.roomMsg(context.Background(), room, EventPresence, PresenceEvent{Key: key, Info: info, Present: present})
	_, _ = room.SignalLocal(context.Background(), nil, m)
	m.free()
}

// Rooms says how Router.HandleRooms serves the built-in room events. The
// zero Rooms lets any session join any room.
type Rooms struct {
	// Allow, if set, is asked before each join; the error it returns is
	// sent back (an *Error as it is) and the session does not join.
	Allow func(s *session.Session, room string) error
	// State, if set, returns the application's state of the room for a
	// session that joins it, sent as the reply's State, so that a client
	// needs no second request: a chat's topic, a game's board. res says
	// what the join does (res.Recovered: the client missed nothing, and
	// may need less). In a room that keeps history it runs under the
	// room's publish lock, so that the state is that of the reply's
	// position exactly: it must not publish to the room. Its error fails
	// the join, as Allow's does, and the session does not stay in the
	// room.
	State func(s *session.Session, res runtime.Resumption) (any, error)
	// MaxPresent is the most users a join's reply lists (JoinReply.Present)
	// in a room that tracks presence; in a room with more, the reply says
	// only how many (Count). A list costs the server, and the link, in
	// proportion to the room for every join: 0 means DefaultMaxPresent,
	// a negative number no list at all.
	MaxPresent int
}

// DefaultMaxPresent is Rooms.MaxPresent's default.
const DefaultMaxPresent = 1000

// HandleRooms registers the built-in EventJoin and EventLeave handlers on
// runtime rt: a client sends "room.join" or "room.leave" with the room's
// name as the envelope's room, and, if it sent a request, gets a reply
// once it has joined (a JoinReply) or left (empty), or an error. A join
// may carry a JoinRequest: the last position the client saw in a room
// that keeps history (runtime.WithRoomHistory), and how many of its
// latest messages it wants if it cannot recover; the reply comes first,
// then the messages the join queued (runtime.Rejoin.Reply). A join past
// runtime.Limits.MaxRoomsPerSession fails with CodeTooManyRooms.
func (r *Router) HandleRooms(rt *runtime.Runtime, rooms Rooms) {
	maxPresent := rooms.MaxPresent
	if maxPresent == 0 {
		maxPresent = DefaultMaxPresent
	}
	r.add(&route{name: EventJoin, call: func(s *session.Session, c envelopeCodec, in inHeader) (any, error) {
		var ev Event[JoinRequest]
		if err := decodePayload(c, EventJoin, in, &ev); err != nil {
			return nil, err
		}
		if ev.Room == "" {
			return nil, &Error{Code: CodeBadRequest, Message: EventJoin + " needs a room"}
		}
		if rooms.Allow != nil {
			if err := rooms.Allow(s, ev.Room); err != nil {
				return nil, err
			}
		}
		_, err := rt.Resume(ev.Room, s, runtime.Rejoin{
			Since:   runtime.Position{Epoch: ev.Data.Epoch, Offset: ev.Data.Offset},
			Recent:  ev.Data.Recent,
			Variant: r.codecIndex(s),
			Reply: func(res runtime.Resumption) error {
				reply := JoinReply{Recovered: res.Recovered, Replayed: res.Replayed, Epoch: res.At.Epoch, Offset: res.At.Offset}
				if reply.Count = res.Room.PresentCount(); reply.Count > 0 && reply.Count <= maxPresent {
					reply.Present = maps.Collect(res.Room.Present())
				}
				if rooms.State != nil {
					st, err := rooms.State(s, res)
					if err != nil {
						return err
					}
					reply.State = st
				}
				if !in.hasID {
					return nil
				}
				f, err := encodeFrame(c, outHeader{id: in.id, hasID: true}, reply)
				if err != nil {
					return fmt.Errorf("codec: the reply to %s does not encode: %w", EventJoin, err)
				}
				s.SendFrameContext(in.ctx, f)
				return nil
			},
		})
		switch {
		case errors.Is(err, runtime.ErrRoomName):
			return nil, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("room name of %d bytes: too long", len(ev.Room))}
		case errors.Is(err, runtime.ErrTooManyRooms):
			// The client's doing, and one it can undo: tell it so,
			// rather than "internal error".
			return nil, &Error{Code: CodeTooManyRooms, Message: fmt.Sprintf(
				"cannot join %q: this connection is in as many rooms as it may be; leave one first", ev.Room)}
		case err != nil:
			return nil, err // session.ErrClosed: nobody is left to read it
		}
		return answered{}, nil
	}})
	On(r, EventLeave, func(s *session.Session, ev Event[struct{}]) error {
		if ev.Room == "" {
			return &Error{Code: CodeBadRequest, Message: EventLeave + " needs a room"}
		}
		rt.Leave(ev.Room, s)
		return nil
	})
}

// answered is the result of a handler that has sent its reply itself.
type answered struct{}

// bufs holds the buffers envelopes are encoded into before they are
// copied into a frame.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxKeptBuf is the largest buffer a pool of this package keeps: an
// encoding buffer, or what a pooled MessagePack decoder may have grown.
const maxKeptBuf = 64 << 10

// encodeFrame encodes an envelope into a new frame of the codec's type.
func encodeFrame(c envelopeCodec, h outHeader, v any) (*session.Frame, error) {
	bp := bufs.Get().(*[]byte)
	b, err := c.appendEnvelope((*bp)[:0], h, v)
	var f *session.Frame
	if err == nil {
		f = session.NewFrame(c.Opcode(), b)
	}
	if cap(b) <= maxKeptBuf {
		*bp = b[:0]
		bufs.Put(bp)
	}
	return f, err
}
