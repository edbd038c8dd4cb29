package chatserver

// ring keeps the last len(buf) values pushed, for a room's history.
// It is not safe for concurrent use: the room's mutex guards it.
type ring[T any] struct {
	buf  []T
	next int  // where the next value goes
	full bool // buf has wrapped around: every slot holds a value
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

// push adds v, dropping the oldest value when the ring is full.
func (r *ring[T]) push(v T) {
	if len(r.buf) == 0 {
		return
	}
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// all returns a copy of the values, oldest first; never nil, so that an
// empty history encodes as [] rather than null.
func (r *ring[T]) all() []T {
	out := make([]T, 0, r.len())
	if r.full {
		out = append(out, r.buf[r.next:]...)
	}
	return append(out, r.buf[:r.next]...)
}

// len returns the number of values held.
func (r *ring[T]) len() int {
	if r.full {
		return len(r.buf)
	}
	return r.next
}
