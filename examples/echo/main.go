// Command echo serves GET /echo and sends every message back with its own
// opcode (text stays text). It is the smallest Shockwave program, and the
// one conformance tools such as the Autobahn testsuite are pointed at.
//
//	go run ./examples/echo -addr 127.0.0.1:9001
//
// It exports traces and metrics when the standard variables say so, such as
// OTEL_TRACES_EXPORTER=stdout or OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
// (see the otelsetup package and docs/observability.md); with none set,
// instrumentation is off. With OTEL_METRICS_EXPORTER=prometheus it serves
// them at GET /metrics.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"

	"github.com/shockwave-go/shockwave/examples/internal/serve"
	"github.com/shockwave-go/shockwave/examples/otelsetup"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	// A conformance tool opens hundreds of connections a second from one
	// address; from loopback it is exempt anyway.
	rate := flag.Float64("upgrade-rate", runtime.DefaultUpgradeRate, "upgrades a second per client address; negative: no limit")
	flag.Parse()

	// Before runtime.New, which looks at the global providers once.
	tel, err := otelsetup.Init(context.Background(), nil)
	if err != nil {
		log.Fatalf("echo: telemetry: %v", err)
	}

	echo := session.HandlerFunc(func(s *session.Session, m session.Message) error {
		return s.Send(m.Op, m.Data)
	})
	rt, err := runtime.New(echo, runtime.WithMaxMessageSize(16<<20),
		runtime.WithLimits(runtime.Limits{UpgradeRate: *rate}))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /echo", rt)
	if h := tel.MetricsHandler(); h != nil {
		mux.Handle("GET /metrics", h)
	}
	srv := serve.NewServer(*addr, mux)

	log.Printf("echo: listening on ws://%s/echo", *addr)
	if err := serve.Run(srv, rt.Shutdown, tel.Shutdown); err != nil {
		log.Print(err)
	}
}
