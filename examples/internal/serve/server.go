package serve

import (
	"net/http"
	"time"
)

// NewServer returns the http.Server of an example, set as a server that
// faces the internet in front of a Runtime should be (see the runtime
// package's doc):
//
//   - ReadHeaderTimeout 10 s: a client that sends its request's headers a
//     byte at a time (slowloris) holds a connection and a goroutine for
//     10 s at most.
//   - IdleTimeout 30 s: a keep-alive connection between requests is
//     closed after 30 s. Left 0, with no ReadTimeout, it is held for ever,
//     and idle connections are a cheap way to use up descriptors. A page
//     loads its files in a burst, and a WebSocket is hijacked, so no
//     client of the examples waits that long between requests.
//   - MaxHeaderBytes 8 KiB (plus net/http's 4 KiB of slack), not
//     net/http's 1 MiB: an upgrade request's headers are a few hundred
//     bytes, a few KiB with cookies, and 8 KiB is what nginx and Apache
//     allow one header line by default. A request over it gets 431.
//
// ReadTimeout and WriteTimeout stay 0: the pages are small, and the
// WebSockets would not feel them (net/http clears a connection's deadlines
// when it is hijacked).
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// MaxHeaderBytes is NewServer's bound on a request's headers.
const MaxHeaderBytes = 8 << 10
