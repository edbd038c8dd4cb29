// Command echo serves GET /echo and sends every message back with its own
// opcode (text stays text). It is the smallest Shockwave program, and the
// one conformance tools such as the Autobahn testsuite are pointed at.
//
//	go run ./examples/echo -addr 127.0.0.1:9001
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	flag.Parse()

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

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown) // stops listening; hijacked connections are the runtime's
		rt.Shutdown(shutdown)
	}()
	log.Printf("echo: listening on ws://%s/echo", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-ctx.Done()
}
