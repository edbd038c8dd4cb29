package session

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shockwave-go/shockwave/mailbox"
	"github.com/shockwave-go/shockwave/wire"
)

const pollSupported = true

// A poller watches the sockets of event-loop sessions with one epoll
// instance and one goroutine, edge-triggered: each event says that bytes
// arrived (or the peer hung up), or that a full send buffer has room again,
// and the poller only hands the session to whoever runs it.
//
// The poller's goroutine never blocks in epoll_wait: the epoll descriptor
// is itself registered with Go's netpoller (an epoll instance is readable
// while it has events), so the goroutine parks like any network goroutine
// and holds no thread, and its epoll_wait calls never wait.
type poller struct {
	epfd int
	file *os.File        // epfd, for Go's netpoller
	raw  syscall.RawConn // of file

	// The sessions by descriptor: 8 bytes a connection. Lookups are
	// lock-free; mu serialises the changes, growing included.
	mu    sync.Mutex
	table atomic.Pointer[[]atomic.Pointer[Session]]

	// The connections of a listener on the event loop whose request head
	// is being read (listen_linux.go), by descriptor; hmu guards the
	// table and their reading.
	hmu     sync.Mutex
	pending map[int32]*pendingConn
	head    *[maxHead]byte // the scratch that heads are read into
	req     wire.Request   // and parsed into

	// Bursts run on the poller's goroutine, one session's turn after
	// another. A turn that takes longer than handoverAfter (a callback
	// that blocks) costs the goroutine its job: the scheduler's watchdog
	// starts a new one for the poller (gen counts them), and the old one
	// ends with its turn.
	ready mailbox.Queue[*Session] // sessions whose turn is due
	gen   atomic.Uint32
	since atomic.Int64 // when the running turn started (turnClock), or 0
}

// turnClock reads the monotonic clock, in nanoseconds from a time that
// makes it positive, for the watchdog: one vDSO call a turn, where
// time.Now makes two.
func turnClock() int64 { return int64(time.Since(clockBase)) + 1 }

var clockBase = time.Now()

// handoverAfter is how long a turn may keep the poller's goroutine before
// the watchdog gives the poller a new one; watchdogTick how often it looks.
const (
	handoverAfter = 5 * time.Millisecond
	watchdogTick  = 2 * time.Millisecond
)

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "epoll") // pollable, being non-blocking
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &poller{epfd: epfd, file: f, raw: raw}
	p.ready.Init(readyQueueSize)
	return p, nil
}

// add watches s's socket. Its first event reports what is already there.
func (p *poller) add(s *Session) error {
	p.set(s.loop.fd, nil, s)
	ev := unix.EpollEvent{Events: readEvents, Fd: s.loop.fd}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(s.loop.fd), &ev); err != nil {
		p.set(s.loop.fd, s, nil)
		return err
	}
	return nil
}

// The events a poller watches: reading always, writing only while a
// writer waits for room (so that the ACKs of every write do not wake the
// poller for nothing).
const (
	readEvents  = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
	writeEvents = readEvents | unix.EPOLLOUT
)

// watchWrite starts or stops watching s's socket for room to write. When
// it starts and there is room already, the poller gets the event at once.
func (p *poller) watchWrite(s *Session, on bool) {
	ev := unix.EpollEvent{Events: readEvents, Fd: s.loop.fd}
	if on {
		ev.Events = writeEvents
	}
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(s.loop.fd), &ev)
}

// remove stops watching s's socket, before it is closed.
func (p *poller) remove(s *Session) {
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(s.loop.fd), nil)
	p.set(s.loop.fd, s, nil)
}

// set makes fd's entry new if it is old.
func (p *poller) set(fd int32, old, new *Session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.table.Load()
	if t == nil || int(fd) >= len(*t) {
		if new == nil {
			return
		}
		n := max(1024, 2*int(fd))
		nt := make([]atomic.Pointer[Session], n)
		if t != nil {
			for i := range *t {
				nt[i].Store((*t)[i].Load())
			}
		}
		p.table.Store(&nt)
		t = &nt
	}
	(*t)[fd].CompareAndSwap(old, new)
}

// session returns the session of fd, or nil.
func (p *poller) session(fd int32) *Session {
	if t := p.table.Load(); t != nil && fd >= 0 && int(fd) < len(*t) {
		return (*t)[fd].Load()
	}
	return nil
}

// readyQueueSize bounds the sessions waiting for their turn on a poller;
// past it, a burst runs on a goroutine of its own.
const readyQueueSize = 4096

// loop is the poller's goroutine, of generation gen: it serves the
// sessions whose turn is due, then waits for events, until close, or until
// the watchdog replaced it during a turn.
func (p *poller) loop(sc *scheduler, gen uint32) {
	var events [128]unix.EpollEvent
	n := 0
	poll := func(fd uintptr) bool {
		for {
			// Raw, like the reads and writes (see fdReader): it never waits.
			r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
			if e != syscall.EINTR {
				n = 0
				if e == 0 {
					n = int(r)
				}
				return n != 0 // nothing yet: park until the epoll fd is readable
			}
		}
	}
	for {
		// Whoever puts a session in line (an event here, or a turn that
		// used up its messages) serves the line before it parks or ends,
		// so none is left waiting.
		for s, ok := p.ready.Pop(); ok; s, ok = p.ready.Pop() {
			if p.gen.Load() != gen {
				p.turn(s) // replaced: the watchdog watches the new goroutine
				continue
			}
			start := turnClock()
			p.since.Store(start)
			sc.pollers.wakeWatchdog()
			p.turn(s)
			p.since.CompareAndSwap(start, 0)
		}
		if p.gen.Load() != gen {
			return // the watchdog gave the poller a new goroutine
		}
		if err := p.raw.Read(poll); err != nil {
			return // closed
		}
		for i := range events[:n] {
			ev := &events[i]
			if s := p.session(ev.Fd); s != nil {
				p.onEvent(s, ev.Events)
			} else {
				p.onHandshake(ev.Fd, ev.Events)
			}
		}
	}
}

// watchdog gives a poller whose goroutine is stuck in a turn (a callback
// that blocks) a new goroutine, so that its other sessions wait
// handoverAfter at most. It is the scheduler's goroutine, while there are
// pollers. When it has seen no turn for watchdogRest, it sleeps until the
// next turn starts (see wakeWatchdog): an idle server does not wake up
// every watchdogTick.
func (sc *scheduler) watchdog() {
	pp := &sc.pollers
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	quiet := 0
	for {
		select {
		case <-t.C:
		case <-sc.stop:
			return
		}
		if pp.check(sc) {
			quiet = 0
			continue
		}
		if quiet++; quiet < int(watchdogRest/watchdogTick) {
			continue
		}
		// Sleep, unless a turn started meanwhile: either this sees its
		// since, or its poller sees asleep (both are sequentially
		// consistent atomics).
		pp.asleep.Store(true)
		if pp.check(sc) {
			pp.asleep.Store(false)
			quiet = 0
			continue
		}
		t.Stop()
		select {
		case <-pp.wake:
		case <-sc.stop:
			return
		}
		quiet = 0
		t.Reset(watchdogTick)
	}
}

// watchdogRest is how long the watchdog looks without seeing a turn before
// it sleeps.
const watchdogRest = 100 * time.Millisecond

// check replaces the goroutine of any poller stuck in a turn for longer
// than handoverAfter. It reports whether any turn is running.
func (pp *pollers) check(sc *scheduler) bool {
	busy := false
	now := turnClock()
	for _, p := range pp.ps {
		st := p.since.Load()
		if st == 0 {
			continue
		}
		busy = true
		if now-st > int64(handoverAfter) && p.since.CompareAndSwap(st, 0) {
			gen := p.gen.Add(1) // the stuck goroutine ends with its turn, and Close waits for it too
			sc.spawn(func() { p.loop(sc, gen) })
		}
	}
	return busy
}

// wakeWatchdog wakes the watchdog if it sleeps. A poller calls it when a
// turn starts, after setting its since.
func (pp *pollers) wakeWatchdog() {
	if pp.asleep.Load() && pp.asleep.CompareAndSwap(true, false) {
		select {
		case pp.wake <- struct{}{}:
		default:
		}
	}
}

// close makes loop return, and closes the epoll instance.
func (p *poller) close() { p.file.Close() }

// pollers are a scheduler's event loop.
type pollers struct {
	ps   []*poller
	next uint32
	mu   sync.Mutex

	asleep atomic.Bool   // the watchdog sleeps until wake
	wake   chan struct{} // buffered
}

func startPollers(sc *scheduler, n int) error {
	for range n {
		p, err := newPoller()
		if err != nil {
			for _, p := range sc.pollers.ps {
				p.close()
			}
			return err
		}
		sc.pollers.ps = append(sc.pollers.ps, p)
	}
	sc.pollers.wake = make(chan struct{}, 1)
	for _, p := range sc.pollers.ps {
		sc.spawn(func() { p.loop(sc, 0) })
	}
	sc.spawn(sc.watchdog)
	return nil
}

// pick returns the poller of a new session, in turn.
func (pp *pollers) pick() *poller {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	p := pp.ps[pp.next%uint32(len(pp.ps))]
	pp.next++
	return p
}

func (pp *pollers) close() {
	for _, p := range pp.ps {
		p.close()
	}
}
