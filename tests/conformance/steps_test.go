package conformance

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// payload is the payload of a frame or message: pat repeated and cut to n
// bytes, as Autobahn's sendFrame(payload=pat, payload_len=n) builds it. The
// big payloads of the 9.x cases are made only when they are sent, so that
// the table does not hold hundreds of MiB.
type payload struct {
	pat []byte
	n   int
}

// lit is a payload of exactly b.
func lit(b []byte) payload { return payload{b, len(b)} }

// str is a payload of exactly s.
func str(s string) payload { return lit([]byte(s)) }

// rep is pat repeated to n bytes.
func rep(pat string, n int) payload { return payload{[]byte(pat), n} }

func (p payload) bytes() []byte {
	if len(p.pat) == p.n {
		return p.pat
	}
	b := make([]byte, p.n)
	k := copy(b, p.pat)
	for k < len(b) {
		k += copy(b[k:], b[:k]) // doubling: a few copies for any size
	}
	return b
}

// slice returns bytes i to j of p.
func (p payload) slice(i, j int) payload {
	if len(p.pat) == p.n {
		return lit(p.pat[i:j])
	}
	if len(p.pat) == 1 {
		return payload{p.pat, j - i}
	}
	return lit(p.bytes()[i:j])
}

// equal reports whether b is p.
func (p payload) equal(b []byte) bool {
	if len(b) != p.n {
		return false
	}
	if len(p.pat) == p.n {
		return bytes.Equal(b, p.pat)
	}
	// b is pat repeated iff it starts with pat and has its period.
	k := min(len(p.pat), len(b))
	return bytes.Equal(b[:k], p.pat[:k]) && bytes.Equal(b[k:], b[:len(b)-k])
}

func (p payload) String() string {
	if p.n <= 32 {
		return fmt.Sprintf("%q", p.bytes())
	}
	if len(p.pat) == p.n {
		return fmt.Sprintf("%q... (%d bytes)", p.pat[:24], p.n)
	}
	return fmt.Sprintf("%q repeated to %d bytes", p.pat, p.n)
}

// Kinds of events the client records, as Autobahn's Case.received does.
// Close frames are not events: they are judged by the closing behaviour.
const (
	evMessage = "message"
	evPing    = "ping"
	evPong    = "pong"
	evTimeout = "timeout" // a wait ended with the connection still open
)

// event is something the client saw: a message (reassembled, with its
// opcode), a ping or pong, or the end of a wait with the connection open.
type event struct {
	kind string
	op   wire.Opcode // text or binary, for messages
	p    payload
	tag  string // for timeouts
}

func msgText(p payload) event   { return event{kind: evMessage, op: wire.OpText, p: p} }
func msgBinary(p payload) event { return event{kind: evMessage, op: wire.OpBinary, p: p} }
func pongEv(p payload) event    { return event{kind: evPong, p: p} }
func timeoutEv(tag string) event {
	return event{kind: evTimeout, tag: tag}
}

// matches reports whether got (a received event) is e.
func (e event) matches(got event) bool {
	if e.kind != got.kind || e.tag != got.tag || e.op != got.op {
		return false
	}
	if e.kind == evTimeout {
		return true
	}
	return e.p.equal(got.p.pat)
}

func (e event) String() string {
	switch e.kind {
	case evMessage:
		return fmt.Sprintf("%s message %v", e.op, e.p)
	case evTimeout:
		return "timeout " + e.tag
	}
	return fmt.Sprintf("%s %v", e.kind, e.p)
}

// eventsEqual reports whether got is exactly want.
func eventsEqual(want, got []event) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if !want[i].matches(got[i]) {
			return false
		}
	}
	return true
}

// frame is a frame the client sends. Rsv holds the three reserved bits as
// Autobahn numbers them (1 is RSV3, 4 is RSV1). A handshake frame is a
// close frame sent by Autobahn's sendClose/sendCloseFrame, which starts the
// closing handshake; a raw close frame (sendFrame(opcode=8)) does not.
type frame struct {
	fin       bool
	rsv       uint8
	op        wire.Opcode
	p         payload
	handshake bool
}

func fr(op wire.Opcode, fin bool, p payload) frame { return frame{fin: fin, op: op, p: p} }
func textF(s string) frame                         { return fr(wire.OpText, true, str(s)) }
func pingF(s string) frame                         { return fr(wire.OpPing, true, str(s)) }

// withRsv returns f with reserved bits rsv (0-7, Autobahn's numbering).
func (f frame) withRsv(rsv uint8) frame { f.rsv = rsv; return f }

// closeF is a close frame that starts the closing handshake, with the raw
// payload that code (if code >= 0) and reason make. Like Autobahn's
// sendCloseFrame, it checks neither.
func closeF(code int, reason string) frame {
	var b []byte
	if code >= 0 {
		b = append(b, byte(code>>8), byte(code))
	}
	b = append(b, reason...)
	return frame{fin: true, op: wire.OpClose, p: lit(b), handshake: true}
}

// appendFrame appends f masked with a random key.
func appendFrame(dst []byte, f frame) []byte {
	return appendFrameKey(dst, f, randomKey())
}

func appendFrameKey(dst []byte, f frame, key [4]byte) []byte {
	h := wire.Header{Fin: f.fin, Rsv: rsvBits(f.rsv), Opcode: f.op, Masked: true, Key: key}
	return wire.AppendFrame(dst, h, f.p.bytes())
}

// rsvBits maps Autobahn's rsv number to the bits of the first header byte.
func rsvBits(rsv uint8) uint8 { return (rsv & 7) << 4 }

func randomKey() [4]byte {
	k := rand.Uint32()
	return [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
}

// A step is one action of a case's script. run returns false to end the
// script early, as Autobahn does when a delayed part finds the connection
// no longer open.
type step interface {
	run(s *session) bool
}

// send writes frames: in one write, or one write per frame (sync, Autobahn's
// sync=True), or each frame in chops of chop bytes (Autobahn's chopsize),
// with pause between writes so that the server sees partial frames.
type send struct {
	frames []frame
	sync   bool
	chop   int
	pause  time.Duration
}

// Pauses between the writes of sync and chopped sends. They only make
// partial reads on the server likely; nothing depends on their length.
const (
	syncPause = time.Millisecond
	chopPause = 200 * time.Microsecond
)

func sendF(frames ...frame) send     { return send{frames: frames} }
func sendSync(frames ...frame) send  { return send{frames: frames, sync: true, pause: syncPause} }
func sendChop1(frames ...frame) send { return send{frames: frames, chop: 1, pause: chopPause} }

// sendSyncIf is sendSync when sync is set, else sendF.
func sendSyncIf(sync bool, frames ...frame) send {
	if sync {
		return sendSync(frames...)
	}
	return sendF(frames...)
}

func (st send) run(s *session) bool {
	var buf []byte
	for i, f := range st.frames {
		if f.handshake && !s.startClose() {
			continue // Autobahn ignores sendClose while the connection closes
		}
		if st.chop == 0 && !st.sync {
			buf = appendFrame(buf, f)
			continue
		}
		b := appendFrame(nil, f)
		if st.chop > 0 {
			s.writeChopped(b, st.chop, st.pause)
		} else {
			s.write(b)
		}
		if st.sync && st.pause > 0 && i < len(st.frames)-1 {
			time.Sleep(st.pause)
		}
	}
	if len(buf) > 0 {
		s.write(buf)
	}
	return true
}

// message sends a whole message as Autobahn's sendMessage does: in one frame,
// or in frames of frag bytes (see appendMessage). rsv goes on the first
// frame (4, RSV1: p is compressed).
type message struct {
	op   wire.Opcode
	p    payload
	frag int
	rsv  uint8
}

func (st message) run(s *session) bool {
	b := st.p.bytes()
	buf := make([]byte, 0, len(b)+(len(b)/max(st.frag, 1)+2)*wire.MaxHeaderSize)
	s.write(appendMessage(buf, st.op, b, st.frag, st.rsv))
	return true
}

// raw writes bytes made in advance, such as the chops of one frame.
type raw []byte

func (st raw) run(s *session) bool { s.write(st); return true }

// timeout is Autobahn's continueLater(d, part, tag): it waits up to d (0:
// the session's wait) for the server to close; if the connection is still
// open then, it records a timeout event and the script goes on, else the
// script ends. A strict
// server fails a connection at once, so the waits that expect a close cost
// nothing; waits that expect no close (the first of 6.4.x) last d.
type timeout struct {
	tag string
	d   time.Duration
}

func (st timeout) run(s *session) bool {
	d := st.d
	if d == 0 {
		d = s.wait
	}
	s.waitUntil(d, func() bool { return !s.openLocked() })
	if !s.isOpen() {
		return false
	}
	s.addEvent(timeoutEv(st.tag))
	return true
}

// await waits until n events have arrived. It stands in for Autobahn's fixed
// waits where the point is that the server answers before we go on (5.19:
// the pong comes before the rest of the message is sent): it makes that
// order certain instead of likely. Not arriving is a strict failure.
type await int

func (st await) run(s *session) bool {
	n := int(st)
	if !s.waitUntil(s.wait, func() bool { return len(s.events) >= n || !s.openLocked() }) {
		s.strictf("did not receive event %d within %v", n, s.wait)
	}
	return s.isOpen()
}

// roundTrips sends count messages of op and payload p one after the other,
// each when the echo of the one before has arrived (9.7, 9.8).
type roundTrips struct {
	op    wire.Opcode
	p     payload
	count int
}

func (st roundTrips) run(s *session) bool {
	b := st.p.bytes()
	base := s.eventCount()
	for i := range st.count {
		s.write(appendFrame(nil, frame{fin: true, op: st.op, p: lit(b)}))
		want := base + i + 1
		if !s.waitUntil(s.wait, func() bool { return len(s.events) >= want || !s.openLocked() }) || !s.isOpen() {
			return false
		}
	}
	return true
}
