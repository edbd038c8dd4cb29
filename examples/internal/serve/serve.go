// Package serve holds what the examples' servers share: Run serves until
// the process is interrupted, then shuts down in order; Page and Static
// serve an example's web page with the browser client modules.
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
// listening and calls shutdown (a Runtime's, which owns the hijacked
// WebSocket connections), both within 10 s, and returns once they are done:
// by then the sessions have ended, so telemetry flushed afterwards has all
// their spans. It returns ListenAndServe's error if serving fails.
func Run(srv *http.Server, shutdown func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}
