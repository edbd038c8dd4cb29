package chatserver

import "github.com/shockwave-go/shockwave/runtime"

// RuntimeOf returns the chat's Runtime, for tests to read its counters
// without the chat exporting it.
func RuntimeOf(srv *Server) *runtime.Runtime { return srv.rt }
