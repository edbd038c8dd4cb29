package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/puzpuzpuz/xsync/v3"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/shockwave-go/shockwave/internal/engine"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// instrumentation is the name Shockwave's tracer and meter go by.
const instrumentation = "github.com/shockwave-go/shockwave/runtime"

// TraceParenter is implemented by handlers whose messages carry a W3C trace
// context of the client's (codec's router does, from the envelope's "t"
// field): the message's span then continues the client's trace.
type TraceParenter interface {
	// TraceParent returns the traceparent value carried by m, or "".
	TraceParent(s *session.Session, m session.Message) string
}

// telemetry holds the runtime's instruments. A nil tracer means tracing is
// off, and nil instruments mean metrics are off: the hot paths then test a
// pointer and do nothing else.
type telemetry struct {
	tracer     trace.Tracer
	prop       propagation.TextMapPropagator
	upgrades   *xsync.MapOf[uint64, trace.SpanContext] // by session id: the handshake's span, linked from each message's
	deliveries int32                                   // deliver spans of written frames per publish (Options.TraceDeliveries)

	meter      metric.Meter
	msgsIn     metric.Int64Counter
	bytesIn    metric.Int64Counter
	framesOut  metric.Int64Counter
	bytesOut   metric.Int64Counter
	handlerDur metric.Float64Histogram
	fanout     metric.Int64Histogram
	batch      metric.Int64Histogram
	depth      metric.Int64Histogram
	wait       metric.Float64Histogram
	msgSize    metric.Int64Histogram
	closes     metric.Int64Counter
	refusedOut metric.Int64Counter
	reg        metric.Registration

	roomPatterns []string     // Options.MeteredRooms
	roomCap      int32        // Options.MaxMeteredRooms
	roomsNamed   atomic.Int32 // rooms whose metrics carry their name now
}

// otherRoom is the attribute of the metered rooms past MaxMeteredRooms.
var otherRoom = metric.WithAttributeSet(attribute.NewSet(semconv.MessagingDestinationName("_other")))

// enabled reports whether a provider records anything: the no-op providers
// do not, and neither does OpenTelemetry's global provider while no SDK has
// been installed with otel.SetTracerProvider / SetMeterProvider (set those
// before New, or pass the providers as options).
func enabled(p any) bool {
	switch p.(type) {
	case nil, tracenoop.TracerProvider, metricnoop.MeterProvider:
		return false
	}
	if _, sdk := p.(interface{ Shutdown(context.Context) error }); sdk {
		return true // the SDKs' providers, even one installed before this package's init
	}
	return p != any(unsetTracers) && p != any(unsetMeters)
}

// The global providers as OpenTelemetry hands them out while no SDK is
// installed, taken as this package is initialized: they delegate to an
// SDK installed later, and record nothing until then. A provider equal to
// one of them is off (New decides once).
var (
	unsetTracers = otel.GetTracerProvider()
	unsetMeters  = otel.GetMeterProvider()
)

func newTelemetry(rt *Runtime, tp trace.TracerProvider, mp metric.MeterProvider) (*telemetry, error) {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &telemetry{prop: otel.GetTextMapPropagator()}
	if enabled(tp) {
		t.tracer = tp.Tracer(instrumentation)
		t.upgrades = xsync.NewMapOf[uint64, trace.SpanContext]()
	}
	if !enabled(mp) {
		return t, nil
	}
	m := mp.Meter(instrumentation)
	t.meter = m
	var err, e error
	add := func(e error) {
		if err == nil {
			err = e
		}
	}
	t.msgsIn, e = m.Int64Counter("shockwave.messages.received", metric.WithUnit("{message}"),
		metric.WithDescription("Messages received from clients."))
	add(e)
	t.bytesIn, e = m.Int64Counter("shockwave.bytes.received", metric.WithUnit("By"),
		metric.WithDescription("Payload bytes of the messages received."))
	add(e)
	t.framesOut, e = m.Int64Counter("shockwave.frames.sent", metric.WithUnit("{frame}"),
		metric.WithDescription("Frames written to clients, control frames included."))
	add(e)
	t.bytesOut, e = m.Int64Counter("shockwave.bytes.sent", metric.WithUnit("By"),
		metric.WithDescription("Bytes written to clients, frame headers included."))
	add(e)
	t.handlerDur, e = m.Float64Histogram("shockwave.handler.duration", metric.WithUnit("s"),
		metric.WithDescription("Time spent in OnMessage."),
		metric.WithExplicitBucketBoundaries(1e-6, 5e-6, 25e-6, 1e-4, 5e-4, 2.5e-3, 1e-2, 5e-2, 0.25, 1))
	add(e)
	t.fanout, e = m.Int64Histogram("shockwave.broadcast.fanout", metric.WithUnit("{session}"),
		metric.WithDescription("Members a room broadcast was handed to."),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000))
	add(e)
	t.batch, e = m.Int64Histogram("shockwave.write.batch", metric.WithUnit("{frame}"),
		metric.WithDescription("Frames completed by one write to a socket."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256))
	add(e)
	t.depth, e = m.Int64Histogram("shockwave.mailbox.depth", metric.WithUnit("{frame}"),
		metric.WithDescription("Frames queued for a session when a write to it began, those written included."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024))
	add(e)
	t.wait, e = m.Float64Histogram("shockwave.mailbox.wait", metric.WithUnit("s"),
		metric.WithDescription("How long the oldest message of a write waited, from its first push to a mailbox to the write."),
		metric.WithExplicitBucketBoundaries(1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1, 5))
	add(e)
	t.msgSize, e = m.Int64Histogram("shockwave.message.received.size", metric.WithUnit("By"),
		metric.WithDescription("Payload size of the messages received."),
		metric.WithExplicitBucketBoundaries(16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576))
	add(e)
	t.refusedOut, e = m.Int64Counter("shockwave.broadcast.refused", metric.WithUnit("{session}"),
		metric.WithDescription("Members that refused a broadcast's frame: closing, or refused by their backpressure policy."))
	add(e)
	members, e := m.Int64ObservableGauge("shockwave.room.members", metric.WithUnit("{session}"),
		metric.WithDescription("Members of each room named in metrics (Options.MeteredRooms)."))
	add(e)
	t.closes, e = m.Int64Counter("shockwave.sessions.closed", metric.WithUnit("{session}"),
		metric.WithDescription("Sessions ended, by close code (1006 when the connection dropped) and cause."))
	add(e)
	active, e := m.Int64ObservableUpDownCounter("shockwave.sessions.active", metric.WithUnit("{session}"),
		metric.WithDescription("Live sessions."))
	add(e)
	drops, e := m.Int64ObservableCounter("shockwave.mailbox.drops", metric.WithUnit("{frame}"),
		metric.WithDescription("Frames dropped by the backpressure policy, and sessions closed by it."))
	add(e)
	refused, e := m.Int64ObservableCounter("shockwave.limits.refused", metric.WithUnit("{event}"),
		metric.WithDescription("Times a limit acted, by shockwave.limit: upgrades and joins refused, "+
			"sessions stopped reading (message_rate, backpressure) or closed, frames refused (outbound_memory)."))
	add(e)
	if err != nil {
		return nil, err
	}
	policy := func(p session.Policy) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("shockwave.policy", p.String())))
	}
	dropNewest, dropOldest, closed := policy(session.PolicyDropNewest), policy(session.PolicyDropOldest), policy(session.PolicyClose)
	limits := make([]metric.ObserveOption, len(limitCounters))
	for i, c := range limitCounters {
		limits[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("shockwave.limit", c.limit)))
	}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		c := &rt.counters
		o.ObserveInt64(active, int64(rt.Len()))
		o.ObserveInt64(drops, int64(c.DroppedNewest.Load()), dropNewest)
		o.ObserveInt64(drops, int64(c.DroppedOldest.Load()), dropOldest)
		o.ObserveInt64(drops, int64(c.ClosedSlow.Load()), closed)
		for i, lc := range limitCounters {
			o.ObserveInt64(refused, int64(lc.count(rt).Load()), limits[i])
		}
		if t.roomsNamed.Load() > 0 {
			rt.rooms.Range(func(_ string, r *Room) bool {
				if r.named {
					o.ObserveInt64(members, int64(r.Len()), r.meter)
				}
				return true
			})
		}
		return nil
	}, active, drops, refused, members)
	return t, err
}

func (t *telemetry) metrics() bool { return t.meter != nil }

// roomMeter returns the attribute a new room's metrics carry, nil for
// none, and whether it is the room's own name, which then counts against
// Options.MaxMeteredRooms until the room is removed (see unname).
func (t *telemetry) roomMeter(name string) (metric.MeasurementOption, bool) {
	if !t.metrics() || !matchAny(t.roomPatterns, name) {
		return nil, false
	}
	if t.roomsNamed.Add(1) > t.roomCap {
		t.roomsNamed.Add(-1)
		return otherRoom, false
	}
	return metric.WithAttributeSet(attribute.NewSet(semconv.MessagingDestinationName(name))), true
}

// matchAny reports whether name matches one of the path.Match patterns.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Wrote implements engine.Observer.
func (t *telemetry) Wrote(frames, bytes, depth int, waited time.Duration) {
	ctx := context.Background()
	t.batch.Record(ctx, int64(frames))
	t.depth.Record(ctx, int64(depth))
	if waited > 0 {
		t.wait.Record(ctx, waited.Seconds())
	}
	t.bytesOut.Add(ctx, int64(bytes))
	t.framesOut.Add(ctx, int64(frames)) // last: tests wait on it
}

// startUpgrade starts the span of an opening handshake, continuing the
// trace of the request's traceparent header.
func (t *telemetry) startUpgrade(r *http.Request) (context.Context, trace.Span) {
	ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.tracer.Start(ctx, "websocket upgrade",
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.NetworkPeerAddress(r.RemoteAddr),
			semconv.NetworkProtocolName("websocket"),
		))
}

// onMessage runs the handler's OnMessage for m inside the message's span
// and records the metrics of it. A panic still ends the span (as an error)
// and is counted, then goes on to the session, which recovers it.
// The span links to the session's upgrade span, when there is one.
func (t *telemetry) onMessage(h session.Handler, s *session.Session, m session.Message, upgrade trace.SpanContext) (err error) {
	ctx := context.Background()
	var span trace.Span
	if t.tracer != nil {
		ctx = s.Context()
		if tp, ok := h.(TraceParenter); ok {
			if v := tp.TraceParent(s, m); v != "" {
				// The value is W3C's whatever propagator is installed.
				ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": v})
			}
		}
		ctx, span = t.tracer.Start(ctx, "receive",
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithLinks(trace.Link{SpanContext: upgrade}),
			trace.WithAttributes(
				semconv.MessagingSystemKey.String("websocket"),
				semconv.MessagingOperationTypeReceive,
				semconv.MessagingMessageBodySize(len(m.Data)),
				attribute.Int64("shockwave.session.id", int64(s.ID())),
				attribute.String("websocket.opcode", m.Op.String()),
			))
		if user := userOf(s); user != "" && span.IsRecording() {
			span.SetAttributes(semconv.UserID(user))
		}
		m = m.WithContext(ctx)
	}
	start := time.Now()
	returned := false
	defer func() {
		if t.metrics() {
			t.recordIn(ctx, m, start)
		}
		if span == nil {
			return
		}
		switch {
		case !returned:
			span.SetStatus(codes.Error, "handler panicked")
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	err = h.OnMessage(s, m)
	returned = true
	return err
}

func (t *telemetry) recordIn(ctx context.Context, m session.Message, start time.Time) {
	t.handlerDur.Record(ctx, time.Since(start).Seconds())
	t.msgsIn.Add(ctx, 1)
	t.bytesIn.Add(ctx, int64(len(m.Data)))
	t.msgSize.Record(ctx, int64(len(m.Data)))
}

// onClose counts an ended session by the code of the close frame it sent
// (1006 when none was), and by the cause of its end.
func (t *telemetry) onClose(s *session.Session, err error) {
	code := s.CloseCode()
	t.closes.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("websocket.close.code", strconv.Itoa(int(code))),
		attribute.String("shockwave.close.cause", closeCause(err, code))))
}

// closeCause names why a session ended, from the error OnClose gets and
// the code of the close frame it sent.
func closeCause(err error, code wire.StatusCode) string {
	var pe *wire.ProtocolError
	var panicked *session.PanicError
	var ce wire.CloseError
	switch {
	case err == nil, errors.Is(err, session.ErrClosed):
		return "closed"
	case errors.Is(err, session.ErrSlowConsumer):
		return "slow_consumer"
	case errors.Is(err, session.ErrMessageTimeout):
		return "message_timeout"
	case errors.Is(err, session.ErrTimeout):
		return "timeout" // heartbeat, idle, write or closing handshake: the code and Counters say which
	case errors.Is(err, session.ErrExpired):
		return "expired"
	case errors.Is(err, wire.ErrBudgetExhausted):
		return "inbound_memory"
	case errors.As(err, &panicked):
		return "panic"
	case errors.As(err, &pe):
		return "protocol_error"
	case errors.As(err, &ce):
		return "closed" // by the client or the server: the code says
	case code == wire.StatusInternalError:
		return "handler_error"
	}
	return "connection_lost"
}

// Traced implements engine.Tracer: a frame sent in ctx carries it when
// ctx's span records.
func (t *telemetry) Traced(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// deliveryBudget bounds the deliver spans of one publish: so many written
// (Options.TraceDeliveries), maxFailedDeliveries not; the rest are counted
// on the publish span only.
type deliveryBudget struct{ written, failed atomic.Int32 }

// maxFailedDeliveries bounds the deliver spans of the members a publish
// did not reach: enough for a room's worth of answers, not a storm.
const maxFailedDeliveries = 1000

type deliveryBudgetKey struct{}

// publishContext is the context the frames of a traced publish carry: the
// publish span's, with its delivery budget.
func (t *telemetry) publishContext(ctx context.Context) context.Context {
	b := new(deliveryBudget)
	b.written.Store(t.deliveries)
	b.failed.Store(maxFailedDeliveries)
	return context.WithValue(ctx, deliveryBudgetKey{}, b)
}

// Delivered implements engine.Tracer: a "deliver" span, child of the
// frame's context, from when the frame got it to now, says which session
// (and user) the frame reached, or why it did not. A publish records at
// most Options.TraceDeliveries written, and maxFailedDeliveries not.
func (t *telemetry) Delivered(ctx context.Context, s *session.Session, since int64, err error) {
	if b, ok := ctx.Value(deliveryBudgetKey{}).(*deliveryBudget); ok {
		n := &b.written
		if err != nil {
			n = &b.failed
		}
		if n.Add(-1) < 0 {
			return
		}
	}
	what := outcome(err)
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs,
		attribute.Int64("shockwave.session.id", int64(s.ID())),
		attribute.String("shockwave.delivery.outcome", what))
	if p := policyOf(err); p != "" {
		attrs = append(attrs, attribute.String("shockwave.policy", p))
	}
	if user := userOf(s); user != "" {
		attrs = append(attrs, semconv.UserID(user))
	}
	_, span := t.tracer.Start(ctx, "deliver",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithTimestamp(time.Unix(0, since)),
		trace.WithAttributes(attrs...))
	if err != nil {
		span.SetStatus(codes.Error, "not delivered: "+what)
	}
	span.End()
}

// Closing implements engine.Tracer: the end of a session is a span of its
// own, "session close", whose context OnClose's Session.Context carries,
// so that what the handler does then (a departure announced to a room)
// is part of it. It links to the session's upgrade, and to the message
// that made it a slow consumer when one did. hooks.OnClose ends it.
func (t *telemetry) Closing(base context.Context, s *session.Session, err error, slow context.Context) context.Context {
	code := s.CloseCode()
	cause := closeCause(err, code)
	attrs := []attribute.KeyValue{
		attribute.Int64("shockwave.session.id", int64(s.ID())),
		attribute.Int("websocket.close.code", int(code)),
		attribute.String("shockwave.close.cause", cause),
	}
	if user := userOf(s); user != "" {
		attrs = append(attrs, semconv.UserID(user))
	}
	var links []trace.Link
	if up, ok := t.upgrades.Load(s.ID()); ok {
		links = append(links, trace.Link{SpanContext: up})
	}
	if sc := trace.SpanContextFromContext(slow); sc.IsValid() {
		links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
			attribute.String("shockwave.close.cause", "slow_consumer")}})
	}
	ctx, span := t.tracer.Start(base, "session close", trace.WithNewRoot(),
		trace.WithAttributes(attrs...), trace.WithLinks(links...))
	if cause != "closed" {
		span.SetStatus(codes.Error, cause)
	}
	return ctx
}

// outcome names what became of a frame for one session.
func outcome(err error) string {
	switch {
	case err == nil:
		return "written"
	case errors.Is(err, session.ErrClosed):
		return "session_closed"
	case errors.Is(err, session.ErrSlowConsumer):
		return "slow_consumer"
	case errors.Is(err, session.ErrDropped):
		return "dropped"
	case errors.Is(err, session.ErrOverBudget):
		return "outbound_memory"
	}
	return "write_failed"
}

// policyOf names the backpressure policy that refused or dropped a frame,
// as the shockwave.mailbox.drops metric does, or "".
func policyOf(err error) string {
	switch {
	case errors.Is(err, engine.ErrDroppedOldest):
		return session.PolicyDropOldest.String()
	case errors.Is(err, session.ErrDropped):
		return session.PolicyDropNewest.String()
	case errors.Is(err, session.ErrSlowConsumer):
		return session.PolicyClose.String()
	}
	return ""
}

// userOf returns the session's identity as a string, when it is a string
// or a fmt.Stringer (see WithAdmit), or "".
func userOf(s *session.Session) string {
	switch v, _ := session.Identity[any](s); v := v.(type) {
	case string:
		return v
	case fmt.Stringer:
		return v.String()
	}
	return ""
}

// startPublish starts the span of a room broadcast. Deliveries are not
// spans of their own: the fan-out is an attribute, and the result an event.
func (t *telemetry) startPublish(ctx context.Context, room string, size int) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, "publish",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("websocket"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(room),
			semconv.MessagingMessageBodySize(size),
		))
}
