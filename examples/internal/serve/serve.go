// Package serve holds what the examples' servers share: Run (and Until)
// serves until the process is interrupted, then shuts down in order; Page and Static
// serve an example's web page with the browser client modules;
// WithMetrics adds /metrics.
package serve

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Run serves with srv until SIGINT or SIGTERM, then stops srv from
// listening and calls each shutdown in turn (a Runtime's, which owns the
// hijacked WebSocket connections, then telemetry's), all within 10 s, and
// returns once they are done: by then the sessions have ended, so
// telemetry flushed afterwards has all their spans. It returns
// ListenAndServe's error if serving fails, else the shutdowns' errors.
func Run(srv *http.Server, shutdown ...func(context.Context) error) error {
	return Until(srv.ListenAndServe, append([]func(context.Context) error{srv.Shutdown}, shutdown...)...)
}

// Until is Run for any server: serve serves until the first shutdown
// stops it (it then returns http.ErrServerClosed, as a Runtime's Serve
// does).
func Until(serve func() error, shutdown ...func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		for _, f := range shutdown {
			errs = append(errs, f(sctx))
		}
		done <- errors.Join(errs...)
	}()
	if err := serve(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-done
}

// WithMetrics returns h with metrics (otelsetup's MetricsHandler) beside
// it at GET /metrics, or h itself when metrics is nil.
func WithMetrics(h, metrics http.Handler) http.Handler {
	if metrics == nil {
		return h
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.Handle("/", h)
	return mux
}
