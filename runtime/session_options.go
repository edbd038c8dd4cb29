package runtime

import (
	"errors"
	"time"
)

// WithMessageRate sets how many messages a second each client may send on
// average, in bursts of up to burst: past it, its session stops reading
// from it until it is within the rate again (see session.Config). A
// negative rate disables the limit; a burst of 0 means a second's worth.
func WithMessageRate(rate float64, burst int) Option {
	return func(o *Options) error {
		o.Session.MessageRate, o.Session.MessageBurst = rate, burst
		if rate == 0 || burst < 0 {
			return errors.New("runtime: message rate must not be 0 (negative disables it), burst not negative")
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

// MemoryInUse returns the bytes the Runtime's sessions hold now against
// their memory budgets: inbound, in messages being assembled; outbound,
// in frames queued to be written (see Limits). A budget that is off
// reports 0.
func (rt *Runtime) MemoryInUse() (inbound, outbound int64) {
	if b := rt.cfg.InboundBudget; b != nil {
		inbound = b.InUse()
	}
	if b := rt.cfg.OutboundBudget; b != nil {
		outbound = b.InUse()
	}
	return inbound, outbound
}
