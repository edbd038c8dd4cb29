package conformance

import (
	"fmt"
	"strings"

	"github.com/shockwave-go/shockwave/wire"
)

// Close codes the cases expect.
const (
	codeNormal   = 1000
	codeProtocol = 1002
	codeInvalid  = 1007
	codeTooBig   = 1009
)

// echoCase is a case where the server must send back the events, after which
// the client closes normally and the server must answer and close cleanly.
func echoCase(id, desc string, st []step, want ...event) Case {
	if want == nil {
		want = []event{}
	}
	return Case{ID: id, Desc: desc, Steps: st, OK: want,
		ClosedByMe: true, Codes: []int{codeNormal}, RequireClean: true}
}

// failCase is a case where the server must send back the events ok and then
// fail the connection with a close frame carrying code. nonStrict, if not
// nil, are the events Autobahn accepts as NON-STRICT (the server failed late).
func failCase(id, desc string, code int, st []step, ok, nonStrict []event) Case {
	if ok == nil {
		ok = []event{}
	}
	return Case{ID: id, Desc: desc, Steps: st, OK: ok, NonStrict: nonStrict,
		ClosedByMe: false, Codes: []int{code}}
}

// steps makes a script.
func steps(st ...step) []step { return st }

// allCases is the whole table, in Autobahn's order, with the extra cases
// last.
func allCases() []Case {
	var cs []Case
	cs = append(cs, cases1()...)
	cs = append(cs, cases2()...)
	cs = append(cs, cases3()...)
	cs = append(cs, cases4()...)
	cs = append(cs, cases5()...)
	cs = append(cs, cases6()...)
	cs = append(cs, cases7()...)
	cs = append(cs, cases9()...)
	cs = append(cs, cases10()...)
	cs = append(cs, utf8ExtraCases()...)
	cs = append(cs, extraCases()...)
	return cs
}

// cases1 is Autobahn's "Framing": text (1.1) and binary (1.2) messages of
// the sizes around the length encodings' edges.
func cases1() []Case {
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536}
	var cs []Case
	for k, kind := range []struct {
		op  wire.Opcode
		pat string
		ev  func(payload) event
	}{{wire.OpText, "*", msgText}, {wire.OpBinary, "\xfe", msgBinary}} {
		for i, n := range sizes {
			p := rep(kind.pat, n)
			cs = append(cs, echoCase(fmt.Sprintf("1.%d.%d", k+1, i+1),
				fmt.Sprintf("%s message of %d bytes", kind.op, n),
				steps(sendF(fr(kind.op, true, p))), kind.ev(p)))
		}
		p := rep(kind.pat, 65536)
		c := echoCase(fmt.Sprintf("1.%d.8", k+1),
			fmt.Sprintf("%s message of 65536 bytes, written in chops of 997 bytes", kind.op),
			steps(send{frames: []frame{fr(kind.op, true, p)}, chop: 997, pause: chopPause}), kind.ev(p))
		cs = append(cs, c)
	}
	return cs
}

// cases2 is "Pings/Pongs".
func cases2() []Case {
	bin := "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
	fe125 := strings.Repeat("\xfe", 125)
	var pings []frame
	var pongs []event
	for i := range 10 {
		pl := fmt.Sprintf("payload-%d", i)
		pings = append(pings, pingF(pl))
		pongs = append(pongs, pongEv(str(pl)))
	}
	var chopped []step
	for _, f := range pings {
		chopped = append(chopped, sendChop1(f))
	}
	return []Case{
		echoCase("2.1", "ping without payload", steps(sendF(pingF(""))), pongEv(str(""))),
		echoCase("2.2", "ping with a small text payload", steps(sendF(pingF("Hello, world!"))), pongEv(str("Hello, world!"))),
		echoCase("2.3", "ping with a small binary payload", steps(sendF(pingF(bin))), pongEv(str(bin))),
		echoCase("2.4", "ping with a payload of 125 bytes", steps(sendF(pingF(fe125))), pongEv(str(fe125))),
		failCase("2.5", "ping with a payload of 126 bytes: control frames carry at most 125", codeProtocol,
			steps(sendF(pingF(strings.Repeat("\xfe", 126)))), nil, nil),
		echoCase("2.6", "ping with 125 bytes, written byte by byte", steps(sendChop1(pingF(fe125))), pongEv(str(fe125))),
		echoCase("2.7", "unsolicited pong without payload, then close: nothing comes back",
			steps(sendF(fr(wire.OpPong, true, str("")), closeF(codeNormal, "")))),
		echoCase("2.8", "unsolicited pong with payload, then close: nothing comes back",
			steps(sendF(fr(wire.OpPong, true, str("unsolicited pong payload")), closeF(codeNormal, "")))),
		echoCase("2.9", "unsolicited pong, then ping: only the ping is answered",
			steps(sendF(fr(wire.OpPong, true, str("unsolicited pong payload")), pingF("ping payload"))),
			pongEv(str("ping payload"))),
		echoCase("2.10", "10 pings: each is answered", steps(sendF(pings...)), pongs...),
		echoCase("2.11", "10 pings, written byte by byte: each is answered", chopped, pongs...),
	}
}

// cases3 is "Reserved Bits": with no extension, any RSV bit fails the
// connection, and what came before it is still processed.
func cases3() []Case {
	hello := "Hello, world!"
	echo := []event{msgText(str(hello))}
	late := []event{} // NON-STRICT: the echo did not come
	return []Case{
		failCase("3.1", "text message with RSV = 1", codeProtocol,
			steps(sendF(textF(hello).withRsv(1))), nil, nil),
		failCase("3.2", "text message, then one with RSV = 2, then ping", codeProtocol,
			steps(sendF(textF(hello), textF(hello).withRsv(2), pingF(""))), echo, late),
		failCase("3.3", "as 3.2 with RSV = 3, frame by frame", codeProtocol,
			steps(sendSync(textF(hello), textF(hello).withRsv(3), pingF(""))), echo, late),
		failCase("3.4", "as 3.2 with RSV = 4, byte by byte", codeProtocol,
			steps(sendChop1(textF(hello)), sendChop1(textF(hello).withRsv(4)), sendChop1(pingF(""))), echo, late),
		failCase("3.5", "binary message with RSV = 5", codeProtocol,
			steps(sendF(fr(wire.OpBinary, true, str("\x00\xff\xfe\xfd\xfc\xfb\x00\xff")).withRsv(5))), nil, nil),
		// Autobahn's description says ping; its code sends a binary frame.
		failCase("3.6", "binary message with RSV = 6", codeProtocol,
			steps(sendF(fr(wire.OpBinary, true, str(hello)).withRsv(6))), nil, nil),
		failCase("3.7", "close frame with RSV = 7", codeProtocol,
			steps(sendF(fr(wire.OpClose, true, str("")).withRsv(7))), nil, nil),
	}
}

// cases4 is "Opcodes": reserved opcodes fail the connection.
func cases4() []Case {
	hello := "Hello, world!"
	echo := []event{msgText(str(hello))}
	late := []event{}
	var cs []Case
	for g, ops := range [][]wire.Opcode{{3, 4, 5, 6, 7}, {11, 12, 13, 14, 15}} {
		id := func(i int) string { return fmt.Sprintf("4.%d.%d", g+1, i) }
		cs = append(cs,
			failCase(id(1), fmt.Sprintf("frame with reserved opcode %d", ops[0]), codeProtocol,
				steps(sendF(fr(ops[0], true, str("")))), nil, nil),
			failCase(id(2), fmt.Sprintf("frame with reserved opcode %d and a payload", ops[1]), codeProtocol,
				steps(sendF(fr(ops[1], true, str("reserved opcode payload")))), nil, nil),
			failCase(id(3), fmt.Sprintf("text message, frame with reserved opcode %d, ping", ops[2]), codeProtocol,
				steps(sendF(textF(hello), fr(ops[2], true, str("")), pingF(""))), echo, late),
			failCase(id(4), fmt.Sprintf("text message, frame with reserved opcode %d and a payload, ping", ops[3]), codeProtocol,
				steps(sendF(textF(hello), fr(ops[3], true, str(hello)), pingF(""))), echo, late),
			failCase(id(5), fmt.Sprintf("as %s with opcode %d, byte by byte", id(4), ops[4]), codeProtocol,
				steps(sendChop1(textF(hello)), sendChop1(fr(ops[4], true, str(hello))), sendChop1(pingF(""))), echo, late),
		)
	}
	return cs
}

// cases5 is "Fragmentation".
func cases5() []Case {
	const (
		text = wire.OpText
		cont = wire.OpContinuation
	)
	f := func(op wire.Opcode, fin bool, s string) frame { return fr(op, fin, str(s)) }
	frag12 := []frame{f(text, false, "fragment1"), f(cont, true, "fragment2")}
	echo12 := msgText(str("fragment1fragment2"))
	withPing := []frame{f(text, false, "fragment1"), pingF("ping payload"), f(cont, true, "fragment2")}
	pingEcho := []event{pongEv(str("ping payload")), echo12}
	noCont := []frame{f(cont, true, "non-continuation payload"), textF("Hello, world!")}
	noContNF := []frame{f(cont, false, "non-continuation payload"), textF("Hello, world!")}
	var chop1 = func(frames []frame) []step {
		var st []step
		for _, fr := range frames {
			st = append(st, sendChop1(fr))
		}
		return st
	}
	twice := func(a, b, c frame) []frame { return []frame{a, b, c, a, b, c} }
	cs := []Case{
		failCase("5.1", "ping in 2 fragments", codeProtocol,
			steps(sendF(f(wire.OpPing, false, "fragment1"), f(cont, true, "fragment2"))), nil, nil),
		failCase("5.2", "pong in 2 fragments", codeProtocol,
			steps(sendF(f(wire.OpPong, false, "fragment1"), f(cont, true, "fragment2"))), nil, nil),
		echoCase("5.3", "text message in 2 fragments", steps(sendF(frag12...)), echo12),
		echoCase("5.4", "text message in 2 fragments, frame by frame", steps(sendSync(frag12...)), echo12),
		echoCase("5.5", "text message in 2 fragments, byte by byte", chop1(frag12), echo12),
		echoCase("5.6", "text message in 2 fragments with a ping between them", steps(sendF(withPing...)), pingEcho...),
		echoCase("5.7", "as 5.6, frame by frame", steps(sendSync(withPing...)), pingEcho...),
		echoCase("5.8", "as 5.6, byte by byte", chop1(withPing), pingEcho...),
		failCase("5.9", "continuation (FIN) with nothing to continue, then text", codeProtocol,
			steps(sendF(noCont...)), nil, nil),
		failCase("5.10", "as 5.9, frame by frame", codeProtocol, steps(sendSync(noCont...)), nil, nil),
		failCase("5.11", "as 5.9, byte by byte", codeProtocol, chop1(noCont), nil, nil),
		failCase("5.12", "continuation (no FIN) with nothing to continue, then text", codeProtocol,
			steps(sendF(noContNF...)), nil, nil),
		failCase("5.13", "as 5.12, frame by frame", codeProtocol, steps(sendSync(noContNF...)), nil, nil),
		failCase("5.14", "as 5.12, byte by byte", codeProtocol, chop1(noContNF), nil, nil),
		failCase("5.15", "text in 2 fragments, then a continuation with nothing to continue, then text", codeProtocol,
			steps(sendF(f(text, false, "fragment1"), f(cont, true, "fragment2"), f(cont, false, "fragment3"), f(text, true, "fragment4"))),
			[]event{echo12}, []event{}),
		failCase("5.16", "twice: continuation (no FIN) with nothing to continue, then text in 2 fragments", codeProtocol,
			steps(sendF(twice(f(cont, false, "fragment1"), f(text, false, "fragment2"), f(cont, true, "fragment3"))...)), nil, nil),
		failCase("5.17", "twice: continuation (FIN) with nothing to continue, then text in 2 fragments", codeProtocol,
			steps(sendF(twice(f(cont, true, "fragment1"), f(text, false, "fragment2"), f(cont, true, "fragment3"))...)), nil, nil),
		failCase("5.18", "text in 2 fragments, both with opcode text", codeProtocol,
			steps(sendF(f(text, false, "fragment1"), f(text, true, "fragment2"))), nil, nil),
	}
	// 5.19 and 5.20: Autobahn waits 1 s after the first ping. We wait for
	// its pong instead, which is what the case is about: the server must
	// answer a ping in the middle of a fragmented message at once.
	for i, sync := range []bool{false, true} {
		how := ""
		if sync {
			how = ", frame by frame"
		}
		cs = append(cs, echoCase(fmt.Sprintf("5.%d", 19+i),
			"text message in 5 fragments with 2 pings among them; the first pong must come before the rest is sent"+how,
			steps(
				sendSyncIf(sync, f(text, false, "fragment1"), f(cont, false, "fragment2"), pingF("pongme 1!")),
				await(1),
				sendSyncIf(sync, f(cont, false, "fragment3"), f(cont, false, "fragment4"), pingF("pongme 2!"), f(cont, true, "fragment5")),
			),
			pongEv(str("pongme 1!")), pongEv(str("pongme 2!")),
			msgText(str("fragment1fragment2fragment3fragment4fragment5"))))
	}
	return cs
}

// cases7 is "Close Handling".
func cases7() []Case {
	// closeCaseEv: the server must send back want, and answer the close
	// cleanly with one of codes.
	closeCaseEv := func(id, desc string, st []step, codes []int, want ...event) Case {
		c := echoCase(id, desc, st, want...)
		c.Codes = codes
		c.WrongCodeFails = true
		return c
	}
	closeCase := func(id, desc string, st []step, codes ...int) Case {
		return closeCaseEv(id, desc, st, codes)
	}
	// badClose: the client's close frame is invalid; the server must answer
	// with a close frame carrying one of codes (Autobahn also accepts a
	// dropped connection).
	badClose := func(id, desc string, f frame, codes ...int) Case {
		return Case{ID: id, Desc: desc, Steps: steps(sendF(f)), OK: []event{},
			ClosedByMe: true, Codes: codes, WrongCodeFails: true, CodeRequired: true}
	}
	hello := "Hello World!"
	cs := []Case{
		closeCaseEv("7.1.1", "text message, then close", steps(sendF(textF(hello))), []int{codeNormal}, msgText(str(hello))),
		closeCase("7.1.2", "two close frames", steps(sendF(closeF(codeNormal, ""), fr(wire.OpClose, true, str("")))), codeNormal),
		closeCase("7.1.3", "ping after the close frame: no pong", steps(sendF(closeF(codeNormal, ""), pingF(""))), codeNormal),
		closeCase("7.1.4", "text message after the close frame: ignored", steps(sendF(closeF(codeNormal, ""), textF(hello))), codeNormal),
		closeCase("7.1.5", "first fragment, close, last fragment", steps(sendF(
			fr(wire.OpText, false, str("fragment1")), closeF(codeNormal, ""), fr(wire.OpContinuation, true, str("fragment2")))), codeNormal),
	}
	big := rep("BAsd7&jh23", 256<<10)
	c := Case{ID: "7.1.6", Desc: "256 KiB text message, text message, close, ping",
		Steps: steps(sendF(fr(wire.OpText, true, big), textF(hello), closeF(codeNormal, ""), pingF(""))),
		OK:    []event{msgText(str(hello))}, NonStrict: []event{},
		ClosedByMe: true, Codes: []int{codeNormal}, RequireClean: true, Informational: true,
		// RFC 6455 section 5.5.1: the close frame comes after the data
		// the server read before it, so both echoes precede the close
		// (and the ping after it is never answered).
		Want: []event{msgText(big), msgText(str(hello))},
	}
	cs = append(cs, c,
		closeCase("7.3.1", "close frame with an empty payload", steps(sendF(closeF(-1, ""))), codeNormal),
		badClose("7.3.2", "close frame with a payload of 1 byte", closeF(-1, "a"), codeProtocol),
		closeCase("7.3.3", "close frame with a code", steps(sendF(closeF(codeNormal, ""))), codeNormal),
		closeCase("7.3.4", "close frame with a code and a reason", steps(sendF(closeF(codeNormal, hello))), codeNormal),
		closeCase("7.3.5", "close frame with a reason of 123 bytes", steps(sendF(closeF(codeNormal, strings.Repeat("*", 123)))), codeNormal),
		badClose("7.3.6", "close frame with a reason of 124 bytes: payload of 126", closeF(codeNormal, strings.Repeat("*", 124)), codeProtocol),
		badClose("7.5.1", "close frame with a reason that is not valid UTF-8",
			closeF(codeNormal, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"), codeProtocol, codeInvalid),
	)
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cs = append(cs, closeCase(fmt.Sprintf("7.7.%d", i+1), fmt.Sprintf("close with the valid code %d", code),
			steps(sendF(closeF(code, ""))), codeNormal, code))
	}
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999} {
		cs = append(cs, badClose(fmt.Sprintf("7.9.%d", i+1), fmt.Sprintf("close with the invalid code %d", code),
			closeF(code, ""), codeProtocol))
	}
	for i, code := range []int{5000, 65535} {
		// RFC 6455 section 7.4.2 gives no meaning to codes above 4999;
		// Autobahn accepts 1000, the code itself or 1002 and calls the
		// case informational. A code that cannot be valid is a protocol
		// error, as for 7.9.x, and that is what we require.
		cs = append(cs, Case{ID: fmt.Sprintf("7.13.%d", i+1), Desc: fmt.Sprintf("close with the code %d", code),
			Steps: steps(sendF(closeF(code, ""))), OK: []event{},
			ClosedByMe: true, Codes: []int{codeNormal, code, codeProtocol}, Informational: true,
			CodeRequired: true, StrictCodes: []int{codeProtocol}})
	}
	return cs
}

// cases10 is "Misc": a message in the fragments of an auto-fragmenting
// sender (1300 bytes).
func cases10() []Case {
	p := rep("*", 65536)
	return []Case{echoCase("10.1.1", "text message of 65536 bytes in fragments of 1300 bytes",
		steps(message{op: wire.OpText, p: p, frag: 1300}), msgText(p))}
}

// extraCases are checks RFC 6455 requires that Autobahn's cases 1-10 do not
// make.
func extraCases() []Case {
	key := randomKey()
	// A frame header with a 64-bit length whose top bit is set (RFC 6455
	// section 5.2: it MUST be 0).
	badLen := []byte{0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, key[0], key[1], key[2], key[3]}
	// The header of a text frame one byte longer than the 16 MiB limit,
	// with no payload after it: the server must fail at once, without
	// waiting for (or reading) the payload.
	tooBig := wire.AppendHeader(nil, wire.Header{Fin: true, Opcode: wire.OpText, Masked: true, Key: key, Length: maxMessage + 1})
	// A fragmented message whose second frame takes it over the limit.
	tooBigFrag := appendFrame(nil, fr(wire.OpBinary, false, str("0123456789")))
	tooBigFrag = wire.AppendHeader(tooBigFrag, wire.Header{Fin: true, Opcode: wire.OpContinuation, Masked: true, Key: key, Length: maxMessage - 9})
	unmasked := wire.AppendFrame(nil, wire.Header{Fin: true, Opcode: wire.OpText}, []byte("Hello, world!"))
	x := func(c Case) Case { c.Extra = true; return c }
	const x8 = "\xf0\xa4\xad\xa2\xe2\x82\xac\xc2\xa2"
	return []Case{
		x(failCase("x.1", "unmasked text frame (RFC 6455 section 5.1: the server MUST close)", codeProtocol,
			steps(raw(unmasked)), nil, nil)),
		x(failCase("x.2", "frame length with the most significant bit set (section 5.2)", codeProtocol,
			steps(raw(badLen)), nil, nil)),
		x(failCase("x.3", "header of a message one byte over the 16 MiB limit, no payload: 1009 at once", codeTooBig,
			steps(raw(tooBig)), nil, nil)),
		x(failCase("x.4", "fragmented message going over the 16 MiB limit in its 2nd frame: 1009 at once", codeTooBig,
			steps(raw(tooBigFrag)), nil, nil)),
		x(failCase("x.5", "fragmented close frame (section 5.4: control frames MUST NOT be fragmented)", codeProtocol,
			steps(sendF(fr(wire.OpClose, false, str("\x03\xe8")), fr(wire.OpContinuation, true, str("")))), nil, nil)),
		x(failCase("x.6", "binary message started inside a fragmented text message", codeProtocol,
			steps(sendF(fr(wire.OpText, false, str("fragment1")), fr(wire.OpBinary, true, str("fragment2")))), nil, nil)),
		x(Case{ID: "x.7", Desc: "close with the code 1015, which MUST NOT be sent (section 7.4.1)",
			Steps: steps(sendF(closeF(1015, ""))), OK: []event{},
			ClosedByMe: true, Codes: []int{codeProtocol}, WrongCodeFails: true, CodeRequired: true}),
		x(echoCase("x.8", "text message that is valid UTF-8 only as a whole, in 1-byte frames, each followed by a ping whose pong must come before the next",
			utf8FramesWithPings(x8), append(pongsFor(len(x8)-1), msgText(str(x8)), pongEv(str(fmt.Sprint(len(x8)-1))))...)),
		x(echoCase("x.9", "binary message that is not valid UTF-8 is echoed (only text is validated)",
			steps(sendF(fr(wire.OpBinary, true, str("\xed\xa0\x80\xff\xc0\xaf")))), msgBinary(str("\xed\xa0\x80\xff\xc0\xaf")))),
	}
}

// utf8FramesWithPings sends s as a text message of 1-byte frames, with a
// ping after each frame, waiting for its pong before the next frame: the
// server must answer pings between fragments while it holds a partial
// character.
func utf8FramesWithPings(s string) []step {
	var st []step
	for i := range len(s) {
		op := wire.OpContinuation
		if i == 0 {
			op = wire.OpText
		}
		st = append(st, sendF(fr(op, i == len(s)-1, str(s[i:i+1])), pingF(fmt.Sprint(i))))
		if i < len(s)-1 {
			st = append(st, await(i+1))
		}
	}
	return st
}

func pongsFor(n int) []event {
	var evs []event
	for i := range n {
		evs = append(evs, pongEv(str(fmt.Sprint(i))))
	}
	return evs
}
