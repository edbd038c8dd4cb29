package natsbroker

import (
	"errors"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Options are the settings of a Broker. Pass Option functions to New,
// which apply them to DefaultOptions; or change the fields of
// DefaultOptions() and pass the result with WithOptions. Either way New
// checks the result, and a value out of range fails it. Each field says
// its default, which DefaultOptions writes.
type Options struct {
	// Prefix starts every subject the Broker uses: a room's messages go
	// on <Prefix>.r.<room>. One or more tokens of letters, digits, '-'
	// and '_', separated by dots, at most 128 bytes. Deployments that
	// share a NATS account keep apart by their prefixes. Defaults to
	// "sw".
	Prefix string
	// Node names this node in the Sw-Origin header of what it publishes,
	// so that it can tell its own messages from the others'. Letters,
	// digits, '-' and '_', at most 64 bytes, unique among the nodes. Empty,
	// the default: New makes a random one (Broker.Node returns it).
	Node string
	// PendingMsgs and PendingBytes bound what waits, for each room
	// subscription, between the NATS client's reader and the room's
	// delivery (nats.Subscription.SetPendingLimits). Past either, the
	// NATS client drops the room's messages, and the Broker counts them
	// (shockwave.broker.dropped, reason slow_consumer). PendingBytes must
	// be over the NATS server's max_payload (1 MiB by default), or every
	// larger message is dropped. A node holds at most that much per room
	// it has members in. Default to 4,096 messages and 8 MiB (NATS'
	// own defaults are 500,000 and 64 MiB).
	PendingMsgs  int
	PendingBytes int
	// Logger receives the Broker's errors: failed publishes and
	// subscriptions, dropped messages, at most one line a second of each
	// kind, with the count of those not logged. Defaults to
	// slog.Default() as it is when New is called;
	// slog.New(slog.DiscardHandler) silences it.
	Logger *slog.Logger
	// TracerProvider and MeterProvider receive the Broker's spans and
	// metrics (see the package doc). Nil, the default, means
	// OpenTelemetry's global providers.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Propagator writes the trace context of a publish into its message's
	// headers and reads it back on the other nodes. Defaults to
	// propagation.TraceContext{} (W3C traceparent and tracestate),
	// whatever the global propagator is: the nodes must agree.
	Propagator propagation.TextMapPropagator
}

// An Option changes Options. New applies the options in order, then
// checks the result.
type Option func(*Options)

// DefaultOptions returns the defaults, spelled out: the one place they are
// written.
func DefaultOptions() Options {
	return Options{
		Prefix:       "sw",
		PendingMsgs:  4096,
		PendingBytes: 8 << 20,
		Logger:       slog.Default(),
		Propagator:   propagation.TraceContext{},
	}
}

// check reports the fields out of range, all of them.
func (o *Options) check() error {
	var errs []error
	bad := func(failed bool, field, want string) {
		if failed {
			errs = append(errs, errors.New("natsbroker: Options."+field+" must be "+want))
		}
	}
	bad(!prefixOK(o.Prefix), "Prefix", "dot-separated tokens of letters, digits, '-' and '_', at most 128 bytes")
	bad(o.Node != "" && (!safe(o.Node) || len(o.Node) > 64), "Node",
		"empty, or letters, digits, '-' and '_', at most 64 bytes")
	bad(o.PendingMsgs <= 0, "PendingMsgs", "positive")
	bad(o.PendingBytes <= 0, "PendingBytes", "positive")
	bad(o.Logger == nil, "Logger", "set")
	bad(o.Propagator == nil, "Propagator", "set")
	return errors.Join(errs...)
}

func prefixOK(p string) bool {
	if len(p) > 128 {
		return false
	}
	for t := range strings.SplitSeq(p, ".") {
		if !safe(t) {
			return false
		}
	}
	return true
}

// WithOptions sets every field: o replaces the Options built so far.
func WithOptions(o Options) Option {
	return func(to *Options) { *to = o }
}

// WithPrefix sets Options.Prefix, which starts every subject.
func WithPrefix(p string) Option {
	return func(o *Options) { o.Prefix = p }
}

// WithNode sets Options.Node, this node's name in what it publishes.
func WithNode(id string) Option {
	return func(o *Options) { o.Node = id }
}

// WithPendingLimits sets Options.PendingMsgs and PendingBytes, the bounds
// of what waits for delivery in each room subscription.
func WithPendingLimits(msgs, bytes int) Option {
	return func(o *Options) { o.PendingMsgs, o.PendingBytes = msgs, bytes }
}

// WithLogger sets Options.Logger, where the Broker's errors go.
func WithLogger(l *slog.Logger) Option {
	return func(o *Options) { o.Logger = l }
}

// WithTracerProvider sets Options.TracerProvider, where the Broker's
// spans go.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *Options) { o.TracerProvider = tp }
}

// WithMeterProvider sets Options.MeterProvider, where the Broker's
// metrics go.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *Options) { o.MeterProvider = mp }
}

// WithPropagator sets Options.Propagator, which carries trace context in
// the messages' headers.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(o *Options) { o.Propagator = p }
}
