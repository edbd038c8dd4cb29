package session

import (
	"io"
	"net"
	"os"
	"runtime"
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

	// Bursts run on the poller's goroutine, one session's turn after
	// another. A turn that takes longer than handoverAfter (a callback
	// that blocks) costs the goroutine its job: the scheduler's watchdog
	// starts a new one for the poller (gen counts them), and the old one
	// ends with its turn.
	ready mailbox.Queue[*Session] // sessions whose turn is due
	gen   atomic.Uint32
	since atomic.Int64 // when the running turn started (Unix ns), or 0
}

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
	p.set(s.fd, nil, s)
	ev := unix.EpollEvent{Events: readEvents, Fd: s.fd}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(s.fd), &ev); err != nil {
		p.set(s.fd, s, nil)
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
	ev := unix.EpollEvent{Events: readEvents, Fd: s.fd}
	if on {
		ev.Events = writeEvents
	}
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(s.fd), &ev)
}

// remove stops watching s's socket, before it is closed.
func (p *poller) remove(s *Session) {
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(s.fd), nil)
	p.set(s.fd, s, nil)
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
	defer sc.wg.Done()
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
				s.turn() // replaced: the watchdog watches the new goroutine
				continue
			}
			start := time.Now().UnixNano()
			p.since.Store(start)
			sc.pollers.wakeWatchdog()
			s.turn()
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
				s.onEvent(ev.Events)
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
	defer sc.wg.Done()
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
	now := time.Now().UnixNano()
	for _, p := range pp.ps {
		st := p.since.Load()
		if st == 0 {
			continue
		}
		busy = true
		if now-st > int64(handoverAfter) && p.since.CompareAndSwap(st, 0) {
			sc.wg.Add(1) // the stuck goroutine still counts: never from zero
			go p.loop(sc, p.gen.Add(1))
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

// Read states of an event-loop session.
const (
	readIdle    uint32 = iota // waiting for an event
	readRunning               // a burst is reading
	readAgain                 // an event came during the burst: read again
	readPaused                // stopped at the read gate: reopen starts a burst (resumePolled)
	readDone                  // the session is ending: no more reading
)

// takeOver moves nc's socket to the event loop: it keeps a duplicate of the
// descriptor, non-blocking like the original, and closes nc, so that Go's
// own poller lets go of it. It reports false, leaving nc as it was, when nc
// is not a plain TCP connection.
func (s *Session) takeOver(nc net.Conn) bool {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if err := raw.Control(func(orig uintptr) {
		fd, err = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil || fd < 0 {
		return false
	}
	if a, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
		s.setRemote(a.AddrPort())
	}
	tc.Close() // and let it go: a TCPConn and its addresses weigh more than the rest of an idle session
	s.fd = int32(fd)
	return true
}

// servePolled runs OnOpen, then reads what is already there and leaves the
// session to its poller. The caller's goroutine is free when it returns.
func (s *Session) servePolled() {
	s.rstate.Store(readRunning)
	if herr := s.call(func() error { return s.h.OnOpen(s) }); herr != nil {
		s.endBurst(handlerError{herr})
		return
	}
	s.drainOwn()
	if err := s.poller.add(s); err != nil {
		s.endBurst(err)
		return
	}
	s.readBurst()
}

// takeWantWrite clears stateWantWrite and reports whether it was set: the
// caller then continues the waiting write.
func (s *Session) takeWantWrite() bool {
	return s.state.And(^stateWantWrite)&stateWantWrite != 0
}

// onEvent is called by the poller with the events of s's socket.
func (s *Session) onEvent(ev uint32) {
	if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && s.takeWantWrite() {
		// The writer waits for room: it still holds stateRunning.
		s.poller.watchWrite(s, false)
		s.stalledAt.Store(0)
		s.sched.run(s)
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
		return
	}
	for {
		switch st := s.rstate.Load(); st {
		case readIdle:
			if s.rstate.CompareAndSwap(readIdle, readRunning) {
				s.due()
				return
			}
		case readRunning:
			if s.rstate.CompareAndSwap(readRunning, readAgain) {
				return
			}
		default:
			return // readAgain already, or readDone
		}
	}
}

// A session's turn on its poller ends after turnFrames messages or
// turnBytes of them, whichever comes first, so that a busy client cannot
// starve the others (nor a turn of large messages look to the watchdog
// like a callback that blocks): then it goes back in line.
const (
	turnFrames = 64
	turnBytes  = 256 << 10
)

// due puts s in line for a turn on its poller, or, if the line is full,
// gives the burst a goroutine.
func (s *Session) due() {
	if !s.poller.ready.TryPush(s) {
		go s.readBurst()
	}
}

// turn reads and handles up to turnFrames messages or turnBytes on the
// poller's goroutine.
func (s *Session) turn() {
	bytes := 0
	for range turnFrames {
		n, more := s.readOne(true)
		if !more {
			return
		}
		if bytes += n; bytes >= turnBytes {
			break
		}
	}
	s.due()
}

// readBurst reads and handles messages until the socket has nothing more to
// give, or the session ends.
func (s *Session) readBurst() {
	for {
		if _, more := s.readOne(false); !more {
			return
		}
	}
}

// readOne reads and handles one message, and returns its length. It
// reports whether the burst goes on: false once the socket is drained (the
// session is idle again) or the session has ended. onPoller says whose
// goroutine runs it.
//
// The session's wire.Reader comes from a pool when bytes arrive and goes
// back when the socket is drained between messages (an idle session holds
// none); only the holder of the burst touches it.
func (s *Session) readOne(onPoller bool) (int, bool) {
	if s.gateShut() {
		// Stop here; reopen starts a burst again (resumePolled). Events that
		// come meanwhile change nothing: the next burst reads until the
		// socket is drained.
		s.rstate.Store(readPaused)
		if s.pause() {
			return 0, false
		}
		s.rstate.Store(readRunning)
	}
	if s.rd == nil {
		s.rd = readerPool.Get().(*wire.Reader)
		s.rd.Reset((*fdReader)(s), s.readerOptions(nil))
	}
	op, p, err := s.rd.Next()
	if err == wire.ErrWouldBlock {
		s.drainOwn()
		if s.rd.Idle() {
			readerPool.Put(s.rd)
			s.rd = nil
		}
		if s.rstate.CompareAndSwap(readRunning, readIdle) {
			return 0, false
		}
		s.rstate.Store(readRunning) // an event came meanwhile
		return 0, true
	}
	if err == nil {
		err = s.handle(op, p)
	}
	if err != nil {
		if onPoller {
			go s.endBurst(err) // the end may wait for the closing handshake
		} else {
			s.endBurst(err)
		}
		return 0, false
	}
	return len(p), true
}

// resumePolled lets a session paused at the read gate read again, on a
// goroutine of its own: the caller is not its poller (the poller's line is
// served by the poller's goroutine alone, which may be parked), and pauses
// are for clients that send too much, not the steady path.
func (s *Session) resumePolled() {
	if s.rstate.CompareAndSwap(readPaused, readRunning) {
		go s.readBurst()
	}
}

// endBurst ends the session after its reading stopped with cause.
func (s *Session) endBurst(cause error) {
	s.rstate.Store(readDone)
	s.finish(cause)
}

// shutdownFD stops the socket both ways, waking up the reader (its next
// read sees the end) and failing any write, but leaves the descriptor open
// for releaseFD, so that its number cannot be reused under a reader or a
// writer still using it.
func (s *Session) shutdownFD() {
	unix.Shutdown(int(s.fd), unix.SHUT_RDWR)
}

// releaseFD closes the socket once nobody uses it: the reader has finished
// (it calls this), and no drainer holds the writing side, which is then
// taken for good.
func (s *Session) releaseFD() {
	for i := 0; ; i++ {
		st := s.state.Load()
		if st&stateRunning == 0 && s.state.CompareAndSwap(st, st|stateRunning) {
			break
		}
		if s.takeWantWrite() {
			go s.drain() // a writer waiting for room: let it fail and let go
		}
		if i < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	// Frames still queued are released by nobody else now.
	s.discardAll()
	s.poller.remove(s)
	unix.Close(int(s.fd))
}

// linger is wire.Linger for the session's connection, after a close frame
// sent for a protocol error.
func (s *Session) linger() {
	if s.fd < 0 {
		wire.Linger(s.conn.Conn, s.cfg.CloseTimeout)
		return
	}
	// On the event loop: a net.Conn of its own on the socket, for once.
	dup, err := unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(dup), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err == nil {
		wire.Linger(nc, s.cfg.CloseTimeout)
	}
}

// fdReader reads a non-blocking socket for a wire.Reader: it is the
// session, so that the Reader's source costs no allocation, and tells the
// session when bytes come (see bytesCame).
type fdReader Session

// It reads with a raw system call, like the writes of the event loop (see
// scratch.writevFD): the socket never blocks.
func (r *fdReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s := (*Session)(r)
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(s.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return 0, wire.ErrWouldBlock
		case e != 0:
			return 0, e
		case n == 0:
			return 0, io.EOF
		}
		s.bytesCame()
		return int(n), nil
	}
}

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
	sc.wg.Add(n + 1)
	for _, p := range sc.pollers.ps {
		go p.loop(sc, 0)
	}
	go sc.watchdog()
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
