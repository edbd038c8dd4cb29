// Package peers holds the bench servers: Shockwave and the Go WebSocket
// libraries it is measured against, each serving the same three endpoints
// with the same semantics, configured as its authors recommend for speed,
// with compression off (but for Options.Deflate) and a 16 MiB message
// limit:
//
//	GET /echo  every message is sent back with its opcode
//	GET /room  every message from any connection goes to every connection
//	           on /room, the sender included
//	GET /sink  messages are counted and dropped (one-way throughput)
//
// The standalone servers (tests/bench/servers/<name>), the load tests and
// the micro-benchmarks all use these, so what is measured is the same code.
package peers

import (
	"fmt"
	"github.com/shockwave-go/shockwave/runtime"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// MaxMessage is the message size limit of every bench server.
const MaxMessage = 16 << 20

// Opcodes of data messages, as on the wire (RFC 6455 5.2). Every library
// uses the same values.
const (
	OpText   = 1
	OpBinary = 2
)

// RoomName is the name of the one room of /room.
const RoomName = "bench"

// Server is a bench server of one library.
type Server interface {
	// ServeHTTP upgrades GET /echo, /room and /sink.
	http.Handler
	// Broadcast sends a message to every member of /room, as a message
	// from a member would, and returns how many members it was handed to.
	Broadcast(op byte, p []byte) int
	// RoomLen returns the number of members of /room.
	RoomLen() int
	// Sunk returns how many messages /sink has received.
	Sunk() int64
	// Close closes every connection and returns when every goroutine the
	// server started has ended.
	Close()
}

// Options tune a Server. The zero value is what the load matrix uses.
type Options struct {
	// RoomMailbox, if positive, is the mailbox size in frames of the
	// members of a Shockwave room (with 64 KiB per frame of byte budget);
	// zero keeps the default. Other libraries ignore it.
	RoomMailbox int
	// RoomBroker, if set, carries the rooms of Shockwave's /room to the
	// other nodes that share it (tests/bench/cmd/cluster). Other
	// libraries ignore it.
	RoomBroker runtime.Broker
	// RoomHistory, if positive, has Shockwave's /room keep its latest
	// RoomHistory messages (runtime.WithRoomHistory) and publish every
	// message it reads with Room.Publish, one variant, the payload as it
	// came, instead of Room.Broadcast: with a RoomBroker, the Broker's
	// log (runtime.Log) keeps the history and every node, the
	// publisher's included, delivers each message as it comes back from
	// the log. Other libraries ignore it.
	RoomHistory int
	// Deflate has the server accept permessage-deflate without context
	// takeover (as wsraw.DeflateOffer asks) and compress what it sends
	// from 512 bytes: Shockwave with runtime.WithCompression and
	// wire.CompressionNoContextTakeover, gws with its PermessageDeflate.
	// The other libraries of the bench fail to start with it.
	Deflate bool
	// Serve has Shockwave serve the listener itself (Runtime.Serve: on
	// the event loop, without net/http), with /echo's Runtime for every
	// path: for the idle case, which only echoes. Other libraries ignore
	// it.
	Serve bool
}

// Libs lists the libraries, Shockwave first: on its default transport (the
// event loop, on Linux), then with a goroutine per connection.
var Libs = []string{"shockwave", "shockwave-goroutine", "gws", "gorilla", "coder", "nbio"}

// New returns the server of library lib. nbio's handler works only inside
// its own engine: use Start for it.
func New(lib string, o Options) (Server, error) {
	switch lib {
	case "shockwave":
		return newShockwave(o, runtime.TransportAuto)
	case "shockwave-goroutine":
		return newShockwave(o, runtime.TransportGoroutine)
	case "gws":
		return newGws(o), nil
	}
	if o.Deflate {
		return nil, fmt.Errorf("peers: the bench's %s server has no permessage-deflate", lib)
	}
	switch lib {
	case "gorilla":
		return newGorilla(), nil
	case "coder":
		return newCoder(), nil
	case "nbio":
		return newNbio(), nil
	}
	return nil, fmt.Errorf("peers: unknown library %q (have %v)", lib, Libs)
}

// Running is a server listening on an address.
type Running struct {
	Lib    string
	Addr   string // host:port actually listened on
	Server Server
	stop   func()
}

// Stop stops listening, closes every connection and waits for the server's
// goroutines.
func (r *Running) Stop() { r.stop() }

// Start starts the server of lib listening on addr ("127.0.0.1:0" picks a
// port): net/http for every library but nbio, which runs its own engine.
func Start(lib, addr string, o Options) (*Running, error) {
	srv, err := New(lib, o)
	if err != nil {
		return nil, err
	}
	if n, ok := srv.(*nbioServer); ok {
		return n.start(addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if sw, ok := srv.(*swServer); ok && o.Serve {
		done := make(chan struct{})
		go func() {
			defer close(done)
			sw.echo.Serve(ln)
		}()
		return &Running{Lib: lib, Addr: ln.Addr().String(), Server: srv, stop: sync.OnceFunc(func() {
			srv.Close() // Shutdown closes the listener too
			<-done
		})}, nil
	}
	hs := &http.Server{Handler: srv}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln)
	}()
	var once sync.Once
	return &Running{Lib: lib, Addr: ln.Addr().String(), Server: srv, stop: func() {
		once.Do(func() {
			hs.Close() // the listener; upgraded connections are the server's
			<-done
			srv.Close()
		})
	}}, nil
}

// tracker keeps the open connections of a server, to close them all, and
// counts its goroutines, to wait for them.
type tracker struct {
	mu     sync.Mutex
	conns  map[io.Closer]struct{}
	closed bool
	wg     sync.WaitGroup
}

// add registers c and one goroutine; it reports false (and closes c) once
// the server is closing.
func (t *tracker) add(c io.Closer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	if t.conns == nil {
		t.conns = make(map[io.Closer]struct{})
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	return true
}

// done forgets c and ends its goroutine.
func (t *tracker) done(c io.Closer) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	t.wg.Done()
}

// closeAll closes every connection and waits for their goroutines.
func (t *tracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// room is a set of members with a copy-on-write snapshot for broadcasts,
// the same structure Shockwave's rooms use, so that fan-out costs compare.
type room[T comparable] struct {
	mu      sync.Mutex
	members map[T]struct{}
	snap    atomic.Pointer[[]T]
}

func (r *room[T]) join(m T) {
	r.mu.Lock()
	if r.members == nil {
		r.members = make(map[T]struct{})
	}
	r.members[m] = struct{}{}
	r.snap.Store(nil)
	r.mu.Unlock()
}

func (r *room[T]) leave(m T) {
	r.mu.Lock()
	delete(r.members, m)
	r.snap.Store(nil)
	r.mu.Unlock()
}

func (r *room[T]) list() []T {
	if p := r.snap.Load(); p != nil {
		return *p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.snap.Load(); p != nil {
		return *p
	}
	l := make([]T, 0, len(r.members))
	for m := range r.members {
		l = append(l, m)
	}
	r.snap.Store(&l)
	return l
}

func (r *room[T]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// readAll reads r to its end into buf, reusing its capacity.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
