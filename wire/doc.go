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
// Conn.ReadMessage returns whole messages: fragments are reassembled, text
// is checked to be UTF-8 as it arrives (a bad byte fails the connection at
// once, even in an early fragment), pings are answered and the closing
// handshake is done. A peer that breaks the protocol is sent the close code
// that says why (1002, 1007, 1009, ...) and ReadMessage returns a
// *ProtocolError; a peer that closes is answered and reported as a
// CloseError. Every error from ReadMessage is final.
//
// Writes may come from any goroutine: Conn serialises them. A server writes
// a frame's header and payload with one vectored write, without copying the
// payload; a client masks a pooled copy.
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
// are warm. A message is returned as a view into a pooled read buffer when it
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
