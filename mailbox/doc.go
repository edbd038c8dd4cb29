// Package mailbox provides Queue, the bounded lock-free FIFO that serves as
// the mailbox of each WebSocket session: any goroutine sending to the session
// (or a room broadcasting to it) pushes, and the one goroutine that drains the
// session's outbound frames pops.
//
// # Concurrency contract
//
//   - Any number of goroutines may call TryPush at the same time.
//   - Pop and PopBatch are meant for one consumer at a time, but they are safe
//     to call from several goroutines at once: a producer that enforces a
//     drop-oldest policy may Pop the oldest item while the consumer drains.
//   - No method blocks, takes a lock or uses a channel. TryPush reports false
//     when the queue is full; Pop reports false when it is empty. Waiting and
//     waking (for example a consumer parked until a producer signals it) are
//     the caller's business.
//   - Items pushed by one goroutine are popped in the order it pushed them.
//     Across producers the order is the order in which their pushes claimed a
//     position.
//   - The queue is not strictly linearizable: an item becomes visible only
//     when the TryPush that claimed its position has stored it, and no later
//     position can be popped before it. So Pop may report empty while a
//     TryPush is still in flight, even if a later push has already returned
//     true; the producer of the missing item returns moments later. A
//     producer that signals the consumer after each successful TryPush
//     therefore never leaves an item stranded. Likewise TryPush may report
//     full while a Pop of the oldest item is still in flight.
//   - Len is approximate while other goroutines use the queue and exact when
//     they do not.
//   - Init must not run concurrently with any other method.
//
// # Allocation budget
//
// New allocates twice: the Queue header (about 224 bytes, most of it padding
// that keeps the producers' tail and the consumers' head on separate cache
// lines) and one slice of Cap() slots. A slot is an 8-byte sequence number
// followed by a T, so the slice takes Cap() * (8 + sizeof(T)) bytes, each
// slot rounded up to a multiple of 8. A Queue embedded by value and set up
// with Init allocates only the slice. After that, TryPush, Pop, Len and Cap
// never allocate, and PopBatch does not allocate as long as dst has spare
// capacity.
//
// Popped slots are zeroed, so the queue keeps no reference to an item once it
// has been popped.
package mailbox
