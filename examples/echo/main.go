// Command echo serves GET /echo and sends every message back with its own
// opcode (text stays text). It is the smallest Shockwave program, and the
// one conformance tools such as the Autobahn testsuite are pointed at.
//
//	go run ./examples/echo -addr 127.0.0.1:9001
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/shockwave-go/shockwave/wire"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	flag.Parse()

	http.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := wire.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered with the HTTP error
		}
		defer c.CloseNow()
		for {
			op, p, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(op, p); err != nil {
				return
			}
		}
	})
	log.Printf("echo: listening on http://%s/echo", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
