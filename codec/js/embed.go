// Package js holds the browser client module, shockwave.js, for Go servers
// that serve it to their pages (see examples/chat):
//
//	http.Handle("GET /shockwave.js", http.FileServerFS(js.FS))
//
// The module itself is documented in its source and in docs/protocol.md.
package js

import "embed"

// FS holds shockwave.js, the browser client of the event envelope, at its
// root.
//
//go:embed shockwave.js
var FS embed.FS
