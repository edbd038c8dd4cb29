// Command echo serves GET /echo and sends every message back with its own
// opcode (text stays text). It is the smallest Shockwave program, and the
// one conformance tools such as the Autobahn testsuite are pointed at.
//
//	go run ./examples/echo -addr 127.0.0.1:9001
//
// It exports traces and metrics when the standard variables say so, such as
// OTEL_TRACES_EXPORTER=stdout or OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
// (see docs/observability.md); with none set, instrumentation is off.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/shockwave-go/shockwave/examples/internal/otelsetup"
	"github.com/shockwave-go/shockwave/examples/internal/serve"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	flag.Parse()

	// Before runtime.New, which looks at the global providers once.
	defer otelsetup.MustInit("echo")()

	echo := session.HandlerFunc(func(s *session.Session, m session.Message) error {
		return s.Send(m.Op, m.Data)
	})
	rt, err := runtime.New(echo, runtime.WithMaxMessageSize(16<<20))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /echo", rt)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	log.Printf("echo: listening on ws://%s/echo", *addr)
	if err := serve.Run(srv, rt.Shutdown); err != nil {
		log.Print(err)
	}
}
