package mailbox

import (
	"math/bits"
	"sync/atomic"
)

// cacheLine is the padding unit that keeps the hot words of a Queue apart. It
// is the cache line size of amd64 and most arm64 cores; the distances between
// the padded fields are at least this much whatever the Queue's alignment.
const cacheLine = 64

// maxCapacity is the largest capacity New and Init accept.
const maxCapacity = 1 << 30

// slot is one cell of the ring. Its sequence number says what the cell holds:
// for position pos mapped onto it, seq == pos means "free, a producer may claim
// pos", seq == pos+1 means "holds the item of pos, a consumer may claim it",
// and the consumer releases it for the next lap with seq = pos+capacity.
type slot[T any] struct {
	seq atomic.Uint64
	val T
}

// Queue is a bounded lock-free FIFO: any number of goroutines may TryPush;
// Pop/PopBatch are meant for one consumer at a time but are safe to call
// concurrently (a producer enforcing a drop-oldest policy pops too).
//
// It is Dmitry Vyukov's bounded multi-producer multi-consumer ring: every slot
// carries a sequence number, producers claim positions with a CAS on the tail
// and consumers with a CAS on the head. A zero Queue is unusable until Init is
// called; a Queue must not be copied after first use.
type Queue[T any] struct {
	// Read-only after Init, read by both sides.
	mask  uint64
	slots []slot[T]

	_    [cacheLine]byte
	tail atomic.Uint64 // next position to push; written by producers
	_    [cacheLine - 8]byte
	head atomic.Uint64 // next position to pop; written by consumers
	_    [cacheLine - 8]byte
}

// New returns an empty queue that holds up to capacity items. The capacity is
// rounded up to a power of two, and to at least 2. New panics if capacity is
// negative or greater than 1<<30.
func New[T any](capacity int) *Queue[T] {
	q := new(Queue[T])
	q.Init(capacity)
	return q
}

// Init sets q up as an empty queue of the given capacity, rounded as by New,
// and panics as New does. It is for a Queue embedded by value in another
// struct; the zero Queue panics on use until Init is called. Calling Init
// again discards the contents. Init must not run concurrently with any other
// method of q.
func (q *Queue[T]) Init(capacity int) {
	if capacity < 0 || capacity > maxCapacity {
		panic("mailbox: capacity out of range [0, 1<<30]")
	}
	// Capacity 1 cannot work: a released slot (seq = pos+1) would look
	// exactly like a full one.
	n := 2
	if capacity > 2 {
		n = 1 << bits.Len(uint(capacity-1))
	}
	q.mask = uint64(n - 1)
	q.slots = make([]slot[T], n)
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	q.head.Store(0)
	q.tail.Store(0)
}

// TryPush appends v to the queue and reports true, or reports false, leaving
// the queue unchanged, when the queue is full. It never blocks and never
// allocates. Any number of goroutines may call it at once.
func (q *Queue[T]) TryPush(v T) bool {
	pos := q.tail.Load()
	for {
		s := &q.slots[pos&q.mask]
		seq := s.seq.Load()
		switch d := int64(seq - pos); {
		case d == 0:
			if q.tail.CompareAndSwap(pos, pos+1) {
				s.val = v
				s.seq.Store(pos + 1)
				return true
			}
			pos = q.tail.Load()
		case d < 0:
			// The slot still holds (or is being emptied of) the item one
			// lap behind: full.
			return false
		default:
			// Another producer claimed pos; catch up.
			pos = q.tail.Load()
		}
	}
}

// Pop removes and returns the oldest item, with ok true, or returns the zero
// value and false when the queue is empty. It never blocks and never
// allocates. The slot it empties is zeroed, so the queue drops its reference
// to the item.
func (q *Queue[T]) Pop() (v T, ok bool) {
	pos := q.head.Load()
	for {
		s := &q.slots[pos&q.mask]
		seq := s.seq.Load()
		switch d := int64(seq - (pos + 1)); {
		case d == 0:
			if q.head.CompareAndSwap(pos, pos+1) {
				v = s.val
				var zero T
				s.val = zero
				s.seq.Store(pos + q.mask + 1)
				return v, true
			}
			pos = q.head.Load()
		case d < 0:
			// Nothing published at pos yet: empty.
			return v, false
		default:
			// Another consumer took pos; catch up.
			pos = q.head.Load()
		}
	}
}

// PopBatch removes the oldest items, in order, appends them to dst and returns
// the extended slice. It takes at most cap(dst)-len(dst) items, so it does not
// allocate when dst has spare capacity; when dst has none it still takes one
// item (and append grows dst). It takes at least one item unless the queue is
// empty, and stops early at the first position whose push is still in flight.
// The whole batch is claimed with a single CAS on the head.
func (q *Queue[T]) PopBatch(dst []T) []T {
	limit := uint64(cap(dst) - len(dst))
	if limit == 0 {
		limit = 1
	}
	if c := q.mask + 1; limit > c {
		limit = c
	}
	pos := q.head.Load()
	for {
		// Count the published items from pos on. Each seq that equals its
		// position+1 was stored by the producer of exactly that position,
		// and no consumer can have taken it while head is still pos; the
		// CAS below checks that.
		var n uint64
		for n < limit {
			p := pos + n
			if q.slots[p&q.mask].seq.Load() != p+1 {
				break
			}
			n++
		}
		if n == 0 {
			if int64(q.slots[pos&q.mask].seq.Load()-(pos+1)) < 0 {
				return dst // empty
			}
			pos = q.head.Load()
			continue
		}
		if !q.head.CompareAndSwap(pos, pos+n) {
			pos = q.head.Load()
			continue
		}
		var zero T
		for i := range n {
			p := pos + i
			s := &q.slots[p&q.mask]
			dst = append(dst, s.val)
			s.val = zero
			s.seq.Store(p + q.mask + 1)
		}
		return dst
	}
}

// Len returns the number of items in the queue, counting pushes and pops that
// are in flight. It is approximate while other goroutines use the queue and
// exact when they do not.
func (q *Queue[T]) Len() int {
	// Head first: the head never passes the tail, and the tail loaded
	// afterwards is at least the tail at the time of the head load, so the
	// difference is never negative. It can exceed the capacity if both moved
	// between the loads.
	head := q.head.Load()
	n := q.tail.Load() - head
	if c := q.mask + 1; n > c {
		return int(c)
	}
	return int(n)
}

// Cap returns the capacity of the queue: the number of items it holds when
// full, a power of two.
func (q *Queue[T]) Cap() int {
	return int(q.mask + 1)
}
