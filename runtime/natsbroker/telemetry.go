package natsbroker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentation is the name the Broker's tracer and meter go by.
const instrumentation = "github.com/shockwave-go/shockwave/runtime/natsbroker"

// The reasons of shockwave.broker.errors, indices of telemetry.errors.
const (
	errDisconnected = iota
	errClosed
	errMaxPayload
	errInvalid
	errPublish
	errSubscribe
	nErrors
)

// errorReasons are the values of the attribute shockwave.broker.reason
// on shockwave.broker.errors; errorLogs, what the log says of each.
var (
	errorReasons = [nErrors]string{"disconnected", "closed", "max_payload", "invalid", "publish", "subscribe"}
	errorLogs    = [nErrors]string{
		"natsbroker: a publish while the connection is down and its reconnect buffer full: lost",
		"natsbroker: a publish on a closed connection or Broker: lost",
		"natsbroker: a publish over the server's max_payload: lost",
		"natsbroker: a message that cannot be carried: lost",
		"natsbroker: a publish failed: lost",
		"natsbroker: a subscription failed: the room tries again at its next join",
	}
)

// What the Broker logs, each at most once a second: the errors above,
// then these.
const (
	logMalformed = nErrors + iota
	logSlow
	logUnsubscribe
	logGap
	logAppend
	nLogs
)

// telemetry holds the Broker's counts, which its metrics observe.
type telemetry struct {
	published, received, malformed atomic.Int64
	gaps                           atomic.Int64 // a room's logged messages this node could not read
	errors                         [nErrors]atomic.Int64
	retiredDrops                   atomic.Int64 // drops of the subscriptions that ended; Broker.mu guards its changes
	reg                            metric.Registration

	// The rooms' presence (see PresenceStats).
	presPuts, presUpdates, presExpired, presMalformed atomic.Int64
	presErrors                                        [nPresErrors]atomic.Int64
	presReg                                           metric.Registration
}

var (
	reasonKey     = attribute.Key("shockwave.broker.reason")
	slowConsumer  = metric.WithAttributeSet(attribute.NewSet(reasonKey.String("slow_consumer")))
	malformed     = metric.WithAttributeSet(attribute.NewSet(reasonKey.String("malformed")))
	gap           = metric.WithAttributeSet(attribute.NewSet(reasonKey.String("gap")))
	errorAttrs    [nErrors]metric.ObserveOption
	messagingNATS = semconv.MessagingSystemKey.String("nats")

	presErrorAttrs [nPresErrors]metric.ObserveOption
)

func init() {
	for i, r := range errorReasons {
		errorAttrs[i] = metric.WithAttributeSet(attribute.NewSet(reasonKey.String(r)))
	}
	for i, r := range presErrorReasons {
		presErrorAttrs[i] = metric.WithAttributeSet(attribute.NewSet(reasonKey.String(r)))
	}
}

// newTelemetry registers b's metrics with mp, or the global provider.
func newTelemetry(b *Broker, mp metric.MeterProvider) (*telemetry, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(instrumentation)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	published := counter("shockwave.broker.published", "{message}", "Messages this node handed to NATS for the other nodes.")
	received := counter("shockwave.broker.received", "{message}", "Messages of the other nodes delivered to this node's rooms.")
	dropped := counter("shockwave.broker.dropped", "{message}", "Messages received and not delivered, by reason: slow_consumer (a room's subscription over its pending limits), malformed, gap (a room's logged messages that could not be read from its log: counted once per gap).")
	failures := counter("shockwave.broker.errors", "{error}", "Publishes and subscriptions that failed, by reason: disconnected, closed, max_payload, invalid, publish, subscribe.")
	subs, err := m.Int64ObservableUpDownCounter("shockwave.broker.subscriptions", metric.WithUnit("{subscription}"),
		metric.WithDescription("Rooms this node subscribes to: those it has members in."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t := &telemetry{}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := b.Stats()
		o.ObserveInt64(published, st.Published)
		o.ObserveInt64(received, st.Received)
		o.ObserveInt64(dropped, st.Dropped.SlowConsumer, slowConsumer)
		o.ObserveInt64(dropped, st.Dropped.Malformed, malformed)
		o.ObserveInt64(dropped, st.Dropped.Gap, gap)
		for i := range nErrors {
			o.ObserveInt64(failures, t.errors[i].Load(), errorAttrs[i])
		}
		o.ObserveInt64(subs, int64(st.Subscriptions))
		return nil
	}, published, received, dropped, failures, subs)
	if err != nil {
		return nil, err
	}
	if t.presReg, err = presenceMetrics(m, b); err != nil {
		_ = t.reg.Unregister()
		return nil, err
	}
	return t, nil
}

// presenceMetrics registers the metrics of the rooms' presence, observed
// from PresenceStats.
func presenceMetrics(m metric.Meter, b *Broker) (metric.Registration, error) {
	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	puts := counter("shockwave.broker.presence.puts", "{put}", "This node's presence entries put to the bucket: changes and heartbeats.")
	updates := counter("shockwave.broker.presence.updates", "{update}", "Changes of other nodes' presence entries this node's watches received.")
	expired := counter("shockwave.broker.presence.expired", "{entry}", "Other nodes' presence entries dropped because they expired: their node stopped putting them.")
	dropped := counter("shockwave.broker.presence.dropped", "{update}", "Other nodes' presence entries received and dropped, by reason: malformed.")
	failures := counter("shockwave.broker.presence.errors", "{error}", "Presence failures, by reason: bucket, put, delete, watch, too_large, info.")
	rooms, err := m.Int64ObservableUpDownCounter("shockwave.broker.presence.rooms", metric.WithUnit("{room}"),
		metric.WithDescription("Rooms whose presence this node shares: those it has presence in."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := b.presenceStats()
		o.ObserveInt64(puts, st.Puts)
		o.ObserveInt64(updates, st.Updates)
		o.ObserveInt64(expired, st.Expired)
		o.ObserveInt64(dropped, st.Malformed, malformed)
		for i := range nPresErrors {
			o.ObserveInt64(failures, b.tel.presErrors[i].Load(), presErrorAttrs[i])
		}
		o.ObserveInt64(rooms, int64(st.Rooms))
		return nil
	}, puts, updates, expired, dropped, failures, rooms)
}

// close unregisters the metrics.
func (t *telemetry) close() error { return errors.Join(t.reg.Unregister(), t.presReg.Unregister()) }

// sendSpan returns the options of a publish's span.
func sendSpan(subject string, size int) trace.SpanStartOption {
	return trace.WithAttributes(
		messagingNATS,
		semconv.MessagingOperationTypeSend,
		semconv.MessagingDestinationName(subject),
		semconv.MessagingMessageBodySize(size),
	)
}

// receiveSpan returns the options of a delivery's span.
func receiveSpan(m *nats.Msg, origin string) trace.SpanStartOption {
	return trace.WithAttributes(
		messagingNATS,
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(m.Subject),
		semconv.MessagingMessageBodySize(len(m.Data)),
		attribute.String("shockwave.broker.origin", origin),
	)
}

var (
	producer = trace.WithSpanKind(trace.SpanKindProducer)
	consumer = trace.WithSpanKind(trace.SpanKindConsumer)
)

// failed marks span with err.
func failed(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}

// headerCarrier carries trace context in a message's NATS headers, whose
// keys are case-sensitive: the W3C propagator's are lower case.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// limiter lets one log line through a second, and counts the others.
type limiter struct {
	next    atomic.Int64 // when the next line may go, in Unix nanoseconds
	skipped atomic.Int64 // lines not logged since the last one
}

// log logs msg with args if a second has passed since the last line, with
// the count of those skipped meanwhile.
func (l *limiter) log(lg *slog.Logger, msg string, args ...any) {
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(time.Second)) {
		l.skipped.Add(1)
		return
	}
	if n := l.skipped.Swap(0); n > 0 {
		args = append(args, "not_logged", n)
	}
	lg.Warn(msg, args...)
}
