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
// docs/protocol.md. Their TypeScript declarations, shockwave.d.ts and
// msgpack.d.ts beside them, are not embedded: a browser loads the .js
// files only, and the declarations are for the editors and builds of
// applications (package.json's "types"), checked by types_test.go.
package js

import "embed"

// FS holds shockwave.js, the browser client of the event envelope, and
// msgpack.js, the MessagePack codec it imports, at its root (and not
// their .d.ts declarations).
//
//go:embed shockwave.js msgpack.js
var FS embed.FS
