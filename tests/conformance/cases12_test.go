package conformance

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shockwave-go/shockwave/wire"
)

// msgSizes is case12_x_x.py's MSG_SIZES: the length of the messages
// (bytes, or characters for text) and the auto-fragment size (0: one
// frame) of the 18 cases of each group.
var msgSizes = []struct{ n, frag int }{
	{16, 0}, {64, 0}, {256, 0}, {1024, 0}, {4096, 0}, {8192, 0}, {16384, 0}, {32768, 0}, {65536, 0}, {131072, 0},
	{8192, 256}, {16384, 256}, {32768, 256}, {65536, 256}, {131072, 256},
	{131072, 1024}, {131072, 4096}, {131072, 32768},
}

// autobahnCount is how many messages each 12.x and 13.x case of Autobahn's
// sends.
const autobahnCount = 1000

// deflateCount is how many messages a 12.x or 13.x case of n units sends:
// Autobahn's 1000 with $CONFORMANCE_FULL set; else as many as make 64 KiB,
// from 2 (32 KiB and more) to 50 (1 KiB and less), which keeps the 700
// cases of three targets within half a minute under the race detector on
// two cores. Every
// case still sends more than one message, so context takeover across
// messages is exercised, as are the server's compressing and windows;
// what Autobahn's other 950 messages add is volume.
func deflateCount(n int) int {
	if os.Getenv("CONFORMANCE_FULL") != "" {
		return autobahnCount
	}
	return max(2, min(50, (64<<10)/n))
}

// deflateWait bounds each wait for an echo in the compression cases (the
// 128 KiB messages are compressed four times on the way, under the race
// detector). Autobahn gives a whole case 60 to 480 s.
const deflateWait = 30 * time.Second

// defaultOffer is what autobahn-python's PerMessageDeflateOffer() offers:
// it accepts both no_context_takeover and a client_max_window_bits.
const defaultOffer = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

// offers13 are the client offers of 13.1-13.7 (case12_x_x.py's
// DEFLATE_PARAMS): request_no_context_takeover adds
// server_no_context_takeover, request_max_window_bits a
// server_max_window_bits.
var offers13 = [][]string{
	{defaultOffer},
	{defaultOffer + "; server_no_context_takeover"},
	{defaultOffer + "; server_max_window_bits=9"},
	{defaultOffer + "; server_max_window_bits=15"},
	{defaultOffer + "; server_no_context_takeover; server_max_window_bits=9"},
	{defaultOffer + "; server_no_context_takeover; server_max_window_bits=15"},
	{defaultOffer + "; server_no_context_takeover; server_max_window_bits=9", defaultOffer + "; server_no_context_takeover", defaultOffer},
}

// deflateCases is the table of the compression cases: Autobahn's 12.x and
// 13.x, then the extra ones.
func deflateCases() []Case {
	var cs []Case
	for j, ds := range datasets {
		for i, sz := range msgSizes {
			cs = append(cs, echoesCase(fmt.Sprintf("12.%d.%d", j+1, i+1), []string{defaultOffer},
				echoes{data: ds, n: sz.n, frag: sz.frag, count: deflateCount(sz.n)}))
		}
	}
	for j, offers := range offers13 {
		for i, sz := range msgSizes {
			cs = append(cs, echoesCase(fmt.Sprintf("13.%d.%d", j+1, i+1), offers,
				echoes{data: datasets[0], n: sz.n, frag: sz.frag, count: deflateCount(sz.n)}))
		}
	}
	return append(cs, deflateExtraCases()...)
}

// echoesCase is a case of Autobahn's 12.x and 13.x: the offers, then the
// messages one after the other's echo; the script gives the verdict, and
// the client closes normally.
func echoesCase(id string, offers []string, e echoes) Case {
	what := "text"
	if e.data.binary {
		what = "binary"
	}
	desc := fmt.Sprintf("%d compressed %s messages of %d from %s", e.count, what, e.n, e.data.desc)
	if e.frag > 0 {
		desc += fmt.Sprintf(", in frames of %d compressed bytes", e.frag)
	}
	if e.plainEvery > 0 {
		desc += fmt.Sprintf(", one in %d sent uncompressed", e.plainEvery)
	}
	if e.small > 0 {
		desc += fmt.Sprintf(", every other one of %d", e.small)
	}
	desc += fmt.Sprintf("; offers %q", offers)
	return Case{ID: id, Desc: desc, Offer: offers, Steps: steps(e), OwnVerdict: true, OK: []event{},
		ClosedByMe: true, Codes: []int{codeNormal}, RequireClean: true, Wait: deflateWait}
}

// echoes is the script of 12.x and 13.x (case12_x_x.py's onOpen, sendOne
// and onMessage): when the server declined compression, the verdict is
// UNIMPLEMENTED and the client closes; otherwise it sends count messages
// of n units cut from the data set, each compressed as the handshake
// agreed and when the echo of the one before has come, in frames of frag
// compressed bytes (0: one frame), and compares each echo with what it
// sent: on the first that differs (or does not come) the verdict is
// FAILED and the client closes, after the last OK. plainEvery and small
// are for the extra cases.
type echoes struct {
	data       *dataset
	n, frag    int
	count      int
	plainEvery int // if not 0, every plainEvery-th message goes uncompressed
	small      int // if not 0, every other message has this many units
}

func (st echoes) run(s *session) bool {
	if s.pmd == nil {
		s.setVerdict(Unimplemented, "the server declined permessage-deflate")
		s.sendClose(codeNormal)
		return false
	}
	op := wire.OpText
	if st.data.binary {
		op = wire.OpBinary
	}
	z := s.deflater()
	msgs := st.data.messages()
	base := s.eventCount()
	for i := range st.count {
		n := st.n
		if st.small > 0 && i%2 == 1 {
			n = st.small
		}
		p := msgs.next(n)
		want := sha1.Sum(p)
		body, rsv := p, uint8(0)
		if st.plainEvery == 0 || (i+1)%st.plainEvery != 0 {
			body, rsv = z.compress(p), 4
		}
		s.write(appendMessage(nil, op, body, st.frag, rsv))
		k := base + i
		if !s.waitUntil(s.wait, func() bool { return len(s.events) > k || !s.openLocked() }) {
			s.setVerdict(Failed, fmt.Sprintf("no echo of message %d within %v", i+1, s.wait))
			return false
		}
		s.mu.Lock()
		var got event
		if len(s.events) > k {
			got = s.events[k]
		}
		s.mu.Unlock()
		switch {
		case got.kind == "":
			s.setVerdict(Failed, fmt.Sprintf("the connection closed before the echo of message %d", i+1))
			return false
		case got.kind != evMessage || got.op != op:
			s.setVerdict(Failed, fmt.Sprintf("message %d: got %v, want its echo, a %s message", i+1, got, op))
		case !bytes.Equal(got.p.bytes(), want[:]):
			s.setVerdict(Failed, fmt.Sprintf("the echo of message %d differs from it (SHA-1 %x, want %x)", i+1, got.p.bytes(), want))
		default:
			continue
		}
		s.sendClose(codeNormal)
		return false
	}
	s.setVerdict(OK, "")
	return true
}

// appendMessage appends a message of op and body (the compressed payload
// when rsv is 4, RSV1 in Autobahn's numbering) as autobahn-python's
// sendMessage frames it: in one frame, or in frames of frag bytes with
// rsv on the first only, and an empty final frame when frag divides the
// length.
func appendMessage(dst []byte, op wire.Opcode, body []byte, frag int, rsv uint8) []byte {
	if frag <= 0 || len(body) <= frag {
		return appendFrame(dst, frame{fin: true, op: op, p: lit(body), rsv: rsv})
	}
	for i, done := 0, false; !done; i += frag {
		j := i + frag
		if j > len(body) {
			done, j = true, len(body)
		}
		dst = appendFrame(dst, frame{fin: done, op: op, p: lit(body[i:j]), rsv: rsv})
		op, rsv = wire.OpContinuation, 0
	}
	return dst
}

// zframes is a step that sends frames whose payloads are made when it
// runs (the compression bombs, too big to keep in the table).
type zframes func() []frame

func (st zframes) run(s *session) bool { return sendF(st()...).run(s) }

// bomb is 16 MiB and one byte of zeros compressed: 16 KiB or so.
var bomb = sync.OnceValue(func() []byte { return deflateAlone(make([]byte, maxMessage+1)) })

// atLimit is a message of exactly 16 MiB, the server's limit, and its
// compressed form (about 50 KiB).
var atLimit = rep(`{"room":"lobby","from":"ana","text":"see you at the usual place"},`, maxMessage)
var atLimitZ = sync.OnceValue(func() []byte { return deflateAlone(atLimit.bytes()) })

// deflateExtraCases are checks of permessage-deflate Autobahn does not make.
func deflateExtraCases() []Case {
	const (
		text   = wire.OpText
		binary = wire.OpBinary
		cont   = wire.OpContinuation
	)
	hello := []byte(strings.Repeat("Hello, compressed world! ", 40)) // past the usual thresholds
	zhello := deflateAlone(hello)
	z := func(op wire.Opcode, fin bool, p []byte) frame { return fr(op, fin, lit(p)).withRsv(4) }
	// x marks an extra case; its client makes Autobahn's default offer
	// unless the case has its own.
	x := func(c Case) Case {
		c.Extra = true
		if c.Offer == nil {
			c.Offer = []string{defaultOffer}
		}
		return c
	}
	// Offers and answers.
	c := x(failCase("xd.1", "compressed text message (RSV1) with no extension offered", codeProtocol,
		steps(sendF(z(text, true, zhello))), nil, nil))
	c.Offer = nil
	cs := []Case{c}
	c = x(failCase("xd.2", "an invalid offer (server_max_window_bits=16) is declined, not failed; then RSV1 is a protocol error", codeProtocol,
		steps(sendF(z(text, true, zhello))), nil, nil))
	c.Offer, c.Declines = []string{"permessage-deflate; server_max_window_bits=16"}, true
	cs = append(cs, c)
	for i, bad := range []string{
		"server_max_window_bits=16", "server_max_window_bits=7", "server_max_window_bits=09",
		"server_max_window_bits", "client_max_window_bits=16", "client_max_window_bits=8.5",
		"server_no_context_takeover=1", "client_no_context_takeover; client_no_context_takeover",
		"x_unknown_parameter",
	} {
		c := x(echoCase(fmt.Sprintf("xd.3.%d", i+1),
			fmt.Sprintf("offers with %s, then with server_no_context_takeover: the server must take the second", bad),
			steps(sendF(z(text, true, zhello))), msgText(lit(hello))))
		c.Offer = []string{"permessage-deflate; " + bad, "permessage-deflate; server_no_context_takeover"}
		cs = append(cs, c)
	}
	// The limit: MaxMessageSize applies to what a message inflates to.
	frags := func() []frame {
		b := bomb()
		fs := []frame{z(binary, false, b[:1000])}
		for i := 1000; i < len(b); i += 1000 {
			fs = append(fs, fr(cont, i+1000 >= len(b), lit(b[i:min(i+1000, len(b))])))
		}
		return fs
	}
	cs = append(cs,
		x(echoCase("xd.4.1", "compressed message of 50 KiB that inflates to exactly the 16 MiB limit: echoed",
			steps(zframes(func() []frame { return []frame{z(text, true, atLimitZ())} })), msgText(atLimit))),
		x(failCase("xd.4.2", "compression bomb: 16 KiB that inflate to the 16 MiB limit and one byte more", codeTooBig,
			steps(zframes(func() []frame { return []frame{z(binary, true, bomb())} })), nil, nil)),
		x(failCase("xd.4.3", "compression bomb in frames of 1000 compressed bytes", codeTooBig,
			steps(zframes(frags)), nil, nil)),
	)
	// Frames and data that break RFC 7692.
	zbad := deflateAlone([]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"))
	c = x(failCase("xd.9", "compressed message of invalid deflate data (a block of the reserved type 3)", codeInvalid,
		steps(sendF(z(binary, true, []byte{0x07, 0x00, 0x00}))), nil, nil))
	c.Codes = []int{codeInvalid, codeProtocol} // RFC 7692 names no code
	cs = append(cs,
		x(failCase("xd.5", "RSV1 on a continuation frame", codeProtocol,
			steps(sendF(z(text, false, zhello[:10]), z(cont, true, zhello[10:]))), nil, nil)),
		x(failCase("xd.6", "RSV1 on a ping", codeProtocol,
			steps(sendF(pingF("compressed?").withRsv(4))), nil, nil)),
		x(failCase("xd.7", "RSV2 on a text message, with permessage-deflate agreed", codeProtocol,
			steps(sendF(textF("Hello").withRsv(2))), nil, nil)),
		x(failCase("xd.8", "RSV1 and RSV3 on a compressed text message", codeProtocol,
			steps(sendF(z(text, true, zhello).withRsv(5))), nil, nil)),
		c,
		x(failCase("xd.10", "compressed text message that inflates to invalid UTF-8", codeInvalid,
			steps(sendF(z(text, true, zbad))), nil, nil)),
	)
	// What a server must take that Autobahn's client never sends.
	cs = append(cs,
		x(echoCase("xd.11", "empty compressed messages: an empty stored block, and no bytes at all",
			steps(sendF(z(text, true, deflateAlone(nil)), z(binary, true, nil))), msgText(str("")), msgBinary(str("")))),
		x(echoCase("xd.12", "a compressed message ending with a block with BFINAL set (RFC 7692 section 7.2.3.3), then one ending as usual",
			steps(sendF(z(text, true, deflateFinal(hello)), z(text, true, zhello))), msgText(lit(hello)), msgText(lit(hello)))),
		x(echoCase("xd.13", "a compressed text message in frames of one compressed byte",
			steps(message{op: text, p: lit(zhello), frag: 1, rsv: 4}), msgText(lit(hello)))),
		// The client's context takeover: a bare offer lets the client
		// compress against its messages before (a server in
		// no-context-takeover mode answers client_no_context_takeover
		// instead); messages sent uncompressed among them must not
		// enter the server's window.
		x(echoesCase("xd.14", []string{"permessage-deflate"},
			echoes{data: datasets[0], n: 1024, count: 48, plainEvery: 3})),
		x(echoesCase("xd.15", []string{"permessage-deflate; client_max_window_bits=8"},
			echoes{data: datasets[3], n: 2000, count: 32})),
	)
	// The server's windows: 9 and 15 are Autobahn's; 8, which zlib lacks,
	// and the ones between.
	for i, bits := range []int{8, 10, 11, 12, 13, 14} {
		cs = append(cs, x(echoesCase(fmt.Sprintf("xd.16.%d", i+1),
			[]string{fmt.Sprintf("permessage-deflate; server_max_window_bits=%d", bits)},
			echoes{data: datasets[3], n: 8192, count: 16})))
	}
	// The server's own context takeover with the messages it sends
	// uncompressed, below its threshold, among the compressed ones: those
	// must stay out of its window, which the client's inflater checks.
	return append(cs, x(echoesCase("xd.17", []string{"permessage-deflate"},
		echoes{data: datasets[0], n: 2000, small: 100, count: 40})))
}
