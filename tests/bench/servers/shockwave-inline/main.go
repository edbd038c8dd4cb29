// Command shockwave-inline is the shockwave bench server with the event
// loop running the callbacks on its pollers (runtime.TransportInline);
// otherwise the same as tests/bench/servers/shockwave.
//
//	go run ./tests/bench/servers/shockwave-inline -addr 127.0.0.1:9001
package main

import "github.com/shockwave-go/shockwave/tests/bench/internal/serve"

func main() { serve.Main("shockwave-inline") }
