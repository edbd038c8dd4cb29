package session

import (
	"errors"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shockwave-go/shockwave/mailbox"
	"github.com/shockwave-go/shockwave/wire"
)

// scheduler is the machinery sessions share: a few worker goroutines that
// drain the mailboxes of sessions that others sent to, one timer goroutine
// that keeps a coarse clock and drives every session's heartbeat, idle,
// write and closing timeouts, so that no session has a timer of its own,
// and, with pollers, the event loop and its watchdog. A Runtime's engine owns one;
// Close stops it.
type scheduler struct {
	runq     mailbox.Queue[*Session]
	wake     chan struct{}
	idle     atomic.Int32
	now      atomic.Int64 // coarse clock, Unix nanoseconds
	tick     time.Duration
	sessions iter.Seq[*Session]
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once

	pollers pollers // the event loop, if any
}

// schedulerConfig configures a scheduler. The zero value of each field
// means its default.
type schedulerConfig struct {
	// Workers is the number of draining goroutines. Defaults to
	// GOMAXPROCS.
	Workers int
	// Tick is the period of the clock and of the timeout checks: timeouts
	// fire up to one Tick late. Defaults to 1 s.
	Tick time.Duration
	// Sessions yields the live sessions, for the timeout checks.
	Sessions iter.Seq[*Session]
	// QueueSize bounds the run queue; when it is full, a session is
	// drained on a goroutine of its own instead. Defaults to 65536.
	QueueSize int
	// Pollers is the number of event-loop goroutines (Linux epoll), which
	// watch the sockets of every session of a plain TCP connection: such
	// a session has no goroutine while it waits for its client, and reads
	// and runs its callbacks when bytes arrive. With 0, or where there is
	// no event loop (other systems, TLS), every session has a goroutine
	// reading its connection. See docs/architecture.md.
	Pollers int
}

// newScheduler starts a scheduler.
func newScheduler(cfg schedulerConfig) *scheduler {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1 << 16
	}
	if cfg.Sessions == nil {
		cfg.Sessions = func(func(*Session) bool) {}
	}
	sc := &scheduler{
		wake:     make(chan struct{}, cfg.Workers),
		tick:     cfg.Tick,
		sessions: cfg.Sessions,
		stop:     make(chan struct{}),
	}
	sc.runq.Init(cfg.QueueSize)
	sc.now.Store(time.Now().UnixNano())
	if cfg.Pollers > 0 && pollSupported {
		startPollers(sc, cfg.Pollers) // if it fails, the goroutine transport serves every session
	}
	for range cfg.Workers {
		sc.spawn(sc.worker)
	}
	sc.spawn(sc.timer)
	return sc
}

// Now returns the scheduler's clock, in Unix nanoseconds, updated every
// Tick.
func (sc *scheduler) Now() int64 { return sc.now.Load() }

// Close stops the workers and the timer and waits for every goroutine the
// scheduler and its sessions started (spawn). Sessions still open are no
// longer drained by workers nor timed out; close them first.
func (sc *scheduler) Close() {
	sc.once.Do(func() {
		close(sc.stop)
		sc.pollers.close()
	})
	sc.wg.Wait()
}

// EventLoop reports whether the scheduler runs an event loop, on which it
// puts the sessions of plain TCP connections.
func (sc *scheduler) EventLoop() bool { return sc.polling() }

func (sc *scheduler) polling() bool { return len(sc.pollers.ps) > 0 }

var errNoPoller = errors.New("session: no event loop here")

// spawn runs f on a goroutine that Close waits for. Every goroutine this
// package starts goes through it:
//
//   - the scheduler's own: its workers, its timer, and with the event
//     loop, each poller's goroutine (a new one when the watchdog replaces
//     one stuck in a turn) and the watchdog; they end at Close;
//   - a session's, each holding one side of it: a drain of a session
//     whose writes block or that found the run queue full, writeSlow, and
//     on the event loop a burst of reading that the poller's line had no
//     room for or that the read gate let go, and the end of a session
//     whose reading stopped on the poller's goroutine. They end with
//     their work; the session's finish waits for the writing ones
//     (stopWriting), and the reading ones are its reader.
//
// A session's goroutines are started while it lives, and Close is called
// once every session has ended (the runtime's Shutdown), so the count
// never rises from zero under Close's Wait.
func (sc *scheduler) spawn(f func()) { sc.wg.Go(f) }

// run drains s on a worker. The caller holds s's stateRunning.
func (sc *scheduler) run(s *Session) {
	if s.tr.blocking() || !sc.runq.TryPush(s) {
		// Blocking writes, or a full queue: give s a goroutine.
		sc.spawn(s.drain)
		return
	}
	if sc.idle.Load() > 0 {
		select {
		case sc.wake <- struct{}{}:
		default:
		}
	}
}

func (sc *scheduler) worker() {
	for {
		if s, ok := sc.runq.Pop(); ok {
			s.drain()
			continue
		}
		sc.idle.Add(1)
		if sc.runq.Len() > 0 { // a push may have missed our idle mark
			sc.idle.Add(-1)
			continue
		}
		select {
		case <-sc.wake:
			sc.idle.Add(-1)
		case <-sc.stop:
			sc.idle.Add(-1)
			// Finish what is queued, then stop.
			for s, ok := sc.runq.Pop(); ok; s, ok = sc.runq.Pop() {
				s.drain()
			}
			return
		}
	}
}

func (sc *scheduler) timer() {
	t := time.NewTicker(sc.tick)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			n := now.UnixNano()
			sc.now.Store(n)
			sc.pollers.sweep(n)
			for s := range sc.sessions {
				s.heartbeat(n)
			}
		case <-sc.stop:
			return
		}
	}
}

// heartbeatPing is the ping of every heartbeat, shared like a broadcast:
// the timer pings every session connected in the same second at the same
// tick, and a frame each (a Frame and a 512-byte buffer, some 700 bytes)
// grew the heap of a server of idle sessions by that much per session at
// every round, for the next GC to find. Its own reference is never
// released.
var heartbeatPing = NewFrame(wire.OpPing, nil)

// heartbeat enforces s's timeouts and sends its pings. now is the
// scheduler's clock.
func (s *Session) heartbeat(now int64) {
	cfg := s.cfg
	if s.state.Load()&stateClosed != 0 {
		return
	}
	s.retireMailbox()
	if at := s.stalledAt.Load(); at != 0 && now-at > int64(cfg.WriteTimeout) && s.state.Load()&stateWantWrite != 0 {
		cfg.Counters.WriteTimeouts.Add(1)
		s.abort(ErrTimeout) // the client stopped reading
		return
	}
	// A live session has no coldPart, and so no closing clock: one nil
	// check.
	if c := s.cold.Load(); c != nil {
		if at := c.closingAt.Load(); at != 0 {
			if now-at > int64(cfg.CloseTimeout) {
				cfg.Counters.CloseTimeouts.Add(1)
				s.handshakeTimedOut()
			}
			return
		}
	}
	if s.expired(now) {
		return
	}
	if s.state.Load()&stateReadPaused != 0 {
		s.reopen() // the rate may allow it now
	}
	// While the reader is paused at the read gate, we stopped reading, not
	// the client: there is no silence to find, only pings to keep sending.
	paused := s.state.Load()&stateReadPaused != 0
	if ms := s.msgStart.Load(); !paused && cfg.MessageTimeout > 0 && ms != 0 && now-ms > int64(cfg.MessageTimeout) {
		if s.claimClose() {
			cfg.Counters.MessageTimeouts.Add(1)
			s.queueClose(ErrMessageTimeout)
		}
		return
	}
	last := s.lastRead.Load()
	if !paused && cfg.IdleTimeout > 0 && now-last > int64(cfg.IdleTimeout) {
		if s.claimClose() {
			cfg.Counters.IdleTimeouts.Add(1)
			s.queueClose(errIdle)
		}
		return
	}
	if cfg.PingInterval < 0 {
		return
	}
	if ps := s.pingSent.Load(); ps != 0 && last < ps {
		if !paused && now-ps > int64(cfg.PongTimeout) {
			cfg.Counters.PongTimeouts.Add(1)
			s.abort(ErrTimeout) // half-open: nothing came back
		}
		return
	}
	if now-last >= int64(cfg.PingInterval) && s.state.Load()&stateClosing == 0 {
		// Pings bypass the mailbox: backpressure must not make a live
		// client look dead.
		s.pingSent.Store(now)
		f := heartbeatPing
		f.Retain(1)
		s.queued.Add(int64(f.Len()))
		if old := s.ping.Swap(f); old != nil {
			s.done(old)
		}
		s.kick(s.state.Load())
	}
}
