// Package session is Shockwave's actor: one Session per WebSocket
// connection, its Handler's callbacks never concurrent, fed by a bounded
// lock-free mailbox of frames to write.
//
// Sessions are made and run by the runtime package, which upgrades
// connections, creates their sessions, keeps the registry and rooms, and
// shuts down; its Options set the limits and timeouts named here. This
// package is what a handler sees: Session (Send, Close, Context, State,
// Identity), Handler and its adapters, Frame (an encoded frame shared by
// reference), and the backpressure Policy.
//
// # Execution
//
// A session is not a goroutine. Its callbacks run on the goroutine that
// reads its connection, one at a time, in order. Frames sent to it wait in
// its mailbox until someone drains it: the reader after a callback (an
// echo is written on the same goroutine, with no hop; while the next frame
// is already buffered, the reader keeps going and writes the replies to
// the whole burst at once), or, when the
// sender is elsewhere (another session, a room broadcast, a game loop), one
// of the scheduler's few worker goroutines. A session has three states on
// its writing side — idle, running (one drainer owns it), and in-handler
// (the reader will drain when the callback returns) — switched by CAS, and
// a drainer checks the mailbox again after going idle, so no wake-up is
// lost. Whoever drains writes everything pending in one vectored write that
// never waits: what the kernel does not take is finished by a goroutine
// started for that session alone, bounded by the WriteTimeout, so a client that
// stops reading never holds up a worker or another session.
//
// # The event loop
//
// On Linux, the runtime's scheduler (with its default Transport) takes plain
// TCP connections off Go's netpoller and watches them with epoll: a session
// waiting for its client then has no goroutine at all. When bytes arrive,
// the session takes its turn on the poller's goroutine — up to 64 messages
// or 256 KiB, then the next session with work — and reads and runs its
// callbacks until the socket is drained, then goes idle again. A callback
// that blocks does not hold up the poller's other sessions for long: after
// 5 ms, a watchdog gives the poller a new goroutine, and the blocked one
// ends with its turn. Writes that the kernel does not take wait for the socket to turn
// writable (EPOLLOUT) instead of a goroutine. Callbacks see no difference.
// TLS and other systems use the goroutine transport.
//
// # Backpressure
//
// The mailbox holds MailboxSize frames and MaxQueuedBytes bytes (see
// runtime.Options). Past either, the Policy decides: close the session (1008, the
// default), drop the new frame, or drop the oldest. Every drop is counted.
//
// A client that sends faster than it reads its own replies is not a slow
// consumer to close: while the mailbox is half full, the session reads no
// more of that client (the read gate), as a blocking server slows a fast
// sender through TCP, and reads again once the mailbox is down to a
// quarter. So it is for a client over its MessageRate. Frames that
// others send it still meet the Policy. The runtime's memory budgets
// (runtime.Limits InboundMemory and OutboundMemory) bound, for all its
// sessions together, the messages being assembled and the frames queued.
//
// # Timeouts
//
// The scheduler's timer, one goroutine for all sessions, sends a ping to a
// session that has been silent (no bytes at all) for PingInterval and
// drops it if nothing at all comes back within PongTimeout (a half-open
// TCP connection); a message being received must be whole within
// MessageTimeout; it also bounds the closing handshake (CloseTimeout) and,
// if set, idleness (IdleTimeout). A write the kernel does not take is
// bounded by WriteTimeout. A session paused at the read gate is not
// silent: it is not the client that stopped.
//
// # Identity
//
// Authorize records who a session's client is, with an expiry, and
// Identity[T] reads it back in any callback without a lock; the runtime's
// admission hook calls Authorize before OnOpen. At expiry the session is
// closed with 3000 (wire.StatusUnauthorized) unless Authorize was called
// again. ClientAddr is the client's address, as a trusted proxy reported
// it. State[T] keeps the handler's own per-session values, one per type.
//
// # Memory
//
// An idle session holds no read buffer (the wire.Reader borrows one only
// while bytes are arriving; on the event loop the Reader itself comes from
// a pool for each burst), no timer, and no mailbox ring (16 bytes a slot):
// a session takes one from a pool when frames are sent to it, and the
// scheduler's timer gives it back once it finds it empty. Measured at
// 19,800 idle sessions (tests/soak TestIdleMemory): about 0.4 KiB each
// on the event loop; with a reader goroutine each, about 1.7 KiB of heap
// and 2 KiB of stack.
//
// With permessage-deflate negotiated (the runtime's Options.Compression),
// a session keeps no compressor, decompressor or window between messages,
// unless it compresses with context takeover: Frame's compressed form is
// made once for every session that takes shared frames, and the others
// compress as they write (see Session.Compression).
//
// # Limits and defaults
//
// They are the runtime's: see runtime.Options and runtime.DefaultOptions,
// where each default is written, and docs/security.md for what each
// protects.
package session
