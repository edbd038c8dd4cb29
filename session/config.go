package session

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// Policy says what happens to a frame sent to a session whose mailbox or
// outbound byte budget is full: the client is not reading fast enough.
type Policy uint8

const (
	// PolicyClose closes the slow session with SlowCode (1008 by default)
	// and fails the send with ErrSlowConsumer. The default: a client that
	// cannot keep up is told so, rather than silently missing messages.
	PolicyClose Policy = iota
	// PolicyDropNewest drops the frame being sent (ErrDropped).
	PolicyDropNewest
	// PolicyDropOldest drops the oldest queued frames to make room, which
	// suits state that each new frame supersedes, such as game snapshots.
	PolicyDropOldest
)

func (p Policy) String() string {
	switch p {
	case PolicyClose:
		return "close"
	case PolicyDropNewest:
		return "drop-newest"
	case PolicyDropOldest:
		return "drop-oldest"
	}
	return "policy(?)"
}

// Errors of sending and of session ends.
var (
	// ErrClosed: the session is closing or closed; the frame was not sent.
	ErrClosed = errors.New("session: closed")
	// ErrDropped: the frame was dropped by PolicyDropNewest.
	ErrDropped = errors.New("session: mailbox full, frame dropped")
	// ErrSlowConsumer: the session was closed by PolicyClose.
	ErrSlowConsumer = errors.New("session: slow consumer closed")
	// ErrTimeout: the client did not answer a ping, did not finish the
	// closing handshake, or did not take a write, in time.
	ErrTimeout = errors.New("session: timeout")
	// ErrMessageTimeout: a message took longer than MessageTimeout to
	// arrive; the session was closed with 1008.
	ErrMessageTimeout = errors.New("session: message took too long to arrive")
	// ErrOverBudget: the frame was refused because the frames queued in
	// the whole process are over Config.OutboundBudget and this session
	// has a backlog of its own; the policy then applied as when the
	// session's mailbox is full.
	ErrOverBudget = errors.New("session: outbound memory budget exceeded")
)

// Defaults of Config.
const (
	DefaultMaxMessageSize = 1 << 20
	DefaultMailboxSize    = 256
	DefaultMaxQueuedBytes = 4 << 20
	DefaultPingInterval   = 30 * time.Second
	DefaultPongTimeout    = 15 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	DefaultMessageRate    = 1000
	DefaultMessageTimeout = 60 * time.Second
)

// Config holds the limits of sessions. The zero value of each field means
// its default. A Config is read, never written, once sessions use it.
type Config struct {
	// MaxMessageSize is the longest message read, in bytes; a longer one
	// closes the session with 1009. Defaults to 1 MiB.
	MaxMessageSize int64
	// ReadBufferSize is the size of the pooled read buffer, borrowed only
	// while there is something to read. Defaults to 16 KiB.
	ReadBufferSize int
	// MailboxSize is how many frames may wait to be written. Rounded up to
	// a power of two. Defaults to 256.
	MailboxSize int
	// MaxQueuedBytes caps the bytes waiting to be written, counted from
	// Send until the kernel has taken them. A frame is always accepted
	// into an empty queue, whatever its size. Defaults to 4 MiB.
	MaxQueuedBytes int64
	// Policy applies when the mailbox or MaxQueuedBytes is full.
	// Defaults to PolicyClose.
	Policy Policy
	// SlowCode is the close code PolicyClose sends.
	// Defaults to wire.StatusPolicyViolation (1008).
	SlowCode wire.StatusCode
	// PingInterval: a ping is sent when nothing was read for this long.
	// Negative disables pings. Defaults to 30 s.
	PingInterval time.Duration
	// PongTimeout: a session that sends nothing at all (not even the pong)
	// for this long after a ping is dropped with ErrTimeout, which finds
	// half-open TCP connections. Defaults to 15 s.
	PongTimeout time.Duration
	// IdleTimeout closes a session (1001) when nothing was read for this
	// long, pongs included. Zero disables it: the heartbeat is enough to
	// find dead peers.
	IdleTimeout time.Duration
	// WriteTimeout bounds a write that the kernel cannot take at once
	// because the client is not reading. Defaults to 10 s.
	WriteTimeout time.Duration
	// CloseTimeout bounds the closing handshake. Defaults to 5 s.
	CloseTimeout time.Duration
	// MessageRate is how many messages a second a client may send on
	// average, in bursts of up to MessageBurst. Past it, the session stops
	// reading from the client until the client is within the rate again:
	// a flood is slowed, as TCP slows a fast sender, and nothing is lost.
	// Only data messages count. The rate is measured on the Scheduler's
	// clock, so a paused session reads again up to one Tick late.
	// Negative disables the limit. Defaults to 1,000.
	MessageRate float64
	// MessageBurst is how many messages a client may send at once, above
	// MessageRate. Defaults to a second's worth of MessageRate.
	MessageBurst int
	// MessageTimeout bounds how long one message may take to arrive: from
	// its first byte (or, when its first bytes came with the message
	// before it, from that message) to its last. A message that takes
	// longer closes the session with 1008 and ErrMessageTimeout. It is the
	// bound on a client that trickles a large message; silence alone is
	// the heartbeat's to find. Negative disables it. Defaults to 60 s.
	MessageTimeout time.Duration
	// InboundBudget, if set, caps the bytes held at once, by every session
	// sharing it, in messages being assembled (messages larger than the
	// read buffer, or fragmented). A message that would go over it closes
	// its session with 1013 (try again later). A Runtime shares one among
	// all its sessions.
	InboundBudget *wire.Budget
	// OutboundBudget, if set, counts the bytes of every frame queued by the
	// sessions sharing it (a frame shared by a room counts once). While it
	// is exceeded, a frame sent to a session whose own backlog is over
	// 64 KiB (or MaxQueuedBytes, if lower) is refused under Policy, with
	// ErrOverBudget for the drop policies: the sessions that keep up are
	// served, the ones that hoard memory are cut. A Runtime shares one
	// among all its sessions.
	OutboundBudget *wire.Budget
	// AbortSlow disconnects a session refused under PolicyClose at once,
	// without a closing handshake, instead of sending a close frame it
	// will probably not read and waiting up to CloseTimeout for its answer.
	AbortSlow bool
	// Counters, if set, counts drops and the limits that acted across all
	// sessions using this Config.
	Counters *Counters
	// OnError, if set, is called with the value of every panic recovered
	// from a handler callback (and the session it belongs to).
	OnError func(s *Session, err error)
	// Observer, if set, is told about every write. The runtime sets it when
	// metrics are on; nil costs nothing.
	Observer Observer

	normalized bool
	rateIv     int64 // the Scheduler-clock time one message costs, or 0: no limit
	rateTau    int64 // how far ahead of the clock the cost may run: MessageBurst of them
	backlog    int64 // the backlog past which OutboundBudget refuses frames
}

func (c *Config) withDefaults() Config {
	o := *c
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MailboxSize <= 0 {
		o.MailboxSize = DefaultMailboxSize
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.SlowCode == 0 {
		o.SlowCode = wire.StatusPolicyViolation
	}
	def(&o.PingInterval, DefaultPingInterval)
	def(&o.PongTimeout, DefaultPongTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.CloseTimeout, DefaultCloseTimeout)
	def(&o.MessageTimeout, DefaultMessageTimeout)
	if o.MessageRate == 0 {
		o.MessageRate = DefaultMessageRate
	}
	if o.MessageRate > 0 {
		if o.MessageBurst <= 0 {
			o.MessageBurst = max(1, int(o.MessageRate))
		}
		o.rateIv = max(1, int64(float64(time.Second)/o.MessageRate))
		o.rateTau = int64(o.MessageBurst) * o.rateIv
	}
	o.backlog = min(o.MaxQueuedBytes, 64<<10)
	if o.Counters == nil {
		o.Counters = new(Counters)
	}
	o.normalized = true
	return o
}

// Counters count what the backpressure policies and the limits did. Safe
// for concurrent use.
type Counters struct {
	DroppedNewest atomic.Uint64 // frames dropped by PolicyDropNewest
	DroppedOldest atomic.Uint64 // frames dropped by PolicyDropOldest
	ClosedSlow    atomic.Uint64 // sessions closed by PolicyClose

	Throttled       atomic.Uint64 // times a session stopped reading for MessageRate
	Paused          atomic.Uint64 // times a session stopped reading while its mailbox was half full
	MessageTimeouts atomic.Uint64 // sessions closed by MessageTimeout
	TooBig          atomic.Uint64 // sessions closed for a message over MaxMessageSize (1009)
	InboundBudget   atomic.Uint64 // sessions closed by InboundBudget (1013)
	OutboundBudget  atomic.Uint64 // frames refused by OutboundBudget
	PongTimeouts    atomic.Uint64 // sessions dropped by the heartbeat (nothing came back after a ping)
	IdleTimeouts    atomic.Uint64 // sessions closed by IdleTimeout (1001)
	WriteTimeouts   atomic.Uint64 // sessions dropped by WriteTimeout
	CloseTimeouts   atomic.Uint64 // sessions dropped by CloseTimeout (no answer to their close frame)
	Expired         atomic.Uint64 // sessions closed because their credentials expired (3000)
}

// Normalize returns c with every zero field set to its default, as New
// would use it.
func Normalize(c Config) Config { return c.withDefaults() }

// Observer watches sessions' writes, for metrics. Its methods are called on
// the writing goroutine and must be quick and safe for concurrent use.
type Observer interface {
	// Wrote reports one write to the socket: the number of frames it
	// completed and the bytes the kernel took.
	Wrote(s *Session, frames, bytes int)
}
