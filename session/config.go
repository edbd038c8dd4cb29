package session

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/internal/engine"
)

// Policy says what happens to a frame sent to a session whose mailbox or
// outbound byte budget is full: the client is not reading fast enough.
type Policy uint8

const (
	// PolicyClose closes the slow session with the runtime's SlowCode
	// (1008 by default) and fails the send with ErrSlowConsumer. The
	// default: a client that cannot keep up is told so, rather than
	// silently missing messages.
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
	// the whole process are over the Runtime's OutboundMemory and this session
	// has a backlog of its own; the policy then applied as when the
	// session's mailbox is full.
	ErrOverBudget = errors.New("session: outbound memory budget exceeded")
)

// config is the sessions' settings as the runtime fills and checks them:
// every field set (see runtime.Options for what each means, and its
// defaults).
type config = engine.Config[*Session, Policy, Counters]

// settings are a config and what sessions derive from it, once for all.
// Read, never written, once sessions use them.
type settings struct {
	config
	rateIv  int64 // the scheduler-clock time one message costs, or 0: no limit
	rateTau int64 // how far ahead of the clock the cost may run: MessageBurst of them
	backlog int64 // the backlog past which OutboundBudget refuses frames
}

func newSettings(c config) *settings {
	st := &settings{config: c, backlog: min(c.MaxQueuedBytes, 64<<10)}
	if c.MessageRate > 0 {
		st.rateIv = max(1, int64(float64(time.Second)/c.MessageRate))
		st.rateTau = int64(max(1, c.MessageBurst)) * st.rateIv
	}
	if st.Counters == nil {
		st.Counters = new(Counters)
	}
	return st
}

// Counters count what the backpressure policies and the limits did to a
// Runtime's sessions (runtime.Runtime.Counters). Safe for concurrent use.
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
