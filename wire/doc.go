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
// UTF-8 validator, AcceptKey, and ReadMessage/WriteMessage once their pools
// are warm (Read and Write too, with a context that cannot end). A message is returned as a view into a pooled read buffer when it
// fits there (16 KiB by default), and otherwise assembled in a pooled buffer
// of its size class, read into directly. A connection over TCP hands its
// read buffer back to the pool whenever the socket is drained, so an idle
// connection holds no buffer.
//
// # Limits
//
// MaxMessageSize (default 16 MiB) bounds a message after reassembly; a frame
// header announcing more fails the connection with 1009 before any of the
// payload is read. Control frames carry at most 125 bytes.
//
// The lower-level pieces (Reader, ParseHeader, AppendFrame, Mask,
// UTF8Validator, ParseClosePayload) are exported for transports and tests
// that need frames rather than messages.
package wire
