package conformance

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/shockwave-go/shockwave/wire"
)

// quietWait is how long the 6.4.x cases wait, after a part of a message that
// is valid so far, to see that the server does not fail the connection on
// it (Autobahn waits 1 s). Nothing depends on its length: a longer wait can
// only catch more.
const quietWait = 250 * time.Millisecond

// utf8Case is a case on a text message whose payload is valid (the server
// must echo it) or not (it must fail the connection with 1007).
func utf8Case(id, desc string, valid bool, st []step, p payload) Case {
	if valid {
		return echoCase(id, desc, st, msgText(p))
	}
	c := failCase(id, desc, codeInvalid, st, nil, nil)
	c.WrongEndpointFatal = true
	return c
}

// textFrames sends b as a text message in frames of n bytes (Autobahn's
// sendMessage with fragmentSize).
func textFrames(b []byte, n int) step {
	return message{op: wire.OpText, p: lit(b), frag: n}
}

// failFastCase is a case where the server must fail the connection with 1007
// as soon as the invalid byte of a text message arrives, before the rest is
// sent (Autobahn's 6.4.x): the rest is sent only if the connection is still
// open after the wait for the close ("timeout B", NON-STRICT).
func failFastCase(id, desc string, before []step, okA []event, invalid, rest step) Case {
	st := append(append([]step{}, before...), invalid, timeout{tag: "B"}, rest)
	ok := okA
	if ok == nil {
		ok = []event{}
	}
	c := failCase(id, desc, codeInvalid, st, ok, append(append([]event{}, ok...), timeoutEv("B")))
	c.WrongEndpointFatal = true
	return c
}

// cases6 is "UTF-8 Handling".
func cases6() []Case {
	const (
		text = wire.OpText
		cont = wire.OpContinuation
	)
	hello := []byte("Hello-µ@ßöäüàá-UTF-8!!")
	kosme := []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5") // κόσμε
	// Invalid on byte 12 (0xa0: a surrogate).
	bad1 := []byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")
	cs := []Case{
		echoCase("6.1.1", "text message of length 0", steps(sendF(textF(""))), msgText(str(""))),
		echoCase("6.1.2", "text message in 3 fragments of length 0",
			steps(sendF(fr(text, false, str("")), fr(cont, false, str("")), fr(cont, true, str("")))), msgText(str(""))),
		echoCase("6.1.3", "text message in 3 fragments, only the middle one not empty",
			steps(sendF(fr(text, false, str("")), fr(cont, false, str("middle frame payload")), fr(cont, true, str("")))),
			msgText(str("middle frame payload"))),
		echoCase("6.2.1", "valid UTF-8 text message in one frame", steps(textFrames(hello, 0)), msgText(lit(hello))),
		echoCase("6.2.2", "valid UTF-8 text message in 2 fragments split on a code point boundary",
			steps(sendF(fr(text, false, str("Hello-µ@ßöä")), fr(cont, true, str("üàá-UTF-8!!")))), msgText(lit(hello))),
		echoCase("6.2.3", "valid UTF-8 text message in fragments of 1 byte", steps(textFrames(hello, 1)), msgText(lit(hello))),
		echoCase("6.2.4", "valid UTF-8 text message (κόσμε) in fragments of 1 byte", steps(textFrames(kosme, 1)), msgText(lit(kosme))),
		utf8Case("6.3.1", "invalid UTF-8 text message in one frame", false, steps(textFrames(bad1, 0)), lit(bad1)),
		utf8Case("6.3.2", "invalid UTF-8 text message in fragments of 1 byte", false, steps(textFrames(bad1, 1)), lit(bad1)),
	}

	// 6.4.x: fail fast. PART2 is U+110000 in UTF-8's integer encoding:
	// invalid on its second byte (0x90), byte 12 of the message.
	p1, p2, p3 := kosme, []byte("\xf4\x90\x80\x80"), []byte("\x65\x64\x69\x74\x65\x64")
	bad2 := append(append(append([]byte{}, p1...), p2...), p3...)
	quiet := timeout{tag: "A", d: quietWait}
	okA := []event{timeoutEv("A")}
	cs = append(cs,
		failFastCase("6.4.1", "invalid text message in 3 frames: the server must fail on the 2nd, before the 3rd is sent",
			steps(sendF(fr(text, false, lit(p1))), quiet), okA,
			sendF(fr(cont, false, lit(p2))), sendF(fr(cont, true, lit(p3)))),
		failFastCase("6.4.2", "as 6.4.1, the 2nd frame being only the byte that makes the message invalid",
			steps(sendF(fr(text, false, lit(bad2[:12]))), quiet), okA,
			sendF(fr(cont, false, lit(bad2[12:13]))), sendF(fr(cont, true, lit(bad2[13:])))),
	)
	// 6.4.3 and 6.4.4 send one frame (FIN clear) in 3 chops, then an empty
	// final continuation frame (Autobahn's beginMessageFrame,
	// sendMessageFrameData and endMessage).
	for i, cut := range [][2]int{{len(p1), len(p1) + len(p2)}, {12, 13}} {
		f := appendFrameKey(nil, fr(text, false, lit(bad2)), randomKey())
		h := len(f) - len(bad2)
		last := appendFrame(append([]byte{}, f[h+cut[1]:]...), fr(cont, true, str("")))
		cs = append(cs, failFastCase(fmt.Sprintf("6.4.%d", 3+i),
			fmt.Sprintf("as 6.4.%d, in 3 chops of one frame", 1+i),
			steps(raw(f[:h+cut[0]]), quiet), okA,
			raw(f[h+cut[0]:h+cut[1]]), raw(last)))
	}

	for gi, g := range utf8Groups() {
		for si, sq := range g.seqs {
			id := fmt.Sprintf("6.%d.%d", gi+5, si+1)
			cs = append(cs, utf8Case(id, fmt.Sprintf("%s: %x", g.name, sq.b), sq.valid,
				steps(textFrames(sq.b, 0)), lit(sq.b)))
		}
	}
	return cs
}

// utf8ExtraCases send the sequences of 6.5-6.23 in other ways than Autobahn
// does, to reach every way a character can be split:
//
//   - /frag1: in frames of 1 byte (as 6.2.3 and 6.3.2 do for their messages);
//   - /split: in 2 frames, cut at every byte position in turn, on one
//     connection for the valid ones and one connection per cut for the
//     invalid ones;
//   - /failfast (invalid ones that can be caught before the end): a first
//     frame up to the invalid byte, then a ping whose pong shows the server
//     has not failed early, then the invalid byte alone, after which the
//     server must fail before the rest is sent.
func utf8ExtraCases() []Case {
	const (
		text = wire.OpText
		cont = wire.OpContinuation
	)
	var cs []Case
	x := func(c Case) Case { c.Extra = true; return c }
	for gi, g := range utf8Groups() {
		for si, sq := range g.seqs {
			id := fmt.Sprintf("6.%d.%d", gi+5, si+1)
			b := sq.b
			if len(b) > 1 {
				cs = append(cs, x(utf8Case(id+"/frag1", fmt.Sprintf("%x in frames of 1 byte", b), sq.valid,
					steps(textFrames(b, 1)), lit(b))))
			}
			if sq.valid && len(b) > 1 {
				var st []step
				var want []event
				for k := 1; k < len(b); k++ {
					st = append(st, sendF(fr(text, false, lit(b[:k])), fr(cont, true, lit(b[k:]))))
					want = append(want, msgText(lit(b)))
				}
				cs = append(cs, x(echoCase(id+"/split", fmt.Sprintf("%x in 2 frames, cut at every position", b), st, want...)))
			}
			if !sq.valid {
				for k := 1; k < len(b); k++ {
					cs = append(cs, x(utf8Case(fmt.Sprintf("%s/split%d", id, k), fmt.Sprintf("%x in 2 frames cut after byte %d", b, k), false,
						steps(sendF(fr(text, false, lit(b[:k])), fr(cont, true, lit(b[k:])))), lit(b))))
				}
			}
			if f := firstInvalid(b); !sq.valid && f < len(b) {
				var before []step
				var okA []event
				op := text
				if f > 0 {
					before = steps(sendF(fr(text, false, lit(b[:f])), pingF("A")), await(1))
					okA = []event{pongEv(str("A"))}
					op = cont
				}
				cs = append(cs, x(failFastCase(id+"/failfast",
					fmt.Sprintf("%x: byte %d is invalid; the server must fail on it, before the rest comes", b, f),
					before, okA, sendF(fr(op, false, lit(b[f:f+1]))), sendF(fr(cont, true, lit(b[f+1:]))))))
			}
		}
	}
	return cs
}

// firstInvalid returns the index of the first byte of b at which b stops
// being the start of some valid UTF-8 text, or len(b) if it never does. It
// is written from the definition (is there an end that makes the prefix
// valid?), independently of any validator under test.
func firstInvalid(b []byte) int {
	for i := 1; i <= len(b); i++ {
		if !validPrefix(b[:i]) {
			return i - 1
		}
	}
	return len(b)
}

// validPrefix reports whether some bytes appended to p make it valid UTF-8.
func validPrefix(p []byte) bool {
	for k := 0; k <= 3 && k <= len(p); k++ {
		if utf8.Valid(p[:len(p)-k]) && completable(p[len(p)-k:]) {
			return true
		}
	}
	return false
}

// completable reports whether t, the start of one character, can be
// completed into a valid one.
func completable(t []byte) bool {
	if len(t) == 0 {
		return true
	}
	var n int
	switch c := t[0]; {
	case c >= 0xC0 && c < 0xE0:
		n = 2
	case c >= 0xE0 && c < 0xF0:
		n = 3
	case c >= 0xF0 && c < 0xF8:
		n = 4
	default:
		return false
	}
	if len(t) >= n {
		return false
	}
	// Only the second byte has a range that depends on the first; the
	// others are any continuation byte.
	second := []byte{0x80}
	if len(t) == 1 {
		second = second[:0]
		for c := byte(0x80); c <= 0xBF; c++ {
			second = append(second, c)
		}
	}
	for _, c := range second {
		full := append([]byte{}, t...)
		if len(t) == 1 {
			full = append(full, c)
		}
		for len(full) < n {
			full = append(full, 0x80)
		}
		if utf8.Valid(full) {
			return true
		}
	}
	return false
}

type utf8Seq struct {
	valid bool
	b     []byte
}

type utf8Group struct {
	name string
	seqs []utf8Seq
}

// utf8Groups are the sequences of Autobahn's 6.5-6.23, in its order
// (createUtf8TestSequences in case6_x_x.py, from Markus Kuhn's UTF-8 decoder
// stress test).
func utf8Groups() []utf8Group {
	ok := func(ss ...string) []utf8Seq {
		var r []utf8Seq
		for _, s := range ss {
			r = append(r, utf8Seq{true, []byte(s)})
		}
		return r
	}
	bad := func(ss ...string) []utf8Seq {
		var r []utf8Seq
		for _, s := range ss {
			r = append(r, utf8Seq{false, []byte(s)})
		}
		return r
	}
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	var prefixes []utf8Seq
	for i := 1; i <= len(kosme); i++ {
		// Valid when the prefix ends on a character boundary.
		prefixes = append(prefixes, utf8Seq{utf8.ValidString(kosme[:i]), []byte(kosme[:i])})
	}
	var contRun []byte
	for c := 0x80; c < 0xbf; c++ {
		contRun = append(contRun, byte(c))
	}
	var lonely []utf8Seq
	for _, r := range [][2]int{{0xc0, 0xdf}, {0xe0, 0xef}, {0xf0, 0xf7}, {0xf8, 0xfb}, {0xfc, 0xfd}} {
		var s []byte
		for c := r[0]; c < r[1]; c++ {
			s = append(s, byte(c), 0x20)
		}
		lonely = append(lonely, utf8Seq{false, s})
	}
	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80",
		"\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf"}
	var concat string
	for _, s := range missing {
		concat += s
	}
	nonChars := ok("\xef\xbf\xbe", "\xef\xbf\xbf")
	for _, z1 := range []byte{0xf0, 0xf1, 0xf2, 0xf3, 0xf4} {
		for _, z2 := range []byte{0x8f, 0x9f, 0xaf, 0xbf} {
			if z1 == 0xf4 && z2 != 0x8f {
				continue // above U+10FFFF
			}
			for _, z3 := range []byte{0xbe, 0xbf} {
				zz := string([]byte{z1, z2, 0xbf, z3})
				if zz == "\xf0\x8f\xbf\xbe" || zz == "\xf0\x8f\xbf\xbf" {
					continue // overlong
				}
				nonChars = append(nonChars, utf8Seq{true, []byte(zz)})
			}
		}
	}
	return []utf8Group{
		{"Some valid UTF-8 sequences", ok("hello\x24world", "hello\xc2\xa2world", "hello\xe2\x82\xacworld", "hello\xf0\xa4\xad\xa2world", kosme)},
		{"All prefixes of a valid UTF-8 string that contains multi-byte code points", prefixes},
		{"First possible sequence of a certain length", ok("\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80")},
		{"First possible sequence length 5/6 (invalid codepoints)", bad("\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80")},
		{"Last possible sequence of a certain length", ok("\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf")},
		{"Last possible sequence length 4/5/6 (invalid codepoints)", bad("\xf7\xbf\xbf\xbf", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf")},
		{"Other boundary conditions", append(ok("\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf"), bad("\xf4\x90\x80\x80")...)},
		{"Unexpected continuation bytes", append(bad("\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf", "\x80\xbf\x80\xbf\x80", "\x80\xbf\x80\xbf\x80\xbf"), utf8Seq{false, contRun})},
		{"Lonely start characters", lonely},
		{"Sequences with last continuation byte missing", bad(missing...)},
		{"Concatenation of incomplete sequences", bad(concat)},
		{"Impossible bytes", bad("\xfe", "\xff", "\xfe\xfe\xff\xff")},
		{"Examples of an overlong ASCII character", bad("\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf")},
		{"Maximum overlong sequences", bad("\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf")},
		{"Overlong representation of the NUL character", bad("\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80")},
		{"Single UTF-16 surrogates", bad("\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf")},
		{"Paired UTF-16 surrogates", bad("\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80", "\xed\xad\xbf\xed\xbf\xbf",
			"\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf")},
		{"Non-character code points (valid UTF-8)", nonChars},
		{"Unicode specials (i.e. replacement char)", ok("\xef\xbf\xb9", "\xef\xbf\xba", "\xef\xbf\xbb", "\xef\xbf\xbc", "\xef\xbf\xbd", "\xef\xbf\xbe", "\xef\xbf\xbf")},
	}
}
