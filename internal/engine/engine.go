// Package engine is the seam between the session package, which runs
// sessions, and the runtime, which starts them. What only the runtime
// calls (the shared scheduler, making a session of an upgraded
// connection, serving it) is reached through here, so that the session
// package's public API is what a handler needs and no more. Users of
// Shockwave never see this package.
//
// The session package registers its engine when it is initialised
// (Register); the runtime starts one per Runtime (Start). The type
// parameters stand for session's types, which this package cannot name
// without an import cycle: S is *session.Session, H session.Handler, P
// session.Policy and C session.Counters. Each side writes the
// instantiation once, as a type alias.
package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/netip"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// Config holds the settings of a Runtime's sessions. Every field is set:
// the runtime fills them from its Options, where their defaults are
// written, and checks them. It is read, never written, once sessions use
// it. The session package documents what each does (session's doc.go),
// the runtime's Options what each means to a user.
type Config[S any, P ~uint8, C any] struct {
	MaxMessageSize int64 // longer messages close with 1009
	ReadBufferSize int   // the pooled read buffer
	MailboxSize    int   // frames that may wait to be written
	MaxQueuedBytes int64 // bytes that may wait to be written
	Policy         P     // what a full mailbox does to a frame
	SlowCode       wire.StatusCode

	PingInterval   time.Duration // negative: no pings
	PongTimeout    time.Duration
	IdleTimeout    time.Duration // zero: none
	WriteTimeout   time.Duration
	CloseTimeout   time.Duration
	MessageTimeout time.Duration // negative: none
	MessageRate    float64       // negative: no limit
	MessageBurst   int

	Compression          wire.CompressionMode // as the handshake negotiates it
	CompressionThreshold int                  // data frames shorter go out uncompressed

	InboundBudget  *wire.Budget // nil: no limit
	OutboundBudget *wire.Budget // nil: no limit
	AbortSlow      bool

	Counters *C             // shared by the Runtime's sessions; never nil
	OnError  func(S, error) // told of every panic recovered from a callback; may be nil
	Observer Observer       // told of every write; nil when metrics are off
	Tracer   Tracer[S]      // told of traced frames' deliveries; nil when tracing is off
	Sessions iter.Seq[S]    // the live sessions, for the timer's checks
	Workers  int            // goroutines that drain mailboxes for other goroutines' sends
	Tick     time.Duration  // the period of the shared clock and timer
	Pollers  int            // event-loop goroutines; 0: a goroutine per session
}

// Observer watches sessions' writes, for metrics. It is called on the
// writing goroutine and must be quick and safe for concurrent use.
type Observer interface {
	// Wrote reports one write to the socket: the number of frames it
	// completed, the bytes the kernel took, the frames the session had
	// queued when the write began (the mailbox's depth, those written
	// included), and how long the oldest data frame of the write had
	// waited since it was first queued (0 when there was none).
	Wrote(frames, bytes, depth int, waited time.Duration)
}

// Tracer records the deliveries of traced frames (see session.Frame's
// SetContext). It is called on the writing or sending goroutine and must
// be quick and safe for concurrent use.
type Tracer[S any] interface {
	// Traced reports whether ctx is traced: whether a frame sent in it
	// should carry it.
	Traced(ctx context.Context) bool
	// Delivered reports the end of a traced frame's way to session s:
	// the kernel took it (err is nil), or it was not written and err
	// says why (session's ErrClosed, ErrDropped, ErrSlowConsumer,
	// ErrOverBudget, or the write's error). since is when the frame got
	// ctx, in Unix nanoseconds.
	Delivered(ctx context.Context, s S, since int64, err error)
	// Closing is told that session s has ended, because of err, before
	// its OnClose; cause is the context of the traced frame that made it
	// a slow consumer, or nil. It returns the context OnClose's
	// Session.Context is to be (base with the span of the session's end,
	// say), or nil to leave it base. The runtime's OnClose ends that
	// span.
	Closing(base context.Context, s S, err error, cause context.Context) context.Context
}

// ErrDroppedOldest is joined to session.ErrDropped for a queued frame that
// PolicyDropOldest dropped to make room for a newer one, so that the
// tracer can tell the policy that acted.
var ErrDroppedOldest = errors.New("dropped to make room for a newer frame")

// Engine runs the sessions of one Runtime: the machinery they share (the
// workers, the timer, the event loop) and their Config.
type Engine[S, H any] interface {
	// New makes the session of a connection upgraded by wire.Upgrade. It
	// does nothing until Serve.
	New(u wire.Upgraded, h H) S
	// Serve runs s: OnOpen, then its messages, until it ends, then
	// OnClose. On the goroutine transport it returns when the connection
	// is closed; on the event loop, as soon as s waits for its client.
	Serve(s S)
	// EventLoop reports whether the engine runs an event loop.
	EventLoop() bool
	// Listen accepts the connections of ln on the event loop, reads their
	// opening handshakes there, and gives each complete request head to
	// handshake, until ln is closed or ctx is done (it then returns nil),
	// or ln fails. When
	// blocking is set, each handshake call runs on a goroutine of its
	// own, otherwise on the event loop's. It returns ErrNoEventLoop at
	// once when the engine has no event loop or ln is not a TCP
	// listener: the caller serves ln with net/http then.
	Listen(ctx context.Context, ln net.Listener, timeout time.Duration, blocking bool, handshake func(Handshake[S, H])) error
	// Close stops the shared machinery and waits for it. Sessions still
	// open are no longer drained by workers nor timed out: close them
	// first.
	Close()
}

// ErrNoEventLoop is Listen's answer when the engine cannot serve a listener
// on its event loop.
var ErrNoEventLoop = errors.New("engine: no event loop for this listener")

// Handshake is a connection whose opening handshake the event loop read
// (Engine.Listen). It is valid until Accept or Refuse, exactly one of
// which the handshake function must call.
type Handshake[S, H any] interface {
	// Request is the client's request head.
	Request() *wire.Request
	// Remote is the client's address (the peer of the socket).
	Remote() netip.AddrPort
	// Buffer is room for the response: an empty slice with capacity for
	// one, valid until Accept or Refuse.
	Buffer() []byte
	// Refuse writes resp, an HTTP response, and closes the connection.
	Refuse(resp []byte)
	// Accept writes resp, the 101 response, and makes the session of the
	// connection with u (whose Conn and Buffered it ignores: the bytes
	// after the head are the session's) and h. Serve, on the goroutine
	// that called Accept, runs it. On an error (the write failed) the
	// connection is closed.
	Accept(resp []byte, u wire.Upgraded, h H) (S, error)
}

// start is the session package's engine constructor, set by Register.
var start any

// Register is called by the session package's init with its engine
// constructor.
func Register[S, H any, P ~uint8, C any](f func(Config[S, P, C]) Engine[S, H]) { start = f }

// Start starts an engine with the settings in cfg.
func Start[S, H any, P ~uint8, C any](cfg Config[S, P, C]) Engine[S, H] {
	f, ok := start.(func(Config[S, P, C]) Engine[S, H])
	if !ok {
		panic(fmt.Sprintf("engine: no engine registered for %T", cfg))
	}
	return f(cfg)
}
