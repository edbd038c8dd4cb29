// Command echo serves GET /echo and sends every message back with its own
// opcode (text stays text). It is the smallest Shockwave program, and the
// one conformance tools such as the Autobahn testsuite are pointed at.
//
//	go run ./examples/echo -addr 127.0.0.1:9001
//
// With -deflate it negotiates permessage-deflate (RFC 7692), and compresses
// every message it sends, however short: -deflate (or
// -deflate=no-context-takeover) compresses each message on its own,
// -deflate=context-takeover against the ones before. This is how the
// Autobahn testsuite's compression cases (12.* and 13.*) run:
//
//	go run ./examples/echo -addr 127.0.0.1:9001 -deflate
//
// With -serve the runtime serves the listener itself (runtime.Runtime.Serve):
// the event loop accepts the connections and answers their handshakes
// without net/http, at every path, and there is no /metrics.
//
// With -wire it echoes with a wire.Conn and a goroutine per connection
// instead of the runtime's sessions: the wire layer alone, for comparison.
//
// It exports traces and metrics when the standard variables say so, such as
// OTEL_TRACES_EXPORTER=stdout or OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
// (see the otelsetup package and docs/observability.md); with none set,
// instrumentation is off. With OTEL_METRICS_EXPORTER=prometheus it serves
// them at GET /metrics.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"

	"github.com/shockwave-go/shockwave/examples/internal/serve"
	"github.com/shockwave-go/shockwave/examples/otelsetup"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	// A conformance tool opens hundreds of connections a second from one
	// address; from loopback it is exempt anyway.
	rate := flag.Float64("upgrade-rate", runtime.DefaultUpgradeRate, "upgrades a second per client address; negative: no limit")
	var deflate deflateFlag
	flag.Var(&deflate, "deflate", "negotiate permessage-deflate, `mode` no-context-takeover (the default) or context-takeover, and compress every message")
	wireOnly := flag.Bool("wire", false, "echo with a wire.Conn and a goroutine per connection instead of the runtime")
	serveLn := flag.Bool("serve", false, "serve the listener with Runtime.Serve (without net/http; every path echoes, no /metrics)")
	flag.Parse()
	mode := wire.CompressionMode(deflate)
	if *wireOnly {
		serveWire(*addr, mode)
		return
	}

	// Before runtime.New, which looks at the global providers once.
	tel, err := otelsetup.Init(context.Background(), nil)
	if err != nil {
		log.Fatalf("echo: telemetry: %v", err)
	}

	echo := session.HandlerFunc(func(s *session.Session, m session.Message) error {
		return s.Send(m.Op, m.Data)
	})
	rt, err := runtime.New(echo, runtime.WithMaxMessageSize(16<<20),
		runtime.WithLimits(runtime.Limits{UpgradeRate: *rate}),
		runtime.WithCompression(mode, 0))
	if err != nil {
		log.Fatal(err)
	}
	if *serveLn {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		log.Printf("echo: serving ws://%s/ on the event loop (Runtime.Serve), permessage-deflate %v", *addr, mode)
		if err := serve.Until(func() error { return rt.Serve(ln) }, rt.Shutdown, tel.Shutdown); err != nil {
			log.Print(err)
		}
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /echo", rt)
	if h := tel.MetricsHandler(); h != nil {
		mux.Handle("GET /metrics", h)
	}
	srv := serve.NewServer(*addr, mux)

	log.Printf("echo: listening on ws://%s/echo, permessage-deflate %v", *addr, mode)
	if err := serve.Run(srv, rt.Shutdown, tel.Shutdown); err != nil {
		log.Print(err)
	}
}

// deflateFlag is -deflate: a boolean flag that also takes a mode.
type deflateFlag wire.CompressionMode

func (f *deflateFlag) IsBoolFlag() bool { return true }

func (f *deflateFlag) String() string { return wire.CompressionMode(*f).String() }

func (f *deflateFlag) Set(s string) error {
	switch s {
	case "false":
		*f = deflateFlag(wire.CompressionDisabled)
	case "true", "no-context-takeover":
		*f = deflateFlag(wire.CompressionNoContextTakeover)
	case "context-takeover":
		*f = deflateFlag(wire.CompressionContextTakeover)
	default:
		return errors.New("want no-context-takeover or context-takeover")
	}
	return nil
}

// serveWire serves /echo with wire.Accept and permessage-deflate in mode,
// one goroutine per connection, until the process is interrupted.
func serveWire(addr string, mode wire.CompressionMode) {
	opts := &wire.AcceptOptions{Options: wire.Options{Compression: mode, CompressionThreshold: -1, MaxMessageSize: 16 << 20}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := wire.Accept(w, r, opts)
		if err != nil {
			return // Accept has answered
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
	srv := serve.NewServer(addr, mux)
	log.Printf("echo: listening on ws://%s/echo with wire.Conn, permessage-deflate %v", addr, mode)
	if err := serve.Run(srv); err != nil {
		log.Print(err)
	}
}
