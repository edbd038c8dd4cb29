// Package wire is Shockwave's own implementation of the WebSocket protocol
// (RFC 6455): frames, masking, UTF-8 validation, the opening and closing
// handshakes, and a connection type for servers and clients. Everything above
// it in Shockwave (sessions, rooms, codecs) stands on this package, and no
// third-party WebSocket code sits on its path.
//
// # Getting a connection
//
// A server calls Accept from any net/http handler; a client calls Dial:
//
//	c, err := wire.Accept(w, r, nil)         // server
//	c, _, err := wire.Dial(ctx, url, nil)    // client
//
// Accept refuses a bad upgrade with the right HTTP status itself (405, 426,
// 400, or 403 for a page of another origin) before anything is hijacked.
// A server that reads its connections itself, without net/http (Shockwave's
// event loop), parses the request head with ParseRequest and answers it
// with Request.CheckUpgrade, Request.AppendAccept or AppendRefusal: the
// same checks and responses, with no allocation.
//
// # Reading and writing
//
// Conn.Read(ctx) returns whole messages: fragments are reassembled, text is
// checked to be UTF-8 as it arrives (a bad byte fails the connection at
// once, even in an early fragment), pings are answered and the closing
// handshake is done. A peer that breaks the protocol is sent the close code
// that says why (1002, 1007, 1009, ...) and Read returns a *ProtocolError;
// a peer that closes is answered and reported as a CloseError. Those errors
// are final. A ctx that ends, or a read deadline that passes, is not: Read
// returns, and the next Read goes on with the message half received.
// ReadMessage is Read without a context.
//
// Writes may come from any goroutine: Conn serialises them. A server writes
// a frame's header and payload with one vectored write, without copying the
// payload; a client masks a pooled copy. Write(ctx) gives up when ctx ends
// before the frame has begun to go out, and closes the connection when it
// ends in the middle. A frame RFC 6455 forbids to send (a reserved opcode,
// a control frame over 125 bytes, fragments out of order) is refused with a
// *UsageError, the caller's mistake, and nothing is sent. Close reasons are
// made valid UTF-8 and cut to 123 bytes, and codes that may not be sent
// are replaced.
//
// # Compression
//
// permessage-deflate (RFC 7692) is off by default; Options.Compression
// turns it on for Accept and Dial, in one of two modes.
// CompressionNoContextTakeover compresses every message on its own: the
// compressors (github.com/klauspost/compress/flate, level 1) and
// decompressors come from pools for one message, so an idle connection
// holds none, and a message can be compressed once for many connections
// (AppendCompressed). CompressionContextTakeover lets each side compress
// against what it sent before, which shrinks small similar messages more,
// at about 840 KiB per connection for as long as it lives (a compressor
// and a 32 KiB window). Messages shorter than CompressionThreshold (512
// bytes by default) go out as they are. Accept honours any valid offer,
// windows of 8 to 15 bits included, and declines, without failing, the
// invalid ones; Dial fails on an answer RFC 7692 does not allow.
// Conn.Compression tells what was agreed.
//
// What comes compressed is inflated within MaxMessageSize: the output
// grows as bytes come out and a message that inflates past the limit
// fails with 1009 (StatusMessageTooBig) without more being allocated; bad
// deflate data fails with 1007, and RSV1 on a control or continuation
// frame with 1002. Compressed text is checked once inflated, not as it
// arrives.
//
// # Bounded waits
//
// Nothing a peer does holds a call for ever unless the caller asked for
// that: Dial gives up after HandshakeTimeout (30 s by default) when its
// context has no deadline; Close, and the close frame sent when the peer
// breaks the protocol, take CloseTimeout (5 s) at most, even when a write
// is blocked on a peer that does not read; Read and Write end with their
// context. ReadMessage and WriteMessage wait as long as the peer takes,
// unless a deadline is set with NetConn().
//
// # Concurrency
//
// One goroutine reads; any number write; Close, CloseNow and Ping may be
// called from anywhere.
//
// # Memory
//
// The steady paths do not allocate: ParseHeader, AppendHeader, Mask, the
// UTF-8 validator, AcceptKey, AppendCompressed into a buffer with room, and
// ReadMessage/WriteMessage once their pools are warm, compressed or not
// (Read and Write too, with a context that cannot end). A message is
// returned as a view into a pooled read buffer when it
// fits there (16 KiB by default), and otherwise assembled in a pooled buffer
// of its size class, read into directly. A connection over TCP hands its
// read buffer back to the pool whenever the socket is drained, so an idle
// connection holds no buffer.
//
// # Limits
//
// MaxMessageSize (default 16 MiB) bounds a message after reassembly, and
// after inflation when it comes compressed; a frame header announcing more
// fails the connection with 1009 before any of the payload is read.
// Control frames carry at most 125 bytes.
//
// The lower-level pieces (Reader, ParseHeader, AppendFrame, Mask,
// UTF8Validator, ParseClosePayload) are exported for transports and tests
// that need frames rather than messages.
package wire
