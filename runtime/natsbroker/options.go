package natsbroker

import (
	"errors"
	"log/slog"
	"strings"
	"time"

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

	// The log of the rooms that keep history (runtime.Log), a JetStream
	// stream named <Prefix>_rooms (dots made underscores), file-stored,
	// over the subjects <Prefix>.log.>, which the Broker makes or updates
	// on first use: every node must use the same values.
	//
	// LogKeep is the most messages the stream keeps of each room: at
	// least the largest runtime.History.Size, or a node that follows a
	// room late, or a client that moves to another node, recovers less
	// than one node would have. Defaults to 1,000.
	LogKeep int
	// LogMaxAge, if set, drops the messages older than this
	// (runtime.History.TTL). Zero, the default: kept by count alone.
	LogMaxAge time.Duration
	// LogMaxBytes bounds the whole stream, every room's messages
	// together, since room names may be the clients': past it the oldest
	// messages go, whichever room they are of. Defaults to 1 GiB.
	LogMaxBytes int64
	// LogReplicas is the stream's replicas in a NATS cluster, 1 to 5.
	// Defaults to 1.
	LogReplicas int
	// AppendTimeout bounds how long a publish to a room that keeps
	// history waits for the stream to store it, retrying through a NATS
	// outage with the same message ID, so that nothing is stored twice.
	// Defaults to 5 s.
	AppendTimeout time.Duration

	// The rooms' presence (runtime.PresenceBroker): a JetStream
	// key-value bucket named <Prefix>_presence (dots made underscores),
	// in memory, which the first node that needs it makes (see
	// SharePresence). A NATS server without JetStream still carries the
	// rooms that keep no history; the rooms' presence is then each
	// node's own, and the failure is logged and counted.
	//
	// PresenceTTL bounds how long the users of a node that stops putting
	// its entries (it died, or lost NATS) stay present on the other
	// nodes: each node puts its entry of a room again every third of it,
	// and an entry not put again within it expires. A node that shuts
	// down leaves its entries to expire too, so that its users who
	// reconnect to another node within it are not seen to leave and join
	// again: it is the grace period of a node's end, as
	// runtime.Presence.Grace is of a session's. The bucket's own TTL
	// holds when it differs (a node made the bucket with another): the
	// nodes must agree. At least 1 s. Defaults to 15 s.
	PresenceTTL time.Duration
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

		LogKeep:       1000,
		LogMaxBytes:   1 << 30,
		LogReplicas:   1,
		AppendTimeout: 5 * time.Second,

		PresenceTTL: 15 * time.Second,
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
	bad(o.LogKeep <= 0, "LogKeep", "positive")
	bad(o.LogMaxAge < 0, "LogMaxAge", "zero or positive")
	bad(o.LogMaxBytes <= 0, "LogMaxBytes", "positive")
	bad(o.LogReplicas < 1 || o.LogReplicas > 5, "LogReplicas", "1 to 5")
	bad(o.AppendTimeout <= 0, "AppendTimeout", "positive")
	bad(o.PresenceTTL < time.Second, "PresenceTTL", "1 s or more")
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

// WithLog sets Options.LogKeep and LogMaxAge, what the stream keeps of
// each room that keeps history.
func WithLog(keep int, maxAge time.Duration) Option {
	return func(o *Options) { o.LogKeep, o.LogMaxAge = keep, maxAge }
}

// WithPresenceTTL sets Options.PresenceTTL, how long the users of a node
// that stopped stay present on the others.
func WithPresenceTTL(d time.Duration) Option {
	return func(o *Options) { o.PresenceTTL = d }
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
