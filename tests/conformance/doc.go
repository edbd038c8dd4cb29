// Package conformance tests a WebSocket server's RFC 6455 behaviour case
// by case as the Autobahn testsuite does (its fuzzingclient, server cases
// 1-7, 9 and 10: framing, pings and pongs, reserved bits, opcodes,
// fragmentation, UTF-8, closing, limits and auto-fragmentation; and 12 and
// 13, permessage-deflate, RFC 7692), so that CI needs no Python. The
// package has only tests; this file documents them.
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
// # Compression
//
// TestAutobahnDeflate runs a second table, the permessage-deflate cases
// (cases12_test.go), against servers with compression on, one row of
// deflateTargets each: the wire.Conn echo in its two modes,
// wire-no-context-takeover and wire-context-takeover (as examples/echo
// -deflate and -deflate=context-takeover serve it), and the runtime's echo
// with Options.Compression wire.CompressionNoContextTakeover;
// CONFORMANCE_DEFLATE_URL=ws://... adds a target "url".
//
// Autobahn's 216 cases are case12_x_x.py's. Each group has 18 cases, one
// for each of its message sizes: 16 B to 128 KiB in one frame (12.N.1 to
// 12.N.10), then 8 to 128 KiB in frames of 256 compressed bytes, and
// 128 KiB in frames of 1, 4 and 32 KiB (autobahn-python's
// auto-fragmentation, empty last frame included). 12.1-12.5 take their
// messages from five data sets (JSON and HTML sent as text, cut by
// characters; a bitmap, German verse and a PDF sent as binary) and make
// autobahn-python's default offer, "permessage-deflate;
// client_no_context_takeover; client_max_window_bits"; 13.1-13.7 take JSON
// and vary the offer: the default, with server_no_context_takeover, with
// server_max_window_bits=9 or 15, with both, and the list of three offers
// of 13.7. The script is Autobahn's: the client sends a message when the
// echo of the one before has come, compressed as agreed (against its
// messages before unless the answer has client_no_context_takeover or the
// offer promised it, with the agreed window: compress/flate's default
// level, as Autobahn's zlib, for 15 bits, klauspost's windowed encoder
// below), and compares each echo with what it sent, byte for byte
// (Autobahn: length and SHA-1). The verdict is OK when all came back,
// FAILED at the first that differs or does not come, UNIMPLEMENTED when
// the server declined every offer (a strict failure here).
//
// Autobahn sends 1000 messages a case. CI sends as many as make 64 KiB,
// 2 to 50, which keeps the three targets' 700 cases within half a minute
// under the race detector; CONFORMANCE_FULL=1 sends the 1000. The data
// sets are generated (testdata_test.go), of the same kind, length and
// compressibility as Autobahn's files, whose contents are not ours to
// ship; AUTOBAHN_TESTDATA=<port>/autobahntestsuite/testdata uses those.
//
// On top of Autobahn's checks, which take any answer its zlib can honour
// and compare what was inflated:
//
//   - The answer must be one RFC 7692 section 7.1 allows for the offers:
//     permessage-deflate alone, each parameter known, at most once, with
//     a value only where one belongs, window sizes 8 to 15 without leading
//     zeros, and accepting one of the offers: server_no_context_takeover
//     when it was asked for, server_max_window_bits when asked for and no
//     larger, client_max_window_bits only when offered and no larger than
//     offered (Autobahn's client fails the handshake only on what it
//     cannot parse, and on windows of 8 bits, which zlib lacks).
//   - Server frames have RSV1 only on the first frame of a data message,
//     never on a continuation or control frame.
//   - Compressed messages are inflated by an inflater of the package's own
//     (inflate_test.go, not the server's klauspost/compress) that fails a
//     distance further back than 2^server_max_window_bits, or into the
//     messages before when the server agreed to server_no_context_takeover,
//     or into one it sent uncompressed. Autobahn's zlib, given the same
//     window, catches the latter ones.
//
// The extra cases xd.x check what Autobahn does not: a compressed frame
// with no extension offered (xd.1) or after the server declined an
// invalid offer (xd.2) fails with 1002; an offer with an invalid
// parameter is declined and the next valid one taken (xd.3.x); a message
// that inflates to exactly the 16 MiB limit is echoed (xd.4.1), and a
// compression bomb of 16 KiB that inflates one byte past it, in one frame
// or in 1000-byte frames, fails with 1009 (xd.4.2, xd.4.3); RSV1 on a
// continuation frame or a ping, RSV2, RSV3 fail with 1002 (xd.5-xd.8);
// data that does not inflate fails with 1007 or 1002 (xd.9), compressed
// text that inflates to invalid UTF-8 with 1007 (xd.10); empty compressed
// messages, a message ending with a BFINAL block (RFC 7692 section
// 7.2.3.3) and one in frames of one compressed byte are echoed
// (xd.11-xd.13); the client compresses with context takeover, with
// messages sent uncompressed among the compressed ones, which must stay
// out of the server's window (xd.14), and with an 8-bit window (xd.15);
// the server's windows of 8 and 10 to 14 bits (xd.16.x); and the server's
// own uncompressed messages (below its threshold) among its compressed
// ones with context takeover, which must stay out of its window (xd.17).
// TestDeflateSelfCheck plays cases against fake servers that
// get permessage-deflate wrong, to show each mistake is caught.
//
// # Running
//
//	go test ./tests/conformance                      # everything
//	go test -short ./tests/conformance               # without the 8 and 16 MiB messages of 9.1/9.2
//	go test -run 'TestAutobahn/wire/6.4' -v ./tests/conformance
//	CONFORMANCE_FULL=1 go test -run TestAutobahnDeflate ./tests/conformance  # 1000 messages a case
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
// (301 cases; CASES=all adds them, against go run ./examples/echo -deflate)
// and writes its reports (index.json and one JSON file per case) to the
// "outdir" of its spec.json. Pointing AUTOBAHN_REPORTS at that
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
// the agent when the reports hold several. The 12.x and 13.x reports are
// compared with wire-no-context-takeover, or the url target when
// CONFORMANCE_DEFLATE_URL is set; AUTOBAHN_TARGET names another (such as
// wire-context-takeover, for a report of examples/echo
// -deflate=context-takeover). Autobahn records no events for them.
package conformance
