// Package js holds the browser client, for Go servers that serve it to
// their pages (see examples/chat): shockwave.js and msgpack.js, which
// shockwave.js imports from its own directory, so both must be served side
// by side:
//
//	static := http.FileServerFS(js.FS)
//	http.Handle("GET /shockwave.js", static)
//	http.Handle("GET /msgpack.js", static)
//
// The modules themselves are documented in their sources and in
// docs/protocol.md.
package js

import "embed"

// FS holds shockwave.js, the browser client of the event envelope, and
// msgpack.js, the MessagePack codec it imports, at its root.
//
//go:embed shockwave.js msgpack.js
var FS embed.FS
