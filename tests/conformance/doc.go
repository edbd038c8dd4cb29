// Package conformance tests a WebSocket server's RFC 6455 behaviour case
// by case as the Autobahn testsuite does (its fuzzingclient, server cases
// 1-7, 9 and 10: framing, pings and pongs, reserved bits, opcodes,
// fragmentation, UTF-8, closing, limits and auto-fragmentation), so that CI
// needs no Python. The package has only tests; this file documents them.
//
// # What runs
//
// TestAutobahn starts the server under test in process (an httptest.Server
// running the echo loop of examples/echo on wire.Accept, messages up to
// 16 MiB) and plays every case against it. A case is a row of the table
// (cases*_test.go) with Autobahn's id ("1.1.8", "5.19", "6.4.1", "7.9.3"):
//
//   - Steps, the script: frames to send (masked with a fresh key, built with
//     wire.AppendFrame, any FIN/RSV/opcode/length, malformed on purpose),
//     in one write, frame by frame (Autobahn's sync=True) or in chops of N
//     bytes (chopsize); whole messages in fragments (sendMessage's
//     fragmentSize, including its quirk of an empty final fragment); raw
//     bytes; and waits (see below).
//   - Autobahn's expectation: the exact sequence of events (echoed
//     messages, reassembled, with their opcode; pongs with their payload)
//     that earns OK, the one that earns NON-STRICT, and the closing
//     expectation: who closes first, the close codes allowed, whether the
//     closing handshake must be clean.
//
// The client is a raw one on a net.Conn: it does the opening handshake by
// hand, reads the server's frames with wire.ParseHeader and checks them
// (unmasked, no RSV bits, known opcodes, control frames whole and at most
// 125 bytes, continuation rules, text valid UTF-8, close payloads valid).
// It behaves as Autobahn's client does: it answers a close frame with a
// close frame, starts the closing handshake (code 1000) once the events
// match the OK expectation when the client is to close, and otherwise waits
// for the server to close. From what it saw, (*Case).judge computes
// Autobahn's two verdicts exactly as autobahntestsuite/case/case.py does
// (behavior: OK, NON-STRICT or FAILED; behaviorClose: OK, FAILED, UNCLEAN or
// WRONG CODE; with the overrides of the UTF-8 cases, of 7.x and of the
// informational 7.1.6 and 7.13.x).
//
// # Strict
//
// A case passes only when both verdicts are OK (INFORMATIONAL for the three
// informational cases) and, on top, what RFC 6455 requires holds even where
// Autobahn lets it go (see (*Case).Failures): the events are exactly the
// expected ones; the server ends every connection with a close frame and
// then closes TCP itself; a connection the server fails carries a code
// from the expected set (1002 protocol error, 1007 invalid UTF-8, 1009 too
// big), not an empty close frame or a bare drop; invalid close frames from
// the client (7.3.2, 7.3.6, 7.5.1, 7.9.x, and 7.13.x, whose codes above
// 4999 cannot be valid) are answered with 1002 (or 1007 for 7.5.1); 7.1.6
// must echo both messages before the close; 9.x echoes are compared byte
// for byte (Autobahn only checks their length). NON-STRICT is a failure:
// the server must fail invalid UTF-8 at the first byte that cannot start
// valid text (6.4.x), even in the middle of a frame.
//
// # Waits
//
// Autobahn's scripts wait fixed times. Here no wait decides a verdict by
// its length on a correct server:
//
//   - 6.4.x wait 250 ms after the valid first part to see that the
//     server does not fail on it ("timeout A"), then wait for the server to
//     close after the invalid part, up to 10 s ("timeout B": the rest is
//     sent only if it has not, which is NON-STRICT).
//   - 5.19 and 5.20 wait for the first pong before sending the rest of the
//     message (Autobahn waits 1 s), which makes the order they test certain.
//   - Every wait for the server is bounded by 10 s (2 min for 9.x); a
//     correct server never gets near it.
//
// # Extra cases
//
// Cases Autobahn does not have are marked Extra and excluded from the
// counts of Autobahn verdicts:
//
//   - 6.N.M/frag1: the sequences of 6.5-6.23 in frames of one byte;
//   - 6.N.M/split (valid sequences, on one connection) and 6.N.M/splitK
//     (invalid ones): in two frames, cut at every byte position;
//   - 6.N.M/failfast (invalid sequences that can be caught before their
//     end): the valid prefix, a ping whose pong shows the server has not
//     failed on the prefix, then the invalid byte alone; the server must
//     fail with 1007 before the rest is sent;
//   - x.1-x.9: an unmasked frame, a 64-bit length with its top bit set, a
//     message or fragmented message over the 16 MiB limit (1009 as soon as
//     the header arrives, before any payload), a fragmented close frame, a
//     binary frame inside a fragmented text message, close code 1015,
//     pings answered between one-byte fragments of split characters, and
//     binary messages that are not UTF-8 echoed as they are.
//
// # Running
//
//	go test ./tests/conformance                      # everything
//	go test -short ./tests/conformance               # without the 8 and 16 MiB messages of 9.1/9.2
//	go test -run 'TestAutobahn/wire/6.4' -v ./tests/conformance
//
// -v logs each case's verdicts and a summary. The table is pluggable: a
// Target is a function that returns the ws:// URL of an echo endpoint, and
// CONFORMANCE_URL=ws://host:port/path adds a target "url" for any running
// echo server (the server must echo every message with its opcode and
// accept 16 MiB messages).
//
// # Comparing with the real suite
//
// The real suite (the Python 3 port github.com/ricardo-valero/autobahn-testsuite
// on Debian's python3-autobahn and python3-twisted; the set-up is in the
// header of ../shared/tools/autobahn.sh) runs against a URL:
//
//	go run ./examples/echo -addr 127.0.0.1:9001 &
//	../shared/tools/autobahn.sh ws://127.0.0.1:9001/echo shockwave
//
// That script runs the fuzzingclient with cases "*" minus 12.* and 13.*
// (301 cases) and writes its reports (index.json and one JSON file per
// case) to the "outdir" of its spec.json. Pointing AUTOBAHN_REPORTS at that
// directory makes TestAutobahn compare, case by case, its verdicts and
// observations (behavior, behaviorClose, closedByMe, wasClean, droppedByMe,
// remoteCloseCode and the received events; for 9.x, whose events Autobahn
// does not record, all but the events) with the real run's:
//
//	AUTOBAHN_REPORTS=/path/to/reports go test -run TestAutobahn ./tests/conformance
//
// The comparison applies to the in-process target, or to the url target
// when CONFORMANCE_URL is set (so a report of another server, such as a gws
// echo server, can be checked against the same server); AUTOBAHN_AGENT picks
// the agent when the reports hold several.
package conformance
