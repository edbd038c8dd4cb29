package load

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shockwave-go/shockwave/tests/bench/internal/wsraw"
	"github.com/shockwave-go/shockwave/wire"
)

// Phases of a run, set by Run and read by the loop.
const (
	phaseSetup   int32 = iota // opening connections
	phaseWarmup               // load on, not counted
	phaseMeasure              // load on, counted
	phaseDrain                // Rate: load off, what is in flight arrives, not measured
	phaseStop                 // the loop returns
)

// Connection states.
const (
	stConnecting uint8 = iota
	stHandshake
	stOpen
	stDead
)

// metaLen is the stamp of a room message: send time (8 bytes), publisher
// (4), the publisher's sequence number (4), and the message's number among
// all published (4; 0 for probes). It is at the start of the payload, or
// where the payload leaves room for it (wsraw.StampOffset in JSON); text
// messages carry it in hexadecimal, in twice as many bytes.
const metaLen = wsraw.StampLen

type conn struct {
	fd      int
	id      int
	addr    int // its server: Config.addrs()[addr]
	state   uint8
	pollOut bool // EPOLLOUT is armed

	hs []byte // the handshake response so far

	out    []byte // what is being written: a shared frame or own
	outOff int
	own    []byte // room publishers: frames built for this connection

	p          wsraw.Parser
	inMsg      bool              // a data message is being received
	msgOff     int               // its payload bytes so far
	stamp      [2 * metaLen]byte // room: the stamp as it came
	compressed bool              // Deflate: the message is compressed
	zbuf       []byte            // Deflate: its body, when it did not come in one piece

	recv      int64   // messages received
	sendAt    int64   // echo: when the message in flight was sent
	sentBytes int64   // stream: bytes written
	times     []int64 // stream: send times of the messages in flight (a ring)
	tHead     int
	seqs      []uint32 // room: last sequence number seen from each publisher
	pubSeq    uint32   // room: last sequence number published
	verifying bool     // idle: one echo asked for
}

type engine struct {
	cfg  Config
	sas  []syscall.SockaddrInet4 // of Config.addrs()
	reqs [][]byte                // the handshake for each
	ep   int
	base time.Time
	now  int64 // ns since base, updated after each wait

	conns   []*conn
	byFD    []*conn
	opened  int
	dialed  int
	dialing int
	alive   int
	buf     []byte // read buffer, shared by all connections
	events  []syscall.EpollEvent
	started bool

	op       wire.Opcode
	expect   []byte // payload every message must carry (but for the stamp, in rooms)
	stampOff int    // room: where the stamp is in the payload
	stampLen int    // room: its length, metaLen or twice that in hexadecimal; 0 outside rooms
	frame    []byte // echo, idle: one message; stream: a batch of identical frames
	frameLen int    // stream: length of one frame

	// room
	members   int64
	published int64   // main-phase messages published
	completed int64   // of those, how many (the oldest) every member has received
	pend      []int32 // deliveries of message g, at g % Window, while in flight
	pubNext   int
	probeSeq  uint32 // last probe sent by publisher 0
	probeAt   int64
	probeHave int          // members that have the last probe
	probing   bool         // still probing for the room to be complete
	pubFrame  []byte       // masked frame with a blank stamp
	pubBody   []byte       // Deflate: the payload, to stamp and compress
	rateOn    bool         // Rate: rateAt is set
	rateAt    int64        // Rate: when the first message was due
	rated     int64        // Rate: messages published since rateAt
	done      atomic.Int64 // completed, for Run's drain

	phase    atomic.Int32
	ready    chan error // receives once: nil when the load is on, or why not
	readyErr bool
	exited   chan struct{}
	msgs     atomic.Int64
	bytes    atomic.Int64
	wireIn   atomic.Int64 // bytes read from the servers
	wireOut  atomic.Int64 // bytes written to them
	pubs     atomic.Int64
	verify   atomic.Bool
	verified atomic.Int64

	z zcache // Deflate: the compressed messages checked so far

	errs     atomic.Int64
	errMu    sync.Mutex
	firstErr error

	hist     histogram      // latencies in the measured window; read after the loop exits
	addrMsgs []atomic.Int64 // messages received by the connections to each server
	addrHist []histogram    // latencies of each server's connections, as hist
}

func newEngine(cfg Config) (*engine, error) {
	e := &engine{
		cfg:    cfg,
		buf:    make([]byte, 256<<10),
		events: make([]syscall.EpollEvent, 1024),
		ready:  make(chan error, 1),
		exited: make(chan struct{}),
		base:   time.Now(),
		op:     wire.OpBinary,
	}
	path := "/echo"
	if cfg.Scenario == "room" {
		path = "/room"
	}
	for _, addr := range cfg.addrs() {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ip := net.ParseIP(host).To4()
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("load: %q is not an IPv4 loopback address", host)
		}
		pn, err := strconv.Atoi(port)
		if err != nil {
			return nil, err
		}
		sa := syscall.SockaddrInet4{Port: pn}
		copy(sa.Addr[:], ip)
		e.sas = append(e.sas, sa)
		if cfg.Deflate {
			e.reqs = append(e.reqs, wsraw.RequestDeflate(addr, path))
		} else {
			e.reqs = append(e.reqs, wsraw.Request(addr, path))
		}
	}
	e.addrMsgs = make([]atomic.Int64, len(e.sas))
	e.addrHist = make([]histogram, len(e.sas))
	if cfg.Text {
		e.op = wire.OpText
	}
	e.expect = wsraw.Payload(cfg.Payload, cfg.Size)
	message := wsraw.AppendMessage
	if cfg.Deflate {
		message = wsraw.AppendCompressedMessage
	}
	switch cfg.Scenario {
	case "echo", "idle":
		e.frame = message(nil, e.op, e.expect, cfg.Frag)
	case "stream":
		one := message(nil, e.op, e.expect, 0)
		e.frameLen = len(one)
		k := max(1, (256<<10)/len(one))
		e.frame = bytes.Repeat(one, k)
	case "room":
		e.stampLen = metaLen
		if cfg.Text {
			e.stampLen = 2 * metaLen
		}
		if cfg.Payload == wsraw.PayloadJSON {
			e.stampOff = wsraw.StampOffset
		}
		e.pubFrame = wsraw.AppendMessage(nil, e.op, e.expect, 0)
		e.pubBody = bytes.Clone(e.expect)
		e.members = int64(cfg.Conns)
		e.pend = make([]int32, cfg.Window)
	}
	if cfg.Deflate {
		n := 8
		if cfg.Scenario == "room" {
			n = 4*cfg.Window + 16 // what is in flight, and then some
		}
		e.z.init(n)
	}
	var err error
	e.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	e.conns = make([]*conn, cfg.Conns)
	return e, nil
}

// record counts an error and keeps the first. Safe for concurrent use.
func (e *engine) record(err error) {
	e.errs.Add(1)
	e.errMu.Lock()
	if e.firstErr == nil {
		e.firstErr = err
	}
	e.errMu.Unlock()
}

// fail records err and closes c. Called by the loop only.
func (e *engine) fail(c *conn, err error) {
	if e.phase.Load() == phaseStop {
		return
	}
	e.record(fmt.Errorf("connection %d: %w", c.id, err))
	if c.state != stDead {
		if c.state == stOpen {
			e.alive--
		} else {
			e.dialing--
		}
		c.state = stDead
		syscall.Close(c.fd)
		e.byFD[c.fd] = nil
	}
	if !e.started {
		e.signal(fmt.Errorf("connection %d: %w", c.id, err))
	}
}

// signal tells Run that the load is on (nil) or cannot be.
func (e *engine) signal(err error) {
	if !e.readyErr {
		e.readyErr = true
		e.ready <- err
	}
}

// run is the event loop.
func (e *engine) run() {
	defer close(e.exited)
	defer e.closeAll()
	for {
		for e.dialed < e.cfg.Conns && e.dialing < e.cfg.MaxDialing {
			if err := e.dial(e.dialed); err != nil {
				e.signal(err)
				e.waitStop()
				return
			}
			e.dialed++
		}
		wait := 10 // ms
		if e.cfg.Rate > 0 {
			wait = 1 // the next message may be due before 10 ms
		}
		n, err := syscall.EpollWait(e.ep, e.events, wait)
		if err != nil && err != syscall.EINTR {
			e.signal(err)
			e.waitStop()
			return
		}
		e.now = int64(time.Since(e.base))
		for _, ev := range e.events[:max(n, 0)] {
			c := e.byFD[ev.Fd]
			if c == nil {
				continue
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLERR|syscall.EPOLLHUP|syscall.EPOLLRDHUP) != 0 {
				e.readable(c)
			}
			if ev.Events&syscall.EPOLLOUT != 0 && c.state != stDead {
				e.writable(c)
			}
		}
		ph := e.phase.Load()
		if ph == phaseStop {
			return
		}
		if !e.started && e.opened == e.cfg.Conns {
			e.start()
		}
		if e.started {
			e.tick()
		}
	}
}

func (e *engine) waitStop() {
	for e.phase.Load() != phaseStop {
		time.Sleep(5 * time.Millisecond)
	}
}

// closeAll resets every connection (SO_LINGER 0): no TIME_WAIT is left
// behind on either side, so runs can follow each other.
func (e *engine) closeAll() {
	for _, c := range e.conns {
		if c != nil && c.state != stDead {
			syscall.SetsockoptLinger(c.fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
			syscall.Close(c.fd)
			c.state = stDead
		}
	}
	syscall.Close(e.ep)
}

func (e *engine) dial(i int) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w (is the fd limit high enough? see ulimit -n)", err)
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	c := &conn{fd: fd, id: i, addr: i % len(e.sas)}
	c.p.Deflate = e.cfg.Deflate
	e.conns[i] = c
	for fd >= len(e.byFD) {
		e.byFD = append(e.byFD, make([]*conn, len(e.byFD)+1024)...)
	}
	e.byFD[fd] = c
	e.dialing++
	err = syscall.Connect(fd, &e.sas[c.addr])
	if err != nil && err != syscall.EINPROGRESS {
		return fmt.Errorf("connect: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP, Fd: int32(fd)}
	c.pollOut = true
	return syscall.EpollCtl(e.ep, syscall.EPOLL_CTL_ADD, fd, &ev)
}

func (e *engine) arm(c *conn, out bool) {
	if c.pollOut == out {
		return
	}
	c.pollOut = out
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
	if out {
		ev.Events |= syscall.EPOLLOUT
	}
	if err := syscall.EpollCtl(e.ep, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		e.fail(c, err)
	}
}

func (e *engine) writable(c *conn) {
	if c.state == stConnecting {
		soErr, err := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err == nil && soErr != 0 {
			err = syscall.Errno(soErr)
		}
		if err != nil {
			e.fail(c, fmt.Errorf("connect: %w", err))
			return
		}
		c.state = stHandshake
		c.out, c.outOff = e.reqs[c.addr], 0
	}
	e.flush(c)
}

// flush writes c.out and whatever the scenario gives next, until the
// socket is full or there is nothing more to write.
func (e *engine) flush(c *conn) {
	for {
		if c.outOff == len(c.out) && !e.refill(c) {
			e.arm(c, false)
			return
		}
		n, err := syscall.Write(c.fd, c.out[c.outOff:])
		if n > 0 {
			e.wireOut.Add(int64(n))
			c.outOff += n
			e.wrote(c, n)
		}
		switch err {
		case nil:
		case syscall.EINTR:
		case syscall.EAGAIN:
			e.arm(c, true)
			return
		default:
			e.fail(c, fmt.Errorf("write: %w", err))
			return
		}
	}
}

// refill gives c more to write, if the scenario has some; it reports
// whether it did.
func (e *engine) refill(c *conn) bool {
	if c.state != stOpen {
		return false
	}
	switch e.cfg.Scenario {
	case "stream":
		if !e.started {
			return false
		}
		pos := int(c.sentBytes % int64(e.frameLen))
		allowed := (c.recv+int64(e.cfg.Window))*int64(e.frameLen) - c.sentBytes
		// Between frames, wait until an eighth of the window is free, so
		// that writes carry many frames each.
		if allowed <= 0 || pos == 0 && allowed < int64(max(1, e.cfg.Window/8)*e.frameLen) {
			return false
		}
		n := min(allowed, int64(len(e.frame)-pos))
		c.out, c.outOff = e.frame[pos:pos+int(n)], 0
		return true
	case "room":
		if c.own != nil && len(c.own) > 0 && c.outOff == len(c.own) {
			c.own, c.out, c.outOff = c.own[:0], nil, 0
		}
	}
	return false
}

// wrote accounts for n bytes written by c.
func (e *engine) wrote(c *conn, n int) {
	if e.cfg.Scenario != "stream" || c.state != stOpen {
		return
	}
	// Message i is sent when its last byte is written; its echo is the
	// (i+1)th message received. At most Window are in flight, so slot
	// i%Window is free.
	fl := int64(e.frameLen)
	first := c.sentBytes / fl
	c.sentBytes += int64(n)
	for i := first; i < c.sentBytes/fl; i++ {
		c.times[i%int64(len(c.times))] = e.now
	}
}

func (e *engine) readable(c *conn) {
	for {
		n, err := syscall.Read(c.fd, e.buf)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return
		}
		if err != nil {
			e.fail(c, fmt.Errorf("read: %w", err))
			return
		}
		if n == 0 {
			e.fail(c, io.EOF)
			return
		}
		e.wireIn.Add(int64(n))
		e.feed(c, e.buf[:n])
		return // level-triggered: what is left comes with the next wait
	}
}

func (e *engine) feed(c *conn, b []byte) {
	if c.state == stHandshake {
		c.hs = append(c.hs, b...)
		response := wsraw.Response
		if e.cfg.Deflate {
			response = wsraw.DeflateResponse
		}
		hn, err := response(c.hs)
		if err == wsraw.ErrIncomplete {
			return
		}
		if err != nil {
			e.fail(c, err)
			return
		}
		b = c.hs[hn:]
		c.hs = nil
		c.state = stOpen
		e.dialing--
		e.opened++
		e.alive++
		if e.cfg.Scenario == "stream" {
			c.times = make([]int64, e.cfg.Window)
		}
		if e.cfg.Scenario == "room" {
			c.seqs = make([]uint32, e.cfg.Publishers)
		}
	}
	for len(b) > 0 && c.state == stOpen {
		ch, n, ok, err := c.p.Next(b)
		if err != nil {
			e.fail(c, err)
			return
		}
		b = b[n:]
		if !ok {
			return
		}
		if ch.Op.IsControl() {
			if ch.Compressed {
				e.fail(c, errors.New("a control frame with RSV1"))
				return
			}
			if ch.Op == wire.OpClose && ch.End {
				e.fail(c, errors.New("the server sent a close frame"))
				return
			}
			continue // pings and pongs: the runs are too short for heartbeats
		}
		e.chunk(c, ch)
	}
	if e.cfg.Scenario == "stream" && e.started && c.state == stOpen && !c.pollOut {
		e.flush(c) // one write for all the echoes this read brought
	}
}

// chunk checks a piece of a data message.
func (e *engine) chunk(c *conn, ch wsraw.Chunk) {
	if ch.Start {
		switch {
		case ch.Op != wire.OpContinuation && c.inMsg:
			e.fail(c, errors.New("a new message began inside a fragmented one"))
			return
		case ch.Op != wire.OpContinuation && ch.Op != e.op:
			e.fail(c, fmt.Errorf("message of type %v, want %v", ch.Op, e.op))
			return
		case ch.Op == wire.OpContinuation && !c.inMsg:
			e.fail(c, errors.New("continuation frame without a message"))
			return
		case ch.Op == wire.OpContinuation && ch.Compressed:
			e.fail(c, errors.New("a continuation frame with RSV1"))
			return
		case ch.Op != wire.OpContinuation:
			c.inMsg, c.msgOff, c.compressed = true, 0, ch.Compressed
			c.zbuf = c.zbuf[:0]
		}
	}
	if c.compressed {
		e.compressedChunk(c, ch)
		return
	}
	d := ch.Data
	if c.msgOff+len(d) > len(e.expect) {
		e.fail(c, fmt.Errorf("message longer than the %d bytes sent", len(e.expect)))
		return
	}
	if !e.check(c.stamp[:], c.msgOff, d) {
		e.fail(c, fmt.Errorf("echoed bytes differ from those sent, at offset %d or after", c.msgOff))
		return
	}
	c.msgOff += len(d)
	if ch.End && ch.Fin {
		if c.msgOff != len(e.expect) {
			e.fail(c, fmt.Errorf("message of %d bytes, want %d", c.msgOff, len(e.expect)))
			return
		}
		c.inMsg = false
		e.message(c)
	}
}

// message handles a whole message received by c.
func (e *engine) message(c *conn) {
	c.recv++
	measuring := e.phase.Load() == phaseMeasure
	switch e.cfg.Scenario {
	case "echo":
		e.count(int64(e.cfg.Size))
		if measuring {
			e.hist.record(e.now - c.sendAt)
		}
		c.sendAt = e.now
		c.out, c.outOff = e.frame, 0
		e.flush(c)
	case "stream":
		e.count(int64(e.cfg.Size))
		if measuring {
			e.hist.record(e.now - c.times[int((c.recv-1)%int64(len(c.times)))])
		}
		// feed writes more once the whole read is parsed.
	case "idle":
		if c.verifying {
			c.verifying = false
			e.verified.Add(1)
		}
	case "room":
		e.delivery(c, measuring)
	}
}

func (e *engine) count(size int64) {
	e.msgs.Add(1)
	e.bytes.Add(size)
}

// start puts the load on once every connection is open.
func (e *engine) start() {
	e.started = true
	switch e.cfg.Scenario {
	case "echo":
		for _, c := range e.conns {
			c.sendAt = e.now
			c.out, c.outOff = e.frame, 0
			e.flush(c)
		}
	case "stream":
		for _, c := range e.conns {
			e.flush(c)
		}
	case "room":
		e.probing = true
		return // signalled when the room is complete
	}
	e.phase.CompareAndSwap(phaseSetup, phaseWarmup)
	e.signal(nil)
}

// tick runs after each wait.
func (e *engine) tick() {
	switch e.cfg.Scenario {
	case "room":
		e.publish()
	case "idle":
		if e.verify.CompareAndSwap(true, false) {
			for _, c := range e.conns {
				if c.state == stOpen {
					c.verifying = true
					c.out, c.outOff = e.frame, 0
					e.flush(c)
				}
			}
		}
	}
}

// publish sends room messages while the window allows. Before the load
// starts, publisher 0 sends probes until one reaches every member: the
// server may add a connection to the room a little after answering its
// handshake.
func (e *engine) publish() {
	if e.probing {
		if e.probeHave == int(e.members) {
			e.probing = false
			e.phase.CompareAndSwap(phaseSetup, phaseWarmup)
			e.signal(nil)
		} else if e.probeSeq == 0 || e.now-e.probeAt > int64(50*time.Millisecond) {
			e.probeSeq++
			e.probeAt = e.now
			e.probeHave = 0
			e.send(e.conns[0], e.probeSeq, 0)
			return
		} else {
			return
		}
	}
	due := int64(-1) // no limit
	if e.cfg.Rate > 0 {
		if e.phase.Load() == phaseDrain {
			return
		}
		e.now = int64(time.Since(e.base)) // the stamp: reading what the wait brought took time
		if !e.rateOn {
			e.rateOn, e.rateAt = true, e.now
		}
		due = int64(float64(e.now-e.rateAt)*e.cfg.Rate/1e9) + 1 - e.rated
	}
	// At most Window messages are not yet with every member: no member,
	// however far behind, has more than Window messages waiting for it.
	for ; due != 0 && e.published-e.completed < int64(len(e.pend)) && e.alive == len(e.conns); due-- {
		e.rated++
		c := e.conns[e.pubNext]
		e.pubNext = (e.pubNext + 1) % e.cfg.Publishers
		c.pubSeq++
		e.pend[e.published%int64(len(e.pend))] = 0
		e.published++
		e.pubs.Add(1)
		e.send(c, c.pubSeq, uint32(e.published))
	}
}

// send publishes message seq of c, number g of all (0 for a probe): the
// pre-masked frame with the stamp masked in, or with Deflate the payload
// stamped and compressed.
func (e *engine) send(c *conn, seq, g uint32) {
	if c.id == 0 && e.probing {
		c.pubSeq = seq
	}
	if c.outOff == len(c.out) { // nothing pending: start afresh
		c.own, c.out, c.outOff = c.own[:0], nil, 0
	}
	var meta [metaLen]byte
	binary.LittleEndian.PutUint64(meta[0:], uint64(e.now))
	binary.LittleEndian.PutUint32(meta[8:], uint32(c.id))
	binary.LittleEndian.PutUint32(meta[12:], seq)
	binary.LittleEndian.PutUint32(meta[16:], g)
	if e.cfg.Deflate {
		e.putStamp(e.pubBody[e.stampOff:], &meta)
		c.own = wsraw.AppendCompressedMessage(c.own, e.op, e.pubBody, 0)
	} else {
		start := len(c.own)
		c.own = append(c.own, e.pubFrame...)
		at := start + len(e.pubFrame) - e.cfg.Size + e.stampOff
		p := c.own[at : at+e.stampLen]
		e.putStamp(p, &meta)
		for i := range p {
			p[i] ^= wsraw.MaskKey[(e.stampOff+i)&3] // the payload starts at mask position 0
		}
	}
	c.out = c.own
	if !c.pollOut {
		e.flush(c)
	}
}

// delivery checks a room message received by c.
func (e *engine) delivery(c *conn, measuring bool) {
	var meta [metaLen]byte
	if !e.getStamp(&meta, c.stamp[:e.stampLen]) {
		e.fail(c, fmt.Errorf("a stamp that is not hexadecimal: %q", c.stamp[:e.stampLen]))
		return
	}
	at := int64(binary.LittleEndian.Uint64(meta[0:]))
	pub := binary.LittleEndian.Uint32(meta[8:])
	seq := binary.LittleEndian.Uint32(meta[12:])
	g := int64(binary.LittleEndian.Uint32(meta[16:]))
	if int(pub) >= len(c.seqs) {
		e.fail(c, fmt.Errorf("message stamped with publisher %d of %d", pub, len(c.seqs)))
		return
	}
	last := c.seqs[pub]
	if last != 0 && seq != last+1 {
		e.fail(c, fmt.Errorf("from publisher %d: message %d after %d (lost or out of order)", pub, seq, last))
		return
	}
	if last == 0 && pub != 0 && seq != 1 {
		e.fail(c, fmt.Errorf("from publisher %d: first message is %d", pub, seq))
		return
	}
	c.seqs[pub] = seq
	if g == 0 {
		if seq == e.probeSeq {
			e.probeHave++
		}
		return // a probe: not counted
	}
	if g > e.published || g <= e.completed {
		e.fail(c, fmt.Errorf("message number %d delivered; %d published, %d complete", g, e.published, e.completed))
		return
	}
	w := int64(len(e.pend))
	e.pend[(g-1)%w]++
	for e.completed < e.published && int64(e.pend[e.completed%w]) == e.members {
		e.completed++
	}
	e.done.Store(e.completed)
	e.count(int64(e.cfg.Size))
	e.addrMsgs[c.addr].Add(1)
	if measuring {
		e.hist.record(e.now - at)
		e.addrHist[c.addr].record(e.now - at)
	}
}
