package runtime

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// Options are the settings of a Runtime. Pass Option functions to New, or
// start from DefaultOptions, change fields, and pass WithOptions: both
// fill the same struct.
type Options struct {
	// Session holds the limits of every session: message size, mailbox,
	// backpressure policy, timeouts. Zero fields mean session's defaults.
	Session session.Config
	// Subprotocols, OriginPatterns and CheckOrigin configure the opening
	// handshake, as in wire.AcceptOptions. By default a browser page of
	// another origin is refused with 403.
	Subprotocols   []string
	OriginPatterns []string
	CheckOrigin    func(r *http.Request) bool
	// HandshakeTimeout bounds writing the 101 response; see
	// wire.AcceptOptions. Set http.Server.ReadHeaderTimeout for the
	// request. Defaults to wire.DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Workers is the number of goroutines that drain mailboxes for senders
	// on other goroutines. Defaults to GOMAXPROCS.
	Workers int
	// TracerProvider and MeterProvider receive the runtime's spans and
	// metrics (see docs/observability.md). They default to OpenTelemetry's
	// global providers, as installed by otel.SetTracerProvider and
	// SetMeterProvider before New. With no SDK installed, instrumentation
	// is off and costs nothing.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Tick is the period of the shared timer that runs heartbeats and
	// timeouts. Defaults to a quarter of the shortest timeout, between
	// 10 ms and 1 s.
	Tick time.Duration
	// Transport chooses how sessions wait for their clients: by default
	// on the event loop where there is one (Linux, plain TCP), else with a
	// goroutine each.
	Transport Transport
	// Pollers is the number of event-loop goroutines. Defaults to
	// GOMAXPROCS.
	Pollers int
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
	// upgrade rate per address and the rooms per session. Zero fields mean
	// their defaults, negative ones no limit; see Limits.
	Limits Limits
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

// An Option changes Options; it fails New when its value is invalid.
type Option func(*Options) error

// DefaultOptions returns the defaults, spelled out.
func DefaultOptions() Options {
	return Options{
		Session: session.Config{
			MaxMessageSize: session.DefaultMaxMessageSize,
			MailboxSize:    session.DefaultMailboxSize,
			MaxQueuedBytes: session.DefaultMaxQueuedBytes,
			Policy:         session.PolicyClose,
			SlowCode:       wire.StatusPolicyViolation,
			PingInterval:   session.DefaultPingInterval,
			PongTimeout:    session.DefaultPongTimeout,
			WriteTimeout:   session.DefaultWriteTimeout,
			CloseTimeout:   session.DefaultCloseTimeout,
			MessageRate:    session.DefaultMessageRate,
			MessageBurst:   session.DefaultMessageRate,
			MessageTimeout: session.DefaultMessageTimeout,
		},
		Limits: Limits{}.withDefaults(), // written once, there
	}
}

func positive[T int | int64 | time.Duration](name string, v T) error {
	if v <= 0 {
		return errors.New("runtime: " + name + " must be positive")
	}
	return nil
}

// WithMaxMessageSize sets the longest message a client may send, in bytes.
func WithMaxMessageSize(n int64) Option {
	return func(o *Options) error { o.Session.MaxMessageSize = n; return positive("max message size", n) }
}

// WithMailbox sets how many frames and bytes may wait to be written to one
// session, and what happens past that.
func WithMailbox(frames int, bytes int64, p session.Policy) Option {
	return func(o *Options) error {
		o.Session.MailboxSize, o.Session.MaxQueuedBytes, o.Session.Policy = frames, bytes, p
		if p > session.PolicyDropOldest {
			return errors.New("runtime: unknown policy")
		}
		return errors.Join(positive("mailbox size", frames), positive("queued bytes", bytes))
	}
}

// WithHeartbeat sets the ping interval and the pong timeout. An interval
// of -1 disables pings.
func WithHeartbeat(interval, pongTimeout time.Duration) Option {
	return func(o *Options) error {
		o.Session.PingInterval, o.Session.PongTimeout = interval, pongTimeout
		if interval < 0 {
			return nil
		}
		return errors.Join(positive("ping interval", interval), positive("pong timeout", pongTimeout))
	}
}

// WithIdleTimeout closes sessions that send nothing for d.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *Options) error { o.Session.IdleTimeout = d; return positive("idle timeout", d) }
}

// WithWriteTimeout bounds a write to a client that is not reading.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *Options) error { o.Session.WriteTimeout = d; return positive("write timeout", d) }
}

// WithCloseTimeout bounds the closing handshake.
func WithCloseTimeout(d time.Duration) Option {
	return func(o *Options) error { o.Session.CloseTimeout = d; return positive("close timeout", d) }
}

// WithSubprotocols lists the subprotocols the server speaks, preferred first.
func WithSubprotocols(p ...string) Option {
	return func(o *Options) error { o.Subprotocols = p; return nil }
}

// WithOriginPatterns allows browser pages from these hosts (path.Match
// patterns, such as "*.example.com") besides the server's own.
func WithOriginPatterns(p ...string) Option {
	return func(o *Options) error { o.OriginPatterns = p; return nil }
}

// WithCheckOrigin replaces the origin check.
func WithCheckOrigin(f func(r *http.Request) bool) Option {
	return func(o *Options) error { o.CheckOrigin = f; return nil }
}

// WithHandshakeTimeout bounds writing the handshake's response.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *Options) error { o.HandshakeTimeout = d; return positive("handshake timeout", d) }
}

// WithErrorHandler sets the function called with every panic recovered from
// a handler callback.
func WithErrorHandler(f func(s *session.Session, err error)) Option {
	return func(o *Options) error { o.Session.OnError = f; return nil }
}

// WithTracerProvider sets where the runtime's spans go.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *Options) error { o.TracerProvider = tp; return nil }
}

// WithMeterProvider sets where the runtime's metrics go.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *Options) error { o.MeterProvider = mp; return nil }
}

// WithWorkers sets the number of draining goroutines.
func WithWorkers(n int) Option {
	return func(o *Options) error { o.Workers = n; return positive("workers", n) }
}

// WithTransport chooses how sessions wait for their clients.
func WithTransport(t Transport) Option {
	return func(o *Options) error {
		o.Transport = t
		if t > TransportGoroutine {
			return errors.New("runtime: unknown transport")
		}
		return nil
	}
}

// WithPollers sets the number of event-loop goroutines.
func WithPollers(n int) Option {
	return func(o *Options) error { o.Pollers = n; return positive("pollers", n) }
}

// WithLimits sets the admission limits. Zero fields mean their defaults
// and negative ones no limit, so WithLimits(Limits{MaxConnections: 1000})
// changes that limit alone, and a negative UpgradeRate turns the upgrade
// bucket off.
func WithLimits(l Limits) Option {
	return func(o *Options) error { o.Limits = l; return l.check() }
}

// WithTick sets the period of the shared timer.
func WithTick(d time.Duration) Option {
	return func(o *Options) error { o.Tick = d; return positive("tick", d) }
}

// WithMessageRate sets how many messages a second each client may send on
// average, in bursts of up to burst: past it, its session stops reading
// from it until it is within the rate again (see session.Config). A
// negative rate disables the limit; a burst of 0 means a second's worth.
func WithMessageRate(rate float64, burst int) Option {
	return func(o *Options) error {
		o.Session.MessageRate, o.Session.MessageBurst = rate, burst
		if rate == 0 || math.IsNaN(rate) || burst < 0 {
			return errors.New("runtime: message rate must be a number other than 0 (negative disables it), burst not negative")
		}
		return nil
	}
}

// WithMessageTimeout bounds how long one message may take to arrive; see
// session.Config.MessageTimeout. Negative disables the bound.
func WithMessageTimeout(d time.Duration) Option {
	return func(o *Options) error {
		o.Session.MessageTimeout = d
		if d == 0 {
			return errors.New("runtime: message timeout must not be 0 (negative disables it)")
		}
		return nil
	}
}

// WithMemoryBudget sets the process-wide bounds of the Runtime's sessions
// together: inbound, the bytes of messages being assembled; outbound, the
// bytes of frames queued to be written. See Limits.InboundMemory and
// Limits.OutboundMemory.
func WithMemoryBudget(inbound, outbound int64) Option {
	return func(o *Options) error {
		o.Limits.InboundMemory, o.Limits.OutboundMemory = inbound, outbound
		if inbound == 0 || outbound == 0 {
			return errors.New("runtime: memory budgets must not be 0 (negative disables them)")
		}
		return nil
	}
}

// WithAbortSlow makes a session refused under session.PolicyClose be
// disconnected at once, without the closing handshake; see
// session.Config.AbortSlow.
func WithAbortSlow() Option {
	return func(o *Options) error { o.Session.AbortSlow = true; return nil }
}

// WithAdmit sets the function that admits or refuses each upgrade request
// before the upgrade, and says who its client is; see AdmitFunc.
func WithAdmit(f AdmitFunc) Option {
	return func(o *Options) error { o.Admit = f; return nil }
}

// WithTrustedProxies lists the reverse proxies in front, whose Forwarded
// and X-Forwarded-For headers say who the client is; see
// Runtime.ClientAddr.
func WithTrustedProxies(p ...netip.Prefix) Option {
	return func(o *Options) error {
		o.TrustedProxies = p
		for _, x := range p {
			if !x.IsValid() {
				return errors.New("runtime: invalid trusted proxy prefix")
			}
		}
		return nil
	}
}

// WithOptions sets every option at once, as o holds them: start from
// DefaultOptions. A zero field means its default, as in the session's
// Config and in Limits; Options after it change o's fields.
func WithOptions(o Options) Option {
	return func(dst *Options) error { *dst = o; return nil }
}
