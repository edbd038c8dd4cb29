package runtime_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// TestMain fails the package if any test leaves a goroutine behind: every
// runtime is shut down, every server and client closed.
//
// The 1,000-member room needs about 2,000 descriptors. The Go runtime
// already raises the soft RLIMIT_NOFILE to the hard limit at start-up on
// Unix (since Go 1.19), so there is nothing to raise here; the room test
// reports a dial failure clearly if the hard limit is too low.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bound is the failure bound of the waits below: a generous deadline that a
// correct run never comes near, on a busy 2-core machine under -race.
const bound = 30 * time.Second

// handler implements session.Handler with optional functions.
type handler struct {
	open  func(s *session.Session) error
	msg   func(s *session.Session, m session.Message) error
	close func(s *session.Session, err error)
}

func (h handler) OnOpen(s *session.Session) error {
	if h.open != nil {
		return h.open(s)
	}
	return nil
}

func (h handler) OnMessage(s *session.Session, m session.Message) error {
	if h.msg != nil {
		return h.msg(s, m)
	}
	return nil
}

func (h handler) OnClose(s *session.Session, err error) {
	if h.close != nil {
		h.close(s, err)
	}
}

// rtRef hands the Runtime to a handler made before it.
type rtRef struct {
	p atomic.Pointer[runtime.Runtime]
}

func (r *rtRef) get() *runtime.Runtime { return r.p.Load() }

// eventually polls cond until it holds, failing the test after d.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// tracker records the sessions of a runtime by the client's address, and
// how each one ended.
type tracker struct {
	mu     sync.Mutex
	byAddr map[string]*tracked
}

type tracked struct {
	s      *session.Session
	ended  chan struct{} // closed after OnClose
	err    error         // the OnClose error, set before ended is closed
	closes atomic.Int32
}

func newTracker() *tracker { return &tracker{byAddr: make(map[string]*tracked)} }

func (tr *tracker) entry(addr string) *tracked {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	e := tr.byAddr[addr]
	if e == nil {
		e = &tracked{ended: make(chan struct{})}
		tr.byAddr[addr] = e
	}
	return e
}

// opened records s; call it from OnOpen.
func (tr *tracker) opened(s *session.Session) {
	e := tr.entry(s.RemoteAddr().String())
	tr.mu.Lock()
	e.s = s
	tr.mu.Unlock()
}

// closed records how s ended; call it from OnClose.
func (tr *tracker) closed(s *session.Session, err error) {
	e := tr.entry(s.RemoteAddr().String())
	if e.closes.Add(1) == 1 {
		e.err = err
		close(e.ended)
	}
}

// session waits for the session of the client at addr.
func (tr *tracker) session(t testing.TB, addr net.Addr) *session.Session {
	t.Helper()
	var s *session.Session
	eventually(t, bound, "the session of "+addr.String(), func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if e := tr.byAddr[addr.String()]; e != nil {
			s = e.s
		}
		return s != nil
	})
	return s
}

// endErr waits for the session of the client at addr to end, and returns
// the error its OnClose got. It fails if OnClose ran more than once.
func (tr *tracker) endErr(t testing.TB, addr net.Addr) error {
	t.Helper()
	e := tr.entry(addr.String())
	select {
	case <-e.ended:
	case <-time.After(bound):
		t.Fatalf("the session of %v did not end in %v", addr, bound)
	}
	if n := e.closes.Load(); n != 1 {
		t.Errorf("OnClose ran %d times", n)
	}
	return e.err
}

// hasEnded reports whether the session of the client at addr has ended.
func (tr *tracker) hasEnded(addr net.Addr) bool {
	select {
	case <-tr.entry(addr.String()).ended:
		return true
	default:
		return false
	}
}

// readUntilError reads messages until ReadMessage fails, with bound as the
// failure deadline, and returns that error.
func readUntilError(c *wire.Conn) error {
	c.NetConn().SetReadDeadline(time.Now().Add(bound))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

// wantClose checks that err is the close frame code (and reason, if
// reason is not "*").
func wantClose(t testing.TB, err error, code wire.StatusCode, reason string) {
	t.Helper()
	var ce wire.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("client got %v, want close %d", err, code)
	}
	if ce.Code != code || (reason != "*" && ce.Reason != reason) {
		t.Fatalf("client got close %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
	}
}

// rawClient is a client speaking TCP directly, to stall, to stay silent,
// or to break the protocol.
type rawClient struct {
	nc net.Conn
	rd *wire.Reader
}

// rawDial opens a TCP connection to the ws:// url and completes the
// opening handshake. A positive rcvbuf shrinks the socket's receive
// buffer first, so that a client that does not read stalls the server
// quickly.
func rawDial(t testing.TB, url string, rcvbuf int) *rawClient {
	t.Helper()
	nc, br, _ := rawHandshake(t, url, rcvbuf, "")
	return &rawClient{nc: nc, rd: wire.NewReader(br, &wire.ReaderOptions{MaxMessageSize: 64 << 20})}
}

// rawHandshake is rawDial's handshake, with the extra header lines given
// (each ending with CRLF), over nc as wrap returns it (nil: as it is). It
// returns the connection, its reader and the server's answer.
func rawHandshake(t testing.TB, url string, rcvbuf int, header string, wrap ...func(net.Conn) net.Conn) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	host := strings.TrimPrefix(url, "ws://")
	nc, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if rcvbuf > 0 {
		if err := nc.(*net.TCPConn).SetReadBuffer(rcvbuf); err != nil {
			t.Fatal(err)
		}
	}
	nc.SetDeadline(time.Now().Add(bound))
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + header + "\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	rc := nc
	for _, w := range wrap {
		rc = w(rc)
	}
	br := bufio.NewReader(rc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw handshake: %s", resp.Status)
	}
	nc.SetDeadline(time.Time{})
	return nc, br, resp
}

// write sends one frame as given: h.Masked and h.Key are the caller's.
func (c *rawClient) write(h wire.Header, p []byte) error {
	h.Length = int64(len(p))
	_, err := c.nc.Write(wire.AppendFrame(nil, h, p))
	return err
}

// send sends one masked, final frame, as a well-behaved client does.
func (c *rawClient) send(op wire.Opcode, p []byte) error {
	h := wire.Header{Fin: true, Opcode: op, Masked: true}
	rand.Read(h.Key[:])
	return c.write(h, p)
}

// readClose reads frames until a close frame and returns its code and
// reason; it fails if the stream ends first.
func (c *rawClient) readClose(t testing.TB) (wire.StatusCode, string) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(bound))
	for {
		op, p, err := c.rd.Next()
		if err != nil {
			t.Fatalf("raw client: %v before a close frame", err)
		}
		if op == wire.OpClose {
			code, reason, err := wire.ParseClosePayload(p)
			if err != nil {
				t.Fatalf("raw client: bad close payload %x: %v", p, err)
			}
			return code, string(reason)
		}
	}
}

// seqMsg encodes a stream id and a sequence number, padded to size bytes.
func seqMsg(id, seq uint32, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint32(p, id)
	binary.BigEndian.PutUint32(p[4:], seq)
	return p
}

// parseSeq decodes seqMsg.
func parseSeq(p []byte) (id, seq uint32, err error) {
	if len(p) < 8 {
		return 0, 0, fmt.Errorf("message of %d bytes, want at least 8", len(p))
	}
	return binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]), nil
}

// seqChecker checks that each stream's messages arrive exactly once and
// in order, starting at 0.
type seqChecker struct {
	next []uint32
}

func newSeqChecker(streams int) *seqChecker { return &seqChecker{next: make([]uint32, streams)} }

func (sc *seqChecker) check(p []byte) error {
	id, seq, err := parseSeq(p)
	if err != nil {
		return err
	}
	if int(id) >= len(sc.next) {
		return fmt.Errorf("unknown stream %d", id)
	}
	if seq != sc.next[id] {
		return fmt.Errorf("stream %d: got seq %d, want %d", id, seq, sc.next[id])
	}
	sc.next[id]++
	return nil
}

// dialCtx dials url with a bounded handshake, for goroutines that cannot
// call t.Fatal.
func dialCtx(url string, opts *wire.DialOptions) (*wire.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, _, err := wire.Dial(ctx, url, opts)
	return c, err
}

// wantStatus checks that dialing url fails with HTTP status code.
func wantStatus(t testing.TB, url string, code int) {
	t.Helper()
	c, err := dialCtx(url, nil)
	if err == nil {
		c.CloseNow()
		t.Fatalf("dial succeeded, want HTTP %d", code)
	}
	var he *wire.HandshakeError
	if !errors.As(err, &he) || he.Status != code {
		t.Fatalf("dial: %v, want HTTP %d", err, code)
	}
}
