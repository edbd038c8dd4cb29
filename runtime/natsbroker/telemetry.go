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
	nLogs
)

// telemetry holds the Broker's counts, which its metrics observe.
type telemetry struct {
	published, received, malformed atomic.Int64
	errors                         [nErrors]atomic.Int64
	retiredDrops                   atomic.Int64 // drops of the subscriptions that ended; Broker.mu guards its changes
	reg                            metric.Registration
}

var (
	reasonKey     = attribute.Key("shockwave.broker.reason")
	slowConsumer  = metric.WithAttributeSet(attribute.NewSet(reasonKey.String("slow_consumer")))
	malformed     = metric.WithAttributeSet(attribute.NewSet(reasonKey.String("malformed")))
	errorAttrs    [nErrors]metric.ObserveOption
	messagingNATS = semconv.MessagingSystemKey.String("nats")
)

func init() {
	for i, r := range errorReasons {
		errorAttrs[i] = metric.WithAttributeSet(attribute.NewSet(reasonKey.String(r)))
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
	dropped := counter("shockwave.broker.dropped", "{message}", "Messages received and not delivered, by reason: slow_consumer (a room's subscription over its pending limits), malformed.")
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
		for i := range nErrors {
			o.ObserveInt64(failures, t.errors[i].Load(), errorAttrs[i])
		}
		o.ObserveInt64(subs, int64(st.Subscriptions))
		return nil
	}, published, received, dropped, failures, subs)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// close unregisters the metrics.
func (t *telemetry) close() error { return t.reg.Unregister() }

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
