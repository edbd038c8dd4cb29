package conformance

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/wire"
)

// session is the raw client of one case: a TCP connection on which it does
// the opening handshake by hand, writes the frames a case crafts (malformed
// ones included), and reads the server's frames in a goroutine of its own,
// checking them and recording what Autobahn's fuzzing client records.
type session struct {
	nc   net.Conn
	br   *bufio.Reader
	wait time.Duration // how long to wait for something a correct server sends at once

	wmu      sync.Mutex // serialises writes
	writeErr error      // the first write error; no writes after it

	mu           sync.Mutex
	changed      chan struct{} // closed and replaced whenever the state below changes
	events       []event
	closeSent    bool // the client sent a close frame
	closedByMe   bool // ... before the server did (Autobahn's closedByMe)
	closeRecvd   bool // the server sent a close frame
	remoteCode   int  // its code, or -1 when it had none
	remoteReason string
	serverGone   bool // the server closed the TCP connection
	droppedByMe  bool // the client closed the TCP connection first
	readErr      error
	strict       []string // violations of RFC 6455 seen on the wire
	readDone     chan struct{}

	// permessage-deflate: the server's Sec-WebSocket-Extensions, and what
	// it agreed to, if anything.
	answer  string
	pmd     *negotiated
	inf     *inflater // of the server's messages; only the reader uses it
	digests bool      // messages are recorded by their SHA-1, not their bytes
	zmsgs   int       // messages from the server that came compressed
	verdict string    // the behaviour verdict of a script that gives its own
	note    string    // why
	// handshakeFail is why Autobahn's client would fail the opening
	// handshake (an answer to the offers it does not take).
	handshakeFail string
}

// dialOptions are how a case's client opens its connection.
type dialOptions struct {
	offers  []string // permessage-deflate offers, or none
	digests bool
	// autobahn fails the handshake where Autobahn's client does (an
	// extra case's client takes what RFC 7692 allows, such as windows of
	// 8 bits, which zlib lacks).
	autobahn bool
}

// dialRaw connects to a ws:// URL and performs the opening handshake, with
// the extension offers of o. An answer to the offers that Autobahn's
// client would not take is not an error: it is the session's
// handshakeFail, and the reader does not run.
func dialRaw(rawURL string, wait time.Duration, o dialOptions) (*session, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("conformance: only ws:// URLs, not %q", rawURL)
	}
	nc, err := net.DialTimeout("tcp", u.Host, wait)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n"
	if len(o.offers) > 0 {
		req += "Sec-WebSocket-Extensions: " + strings.Join(o.offers, ", ") + "\r\n"
	}
	req += "\r\n"
	nc.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("conformance: reading the handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
		return nil, fmt.Errorf("conformance: handshake answered %s", resp.Status)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		nc.Close()
		return nil, fmt.Errorf("conformance: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	nc.SetDeadline(time.Time{})
	s := &session{
		nc: nc, br: br, wait: wait,
		changed:    make(chan struct{}),
		remoteCode: -1,
		readDone:   make(chan struct{}),
		digests:    o.digests,
	}
	lines := resp.Header.Values("Sec-WebSocket-Extensions")
	s.answer = strings.Join(lines, ", ")
	if len(lines) > 0 && len(o.offers) == 0 {
		s.strict = append(s.strict, fmt.Sprintf("the server answered Sec-WebSocket-Extensions %q to no offer", lines))
		if o.autobahn {
			s.handshakeFail = "server wants to use extension we did not request"
		}
	} else if len(lines) > 0 {
		pmd, autobahn, strict := checkAnswer(lines, o.offers)
		s.strict = append(s.strict, strict...)
		if autobahn != nil && o.autobahn {
			s.handshakeFail = autobahn.Error()
		}
		s.pmd = pmd
		if pmd != nil {
			s.inf = &inflater{window: 1 << pmd.serverBits, takeover: pmd.serverTakeover}
		}
	}
	if s.handshakeFail != "" {
		close(s.readDone)
		return s, nil
	}
	go s.readLoop()
	return s, nil
}

// deflater returns a compressor of the client's messages, as agreed.
func (s *session) deflater() *deflater {
	return &deflater{bits: s.pmd.clientBits, takeover: s.pmd.clientTakeover}
}

// setVerdict records the verdict of a script that gives its own.
func (s *session) setVerdict(v, note string) {
	s.mu.Lock()
	s.verdict, s.note = v, note
	s.mu.Unlock()
}

// notifyLocked wakes the waiters. s.mu is held.
func (s *session) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitUntil waits up to d for cond, which is called with s.mu held, and
// reports whether it came true.
func (s *session) waitUntil(d time.Duration, cond func() bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			s.mu.Lock()
			ok = cond()
			s.mu.Unlock()
			return ok
		}
	}
}

// openLocked reports Autobahn's STATE_OPEN: no close frame either way and
// the TCP connection up. s.mu is held.
func (s *session) openLocked() bool {
	return !s.closeSent && !s.closeRecvd && !s.serverGone && !s.droppedByMe
}

func (s *session) isOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openLocked()
}

func (s *session) eventCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

func (s *session) addEvent(e event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.notifyLocked()
	s.mu.Unlock()
}

// strictf records a violation of RFC 6455 by the server.
func (s *session) strictf(format string, args ...any) {
	s.mu.Lock()
	s.strict = append(s.strict, fmt.Sprintf(format, args...))
	s.notifyLocked()
	s.mu.Unlock()
}

// write writes b unless an earlier write failed. Write errors are expected
// once the server has failed the connection, so they only stop the writing.
func (s *session) write(b []byte) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writeErr != nil {
		return
	}
	s.nc.SetWriteDeadline(time.Now().Add(s.wait + time.Duration(len(b)>>10)*time.Millisecond))
	if _, err := s.nc.Write(b); err != nil {
		s.writeErr = err
	}
}

// writeChopped writes b in pieces of n bytes with pause between them. It
// stops early when the server has gone.
func (s *session) writeChopped(b []byte, n int, pause time.Duration) {
	for len(b) > 0 {
		k := min(n, len(b))
		s.write(b[:k])
		b = b[k:]
		if len(b) == 0 {
			break
		}
		s.mu.Lock()
		gone := s.serverGone || s.droppedByMe
		s.mu.Unlock()
		if gone {
			return
		}
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

// startClose marks the start of the closing handshake by the client, which is
// about to send a close frame. It returns false when a close frame was sent
// already (Autobahn then ignores sendClose).
func (s *session) startClose() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeSent || s.serverGone || s.droppedByMe {
		return false
	}
	s.closeSent = true
	s.closedByMe = !s.closeRecvd
	s.notifyLocked()
	return true
}

// sendClose starts the closing handshake with code, unless it has started.
func (s *session) sendClose(code int) {
	if s.startClose() {
		s.write(appendFrame(nil, closeF(code, "")))
	}
}

// drop closes the TCP connection from the client side, as Autobahn's
// killAfter does, and waits for the reader to end. When no close frame went
// either way, Autobahn's failing of the connection counts as closing it.
func (s *session) drop() {
	s.mu.Lock()
	if !s.serverGone {
		s.droppedByMe = true
		if !s.closeSent && !s.closeRecvd {
			s.closeSent, s.closedByMe = true, true
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	s.nc.Close()
	<-s.readDone
}

// readLoop reads and checks the server's frames until the connection ends.
func (s *session) readLoop() {
	defer close(s.readDone)
	var (
		msgOp      wire.Opcode // opcode of the message being reassembled, 0 if none
		msg        []byte
		compressed bool // the message's first frame had RSV1
		hdr        [wire.MaxHeaderSize]byte
	)
	for {
		h, err := readHeader(s.br, hdr[:])
		if err == nil && h.Length > 64<<20 {
			err = fmt.Errorf("frame of %d bytes", h.Length)
			s.strictf("server sent a frame of %d bytes", h.Length)
		}
		var p []byte
		if err == nil {
			p = make([]byte, h.Length)
			_, err = io.ReadFull(s.br, p)
		}
		if err != nil {
			s.mu.Lock()
			if !s.droppedByMe {
				s.serverGone = true
				if !errors.Is(err, io.EOF) {
					s.readErr = err // such as a reset: the server still closed the connection
				}
			}
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		if bad := checkServerFrame(h, msgOp, s.pmd != nil); bad != "" {
			s.fail("server sent %s", bad)
			continue // the next read ends the loop
		}
		s.mu.Lock()
		afterClose := s.closeRecvd
		s.mu.Unlock()
		if afterClose {
			s.strictf("server sent a %s frame after its close frame", h.Opcode)
			continue
		}
		switch h.Opcode {
		case wire.OpText, wire.OpBinary, wire.OpContinuation:
			if h.Opcode != wire.OpContinuation {
				msgOp, msg = h.Opcode, p // no copy for a message in one frame
				compressed = h.Rsv&wire.RSV1 != 0
			} else {
				msg = append(msg, p...)
			}
			if !h.Fin {
				continue
			}
			if compressed {
				out, err := s.inf.inflate(msg)
				if err != nil {
					s.fail("server sent a compressed message that does not inflate as agreed (%s): %v", s.pmd.answer, err)
					continue
				}
				msg = out
				s.mu.Lock()
				s.zmsgs++
				s.mu.Unlock()
			}
			if msgOp == wire.OpText && !utf8.Valid(msg) {
				s.strictf("server sent a text message that is not valid UTF-8")
			}
			if msg == nil {
				msg = []byte{}
			}
			if s.digests {
				sum := sha1.Sum(msg)
				msg = sum[:]
			}
			s.addEvent(event{kind: evMessage, op: msgOp, p: lit(msg)})
			msgOp, msg = 0, nil
		case wire.OpPing:
			s.addEvent(event{kind: evPing, p: lit(p)})
		case wire.OpPong:
			s.addEvent(event{kind: evPong, p: lit(p)})
		case wire.OpClose:
			code, reason, bad := parseClose(p)
			if bad != "" {
				s.strictf("server sent a close frame with %s", bad)
			}
			s.mu.Lock()
			s.closeRecvd = true
			s.remoteCode, s.remoteReason = code, reason
			reply := !s.closeSent
			s.closeSent = true
			s.notifyLocked()
			s.mu.Unlock()
			if reply {
				// Autobahn answers a close frame with a normal closure.
				s.write(appendFrame(nil, closeF(1000, "")))
			}
		}
	}
}

// readHeader reads one frame header into hdr, which has room for
// wire.MaxHeaderSize bytes.
func readHeader(br *bufio.Reader, hdr []byte) (wire.Header, error) {
	if _, err := io.ReadFull(br, hdr[:2]); err != nil {
		return wire.Header{}, err
	}
	n := 2
	switch hdr[1] & 0x7F {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if hdr[1]&0x80 != 0 {
		n += 4
	}
	if _, err := io.ReadFull(br, hdr[2:n]); err != nil {
		return wire.Header{}, io.ErrUnexpectedEOF
	}
	h, m, err := wire.ParseHeader(hdr[:n])
	if err == nil && m != n {
		err = fmt.Errorf("header of %d bytes parsed as %d", n, m)
	}
	return h, err
}

// fail records a violation of the protocol by the server and fails the
// connection, as Autobahn does: it closes the TCP connection.
func (s *session) fail(format string, args ...any) {
	s.strictf(format, args...)
	s.mu.Lock()
	s.droppedByMe = true
	s.mu.Unlock()
	s.nc.Close()
}

// checkServerFrame returns what is wrong with a frame from the server
// (RFC 6455 section 5, and RFC 7692 section 6 when pmd: RSV1 only on the
// first frame of a message), or "". msgOp is the opcode of the fragmented
// message in progress, or 0.
func checkServerFrame(h wire.Header, msgOp wire.Opcode, pmd bool) string {
	rsvOK := uint8(0)
	if pmd {
		rsvOK = wire.RSV1
	}
	switch {
	case h.Masked:
		return "a masked frame"
	case h.Rsv&^rsvOK != 0:
		return fmt.Sprintf("reserved bits %#x", h.Rsv)
	case h.Rsv != 0 && h.Opcode.IsControl():
		return fmt.Sprintf("RSV1 on a %s frame", h.Opcode)
	case h.Rsv != 0 && h.Opcode == wire.OpContinuation:
		return "RSV1 on a continuation frame"
	case h.Opcode.IsReserved():
		return fmt.Sprintf("reserved opcode %d", h.Opcode)
	case h.Opcode.IsControl() && !h.Fin:
		return "a fragmented control frame"
	case h.Opcode.IsControl() && h.Length > 125:
		return fmt.Sprintf("a control frame of %d bytes", h.Length)
	case h.Opcode == wire.OpContinuation && msgOp == 0:
		return "a continuation frame with no message to continue"
	case (h.Opcode == wire.OpText || h.Opcode == wire.OpBinary) && msgOp != 0:
		return "a new message inside a fragmented one"
	}
	return ""
}

// parseClose parses a close payload from the server: the code (-1 if none),
// the reason, and what is wrong with it, if anything.
func parseClose(p []byte) (code int, reason string, bad string) {
	switch {
	case len(p) == 0:
		return -1, "", ""
	case len(p) == 1:
		return -1, "", "a payload of 1 byte"
	}
	code = int(binary.BigEndian.Uint16(p))
	reason = string(p[2:])
	if !validCloseCode(code) {
		bad = fmt.Sprintf("code %d, which may not be sent", code)
	} else if !utf8.ValidString(reason) {
		bad = "a reason that is not valid UTF-8"
	}
	return code, reason, bad
}

// validCloseCode reports whether a close frame may carry code (RFC 6455
// section 7.4: the codes it defines that are not local-only, the ones IANA
// registered since, and 3000-4999).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 1012 && code <= 1014: // registered with IANA after RFC 6455
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
