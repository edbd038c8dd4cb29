// Command nbio is the nbio bench server: GET /echo echoes every message with
// its opcode, GET /room sends every message to every connection on /room
// (the sender included), GET /sink counts and drops messages. See
// tests/bench/internal/peers for its configuration.
//
//	go run ./tests/bench/servers/nbio -addr 127.0.0.1:9001
package main

import "github.com/shockwave-go/shockwave/tests/bench/internal/serve"

func main() { serve.Main("nbio") }
