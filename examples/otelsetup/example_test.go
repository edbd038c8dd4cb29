package otelsetup_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/shockwave-go/shockwave/examples/otelsetup"
	"github.com/shockwave-go/shockwave/runtime"
	"github.com/shockwave-go/shockwave/session"
	"github.com/shockwave-go/shockwave/wire"
)

// An echo server with its metrics at /metrics for Prometheus. The
// option says what OTEL_METRICS_EXPORTER=prometheus would.
func Example() {
	ctx := context.Background()
	tel, err := otelsetup.Init(ctx, &otelsetup.Options{MetricsExporter: "prometheus"})
	if err != nil {
		log.Fatal(err)
	}
	defer tel.Shutdown(ctx) // after the runtime's, deferred below

	// After Init: the runtime looks at the global providers when it is made.
	rt, err := runtime.New(session.HandlerFunc(func(s *session.Session, m session.Message) error {
		return s.Send(m.Op, m.Data)
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Shutdown(ctx)
	mux := http.NewServeMux()
	mux.Handle("GET /echo", rt)
	if h := tel.MetricsHandler(); h != nil {
		mux.Handle("GET /metrics", h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A client says hello and hears it back.
	c, _, err := wire.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/echo", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.WriteMessage(wire.OpText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err != nil {
		log.Fatal(err)
	}

	// What Prometheus would read.
	fmt.Println(metric(srv.URL+"/metrics", "shockwave_sessions_active"))
	fmt.Println(metric(srv.URL+"/metrics", "shockwave_messages_received_total"))
	// Output:
	// shockwave_sessions_active 1
	// shockwave_messages_received_total 1
}

// metric reads a page of metrics until it has the named one, for 10 s at
// most (the runtime counts a message once its handler has returned, which
// may be after the reply has gone), and returns its line without its
// labels.
func metric(url, name string) string {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			return err.Error()
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if labels, ok := strings.CutPrefix(line, name+"{"); ok {
				line = name + labels[strings.LastIndex(labels, "}")+1:]
			}
			if strings.HasPrefix(line, name+" ") {
				resp.Body.Close()
				return line
			}
		}
		resp.Body.Close()
	}
	return name + " not served"
}
