// Command shockwave-goroutine is the shockwave bench server with a
// goroutine per connection (runtime.TransportGoroutine) instead of the
// event loop; otherwise the same as tests/bench/servers/shockwave.
//
//	go run ./tests/bench/servers/shockwave-goroutine -addr 127.0.0.1:9001
package main

import "github.com/shockwave-go/shockwave/tests/bench/internal/serve"

func main() { serve.Main("shockwave-goroutine") }
