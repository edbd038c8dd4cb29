// Package ratelimit is the token bucket the examples limit their clients
// with.
package ratelimit

import "time"

// Bucket is a token bucket: it holds up to burst tokens, gains rate tokens
// a second, and each message takes one. It is meant to live in a session's
// state and be used from the session's callbacks only, so it has no lock.
// The zero Bucket is full.
type Bucket struct {
	tokens float64
	last   time.Time // of the last take; zero before the first
}

// Take reports whether a message may go now, and takes its token if so.
func (b *Bucket) Take(now time.Time, rate, burst float64) bool {
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
