package runtime

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"path"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// Options are the settings of a Runtime. Pass Option functions to New,
// which apply them to DefaultOptions; or change the fields of
// DefaultOptions() and pass the result with WithOptions. Either way New
// checks the result, and a value out of range fails it. Each field says
// its default, which DefaultOptions writes: it is the one place they are
// written.
type Options struct {
	// MaxMessageSize is the longest message a client may send, in bytes;
	// a longer one closes its session with 1009. Defaults to 1 MiB.
	MaxMessageSize int64
	// ReadBufferSize is the size of the read buffer a session borrows
	// from a pool while bytes arrive; on the event loop, 64 KiB at least,
	// so that one read takes many frames. Defaults to
	// wire.DefaultReadBufferSize (16 KiB).
	ReadBufferSize int
	// MailboxSize is how many frames may wait to be written to one
	// session, rounded up to a power of two. Defaults to 256.
	MailboxSize int
	// MaxQueuedBytes caps the bytes waiting to be written to one session,
	// counted from Send until the kernel has taken them. A frame is always
	// accepted into an empty queue, whatever its size. Defaults to 4 MiB.
	MaxQueuedBytes int64
	// Policy applies when a session's mailbox or MaxQueuedBytes is full:
	// its client is not reading fast enough. Defaults to
	// session.PolicyClose.
	Policy session.Policy
	// SlowCode is the close code session.PolicyClose sends. Defaults to
	// wire.StatusPolicyViolation (1008).
	SlowCode wire.StatusCode
	// AbortSlow disconnects a session refused under session.PolicyClose
	// at once, without the closing handshake, instead of sending a close
	// frame it will probably not read and waiting up to CloseTimeout for
	// the answer. Off by default.
	AbortSlow bool

	// PingInterval: a ping is sent to a client from which nothing was
	// read for this long. Negative disables pings. Defaults to 30 s.
	PingInterval time.Duration
	// PongTimeout: a client that sends nothing at all (not even the pong)
	// for this long after a ping is dropped with session.ErrTimeout,
	// which finds half-open TCP connections. Defaults to 15 s.
	PongTimeout time.Duration
	// IdleTimeout closes a session (1001) when nothing was read for this
	// long, pongs included. Zero, the default, disables it: the heartbeat
	// finds dead clients.
	IdleTimeout time.Duration
	// WriteTimeout bounds a write that the kernel cannot take at once
	// because the client is not reading. Defaults to 10 s.
	WriteTimeout time.Duration
	// CloseTimeout bounds the closing handshake. Defaults to 5 s.
	CloseTimeout time.Duration
	// MessageTimeout bounds how long one message may take to arrive, from
	// its first byte to its last (or, when its first bytes came with the
	// message before it, from that message). A message that takes longer
	// closes the session with 1008 and session.ErrMessageTimeout. It is
	// the bound on a client that trickles a large message; silence alone
	// is the heartbeat's to find. Negative disables it. Defaults to 60 s.
	MessageTimeout time.Duration
	// MessageRate is how many messages a second a client may send on
	// average, in bursts of up to MessageBurst. Past it, its session stops
	// reading from it until it is within the rate again: a flood is
	// slowed, as TCP slows a fast sender, and nothing is lost. Only data
	// messages count; the rate is measured on the shared clock, so a
	// paused session reads again up to one Tick late. Negative disables
	// the limit. Defaults to 1,000.
	MessageRate float64
	// MessageBurst is how many messages a client may send at once, above
	// MessageRate. Zero means a second's worth of MessageRate. Defaults to
	// 1,000.
	MessageBurst int
	// ErrorHandler, if set, is called with every panic recovered from a
	// handler callback, as a *session.PanicError, and the session it
	// belongs to, which then closes with 1011.
	ErrorHandler func(s *session.Session, err error)

	// Subprotocols, OriginPatterns and CheckOrigin configure the opening
	// handshake, as in wire.AcceptOptions. By default a browser page of
	// another origin is refused with 403.
	Subprotocols   []string
	OriginPatterns []string
	CheckOrigin    func(r *http.Request) bool
	// HandshakeTimeout bounds writing the 101 response; see
	// wire.AcceptOptions. Set http.Server.ReadHeaderTimeout for the
	// request. Defaults to wire.DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration
	// Admit, if set, admits or refuses each upgrade request before the
	// upgrade, and says who its client is (see AdmitFunc).
	Admit AdmitFunc
	// TrustedProxies are the addresses of the reverse proxies in front:
	// a request from one of them is counted, and its session's ClientAddr
	// reported, by the address in its Forwarded or X-Forwarded-For header
	// (see Runtime.ClientAddr). None by default: the headers are the
	// client's to forge.
	TrustedProxies []netip.Prefix
	// Limits bound connections per Runtime and per client address, the
	// upgrade rate per address, the rooms per session and the memory of
	// all sessions together. Zero fields mean their defaults, negative
	// ones no limit; see Limits.
	Limits Limits

	// Compression is the permessage-deflate (RFC 7692) a client may
	// negotiate. With wire.CompressionNoContextTakeover each message is
	// compressed on its own, and a frame sent to many sessions (a room's
	// broadcast, its history) is compressed once for all of them: the
	// cost does not grow with a room's size, and an idle session holds no
	// compression state. wire.CompressionContextTakeover compresses what
	// a session sends against what it sent before, with a compressor of
	// its own (about 800 KiB) and, when the client does likewise, a
	// 32 KiB window: smaller messages, at a cost in memory per session,
	// and a room's broadcast is then compressed once per such member.
	// See docs/compression.md for the figures. Defaults to
	// wire.CompressionDisabled.
	Compression wire.CompressionMode
	// CompressionThreshold is the payload length from which a data frame
	// goes out compressed, when the client negotiated compression:
	// shorter ones save too little for what compressing costs. Zero
	// compresses every one. Defaults to wire.DefaultCompressionThreshold
	// (512 bytes).
	CompressionThreshold int

	// Transport chooses how sessions wait for their clients: by default
	// on the event loop where there is one (Linux, plain TCP), else with a
	// goroutine each.
	Transport Transport
	// Pollers is the number of event-loop goroutines. Zero, the default,
	// means GOMAXPROCS.
	Pollers int
	// Workers is the number of goroutines that drain mailboxes for senders
	// on other goroutines. Zero, the default, means GOMAXPROCS.
	Workers int
	// Tick is the period of the shared clock and timer that run heartbeats
	// and timeouts: they act up to one Tick late. Zero, the default, means
	// a quarter of the shortest timeout, between 10 ms and 1 s.
	Tick time.Duration
	// TracerProvider and MeterProvider receive the runtime's spans and
	// metrics (see docs/observability.md). Nil, the default, means
	// OpenTelemetry's global providers, as installed by
	// otel.SetTracerProvider and SetMeterProvider before New. With no SDK
	// installed, instrumentation is off and costs nothing.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// RoomHistory, if set, is asked when a room is made how much of
	// what it publishes it keeps (see History, Room.Publish and
	// Runtime.Resume). Nil, the default, or a zero History: none.
	RoomHistory func(room string) History
	// RoomPresence, if set, is asked when a room is made whether it
	// tracks who is in it, and how (see Presence; nil, or a Presence
	// without Who: it does not). Nil, the default: no room does.
	RoomPresence func(room string) *Presence
	// OnJoin and OnLeave, if set, are told after a session joined a room
	// (JoinRoom, Resume; not when it was a member already) and after it
	// left one (Leave, or its end, before its OnClose), on the goroutine
	// that made the change, outside the room's locks: the place for
	// presence and bookkeeping. They must not block.
	OnJoin  func(r *Room, s *session.Session)
	OnLeave func(r *Room, s *session.Session)
	// Broker, if set, carries the rooms' messages between the nodes of a
	// deployment (see Broker; runtime/natsbroker). Nil, the default: the
	// rooms are this process's. Rooms that keep history need a Broker
	// that is a Log, and rooms that track presence one that is a
	// PresenceBroker (natsbroker.Broker is both): New refuses the others
	// with RoomHistory or RoomPresence.
	Broker Broker
	// MeteredRooms names the rooms whose metrics carry their name (the
	// attribute messaging.destination.name on shockwave.broadcast.fanout
	// and shockwave.broadcast.refused, and a shockwave.room.members series
	// each): exact names or path.Match patterns, such as "match-*". At most
	// MaxMeteredRooms rooms carry their name at once; the others that
	// match are counted as "_other". None by default: room names may come
	// from clients, and each is a time series to store.
	MeteredRooms []string
	// MaxMeteredRooms bounds the rooms named in metrics at once. Defaults
	// to 100.
	MaxMeteredRooms int
	// TraceDeliveries bounds the "deliver" spans of the members a traced
	// room publish was written to: a span each, with the session's id,
	// its user and the time from the publish to the kernel's taking the
	// frame, for at most this many members. The members it was not
	// written to (dropped, refused, their session closed) get one each
	// whatever this says, up to 1,000 a publish: those are the answers to
	// "why did user Y not get it". The publish span counts them all. Zero
	// records no written ones. Defaults to 16. A frame sent with
	// Session.SendContext gets its deliver span whatever this says.
	TraceDeliveries int
}

// Transport is how sessions wait for their clients.
type Transport uint8

const (
	// TransportAuto puts the sessions of plain TCP connections on an
	// event loop (Linux epoll): a session waiting for its client holds
	// no goroutine and no read buffer. When bytes arrive, its callbacks
	// run on the poller's goroutine, in turn with the other sessions that
	// have work; a callback that blocks for more than a few milliseconds
	// costs the poller its goroutine, and the poller goes on with a new
	// one. Other connections (TLS, other systems) get a reading goroutine
	// each.
	TransportAuto Transport = iota
	// TransportGoroutine gives every session a goroutine reading its
	// connection: the usual Go way, a few KiB of stack per idle session.
	TransportGoroutine
)

// An Option changes Options. New applies the options in order, then
// checks the result: a value out of range fails New, whichever option set
// it.
type Option func(*Options)

// DefaultOptions returns the defaults, spelled out: the one place they are
// written.
func DefaultOptions() Options {
	return Options{
		MaxMessageSize:       1 << 20,
		ReadBufferSize:       wire.DefaultReadBufferSize,
		MailboxSize:          256,
		MaxQueuedBytes:       4 << 20,
		Policy:               session.PolicyClose,
		SlowCode:             wire.StatusPolicyViolation,
		PingInterval:         30 * time.Second,
		PongTimeout:          15 * time.Second,
		WriteTimeout:         10 * time.Second,
		CloseTimeout:         5 * time.Second,
		MessageTimeout:       60 * time.Second,
		MessageRate:          1000,
		MessageBurst:         1000,
		HandshakeTimeout:     wire.DefaultHandshakeTimeout,
		CompressionThreshold: wire.DefaultCompressionThreshold,
		TraceDeliveries:      16,
		MaxMeteredRooms:      100,
		Limits:               Limits{}.withDefaults(), // written once, there
	}
}

// check reports the fields out of range, all of them.
func (o *Options) check() error {
	var errs []error
	bad := func(failed bool, field, want string) {
		if failed {
			errs = append(errs, errors.New("runtime: Options."+field+" must be "+want))
		}
	}
	positive := "positive"
	bad(o.MaxMessageSize <= 0, "MaxMessageSize", positive)
	bad(o.ReadBufferSize <= 0, "ReadBufferSize", positive)
	bad(o.MailboxSize <= 0, "MailboxSize", positive)
	bad(o.MaxQueuedBytes <= 0, "MaxQueuedBytes", positive)
	bad(o.Policy > session.PolicyDropOldest, "Policy", "one of the session package's")
	bad(!o.SlowCode.Sendable(), "SlowCode", "a code that may be sent (1000-1003, 1007-1014, 3000-4999)")
	bad(o.PingInterval == 0, "PingInterval", "positive, or negative to disable pings")
	bad(o.PingInterval > 0 && o.PongTimeout <= 0, "PongTimeout", positive)
	bad(o.IdleTimeout < 0, "IdleTimeout", "positive, or zero to disable it")
	bad(o.WriteTimeout <= 0, "WriteTimeout", positive)
	bad(o.CloseTimeout <= 0, "CloseTimeout", positive)
	bad(o.MessageTimeout == 0, "MessageTimeout", "positive, or negative to disable it")
	bad(o.MessageRate == 0 || math.IsNaN(o.MessageRate) || math.IsInf(o.MessageRate, 0), "MessageRate",
		"a finite number other than 0 (negative disables the limit)")
	bad(o.MessageBurst < 0, "MessageBurst", "positive, or zero for a second's worth")
	bad(o.HandshakeTimeout <= 0, "HandshakeTimeout", positive)
	bad(o.Compression > wire.CompressionContextTakeover, "Compression", "one of the wire package's CompressionModes")
	bad(o.CompressionThreshold < 0, "CompressionThreshold", "positive, or zero to compress every message")
	bad(o.Transport > TransportGoroutine, "Transport", "TransportAuto or TransportGoroutine")
	bad(o.Pollers < 0, "Pollers", "positive, or zero for GOMAXPROCS")
	bad(o.Workers < 0, "Workers", "positive, or zero for GOMAXPROCS")
	bad(o.Tick < 0, "Tick", "positive, or zero to derive it from the timeouts")
	bad(o.TraceDeliveries < 0, "TraceDeliveries", "positive, or zero for none")
	bad(o.MaxMeteredRooms < 0, "MaxMeteredRooms", "positive, or zero for none")
	for _, p := range o.MeteredRooms {
		_, err := path.Match(p, "")
		bad(err != nil, "MeteredRooms", "path.Match patterns")
	}
	for _, p := range o.TrustedProxies {
		bad(!p.IsValid(), "TrustedProxies", "valid prefixes")
	}
	if _, log := o.Broker.(Log); o.Broker != nil && o.RoomHistory != nil && !log {
		bad(true, "Broker", "a Log with RoomHistory: the rooms' history must be kept where every node reads it")
	}
	if _, pb := o.Broker.(PresenceBroker); o.Broker != nil && o.RoomPresence != nil && !pb {
		bad(true, "Broker", "a PresenceBroker with RoomPresence: the rooms' presence must be shared with every node")
	}
	errs = append(errs, o.Limits.check())
	return errors.Join(errs...)
}

// WithMaxMessageSize sets Options.MaxMessageSize, the longest message a
// client may send, in bytes.
func WithMaxMessageSize(n int64) Option {
	return func(o *Options) { o.MaxMessageSize = n }
}

// WithCompression sets Options.Compression, the permessage-deflate a
// client may negotiate, and CompressionThreshold, the payload length from
// which a frame goes out compressed.
func WithCompression(mode wire.CompressionMode, threshold int) Option {
	return func(o *Options) { o.Compression, o.CompressionThreshold = mode, threshold }
}

// WithMailbox sets how many frames and bytes may wait to be written to one
// session, and what happens past that: Options.MailboxSize,
// MaxQueuedBytes and Policy.
func WithMailbox(frames int, bytes int64, p session.Policy) Option {
	return func(o *Options) { o.MailboxSize, o.MaxQueuedBytes, o.Policy = frames, bytes, p }
}

// WithHeartbeat sets Options.PingInterval and PongTimeout. An interval of
// -1 disables pings.
func WithHeartbeat(interval, pongTimeout time.Duration) Option {
	return func(o *Options) { o.PingInterval, o.PongTimeout = interval, pongTimeout }
}

// WithIdleTimeout sets Options.IdleTimeout: sessions that send nothing for
// d are closed.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *Options) { o.IdleTimeout = d }
}

// WithWriteTimeout sets Options.WriteTimeout, the bound on a write to a
// client that is not reading.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *Options) { o.WriteTimeout = d }
}

// WithCloseTimeout sets Options.CloseTimeout, the bound on the closing
// handshake.
func WithCloseTimeout(d time.Duration) Option {
	return func(o *Options) { o.CloseTimeout = d }
}

// WithMessageRate sets Options.MessageRate and MessageBurst: how many
// messages a second each client may send on average, in bursts of up to
// burst. A negative rate disables the limit; a burst of 0 means a second's
// worth.
func WithMessageRate(rate float64, burst int) Option {
	return func(o *Options) { o.MessageRate, o.MessageBurst = rate, burst }
}

// WithMessageTimeout sets Options.MessageTimeout, the bound on how long
// one message may take to arrive. Negative disables the bound.
func WithMessageTimeout(d time.Duration) Option {
	return func(o *Options) { o.MessageTimeout = d }
}

// WithAbortSlow sets Options.AbortSlow: a session refused under
// session.PolicyClose is disconnected at once, without the closing
// handshake.
func WithAbortSlow() Option {
	return func(o *Options) { o.AbortSlow = true }
}

// WithErrorHandler sets Options.ErrorHandler, called with every panic
// recovered from a handler callback.
func WithErrorHandler(f func(s *session.Session, err error)) Option {
	return func(o *Options) { o.ErrorHandler = f }
}

// WithSubprotocols sets Options.Subprotocols, the subprotocols the server
// speaks, preferred first.
func WithSubprotocols(p ...string) Option {
	return func(o *Options) { o.Subprotocols = p }
}

// WithOriginPatterns sets Options.OriginPatterns: browser pages from these
// hosts (path.Match patterns, such as "*.example.com") are allowed besides
// the server's own.
func WithOriginPatterns(p ...string) Option {
	return func(o *Options) { o.OriginPatterns = p }
}

// WithCheckOrigin sets Options.CheckOrigin, which replaces the origin
// check.
func WithCheckOrigin(f func(r *http.Request) bool) Option {
	return func(o *Options) { o.CheckOrigin = f }
}

// WithHandshakeTimeout sets Options.HandshakeTimeout, the bound on writing
// the handshake's response.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *Options) { o.HandshakeTimeout = d }
}

// WithAdmit sets Options.Admit, the function that admits or refuses each
// upgrade request before the upgrade, and says who its client is; see
// AdmitFunc.
func WithAdmit(f AdmitFunc) Option {
	return func(o *Options) { o.Admit = f }
}

// WithTrustedProxies sets Options.TrustedProxies, the reverse proxies in
// front, whose Forwarded and X-Forwarded-For headers say who the client
// is; see Runtime.ClientAddr.
func WithTrustedProxies(p ...netip.Prefix) Option {
	return func(o *Options) { o.TrustedProxies = p }
}

// WithLimits sets Options.Limits. Zero fields mean their defaults and
// negative ones no limit, so WithLimits(Limits{MaxConnections: 1000})
// changes that limit alone, and a negative UpgradeRate turns the upgrade
// bucket off.
func WithLimits(l Limits) Option {
	return func(o *Options) { o.Limits = l }
}

// WithMemoryBudget sets the process-wide bounds of the Runtime's sessions
// together: inbound, the bytes of messages being assembled; outbound, the
// bytes of frames queued to be written. See Limits.InboundMemory and
// Limits.OutboundMemory; zero means the default, negative no bound.
func WithMemoryBudget(inbound, outbound int64) Option {
	return func(o *Options) { o.Limits.InboundMemory, o.Limits.OutboundMemory = inbound, outbound }
}

// WithTransport sets Options.Transport, how sessions wait for their
// clients.
func WithTransport(t Transport) Option {
	return func(o *Options) { o.Transport = t }
}

// WithPollers sets Options.Pollers, the number of event-loop goroutines.
func WithPollers(n int) Option {
	return func(o *Options) { o.Pollers = n }
}

// WithWorkers sets Options.Workers, the number of draining goroutines.
func WithWorkers(n int) Option {
	return func(o *Options) { o.Workers = n }
}

// WithTick sets Options.Tick, the period of the shared clock and timer.
func WithTick(d time.Duration) Option {
	return func(o *Options) { o.Tick = d }
}

// WithTracerProvider sets Options.TracerProvider, where the runtime's
// spans go.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *Options) { o.TracerProvider = tp }
}

// WithMeterProvider sets Options.MeterProvider, where the runtime's
// metrics go.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *Options) { o.MeterProvider = mp }
}

// WithRoomMetrics sets Options.MeteredRooms and MaxMeteredRooms: the
// rooms, by name or path.Match pattern, whose metrics carry their name,
// at most max at once.
func WithRoomMetrics(max int, patterns ...string) Option {
	return func(o *Options) { o.MaxMeteredRooms, o.MeteredRooms = max, patterns }
}

// WithRoomHistory sets Options.RoomHistory: f says, for each room when
// it is made, how much of what it publishes it keeps.
func WithRoomHistory(f func(room string) History) Option {
	return func(o *Options) { o.RoomHistory = f }
}

// WithRoomPresence sets Options.RoomPresence: f says, for each room when
// it is made, whether it tracks who is in it, and how.
func WithRoomPresence(f func(room string) *Presence) Option {
	return func(o *Options) { o.RoomPresence = f }
}

// WithBroker sets Options.Broker, which carries the rooms' messages
// between the nodes of a deployment.
func WithBroker(b Broker) Option {
	return func(o *Options) { o.Broker = b }
}

// WithRoomHooks sets Options.OnJoin and OnLeave, told after a session
// joined or left a room.
func WithRoomHooks(onJoin, onLeave func(r *Room, s *session.Session)) Option {
	return func(o *Options) { o.OnJoin, o.OnLeave = onJoin, onLeave }
}

// WithTraceDeliveries sets Options.TraceDeliveries, the most deliver spans
// of one traced publish.
func WithTraceDeliveries(n int) Option {
	return func(o *Options) { o.TraceDeliveries = n }
}

// WithOptions sets every option at once, as o holds them: start from
// DefaultOptions and change fields. Options after it change o's fields.
func WithOptions(o Options) Option {
	return func(dst *Options) { *dst = o }
}
