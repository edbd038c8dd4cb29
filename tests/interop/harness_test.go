package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lxzan/gws"

	"github.com/shockwave-go/shockwave/wire"
)

const (
	// maxMsg is the message size limit of both sides unless a test says
	// otherwise: the largest message the suite sends, exactly.
	maxMsg = 16 << 20
	// waitFor bounds every single wait of the suite.
	waitFor = 20 * time.Second
	// lifetime is a deadline set on every connection, so that a hung test
	// fails on an I/O timeout instead of hanging the run.
	lifetime = 60 * time.Second
)

// message is a data message as either side received it. gws and wire use
// the same opcode numbers, so gws opcodes are stored as wire.Opcode.
type message struct {
	op   wire.Opcode
	data []byte
}

// gwsEvents is the gws event handler of one connection. It records what the
// gws peer sees on channels, answers pings with a pong that echoes the
// payload (gws's built-in handler sends an empty one) and never blocks past
// stop.
type gwsEvents struct {
	msgs   chan message
	pings  chan []byte
	pongs  chan []byte
	closed chan error    // OnClose's error
	done   chan struct{} // ReadLoop has returned
	stop   chan struct{} // the test is over: drop events
	once   sync.Once
}

func newGWSEvents() *gwsEvents {
	return &gwsEvents{
		msgs:   make(chan message, 256),
		pings:  make(chan []byte, 64),
		pongs:  make(chan []byte, 64),
		closed: make(chan error, 1),
		done:   make(chan struct{}),
		stop:   make(chan struct{}),
	}
}

func send[T any](ch chan<- T, v T, stop <-chan struct{}) {
	select {
	case ch <- v:
	case <-stop:
	}
}

// OnOpen implements gws.Event.
func (e *gwsEvents) OnOpen(*gws.Conn) {}

// OnClose implements gws.Event.
func (e *gwsEvents) OnClose(_ *gws.Conn, err error) { send(e.closed, err, e.stop) }

// OnPing implements gws.Event: it records the ping and echoes it in a pong.
func (e *gwsEvents) OnPing(c *gws.Conn, p []byte) {
	send(e.pings, bytes.Clone(p), e.stop)
	_ = c.WritePong(p)
}

// OnPong implements gws.Event.
func (e *gwsEvents) OnPong(_ *gws.Conn, p []byte) { send(e.pongs, bytes.Clone(p), e.stop) }

// OnMessage implements gws.Event.
func (e *gwsEvents) OnMessage(_ *gws.Conn, m *gws.Message) {
	msg := message{op: wire.Opcode(m.Opcode), data: bytes.Clone(m.Bytes())}
	m.Close()
	send(e.msgs, msg, e.stop)
}

// readLoop runs the gws connection's read loop and reports its end.
func (e *gwsEvents) readLoop(c *gws.Conn) {
	c.ReadLoop()
	e.once.Do(func() { close(e.done) })
}

// config describes one connection of a test.
type config struct {
	ours           wire.Options // the harness sets OnPing and OnPong
	oursSub        []string     // subprotocols of our side (offered or supported)
	peerSub        []string     // subprotocols of gws (offered or supported)
	peerMax        int          // gws's read and write limits; 0 means maxMsg
	peerNoUTF8     bool         // gws neither checks nor refuses invalid UTF-8
	header         http.Header  // extra request header of the dialing side
	originPatterns []string     // of our server
	peerDeflate    gws.PermessageDeflate
}

// pair is an established connection between our side and a gws peer.
type pair struct {
	t    testing.TB
	ours *wire.Conn
	peer *gws.Conn
	ev   *gwsEvents

	pings chan []byte // our OnPing hook
	pongs chan []byte // our OnPong hook

	msgs       chan message // what our reader received, once started
	readErr    chan error   // the error that ended our reader
	readerOnce sync.Once
	stop       chan struct{} // the test is over: drop hook calls
	haltOnce   sync.Once
}

func newPair(t testing.TB) *pair {
	p := &pair{
		t:       t,
		ev:      newGWSEvents(),
		pings:   make(chan []byte, 64),
		pongs:   make(chan []byte, 64),
		msgs:    make(chan message, 256),
		readErr: make(chan error, 1),
		stop:    make(chan struct{}),
	}
	return p
}

func (p *pair) options(o wire.Options) wire.Options {
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = maxMsg
	}
	o.OnPing = func(b []byte) { send(p.pings, bytes.Clone(b), p.stop) }
	o.OnPong = func(b []byte) { send(p.pongs, bytes.Clone(b), p.stop) }
	return o
}

// startReader reads our side in a goroutine until ReadMessage fails,
// sending the messages to p.msgs and the final error to p.readErr. A
// connection must be read for pings and closes to be answered.
func (p *pair) startReader() {
	p.readerOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				op, b, err := p.ours.ReadMessage()
				if err != nil {
					p.readErr <- err
					return
				}
				send(p.msgs, message{op: op, data: bytes.Clone(b)}, p.stop)
			}
		}()
		p.t.Cleanup(func() {
			p.halt()
			p.ours.CloseNow()
			waitDone(p.t, done, "our reader to stop")
		})
	})
}

// halt makes the hooks and event handlers stop blocking.
func (p *pair) halt() {
	p.haltOnce.Do(func() {
		close(p.stop)
		close(p.ev.stop)
	})
}

// cleanup ends both sides and waits for their goroutines. Registered by the
// openers.
func (p *pair) cleanup() {
	p.halt()
	if p.ours != nil {
		p.ours.CloseNow()
	}
	if p.peer != nil {
		p.peer.NetConn().Close()
		waitDone(p.t, p.ev.done, "the gws read loop to stop")
	}
}

// topology is a way to connect our side with gws.
type topology struct {
	name         string
	peerIsClient bool
	open         func(t testing.TB, cfg config) *pair
}

// topologies are both directions: every test that does not depend on who
// dialed runs in each.
var topologies = []topology{
	{"gwsClient-ourServer", true, openOurServer},
	{"ourClient-gwsServer", false, openGWSServer},
}

// acceptResult is what our server's Accept returned.
type acceptResult struct {
	c   *wire.Conn
	err error
}

// serveOurs starts an HTTP server on 127.0.0.1 whose handler upgrades with
// wire.Accept and hands the connection over. It returns the ws:// URL.
func serveOurs(t testing.TB, opts *wire.AcceptOptions) (string, <-chan acceptResult) {
	t.Helper()
	accepted := make(chan acceptResult, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := wire.Accept(w, r, opts)
		if err == nil {
			c.NetConn().SetDeadline(time.Now().Add(lifetime))
		}
		select {
		case accepted <- acceptResult{c, err}:
		default: // more connections than the test expects
			if c != nil {
				c.CloseNow()
			}
		}
	}))
	t.Cleanup(func() {
		srv.Close()
		for {
			select {
			case r := <-accepted: // accepted, but the test did not take it
				if r.c != nil {
					r.c.CloseNow()
				}
			default:
				return
			}
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), accepted
}

// gwsClientOption returns the options of a gws client for cfg.
func gwsClientOption(url string, cfg config) *gws.ClientOption {
	limit := cfg.peerMax
	if limit == 0 {
		limit = maxMsg
	}
	h := http.Header{}
	for k, v := range cfg.header {
		h[k] = v
	}
	if len(cfg.peerSub) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(cfg.peerSub, ", "))
	}
	return &gws.ClientOption{
		Addr:                url,
		RequestHeader:       h,
		ReadMaxPayloadSize:  limit,
		WriteMaxPayloadSize: limit,
		CheckUtf8Enabled:    !cfg.peerNoUTF8,
		HandshakeTimeout:    waitFor,
		PermessageDeflate:   cfg.peerDeflate,
	}
}

// dialGWS connects a gws client and runs its read loop until the test ends.
func dialGWS(t testing.TB, ev *gwsEvents, opt *gws.ClientOption) (*gws.Conn, *http.Response, error) {
	t.Helper()
	c, resp, err := gws.NewClient(ev, opt)
	if err != nil {
		return nil, resp, err
	}
	c.NetConn().SetDeadline(time.Now().Add(lifetime))
	go ev.readLoop(c)
	return c, resp, nil
}

// openOurServer connects a gws client to our server.
func openOurServer(t testing.TB, cfg config) *pair {
	t.Helper()
	p, err := tryOpenOurServer(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tryOpenOurServer connects a gws client to our server and returns the
// handshake's error.
func tryOpenOurServer(t testing.TB, cfg config) (*pair, error) {
	t.Helper()
	p := newPair(t)
	url, accepted := serveOurs(t, &wire.AcceptOptions{
		Options:        p.options(cfg.ours),
		Subprotocols:   cfg.oursSub,
		OriginPatterns: cfg.originPatterns,
	})
	t.Cleanup(p.cleanup)
	peer, _, err := dialGWS(t, p.ev, gwsClientOption(url, cfg))
	if err != nil {
		return p, fmt.Errorf("gws client: %w", err)
	}
	p.peer = peer
	r := recv(t, accepted, "our server to accept")
	if r.err != nil {
		return p, fmt.Errorf("wire.Accept: %w", r.err)
	}
	p.ours = r.c
	return p, nil
}

// serveGWS starts an HTTP server on 127.0.0.1 that upgrades one connection
// with a gws Upgrader and runs its read loop. It returns the ws:// URL.
func serveGWS(t testing.TB, ev *gwsEvents, cfg config) (string, <-chan *gws.Conn) {
	t.Helper()
	limit := cfg.peerMax
	if limit == 0 {
		limit = maxMsg
	}
	up := gws.NewUpgrader(ev, &gws.ServerOption{
		ReadMaxPayloadSize:  limit,
		WriteMaxPayloadSize: limit,
		CheckUtf8Enabled:    !cfg.peerNoUTF8,
		SubProtocols:        cfg.peerSub,
		HandshakeTimeout:    waitFor,
		PermessageDeflate:   cfg.peerDeflate,
	})
	upgraded := make(chan *gws.Conn, 1)
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		if !first {
			http.Error(w, "one connection per test server", http.StatusServiceUnavailable)
			return
		}
		c, err := up.Upgrade(w, r)
		if err != nil {
			ev.once.Do(func() { close(ev.done) }) // no read loop will run
			return
		}
		c.NetConn().SetDeadline(time.Now().Add(lifetime))
		upgraded <- c
		ev.readLoop(c)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), upgraded
}

// dialOurs dials with wire.Dial, bounded by waitFor.
func dialOurs(t testing.TB, url string, opts *wire.DialOptions) (*wire.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, resp, err := wire.Dial(ctx, url, opts)
	if err == nil {
		c.NetConn().SetDeadline(time.Now().Add(lifetime))
	}
	return c, resp, err
}

// openGWSServer connects our client to a gws server.
func openGWSServer(t testing.TB, cfg config) *pair {
	t.Helper()
	p, err := tryOpenGWSServer(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tryOpenGWSServer connects our client to a gws server and returns the
// handshake's error.
func tryOpenGWSServer(t testing.TB, cfg config) (*pair, error) {
	t.Helper()
	p := newPair(t)
	url, upgraded := serveGWS(t, p.ev, cfg)
	t.Cleanup(p.cleanup)
	c, _, err := dialOurs(t, url, &wire.DialOptions{
		Options:      p.options(cfg.ours),
		Subprotocols: cfg.oursSub,
		Header:       cfg.header,
	})
	if err != nil {
		return p, fmt.Errorf("wire.Dial: %w", err)
	}
	p.ours = c
	p.peer = recv(t, upgraded, "the gws server to upgrade")
	return p, nil
}

// recv receives from ch, failing the test after waitFor.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitDone waits for ch to be closed, reporting an error after waitFor.
func waitDone(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Errorf("timed out waiting for %s", what)
	}
}

// goErr runs f in a goroutine and returns a channel with its result.
func goErr(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// textPattern is the text payloads are cut from: ASCII and two-, three- and
// four-byte characters, so that fragment boundaries split characters.
const textPattern = "Shockwave ⚡ héllo wörld 😀 ∑ "

// binaryPattern is what binary payloads are cut from: every byte value, in
// a period (65521, a prime) that does not divide any power of two.
var binaryPattern = func() []byte {
	b := make([]byte, 65521+251)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}()

// proseText is mostly ASCII, like most real text: validating it is cheap,
// which matters for 16 MiB under the race detector.
var proseText = textPattern + strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40)

// payload returns a message of exactly n bytes for op, varied by seed.
// Text is valid UTF-8, dense with multi-byte characters; binary covers all
// byte values.
func payload(op wire.Opcode, n, seed int) []byte {
	return fill(op, n, seed, textPattern)
}

// prose is like payload, but its text is mostly ASCII.
func prose(op wire.Opcode, n, seed int) []byte {
	return fill(op, n, seed, proseText)
}

func fill(op wire.Opcode, n, seed int, text string) []byte {
	b := make([]byte, n)
	var pat []byte
	switch {
	case op != wire.OpText:
		pat = binaryPattern[seed%251:]
	case seed%2 == 1:
		pat = []byte("¿" + text) // another alignment of the characters
	default:
		pat = []byte(text)
	}
	// Fill by copying (fast under the race detector, unlike a byte loop).
	for i := 0; i < n; i += copy(b[i:], pat) {
	}
	if op != wire.OpText {
		return b
	}
	// Replace a character cut at the end by ASCII.
	i := n - 1
	for i > 0 && b[i]&0xC0 == 0x80 {
		i--
	}
	if i >= 0 && i+utf8Len(b[i]) > n {
		for j := i; j < n; j++ {
			b[j] = '.'
		}
	}
	return b
}

func utf8Len(c byte) int {
	switch {
	case c < 0x80:
		return 1
	case c >= 0xF0:
		return 4
	case c >= 0xE0:
		return 3
	default:
		return 2
	}
}

// checkMessage compares a received message with what was sent, without
// printing megabytes.
func checkMessage(t testing.TB, got message, op wire.Opcode, want []byte) {
	t.Helper()
	if got.op != op {
		t.Errorf("opcode %v, want %v", got.op, op)
	}
	if len(got.data) != len(want) {
		t.Errorf("length %d, want %d", len(got.data), len(want))
		return
	}
	if bytes.Equal(got.data, want) {
		return
	}
	for i := range want {
		if got.data[i] != want[i] {
			t.Errorf("byte %d of %d is %#x, want %#x", i, len(want), got.data[i], want[i])
			return
		}
	}
}

// split cuts b into fragments of the given sizes; the last fragment takes
// what is left.
func split(b []byte, sizes ...int) [][]byte {
	var out [][]byte
	for _, n := range sizes {
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// chunks cuts b into fragments of n bytes (the last may be shorter).
func chunks(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// fragmentReader yields one fragment per Read, the last one with io.EOF.
// gws's WriteFile sends each Read as one frame, so it makes gws send a
// message in exactly these fragments (each at most 128 KiB).
type fragmentReader struct{ frags [][]byte }

func (r *fragmentReader) Read(p []byte) (int, error) {
	if len(r.frags) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.frags[0])
	if n < len(r.frags[0]) {
		return 0, errors.New("fragment larger than gws's segment buffer")
	}
	r.frags = r.frags[1:]
	if len(r.frags) == 0 {
		return n, io.EOF
	}
	return n, nil
}

// writeFragments sends frags as one message from our side with WriteFrame.
// If between is set, it is called after the first fragment.
func writeFragments(c *wire.Conn, op wire.Opcode, frags [][]byte, between func() error) error {
	for i, f := range frags {
		fop := op
		if i > 0 {
			fop = wire.OpContinuation
		}
		if err := c.WriteFrame(fop, i == len(frags)-1, f); err != nil {
			return err
		}
		if i == 0 && between != nil {
			if err := between(); err != nil {
				return err
			}
		}
	}
	return nil
}

// gwsCloseError asserts that err, as gws's OnClose reported it, is a close
// frame with code (and reason, unless anyReason).
func gwsCloseError(t testing.TB, err error, code wire.StatusCode, reason string, anyReason bool) {
	t.Helper()
	var ce *gws.CloseError
	if !errors.As(err, &ce) {
		t.Errorf("gws saw %v (%T), want a close frame with code %d", err, err, code)
		return
	}
	if wire.StatusCode(ce.Code) != code || (!anyReason && string(ce.Reason) != reason) {
		t.Errorf("gws saw close %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
	}
}
