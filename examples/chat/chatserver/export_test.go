package chatserver

import (
	"time"

	"github.com/shockwave-go/shockwave/runtime"
)

// RuntimeOf returns the chat's Runtime, for tests to read its counters
// without the chat exporting it.
func RuntimeOf(srv *Server) *runtime.Runtime { return srv.rt }

// Sign returns the value of a sign-in cookie srv would accept for name
// until expires, for tests to make cookies POST /login would not (expired
// ones, or ones about to expire).
func Sign(srv *Server, name string, expires time.Time) string {
	return srv.keys.sign(name, expires)
}
